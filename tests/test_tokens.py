"""Expiring offline tokens: refreshed before they expire and after a 401, never lost between workers."""

from __future__ import annotations

import subprocess
import threading
import time
from datetime import timedelta

import pytest
import responses

from shopify_app.clock import FrozenClock
from shopify_app.crypto import SecretBox, generate_key
from shopify_app.models import Shop
from shopify_app.runtime import Runtime
from shopify_app.shopify.access import ShopifyAccess
from shopify_app.shopify.oauth import TokenGrant, TokenRequestError
from shopify_app.shopify.tokens import NoUsableToken, store_grant
from tests.conftest import RECEIVED_AT
from tests.support.db import Db
from tests.support.env import API_KEY, API_SECRET, ENCRYPTION_KEY, chorus_command, process_env
from tests.support.webhooks import SHOP

TOKEN_URL = f"https://shopify.test/{SHOP}/admin/oauth/access_token"
BOX = SecretBox((ENCRYPTION_KEY,))


def give_tokens(db: Db, shop: Shop, *, expires_in: timedelta, refresh: str | None = "shprt_old") -> None:
    grant = TokenGrant(
        access_token="shpat_old",
        scopes="read_orders",
        expires_at=RECEIVED_AT + expires_in,
        refresh_token=refresh,
        refresh_expires_at=RECEIVED_AT + timedelta(days=90),
    )
    with db.write() as session:
        stored = session.get(Shop, shop.id)
        assert stored is not None
        store_grant(stored, grant, BOX, RECEIVED_AT)


def refreshed_answer(n: int = 1) -> dict[str, object]:
    return {
        "access_token": f"shpat_new_{n}",
        "scope": "read_orders",
        "expires_in": 3600,
        "refresh_token": f"shprt_new_{n}",
        "refresh_token_expires_in": 7776000,
    }


def test_a_token_far_from_expiry_is_used_as_is(runtime: Runtime, shop: Shop, db: Db) -> None:
    give_tokens(db, shop, expires_in=timedelta(minutes=30))
    with responses.RequestsMock() as fake:  # any call to Shopify would fail the test
        assert ShopifyAccess(runtime).tokens.current(shop.id or 0) == "shpat_old"
        assert len(fake.calls) == 0


def test_a_token_about_to_expire_is_refreshed_first(runtime: Runtime, shop: Shop, db: Db) -> None:
    give_tokens(db, shop, expires_in=timedelta(minutes=2))
    with responses.RequestsMock() as fake:
        fake.post(
            TOKEN_URL,
            json=refreshed_answer(),
            match=[
                responses.matchers.json_params_matcher(
                    {
                        "client_id": API_KEY,
                        "client_secret": API_SECRET,
                        "grant_type": "refresh_token",
                        "refresh_token": "shprt_old",
                    }
                )
            ],
        )
        assert ShopifyAccess(runtime).tokens.current(shop.id or 0) == "shpat_new_1"

    stored = db.one(Shop)
    assert stored.access_token_ciphertext is not None
    assert stored.refresh_token_ciphertext is not None
    assert BOX.decrypt(stored.access_token_ciphertext) == "shpat_new_1"
    assert BOX.decrypt(stored.refresh_token_ciphertext) == "shprt_new_1"  # the pair, together
    assert stored.access_token_expires_at == RECEIVED_AT + timedelta(hours=1)


def test_a_401_refreshes_unless_another_worker_already_did(runtime: Runtime, shop: Shop, db: Db) -> None:
    give_tokens(db, shop, expires_in=timedelta(minutes=30))
    tokens = ShopifyAccess(runtime).tokens.for_shop(shop.id or 0)
    with responses.RequestsMock() as fake:
        fake.post(TOKEN_URL, json=refreshed_answer())
        assert tokens.after_rejection("shpat_old") == "shpat_new_1"
        # A second worker was rejected with the old token too: it gets the new one, no second refresh.
        assert tokens.after_rejection("shpat_old") == "shpat_new_1"
        assert len(fake.calls) == 1


