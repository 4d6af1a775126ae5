"""A merchant manages flows: lists them, switches them and their steps, tunes delays and channel order, from
the `chorus flows` commands and from the embedded admin's API; a change applies to journeys already waiting."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from shopify_app.app import create_app
from shopify_app.clock import FrozenClock
from shopify_app.journeys.tuning import StepChange, configure
from shopify_app.models import Decision, Journey, Message, Shop, ShopFlow
from shopify_app.runtime import Runtime
from shopify_app.shops import register_shop
from tests.conftest import RECEIVED_AT, make_settings
from tests.support import payloads, webhooks
from tests.support.db import Db
from tests.support.env import chorus_command, process_env
from tests.support.fake_store import iso
from tests.support.pipeline import deliver
from tests.support.shopify_auth import bearer, session_token
from tests.support.smtp import SmtpServer
from tests.test_abandoned_checkout_flow import (  # noqa: F401  fixtures
    describe_store,
    mail_runtime,
    run_worker,
    smtp,
)

SHOP = webhooks.SHOP
OTHER_SHOP = webhooks.OTHER_SHOP

# Each shipped flow (on) and its send steps: (id, delay in minutes, the delay and its anchor as text, on, channels).
SHIPPED: dict[str, list[tuple[str, int, str, bool, list[str]]]] = {
    "abandoned_cart": [("cart_reminder", 60, "1h after customer.cart_updated_at", True, ["email", "sms"])],
    "abandoned_checkout": [
        ("reminder", 60, "1h after checkout.updated_at", True, ["email", "sms"]),
        ("second_reminder", 1440, "1d after previous", True, ["email", "sms"]),
    ],
    "browse_abandonment": [("browse_reminder", 120, "2h after entry", True, ["email", "sms"])],
    "post_purchase": [
        ("thank_you", 0, "0s after entry", True, ["email", "sms"]),
        ("review_request", 10080, "7d after order.fulfilled_at", True, ["email", "sms"]),
        ("cross_sell", 30240, "21d after order.fulfilled_at", True, ["email", "sms"]),
    ],
    "price_drop": [("price_drop_alert", 0, "0s after entry", True, ["email", "sms"])],
    "welcome": [
        ("welcome_1", 0, "0s after entry", True, ["email", "sms"]),
        ("welcome_2", 2880, "2d after entry", True, ["email", "sms"]),
        ("welcome_3", 7200, "5d after entry", True, ["email", "sms"]),
    ],
    "winback": [
        ("winback", 0, "0s after entry", True, ["email", "sms"]),
        ("winback_followup", 10080, "7d after previous", True, ["email", "sms"]),
    ],
}

# An operator's own flow (FLOWS_DIR) with a step that only waits: it has a delay, but no switch or channels.
NUDGE = """
name = "browse_nudge"
description = "A nudge half an hour after a checkout, after a pause."
subject = "checkout"
goals = ["order_placed"]

[trigger]
event = "checkout_changed"

[[steps]]
id = "pause"
kind = "wait"
wait = { anchor = "entry", delay = "30m" }

