"""Webhook subscriptions: created on install through the Admin API (idempotently), or left to the toml."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from click.testing import CliRunner

from shopify_app.cli import main
from shopify_app.clock import FrozenClock
from shopify_app.models import Job
from shopify_app.runtime import Runtime
from shopify_app.settings import DEFAULT_API_VERSION, DEFAULT_SCOPES
from shopify_app.shopify.admin_queries import WebhookSubscriptionInfo
from shopify_app.shopify.subscriptions import SUBSCRIBED_TOPICS, compare
from shopify_app.shopify.topics import PRIVACY_TOPICS
from shopify_app.worker import Worker
from tests.conftest import RECEIVED_AT, make_settings
from tests.support.db import Db
from tests.support.env import chorus_env
from tests.support.fake_shopify import FakeSubscriptions
from tests.support.shopify_auth import signed_query
from tests.support.webhooks import SHOP

ROOT = Path(__file__).resolve().parent.parent
BASE = f"https://shopify.test/{SHOP}"
URI = "https://chorus.example/webhooks"


def info(n: int, topic: str, uri: str = URI) -> WebhookSubscriptionInfo:
    return WebhookSubscriptionInfo(f"gid://shopify/WebhookSubscription/{n}", topic, uri)


def test_compare_keeps_what_fits_and_names_what_is_missing_or_stale() -> None:
    existing = [
        info(1, "ORDERS_CREATE"),
        info(2, "ORDERS_CREATE"),  # a duplicate: every event twice
        info(3, "ORDERS_PAID", "https://old-host.example/webhooks"),
        info(4, "CARTS_CREATE"),  # not a topic Chorus handles
    ]
    check = compare(existing, {"orders/create", "orders/paid"}, URI)
    assert [s.id[-1] for s in check.kept] == ["1"]
    assert check.missing == ("orders/paid",)
    assert [s.id[-1] for s in check.stale] == ["2", "3", "4"]


def test_the_toml_declares_what_the_app_would_create() -> None:
    config = tomllib.loads((ROOT / "shopify.app.toml").read_text())
    blocks = config["webhooks"]["subscriptions"]
    topics = sorted(t for block in blocks for t in block.get("topics", []))
    compliance = sorted(t for block in blocks for t in block.get("compliance_topics", []))
    assert topics == list(SUBSCRIBED_TOPICS)
    assert compliance == sorted(PRIVACY_TOPICS)
    assert {block["uri"] for block in blocks} == {"/webhooks"}
    assert config["access_scopes"]["scopes"] == ",".join(DEFAULT_SCOPES)
    assert config["webhooks"]["api_version"] == DEFAULT_API_VERSION
    assert config["auth"]["redirect_urls"][0].endswith("/auth/callback")


@pytest.fixture
def app_managed(db_url: str) -> Iterator[Runtime]:
    runtime = Runtime.build(make_settings(db_url, WEBHOOKS_MANAGED_BY="app"), clock=FrozenClock(RECEIVED_AT))
    yield runtime
    runtime.close()


def install_through_oauth(runtime: Runtime) -> None:
    from shopify_app.app import create_app

    client = create_app(runtime).test_client()
    state = parse_qs(urlsplit(client.get(f"/auth?shop={SHOP}").headers["Location"]).query)["state"][0]
    params = {"code": "c", "shop": SHOP, "state": state, "timestamp": str(int(RECEIVED_AT.timestamp()))}
    assert client.get("/auth/callback", query_string=signed_query(params)).status_code == 302


def test_install_to_subscriptions_against_a_fake_shopify(app_managed: Runtime, db: Db) -> None:
    fake = FakeSubscriptions()
    fake.add("ORDERS_CREATE", URI)  # left from an earlier installation: kept
    fake.add("ORDERS_PAID", "https://old-host.example/webhooks")  # the app moved: replaced
    with responses.RequestsMock() as mock:
        mock.post(
            f"{BASE}/admin/oauth/access_token",
            json={"access_token": "shpat_installed", "scope": ",".join(DEFAULT_SCOPES), "expires_in": 3600,
                  "refresh_token": "shprt_installed", "refresh_token_expires_in": 7776000},
        )  # fmt: skip
        fake.install(mock, BASE)
        install_through_oauth(app_managed)
        first = Worker(app_managed).run_once()
        again = Worker(app_managed).run_once()  # nothing due: the job is done

    assert first.jobs.done == 1
    assert again.jobs.done == 0
    assert sorted(topic for topic, uri in fake.subscriptions.values() if uri == URI) == sorted(
        t.replace("/", "_").upper() for t in SUBSCRIBED_TOPICS
    )
    assert len(fake.subscriptions) == len(SUBSCRIBED_TOPICS)  # nothing doubled, the stale one gone
    assert fake.operations[0] == "list"
    assert "delete gid://shopify/WebhookSubscription/2" in fake.operations
    assert "create ORDERS_CREATE" not in fake.operations
    assert set(fake.tokens_seen) == {"shpat_installed"}  # every call carried the installed token
    assert [(j.kind, j.status) for j in db.all(Job)] == [("install", "done")]


def test_ensuring_subscriptions_twice_changes_nothing(app_managed: Runtime, db: Db) -> None:
    from shopify_app.shopify.access import ShopifyAccess
    from shopify_app.shopify.subscriptions import ensure_subscriptions
    from shopify_app.shops import register_shop

    with db.write() as session:
        shop = register_shop(
            session, app_managed.secret_box, SHOP, access_token="shpat_custom", webhook_secret=None, now=RECEIVED_AT
        )
    fake = FakeSubscriptions()
    with responses.RequestsMock() as mock:
        fake.install(mock, BASE)
        api = ShopifyAccess(app_managed).admin_api(shop.id or 0)
        ensure_subscriptions(api, SUBSCRIBED_TOPICS, URI)
        created = list(fake.operations)
        ensure_subscriptions(api, SUBSCRIBED_TOPICS, URI)

    assert created.count("list") == 1
    assert len(created) == 1 + len(SUBSCRIBED_TOPICS)
    assert fake.operations[len(created) :] == ["list"]


def test_with_the_toml_in_charge_the_install_creates_no_subscription(db_url: str, db: Db) -> None:
    runtime = Runtime.build(make_settings(db_url, WEBHOOKS_MANAGED_BY="toml"), clock=FrozenClock(RECEIVED_AT))
    fake = FakeSubscriptions()
    try:
        with responses.RequestsMock() as mock:
            mock.post(
                f"{BASE}/admin/oauth/access_token",
                json={"access_token": "shpat_t", "scope": "read_orders", "expires_in": 3600, "refresh_token": "r"},
            )
            fake.install(mock, BASE)
            install_through_oauth(runtime)
            summary = Worker(runtime).run_once()
    finally:
        runtime.close()
    assert summary.jobs.done == 1
    assert fake.operations == ["pixel", "pixel create"]  # the web pixel only (tests/test_web_pixel_activation.py)


def doctor(db_url: str, fake: FakeSubscriptions, **env: str):
    with responses.RequestsMock() as mock:
        fake.install(mock, BASE)
        return CliRunner().invoke(main, ["shops", "doctor", SHOP], env=chorus_env(db_url, **env))


def test_doctor_lists_missing_and_stale_subscriptions_and_missing_scopes(
    db_url: str, db: Db, app_managed: Runtime
) -> None:
    from shopify_app.shops import register_shop

    with db.write() as session:
        register_shop(
            session, app_managed.secret_box, SHOP, access_token="shpat_custom", webhook_secret=None, now=RECEIVED_AT
        )
    fake = FakeSubscriptions(scopes=("read_orders", "read_products"))
    fake.add("ORDERS_CREATE", URI)
    fake.add("ORDERS_PAID", "https://old-host.example/webhooks")

    result = doctor(db_url, fake, WEBHOOKS_MANAGED_BY="app")

    assert result.exit_code == 1, result.output
    assert "  ok       ORDERS_CREATE" in result.output
    assert "  missing  orders/paid" in result.output
    assert "  stale    ORDERS_PAID -> https://old-host.example/webhooks" in result.output
    assert "Scopes missing: read_customers, write_customers, read_inventory" in result.output
    assert fake.operations == ["list"]  # the doctor only looks


def test_doctor_in_toml_mode_flags_api_subscriptions_as_doubles(db_url: str, db: Db, app_managed: Runtime) -> None:
    from shopify_app.shops import register_shop

    with db.write() as session:
        register_shop(
            session, app_managed.secret_box, SHOP, access_token="shpat_custom", webhook_secret=None, now=RECEIVED_AT
        )
    fake = FakeSubscriptions()
    assert doctor(db_url, fake, WEBHOOKS_MANAGED_BY="toml").exit_code == 0
    fake.add("ORDERS_CREATE", URI)
    result = doctor(db_url, fake, WEBHOOKS_MANAGED_BY="toml")
    assert result.exit_code == 1
    assert "  stale    ORDERS_CREATE" in result.output