@pytest.mark.parametrize("workers", [2, 4])
def test_workers_refreshing_at_once_refresh_once(runtime: Runtime, shop: Shop, db: Db, workers: int) -> None:
    give_tokens(db, shop, expires_in=timedelta(minutes=1))
    barrier = threading.Barrier(workers)
    results: list[str] = []
    errors: list[BaseException] = []

    def slow_refresh(request: object) -> tuple[int, dict[str, str], str]:
        time.sleep(0.3)  # Shopify takes its time; the others must wait, not refresh again
        import json

        return 200, {}, json.dumps(refreshed_answer())

    def worker() -> None:
        access = ShopifyAccess(Runtime(runtime.settings, runtime.engine, runtime.secret_box, runtime.clock))
        try:
            barrier.wait()
            results.append(access.tokens.current(shop.id or 0))
        except BaseException as exc:
            errors.append(exc)

    with responses.RequestsMock() as fake:
        fake.add_callback(responses.POST, TOKEN_URL, callback=slow_refresh)
        threads = [threading.Thread(target=worker) for _ in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        refresh_calls = len(fake.calls)

    assert errors == []
    assert results == ["shpat_new_1"] * workers
    assert refresh_calls == 1


def test_a_refused_refresh_flags_the_shop_and_crashes_nothing(runtime: Runtime, shop: Shop, db: Db) -> None:
    give_tokens(db, shop, expires_in=timedelta(minutes=1))
    with responses.RequestsMock() as fake:
        fake.post(TOKEN_URL, status=400, json={"error": "invalid_grant", "error_description": "refresh token revoked"})
        with pytest.raises(NoUsableToken, match="invalid_grant"):
            ShopifyAccess(runtime).tokens.current(shop.id or 0)

    stored = db.one(Shop)
    assert stored.token_problem == "token refresh refused (invalid_grant); the merchant must open the app again"
    assert "revoked" not in stored.token_problem  # Shopify's description is not kept


def test_shopify_unreachable_is_transient_and_flags_nothing(runtime: Runtime, shop: Shop, db: Db) -> None:
    give_tokens(db, shop, expires_in=timedelta(minutes=1))
    with responses.RequestsMock() as fake:
        fake.post(TOKEN_URL, status=503)
        with pytest.raises(TokenRequestError) as raised:
            ShopifyAccess(runtime).tokens.current(shop.id or 0)
    assert not raised.value.permanent
    assert db.one(Shop).token_problem is None


def test_a_custom_apps_token_needs_no_refresh_until_shopify_rejects_it(runtime: Runtime, shop: Shop, db: Db) -> None:
    tokens = ShopifyAccess(runtime).tokens.for_shop(shop.id or 0)
    assert tokens.current() == "shpat_test"  # registered with `chorus shops add`: it does not expire
    with pytest.raises(NoUsableToken):
        tokens.after_rejection("shpat_test")


def test_an_uninstalled_shop_has_no_token(runtime: Runtime, shop: Shop, db: Db) -> None:
    with db.write() as session:
        stored = session.get(Shop, shop.id)
        assert stored is not None
        stored.installed = False
    with pytest.raises(NoUsableToken):
        ShopifyAccess(runtime).tokens.current(shop.id or 0)


def test_keys_rotate_re_encrypts_every_secret_under_the_newest_key(db_url: str, shop: Shop, db: Db) -> None:
    give_tokens(db, shop, expires_in=timedelta(minutes=30))
    newest = generate_key()

    result = subprocess.run(
        [*chorus_command(), "keys", "rotate"],
        env=process_env(db_url, ENCRYPTION_KEY=f"{newest},{ENCRYPTION_KEY}"),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "2 secret(s) re-encrypted under the newest key"
    stored = db.one(Shop)
    only_newest = SecretBox((newest,))
    assert stored.access_token_ciphertext is not None
    assert stored.refresh_token_ciphertext is not None
    assert only_newest.decrypt(stored.access_token_ciphertext) == "shpat_old"
    assert only_newest.decrypt(stored.refresh_token_ciphertext) == "shprt_old"


def test_uninstall_cancels_pending_sends_and_erases_tokens(runtime: Runtime, shop: Shop, db: Db) -> None:
    from shopify_app.models import Decision, Journey
    from tests.support import payloads, webhooks
    from tests.support.pipeline import deliver, process

    give_tokens(db, shop, expires_in=timedelta(minutes=30))
    deliver(
        runtime, "checkouts/create", payloads.checkout("ck-1", buyer_accepts_marketing=True, email="ada@example.com")
    )
    process(runtime)
    assert db.one(Journey).state == "waiting"

    later = Runtime(
        runtime.settings, runtime.engine, runtime.secret_box, FrozenClock(RECEIVED_AT + timedelta(minutes=1))
    )
    deliver(
        later, "app/uninstalled", webhooks.fixture_bytes("app_uninstalled.json"), triggered_at="2026-11-20T10:30:00Z"
    )
    process(later)

    gone = db.one(Shop)
    assert (gone.installed, gone.access_token_ciphertext, gone.refresh_token_ciphertext) == (False, None, None)
    assert (db.one(Journey).state, db.one(Journey).reason) == ("done", "shop_uninstalled")
    last = db.all(Decision)[-1]
    assert (last.step, last.outcome, last.reason) == ("reminder", "ended", "shop_uninstalled")