[[steps]]
id = "nudge"
kind = "send"
content = "abandoned_checkout.reminder"
channels = ["email"]
wait = { anchor = "previous", delay = "0s" }
"""


@dataclass
class Call:
    args: Sequence[str]
    env: dict[str, str] = field(default_factory=dict)


def chorus_all(db_url: str, *calls: Call | Sequence[str]) -> list[subprocess.CompletedProcess[str]]:
    """Run `chorus` commands side by side (each one is a process start, about a second) and return their
    results in the order given."""
    normalised = [c if isinstance(c, Call) else Call(c) for c in calls]
    started = [
        subprocess.Popen(
            [*chorus_command(), *call.args],
            env=process_env(db_url, **call.env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for call in normalised
    ]
    results = []
    for call, process in zip(normalised, started, strict=True):
        out, err = process.communicate(timeout=120)
        results.append(subprocess.CompletedProcess(list(call.args), process.returncode, out, err))
    return results


def at_clock(runtime: Runtime, now: datetime) -> Runtime:
    return Runtime(runtime.settings, runtime.engine, runtime.secret_box, FrozenClock(now))


def api_flows(client: FlaskClient, domain: str = SHOP) -> dict[str, dict[str, Any]]:
    response = client.get("/api/flows", headers=bearer(session_token(domain)))
    assert response.status_code == 200
    assert response.json is not None
    return {flow["name"]: flow for flow in response.json["flows"]}


def steps_of(flow: dict[str, Any]) -> list[tuple[str, int, bool, list[str]]]:
    return [(s["id"], s["delay_minutes"], s["enabled"], s["channels"]) for s in flow["steps"]]


def shipped_steps(name: str) -> list[tuple[str, int, bool, list[str]]]:
    return [(step, minutes, on, channels) for step, minutes, _text, on, channels in SHIPPED[name]]


@pytest.fixture
def flows_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "flows"
    folder.mkdir()
    (folder / "browse_nudge.toml").write_text(NUDGE)
    return folder


# --- the command line ---------------------------------------------------------------------------------------


def test_flows_list_shows_every_shipped_flow_with_its_steps(db_url: str, shop: Shop, client: FlaskClient) -> None:
    text, as_json = chorus_all(db_url, ["flows", "list", "--shop", SHOP], ["flows", "list", "--shop", SHOP, "--json"])

    assert (text.returncode, as_json.returncode) == (0, 0), text.stderr + as_json.stderr
    expected_lines = []
    for name, steps in SHIPPED.items():
        expected_lines.append(f"{name}\ton")
        for step, _minutes, delay, on, channels in steps:
            expected_lines.append(f"  {step}\tsend\t{delay}\t{'on' if on else 'off'}\t{','.join(channels)}")
    lines = text.stdout.splitlines()
    # A flow's line carries its description after the switch.
    assert [line if line.startswith(" ") else "\t".join(line.split("\t")[:2]) for line in lines] == expected_lines
    described = {line.split("\t")[0]: line.split("\t")[2] for line in lines if not line.startswith(" ")}
    assert described["abandoned_checkout"].startswith("Two reminders after a checkout is left")

    listed = {flow["name"]: flow for flow in json.loads(as_json.stdout)["flows"]}
    assert list(listed) == list(SHIPPED)
    for name in SHIPPED:
        assert listed[name]["enabled"] is True
        assert steps_of(listed[name]) == shipped_steps(name)
    assert listed["abandoned_checkout"]["delay_minutes"] == 60  # the first step's, as before steps existed
    assert listed == api_flows(client)  # the admin shows the same


def test_flows_enable_disable_and_set_change_what_the_merchant_sees(
    db_url: str, runtime: Runtime, shop: Shop, db: Db, client: FlaskClient, flows_dir: Path
) -> None:
    assert shop.id is not None
    with db.write() as session:  # the shop had switched these off earlier
        configure(session, shop.id, runtime.flows, "winback", enabled=False, now=RECEIVED_AT)
        configure(
            session, shop.id, runtime.flows, "post_purchase",
            steps={"cross_sell": StepChange(enabled=False)}, now=RECEIVED_AT,
        )  # fmt: skip
    custom = {"FLOWS_DIR": str(flows_dir)}

    results = chorus_all(
        db_url,
        ["flows", "disable", "welcome", "--shop", SHOP],
        ["flows", "enable", "winback", "--shop", SHOP, "--delay", "15"],
        ["flows", "set", "abandoned_checkout", "--shop", SHOP, "--step", "second_reminder",
         "--delay", "2880", "--off", "--channels", "email,sms"],
        ["flows", "set", "post_purchase", "--shop", SHOP, "--step", "cross_sell", "--on"],
        # Refused, each with a usage error that says why:
        ["flows", "set", "abandoned_checkout", "--shop", SHOP, "--step", "reminder", "--channels", "email,fax"],
        ["flows", "set", "no_such_flow", "--shop", SHOP, "--step", "reminder", "--delay", "5"],
        ["flows", "set", "abandoned_checkout", "--shop", SHOP, "--step", "no_such_step", "--delay", "5"],
        Call(["flows", "set", "browse_nudge", "--shop", SHOP, "--step", "pause", "--off"], custom),
    )  # fmt: skip

    disabled, enabled, tuned, switched_on, *refused = results
    for result in (disabled, enabled, tuned, switched_on):
        assert result.returncode == 0, result.stderr
    assert disabled.stdout.splitlines() == [f"welcome disabled for {SHOP}, welcome_1 after 0s"]
    assert enabled.stdout.splitlines() == [
        f"winback enabled for {SHOP}, winback after 15m",
        "  winback: 15m after entry, on, channels email,sms",
    ]
    assert tuned.stdout.splitlines() == [
        f"abandoned_checkout enabled for {SHOP}, reminder after 1h",
        "  second_reminder: 2d after previous, off, channels email,sms",
    ]
    assert switched_on.stdout.splitlines() == [
        f"post_purchase enabled for {SHOP}, thank_you after 0s",
        "  cross_sell: 21d after order.fulfilled_at, on, channels email,sms",
    ]
    expected_errors = [
        "steps.reminder.channels: unknown channel(s) fax",
        "unknown flow 'no_such_flow'; known: abandoned_cart, abandoned_checkout, browse_abandonment, post_purchase,"
        " price_drop, welcome, winback",
        "flow abandoned_checkout has no step 'no_such_step'; its steps: reminder, second_reminder",
        "steps.pause: only a send step can be switched or given channels",
    ]
    for result, expected in zip(refused, expected_errors, strict=True):
        assert result.returncode == 2, (result.args, result.stdout, result.stderr)
        assert "Error: " + expected in result.stderr, result.stderr
        assert result.stdout == ""

    flows = api_flows(client)
    assert (flows["welcome"]["enabled"], flows["winback"]["enabled"]) == (False, True)
    assert steps_of(flows["winback"])[0] == ("winback", 15, True, ["email", "sms"])  # --delay: the first step's
    assert steps_of(flows["abandoned_checkout"]) == [
        ("reminder", 60, True, ["email", "sms"]),  # the refused channels changed nothing
        ("second_reminder", 2880, False, ["email", "sms"]),
    ]
    assert steps_of(flows["post_purchase"]) == shipped_steps("post_purchase")
    assert steps_of(flows["welcome"]) == shipped_steps("welcome")
    assert {row.flow for row in db.all(ShopFlow)} == {"abandoned_checkout", "post_purchase", "welcome", "winback"}


# --- the admin's API ----------------------------------------------------------------------------------------


def test_every_part_of_a_patch_is_optional(client: FlaskClient, shop: Shop) -> None:
    auth = bearer(session_token(SHOP))

    def patch(body: dict[str, Any]) -> dict[str, Any]:
        response = client.patch("/api/flows/abandoned_checkout", headers=auth, json=body)
        assert response.status_code == 200, response.json
        assert response.json is not None
        flow: dict[str, Any] = response.json["flow"]
        assert flow == api_flows(client)["abandoned_checkout"]  # what it answers is what is stored
        return flow

    flow = patch({"enabled": False})
    assert (flow["enabled"], steps_of(flow)) == (False, shipped_steps("abandoned_checkout"))
    flow = patch({"steps": {"second_reminder": {"delay_minutes": 2880}}})
    assert flow["enabled"] is False
    assert steps_of(flow) == [
        ("reminder", 60, True, ["email", "sms"]),
        ("second_reminder", 2880, True, ["email", "sms"]),
    ]
    flow = patch({"steps": {"second_reminder": {"enabled": False}}})
    assert steps_of(flow)[1] == ("second_reminder", 2880, False, ["email", "sms"])
    flow = patch({"steps": {"reminder": {"channels": ["sms", "email"]}}})
    assert steps_of(flow) == [
        ("reminder", 60, True, ["sms", "email"]),
        ("second_reminder", 2880, False, ["email", "sms"]),
    ]
    flow = patch({"delay_minutes": 45})  # the older body: the first step's delay
    assert (flow["delay_minutes"], steps_of(flow)[0]) == (45, ("reminder", 45, True, ["sms", "email"]))
    flow = patch(
        {"enabled": True, "steps": {"reminder": {"delay_minutes": 0, "enabled": False, "channels": ["email"]},
                                    "second_reminder": {"enabled": True}}}
    )  # fmt: skip
    assert (flow["enabled"], steps_of(flow)) == (
        True,
        [("reminder", 0, False, ["email"]), ("second_reminder", 2880, True, ["email", "sms"])],
    )
    others = api_flows(client)
    for name in ("post_purchase", "welcome", "winback"):
        assert (others[name]["enabled"], steps_of(others[name])) == (True, shipped_steps(name))


BAD_BODIES: list[tuple[Any, str | None]] = [
    ("enabled=false", None),  # not JSON
    ([], None),
    ({}, None),
    ({"colour": "red"}, "colour"),
    ({"enabled": "yes"}, "enabled"),
    ({"enabled": 1}, "enabled"),
    ({"delay_minutes": 0}, "delay_minutes"),
    ({"delay_minutes": 1.5}, "delay_minutes"),
    ({"delay_minutes": "30"}, "delay_minutes"),
    ({"delay_minutes": True}, "delay_minutes"),
    ({"delay_minutes": 10081}, "delay_minutes"),
    ({"steps": ["reminder"]}, "steps"),
    ({"steps": {"reminder": 30}}, "steps.reminder"),
    ({"steps": {"reminder": {}}}, "steps.reminder"),
    ({"steps": {"reminder": {"delay": 30}}}, "steps.reminder"),
    ({"steps": {"reminder": {"delay_minutes": -1}}}, "steps.reminder.delay_minutes"),
    ({"steps": {"reminder": {"delay_minutes": 2.5}}}, "steps.reminder.delay_minutes"),
    ({"steps": {"reminder": {"delay_minutes": False}}}, "steps.reminder.delay_minutes"),
    ({"steps": {"reminder": {"delay_minutes": 525601}}}, "steps.reminder.delay_minutes"),
    ({"steps": {"reminder": {"enabled": "off"}}}, "steps.reminder.enabled"),
    ({"steps": {"reminder": {"channels": "email"}}}, "steps.reminder.channels"),
    ({"steps": {"reminder": {"channels": ["email", 3]}}}, "steps.reminder.channels"),
    ({"steps": {"reminder": {"channels": ["email", "fax"]}}}, "steps.reminder.channels"),
    ({"steps": {"reminder": {"channels": []}}}, "steps.reminder.channels"),
    ({"steps": {"reminder": {"channels": ["email", "email"]}}}, "steps.reminder.channels"),
    # All or nothing: the valid part of a refused body is not applied either.
    ({"enabled": False, "steps": {"second_reminder": {"channels": ["fax"]}}}, "steps.second_reminder.channels"),
]


def test_a_bad_patch_is_refused_naming_the_field_and_changes_nothing(db_url: str, shop: Shop, flows_dir: Path) -> None:
    custom = Runtime.build(make_settings(db_url, FLOWS_DIR=str(flows_dir)), clock=FrozenClock(RECEIVED_AT))
    try:
        client = create_app(custom).test_client()
        auth = bearer(session_token(SHOP))
        before = api_flows(client)

        for body, named in BAD_BODIES:
            if isinstance(body, str):
                response = client.patch("/api/flows/abandoned_checkout", headers=auth, data=body)
            else:
                response = client.patch("/api/flows/abandoned_checkout", headers=auth, json=body)
            assert response.status_code == 400, body
            assert response.json is not None
            if named is not None:
                assert response.json["error"].startswith(f"{named}:"), (body, response.json)

        for body in ({"steps": {"pause": {"enabled": False}}}, {"steps": {"pause": {"channels": ["email"]}}}):
            response = client.patch("/api/flows/browse_nudge", headers=auth, json=body)
            assert response.status_code == 400, body
            assert response.json == {"error": "steps.pause: only a send step can be switched or given channels"}

        unknown_flow = client.patch("/api/flows/no_such_flow", headers=auth, json={"enabled": False})
        unknown_step = client.patch(
            "/api/flows/abandoned_checkout",
            headers=auth,
            json={"enabled": False, "steps": {"no_such_step": {"delay_minutes": 5}}},
        )
        assert unknown_flow.status_code == 404
        assert unknown_flow.json == {"error": "unknown flow 'no_such_flow'"}
        assert unknown_step.status_code == 404
        assert unknown_step.json is not None
        assert "no step 'no_such_step'" in unknown_step.json["error"]
        assert api_flows(client) == before  # nothing of any refused body was applied

        # A waiting step has a delay to tune, though no switch and no channels.
        paused = client.patch("/api/flows/browse_nudge", headers=auth, json={"steps": {"pause": {"delay_minutes": 45}}})
        assert paused.status_code == 200
        assert paused.json is not None
        assert [(s["id"], s["delay_minutes"]) for s in paused.json["flow"]["steps"]] == [("pause", 45), ("nudge", 0)]
        assert "enabled" not in paused.json["flow"]["steps"][0]
    finally:
        custom.close()


# --- what a change does to journeys already under way ----------------------------------------------------------


def abandon(runtime: Runtime, token: str, email: str, customer_id: int, at: datetime, *, shop: str = SHOP) -> None:
    """A checkout left at `at` (its last update) by a customer who accepts marketing."""
    body = payloads.checkout(
        token,
        updated_at=iso(at),
        email=email,
        buyer_accepts_marketing=True,
        customer={"id": customer_id, "email": email, "first_name": "Ada", "updated_at": iso(at)},
    )
    body["created_at"] = iso(at)
    deliver(runtime, "checkouts/create", body, shop=shop, triggered_at=iso(at))


@pytest.fixture
def left_checkout(mail_runtime: Runtime, shop: Shop, smtp: SmtpServer, db: Db) -> tuple[Runtime, datetime]:  # noqa: F811
    """A checkout last updated 20 minutes ago, whose journey waits for its reminder an hour after that update.

    Times are the wall clock's, because `chorus flows set` decides with the real time; the worker runs with
    frozen clocks at chosen instants after it.
    """
    now = datetime.now(UTC).replace(microsecond=0)
    runtime = at_clock(mail_runtime, now)
    describe_store(runtime)
    updated = now - timedelta(minutes=20)
    abandon(runtime, "ck-1", "ada@example.com", 777, updated)
    run_worker(runtime, updated + timedelta(minutes=1))
    journey = db.one(Journey)
    assert (journey.step, journey.state, journey.due_at) == ("reminder", "waiting", updated + timedelta(hours=1))
    return runtime, updated


@pytest.mark.parametrize("through", ["api", "cli"])
def test_a_shorter_delay_applies_to_journeys_already_waiting_at_that_step(
    db_url: str,
    left_checkout: tuple[Runtime, datetime],
    smtp: SmtpServer,  # noqa: F811
    db: Db,
    through: str,
) -> None:
    """Regression: a changed delay used to apply only to journeys entering afterwards."""
    runtime, updated = left_checkout
    if through == "api":
        response = (
            create_app(runtime)
            .test_client()
            .patch(
                "/api/flows/abandoned_checkout",
                headers=bearer(session_token(SHOP)),
                json={"steps": {"reminder": {"delay_minutes": 30}}},
            )
        )
        assert response.status_code == 200
    else:
        [result] = chorus_all(
            db_url, ["flows", "set", "abandoned_checkout", "--shop", SHOP, "--step", "reminder", "--delay", "30"]
        )
        assert result.returncode == 0, result.stderr
        assert "  reminder: 30m after checkout.updated_at, on, channels email,sms" in result.stdout

    run_worker(runtime, updated + timedelta(minutes=29))
    assert smtp.sink.received == []
    assert run_worker(runtime, updated + timedelta(minutes=30)).journeys.sent == 1  # 30 minutes after the update

    [received] = smtp.sink.received
    assert received.recipients == ["ada@example.com"]
    [message] = db.all(Message)
    assert message.step == "reminder"
    assert message.sent_at is not None
    assert updated + timedelta(minutes=30) <= message.sent_at < updated + timedelta(minutes=31)


def test_a_step_switched_off_is_skipped_and_the_journey_goes_on(
    left_checkout: tuple[Runtime, datetime],
    smtp: SmtpServer,  # noqa: F811
    db: Db,
) -> None:
    runtime, updated = left_checkout
    client = create_app(runtime).test_client()
    off = {"steps": {"reminder": {"enabled": False}}}
    assert (
        client.patch("/api/flows/abandoned_checkout", headers=bearer(session_token(SHOP)), json=off).status_code == 200
    )

    due = updated + timedelta(hours=1)
    run_worker(runtime, due + timedelta(minutes=1))
    assert smtp.sink.received == []
    assert ("reminder", "skipped", "step_disabled") in [(d.step, d.outcome, d.reason) for d in db.all(Decision)]
    journey = db.one(Journey)
    # Skipped when it was due: the next step counts from then.
    assert (journey.state, journey.step, journey.due_at) == ("waiting", "second_reminder", due + timedelta(days=1))

    run_worker(runtime, due + timedelta(days=1, minutes=1))
    [received] = smtp.sink.received
    assert received.recipients == ["ada@example.com"]
    assert [m.step for m in db.all(Message)] == ["second_reminder"]


def test_reordered_channels_apply_at_the_next_send(
    left_checkout: tuple[Runtime, datetime],
    smtp: SmtpServer,  # noqa: F811
    db: Db,
) -> None:
    runtime, updated = left_checkout
    client = create_app(runtime).test_client()
    auth = bearer(session_token(SHOP))

    def channels(step: str, names: list[str]) -> None:
        body = {"steps": {step: {"channels": names}}}
        assert client.patch("/api/flows/abandoned_checkout", headers=auth, json=body).status_code == 200

    def tried(step: str) -> list[tuple[str, str]]:
        [sending] = db.all(Decision, Decision.step == step, Decision.outcome == "sending")
        return [(c["channel"], c["outcome"]) for c in sending.detail["channels"]]

    channels("reminder", ["sms", "email"])
    sent_at = updated + timedelta(hours=1, minutes=1)
    run_worker(runtime, sent_at)
    assert len(smtp.sink.received) == 1  # SMS is not set up: the next channel in the new order carries it
    assert tried("reminder") == [("sms", "not_configured"), ("email", "usable")]

    channels("second_reminder", ["sms"])  # while the journey waits for it
    run_worker(runtime, sent_at + timedelta(days=1, minutes=1))
    assert len(smtp.sink.received) == 1
    assert db.one(Journey).reason == "no_channel"  # held until a channel of the step can carry it

    channels("second_reminder", ["email", "sms"])
    run_worker(runtime, sent_at + timedelta(days=1, minutes=10))  # it is looked at again every five minutes
    assert len(smtp.sink.received) == 2
    assert tried("second_reminder") == [("email", "usable"), ("sms", "not_configured")]
    assert [(m.step, m.channel) for m in db.all(Message)] == [("reminder", "email"), ("second_reminder", "email")]


def test_a_shop_changes_only_its_own_flows_and_journeys(
    left_checkout: tuple[Runtime, datetime],
    smtp: SmtpServer,  # noqa: F811
    db: Db,
) -> None:
    runtime, updated = left_checkout
    with db.write() as session:
        register_shop(session, runtime.secret_box, OTHER_SHOP, access_token="t2", webhook_secret=None, now=RECEIVED_AT)
    profile = webhooks.fixture_json("app_uninstalled.json") | {"name": "Globex", "updated_at": "2026-11-19T00:00:00Z"}
    deliver(runtime, "shop/update", profile, shop=OTHER_SHOP)
    abandon(runtime, "ck-9", "bob@globex.example", 999, updated, shop=OTHER_SHOP)
    run_worker(runtime, updated + timedelta(minutes=2))
    client = create_app(runtime).test_client()

    response = client.patch(
        "/api/flows/abandoned_checkout",
        headers=bearer(session_token(OTHER_SHOP)),
        json={"steps": {"reminder": {"delay_minutes": 30}}},
    )

    assert response.status_code == 200
    assert steps_of(api_flows(client, OTHER_SHOP)["abandoned_checkout"])[0] == ("reminder", 30, True, ["email", "sms"])
    assert steps_of(api_flows(client, SHOP)["abandoned_checkout"])[0] == ("reminder", 60, True, ["email", "sms"])
    run_worker(runtime, updated + timedelta(minutes=31))
    assert [m.recipients for m in smtp.sink.received] == [["bob@globex.example"]]  # only the other shop's journey
    run_worker(runtime, updated + timedelta(minutes=61))
    assert [m.recipients for m in smtp.sink.received] == [["bob@globex.example"], ["ada@example.com"]]
