"""The shop's web pixel: activated through the Admin API on install and, once, for shops installed before an
upgrade; a shop without the pixel's scopes installs anyway, and the doctor says what the merchant must do."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import responses
from click.testing import CliRunner
from sqlalchemy import text

from shopify_app.cli import main
from shopify_app.clock import FrozenClock
from shopify_app.crypto import SecretBox
from shopify_app.db import migrate
from shopify_app.db.engine import make_engine
from shopify_app.models import Job, Shop
from shopify_app.runtime import Runtime
from shopify_app.settings import DEFAULT_SCOPES
from shopify_app.shopify.access import ShopifyAccess
from shopify_app.shopify.admin_api import admin_endpoint
from shopify_app.shopify.admin_queries import (
    CREATE_WEB_PIXEL,
    UPDATE_WEB_PIXEL,
    WEB_PIXEL,
    activate_web_pixel,
    current_web_pixel,
)
from shopify_app.shopify.oauth import TokenGrant
from shopify_app.shops import install_shop
from shopify_app.worker import Worker
from tests.conftest import RECEIVED_AT, make_settings
from tests.shopify.schema import variable_problems
from tests.support.db import Db
from tests.support.env import APP_URL, ENCRYPTION_KEY, chorus_env
from tests.support.fake_shopify import FakeSubscriptions
from tests.support.webhooks import SHOP

BASE = f"https://shopify.test/{SHOP}"
ENDPOINT = admin_endpoint(BASE, "2026-10")
# What a shop installed before this release granted: no pixel scopes.
OLD_SCOPES = ("read_customers", "write_customers", "read_orders", "read_products", "read_inventory")


def install(runtime: Runtime, scopes: tuple[str, ...] = DEFAULT_SCOPES) -> int:
    """What the authorization code grant and token exchange end with: the shop stored, its install job queued."""
    grant = TokenGrant("shpat_installed", scopes=",".join(scopes), expires_at=None)
    with runtime.session() as session, session.begin():
        shop = install_shop(session, runtime.secret_box, SHOP, grant, now=RECEIVED_AT)
        assert shop.id is not None
        return shop.id


def run_worker(runtime: Runtime, fake: FakeSubscriptions, after: timedelta = timedelta(0)) -> Any:
    at = Runtime(runtime.settings, runtime.engine, runtime.secret_box, FrozenClock(RECEIVED_AT + after))
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fake.install(mock, BASE)
        return Worker(at).run_once()


def sent_settings(request: dict[str, Any]) -> dict[str, Any]:
    assert variable_problems(request["query"], request["variables"]) == []
    raw = request["variables"]["webPixel"]["settings"]
    assert isinstance(raw, str)  # Shopify wants the JSON scalar as a JSON-encoded string
    decoded: dict[str, Any] = json.loads(raw)
    return decoded


def test_the_install_activates_the_pixel_with_the_shop_key_and_the_app_url(runtime: Runtime, db: Db) -> None:
    install(runtime)
    fake = FakeSubscriptions()
    summary = run_worker(runtime, fake)

    shop = db.one(Shop)
    assert shop.pixel_key
    assert fake.operations == ["pixel", "pixel create"]  # toml-managed webhooks: nothing else asked
    query, create = fake.pixel_requests
    assert query["query"] == WEB_PIXEL
    assert create["query"] == CREATE_WEB_PIXEL
    assert sent_settings(create) == {"shopKey": shop.pixel_key, "appUrl": APP_URL}
    assert fake.pixel is not None
    assert json.loads(fake.pixel[1]) == {"shopKey": shop.pixel_key, "appUrl": APP_URL}
    assert shop.web_pixel_settings == fake.pixel[1]
    assert set(fake.tokens_seen) == {"shpat_installed"}
    assert summary.jobs.done == 1
    assert [(j.kind, j.status) for j in db.all(Job)] == [("install", "done")]

    again = run_worker(runtime, fake, timedelta(minutes=10))
    assert again.jobs == type(again.jobs)()  # nothing queued: the pixel runs with this release's settings
    assert fake.operations == ["pixel", "pixel create"]


def test_an_existing_pixel_is_updated_not_duplicated(runtime: Runtime, db: Db) -> None:
    install(runtime)
    old = json.dumps({"shopKey": "from-an-earlier-install", "appUrl": "https://old-host.example"})
    fake = FakeSubscriptions(pixel=("gid://shopify/WebPixel/77", old))
    run_worker(runtime, fake)

    shop = db.one(Shop)
    assert fake.operations == ["pixel", "pixel update gid://shopify/WebPixel/77"]
    update = fake.pixel_requests[1]
    assert update["query"] == UPDATE_WEB_PIXEL
    assert update["variables"]["id"] == "gid://shopify/WebPixel/77"
    assert sent_settings(update) == {"shopKey": shop.pixel_key, "appUrl": APP_URL}
    assert fake.pixel is not None
    assert fake.pixel[0] == "gid://shopify/WebPixel/77"

    # Activating again with the same settings only looks.
    with responses.RequestsMock() as mock:
        fake.install(mock, BASE)
        api = ShopifyAccess(runtime).admin_api(shop.id or 0)
        pixel = activate_web_pixel(api, {"shopKey": shop.pixel_key or "", "appUrl": APP_URL})
    assert pixel.id == "gid://shopify/WebPixel/77"
    assert fake.operations[2:] == ["pixel"]


def test_a_create_refused_as_taken_updates_the_pixel_created_meanwhile(runtime: Runtime) -> None:
    shop_id = install(runtime)
    pixel = {"id": "gid://shopify/WebPixel/5", "settings": '{"appUrl":"https://old-host.example","shopKey":"k"}'}
    error = {"message": "No web pixel was found for this app.", "extensions": {"code": "RESOURCE_NOT_FOUND"}}
    not_found = {"errors": [error], "data": {"webPixel": None}}
    taken = {"field": ["webPixel"], "message": "Web pixel is taken.", "code": "TAKEN"}
    with responses.RequestsMock() as mock:
        mock.post(ENDPOINT, json=not_found)
        mock.post(ENDPOINT, json={"data": {"webPixelCreate": {"webPixel": None, "userErrors": [taken]}}})
        mock.post(ENDPOINT, json={"data": {"webPixel": pixel}})
        mock.post(
            ENDPOINT, json={"data": {"webPixelUpdate": {"webPixel": {**pixel, "settings": "{}"}, "userErrors": []}}}
        )
        api = ShopifyAccess(runtime).admin_api(shop_id)
        activate_web_pixel(api, {"shopKey": "k", "appUrl": APP_URL})
        documents = [json.loads(call.request.body or "")["query"] for call in mock.calls]
    assert documents == [WEB_PIXEL, CREATE_WEB_PIXEL, WEB_PIXEL, UPDATE_WEB_PIXEL]


def test_without_the_pixel_scopes_the_install_completes_and_the_doctor_says_what_to_do(
    db_url: str, runtime: Runtime, db: Db
) -> None:
    install(runtime, OLD_SCOPES)
    fake = FakeSubscriptions(scopes=OLD_SCOPES)
    summary = run_worker(runtime, fake)

    assert fake.operations == ["webPixel denied"]
    assert fake.pixel is None
    shop = db.one(Shop)
    assert shop.web_pixel_settings is None
    jobs = {j.kind: j for j in db.all(Job)}
    assert (jobs["install"].status, summary.jobs.done, summary.jobs.parked) == ("done", 1, 0)
    # Tried again the next day: Shopify asks the merchant to approve the new scopes without telling Chorus.
    assert (jobs["web_pixel"].status, jobs["web_pixel"].run_after) == ("pending", RECEIVED_AT + timedelta(days=1))
    assert run_worker(runtime, fake, timedelta(hours=2)).jobs.done == 0  # not retried before then

    result = doctor(db_url, fake)
    assert result.exit_code == 1, result.output
    assert "Scopes missing: write_pixels, read_customer_events" in result.output
    assert "Shopify asks the merchant to approve the new scopes the next time they open Chorus" in result.output
    assert f"{APP_URL}/auth?shop={SHOP}" in result.output
    assert "Web pixel: not active: the scopes granted lack write_pixels, read_customer_events." in result.output
    assert fake.operations == ["webPixel denied", "list", "webPixel denied"]  # the doctor only looks

    # The merchant approves them: the next day's attempt activates the pixel.
    fake.scopes = DEFAULT_SCOPES
    run_worker(runtime, fake, timedelta(days=1))
    assert fake.operations[-2:] == ["pixel", "pixel create"]
    assert fake.pixel is not None
    assert db.one(Shop).web_pixel_settings == fake.pixel[1]
    assert run_worker(runtime, fake, timedelta(days=2)).jobs.done == 0


def doctor(db_url: str, fake: FakeSubscriptions) -> Any:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fake.install(mock, BASE)
        return CliRunner().invoke(main, ["shops", "doctor", SHOP], env=chorus_env(db_url))


def test_the_doctor_of_a_healthy_shop(db_url: str, runtime: Runtime, db: Db) -> None:
    install(runtime)
    fake = FakeSubscriptions()
    run_worker(runtime, fake)
    key = db.one(Shop).pixel_key

    result = doctor(db_url, fake)

    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"Webhook subscriptions (managed by toml), to {APP_URL}/webhooks:",
        f"Scopes granted: {', '.join(sorted(DEFAULT_SCOPES))}",
        f"Web pixel: active ({fake.pixel[0] if fake.pixel else ''}), sending to {APP_URL}/pixel/{key}",
        "Healthy.",
    ]


def test_the_doctor_reports_a_pixel_with_other_settings(db_url: str, runtime: Runtime, db: Db) -> None:
    install(runtime)
    fake = FakeSubscriptions()
    run_worker(runtime, fake)
    fake.pixel = ("gid://shopify/WebPixel/9", json.dumps({"shopKey": "someone-else", "appUrl": APP_URL}))

    result = doctor(db_url, fake)

    assert result.exit_code == 1, result.output
    assert "Web pixel: active (gid://shopify/WebPixel/9) with other settings" in result.output
    assert f"an install through {APP_URL}/auth?shop={SHOP} activates it again" in result.output


def test_a_custom_app_has_no_pixel_to_activate(runtime: Runtime, db: Db, db_url: str) -> None:
    from shopify_app.shops import register_shop

    with db.write() as session:
        register_shop(session, runtime.secret_box, SHOP, access_token="shpat_custom", webhook_secret=None,
                      now=RECEIVED_AT)  # fmt: skip
    fake = FakeSubscriptions(scopes=OLD_SCOPES)
    assert run_worker(runtime, fake).jobs.done == 1
    assert fake.operations == []  # Chorus's pixel extension is not part of the merchant's own app

    result = doctor(db_url, fake)
    assert result.exit_code == 0, result.output
    assert "Web pixel: none (a custom app's token" in result.output


def test_current_web_pixel_reads_the_settings_shopify_returns_as_a_string(runtime: Runtime) -> None:
    shop_id = install(runtime)
    with responses.RequestsMock() as mock:
        mock.post(ENDPOINT, json={"data": {"webPixel": {"id": "gid://shopify/WebPixel/1", "settings": '{"a":"b"}'}}})
        pixel = current_web_pixel(ShopifyAccess(runtime).admin_api(shop_id))
    assert pixel is not None
    assert (pixel.id, dict(pixel.settings)) == ("gid://shopify/WebPixel/1", {"a": "b"})


def test_a_shop_installed_before_the_upgrade_gets_its_pixel_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'before.db'}"
    migrate.upgrade(url, "0013")  # the release before the pixel's activation
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            installed = RECEIVED_AT.replace(tzinfo=None).isoformat(sep=" ")
            connection.execute(
                text(
                    "INSERT INTO shops (domain, installed, installed_at, created_at, updated_at, scopes,"
                    " access_token_ciphertext) VALUES (:domain, :yes, :at, :at, :at, :scopes, :token)"
                ),
                {"domain": SHOP, "yes": True, "at": installed, "scopes": ",".join(OLD_SCOPES),
                 "token": SecretBox((ENCRYPTION_KEY,)).encrypt("shpat_old")},
            )  # fmt: skip
    finally:
        engine.dispose()
    migrate.upgrade(url, "head")  # `chorus db upgrade`

    runtime = Runtime.build(make_settings(url), clock=FrozenClock(RECEIVED_AT))
    try:
        fake = FakeSubscriptions()  # the merchant approved the new scopes
        first = run_worker(runtime, fake)
        second = run_worker(runtime, fake, timedelta(minutes=5))
        later = run_worker(runtime, fake, timedelta(days=3))
        db = Db(runtime)
        shop = db.one(Shop)
        jobs = [(j.kind, j.status) for j in db.all(Job)]
    finally:
        runtime.close()

    assert (first.jobs.done, second.jobs.done, later.jobs.done) == (1, 0, 0)
    assert jobs == [("web_pixel", "done")]
    assert fake.operations == ["pixel", "pixel create"]
    assert set(fake.tokens_seen) == {"shpat_old"}
    assert shop.pixel_key
    assert sent_settings(fake.pixel_requests[1]) == {"shopKey": shop.pixel_key, "appUrl": APP_URL}
    assert shop.web_pixel_settings is not None


def test_a_new_app_url_updates_every_pixel_once(runtime: Runtime, db_url: str) -> None:
    app_url = "https://moved.example"
    install(runtime)
    fake = FakeSubscriptions()
    run_worker(runtime, fake)
    moved = Runtime.build(make_settings(db_url, APP_URL=app_url), clock=FrozenClock(RECEIVED_AT))
    try:
        run_worker(moved, fake, timedelta(minutes=5))
        run_worker(moved, fake, timedelta(minutes=10))
    finally:
        moved.close()
    assert fake.operations == ["pixel", "pixel create", "pixel", f"pixel update {fake.pixel[0] if fake.pixel else ''}"]
    assert fake.pixel is not None
    assert json.loads(fake.pixel[1])["appUrl"] == app_url
