"""Setting and seeing a shop's channel policy: `chorus shops set|show` and `GET|PATCH /api/shop/policy`."""

from __future__ import annotations

import json

from click.testing import CliRunner

from shopify_app.app import create_app
from shopify_app.cli import main
from shopify_app.models import Shop
from shopify_app.runtime import Runtime
from tests.support.db import Db
from tests.support.env import chorus_env
from tests.support.shopify_auth import bearer, session_token
from tests.support.webhooks import SHOP


def chorus(db_url: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env=chorus_env(db_url))
    return result.exit_code, result.output


def test_the_command_line_sets_every_setting_and_shows_them_with_the_defaults(shop: Shop, db_url: str, db: Db) -> None:
    code, output = chorus(
        db_url, "shops", "set", SHOP, "--cap", "1/16h,5/7d", "--cap-channel", "sms=2/7d",
        "--quiet-hours", "email=09:00-20:00,sms=10:00-20:00", "--budget", "sms=50,whatsapp=30",
        "--region", "BR=whatsapp,sms", "--region", "US=sms,email", "--growth-threshold", "1000",
        "--double-opt-in", "email",
    )  # fmt: skip
    assert code == 0, output

    code, shown = chorus(db_url, "shops", "show", SHOP, "--json")
    assert code == 0, shown
    assert json.loads(shown)["policy"] == {
        "caps": ["1/16h", "5/7d"],
        "channel_caps": {"sms": ["2/7d"]},
        "quiet_hours": {"email": "09:00-20:00", "sms": "10:00-20:00", "whatsapp": "00:00-24:00"},  # as it was
        "budgets": {"sms": "50.00", "whatsapp": "30.00"},
        "regions": {"BR": ["whatsapp", "sms"], "US": ["sms", "email"]},
        "growth_threshold": 1000,
        "double_opt_in": ["email"],
    }
    assert json.loads(shown)["signup_url"] == f"https://chorus.example/subscribe/{SHOP}"
    code, lines = chorus(db_url, "shops", "show", SHOP)
    assert "regions: BR=whatsapp,sms, US=sms,email" in lines
    assert f"sign-up form: https://chorus.example/subscribe/{SHOP}" in lines


def test_a_wrong_setting_changes_nothing_and_says_what_is_wrong(shop: Shop, db_url: str, db: Db) -> None:
    assert chorus(db_url, "shops", "set", SHOP, "--budget", "sms=40")[0] == 0

    code, output = chorus(db_url, "shops", "set", SHOP, "--budget", "sms=10", "--quiet-hours", "email=20:00-09:00")

    assert code == 2
    assert "quiet_hours: '20:00-09:00': the window must end after it starts" in output
    assert db.one(Shop).policy["budgets"] == {"sms": "40.00"}


def test_the_api_reads_and_changes_the_policy_of_the_session_tokens_shop_only(
    runtime: Runtime, shop: Shop, db: Db
) -> None:
    client = create_app(runtime).test_client()
    headers = bearer(session_token(SHOP))

    shown = client.get("/api/shop/policy", headers=headers).get_json()["policy"]
    assert (shown["caps"], shown["budgets"], shown["double_opt_in"]) == ([], {}, [])  # as set, and a default
    changed = client.patch("/api/shop/policy", json={"caps": ["2/1d"], "regions": {"IN": ["whatsapp", "email"]}},
                           headers=headers)  # fmt: skip
    assert changed.status_code == 200
    assert changed.get_json()["policy"]["caps"] == ["2/1d"]
    assert client.get("/api/shop/policy", headers=headers).get_json()["policy"]["regions"] == {
        "IN": ["whatsapp", "email"]
    }

    refused = client.patch("/api/shop/policy", json={"growth_threshold": -5, "caps": "x"}, headers=headers)
    assert refused.status_code == 400
    assert len(refused.get_json()["problems"]) == 2
    assert client.patch("/api/shop/policy", data="caps", headers=headers).status_code == 400
    stored = db.one(Shop).policy
    assert (stored["caps"], stored["regions"]) == (["2/1d"], {"IN": ["whatsapp", "email"]})
