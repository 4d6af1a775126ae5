from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from shopify_app.app import create_app
from shopify_app.clock import FrozenClock
from shopify_app.models import Shop
from shopify_app.runtime import Runtime
from shopify_app.settings import Settings
from shopify_app.shops import register_shop
from tests.support.database import empty_all_tables, postgres_database, sqlite_database
from tests.support.db import Db
from tests.support.env import chorus_env
from tests.support.webhooks import SHOP

RECEIVED_AT = datetime(2026, 11, 20, 10, 0, 5, tzinfo=UTC)

# CI runs the same examples every time (`HYPOTHESIS_PROFILE=ci`, set by .ci/run); locally they vary.
hypothesis_settings.register_profile(
    "ci", derandomize=True, max_examples=300, deadline=None, database=None,
    suppress_health_check=[HealthCheck.too_slow],
)  # fmt: skip
hypothesis_settings.register_profile("dev", max_examples=100, deadline=None)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Every test that uses the database runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        with sqlite_database(tmp_path_factory.mktemp("sqlite")) as url:
            yield url
    else:
        with postgres_database() as url:
            yield url


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """For what only PostgreSQL can show (several workers side by side)."""
    with postgres_database() as url:
        yield url


@pytest.fixture
def pg_runtime(postgres_url: str) -> Iterator[Runtime]:
    """A runtime on PostgreSQL with the shop installed, emptied after the test."""
    runtime = Runtime.build(make_settings(postgres_url), clock=FrozenClock(RECEIVED_AT))
    with runtime.session() as session, session.begin():
        register_shop(session, runtime.secret_box, SHOP, access_token="t", webhook_secret=None, now=RECEIVED_AT)
    yield runtime
    runtime.close()
    empty_all_tables(postgres_url)


@pytest.fixture
def db_url(database_url: str) -> Iterator[str]:
    """The parametrised database, emptied after the test."""
    yield database_url
    empty_all_tables(database_url)


def make_settings(database_url: str, **overrides: str) -> Settings:
    return Settings.from_env(chorus_env(database_url, **overrides))


@pytest.fixture
def settings(db_url: str) -> Settings:
    return make_settings(db_url)


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    runtime = Runtime.build(settings, clock=FrozenClock(RECEIVED_AT))
    yield runtime
    runtime.close()


@pytest.fixture
def db(runtime: Runtime) -> Db:
    return Db(runtime)


# The shop's sending windows open all day, so that tests do not depend on the recipient's time of day, and no
# frequency cap, so that a flow's test sees every message it sends (the tests of quiet hours and caps set
# their own). The law's window for texts still applies.
ALL_DAY = {
    "quiet_hours": {"email": "00:00-24:00", "sms": "00:00-24:00", "whatsapp": "00:00-24:00"},
    "caps": [],
    "growth_threshold": 0,  # a test shop has a handful of customers: SMS and WhatsApp are open to it all the same
}


@pytest.fixture
def shop(runtime: Runtime) -> Shop:
    """An installed shop that signs webhooks with the app's secret."""
    with runtime.session() as session, session.begin():
        registered = register_shop(
            session, runtime.secret_box, SHOP, access_token="shpat_test", webhook_secret=None, now=RECEIVED_AT
        )
        registered.policy = dict(ALL_DAY)
        return registered


@pytest.fixture
def app(runtime: Runtime) -> Flask:
    app = create_app(runtime)
    app.testing = True
    return app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
