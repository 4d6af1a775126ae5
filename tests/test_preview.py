"""`chorus flows preview` and `GET /api/flows/<flow>/preview`: the mirror's last days replayed through each
flow as it is configured now, counting what it would have done, without writing or sending anything."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlmodel import Session, SQLModel, select

from shopify_app.app import create_app
from shopify_app.models import Checkout, ConsentRecord, Customer, Order, Product, Shop, Variant
from shopify_app.runtime import Runtime
from shopify_app.shops import register_shop
from tests.conftest import RECEIVED_AT
from tests.support import webhooks
from tests.support.db import Db
from tests.support.shopify_auth import bearer, session_token
from tests.support.smtp import SmtpServer
from tests.test_abandoned_checkout_flow import mail_runtime, smtp  # noqa: F401  fixtures
from tests.test_flow_management import Call, at_clock, chorus_all

SHOP = webhooks.SHOP
DAY, HOUR, MINUTE = timedelta(days=1), timedelta(hours=1), timedelta(minutes=1)
LAMP, SHADE, SOLD_OUT = 101, 201, 301  # variants: the lamp is bought; the shade is related to it


class Mirror:
    """Writes the mirror as the webhooks and the sync leave it, at instants counted back from `now`."""

    def __init__(self, session: Session, shop_id: int, now: datetime) -> None:
        self.session, self.shop_id, self.now = session, shop_id, now

    def ago(self, delta: timedelta) -> datetime:
        return self.now - delta

    def product(self, product_id: int, variant_id: int, title: str, *, stock: int = 5) -> None:
        long_ago = self.ago(300 * DAY)
        self.session.add(
            Product(shop_id=self.shop_id, product_id=product_id, title=title, handle=title.lower(),
                    status="active", product_type="Lighting", vendor="Lumen Works", updated_at=long_ago,
                    url=f"https://lumen.example/products/{title.lower()}")
        )  # fmt: skip
        self.session.add(
            Variant(shop_id=self.shop_id, variant_id=variant_id, product_id=product_id, title="Default Title",
                    price=Decimal("89.00"), currency="USD", inventory_quantity=stock, inventory_policy="deny",
                    updated_at=long_ago)
        )  # fmt: skip

    def checkout(self, token: str, email: str, ago: timedelta, *, accepts: bool = True, variant: int = LAMP) -> None:
        at = self.ago(ago)
        line = {"variant_id": variant, "product_id": variant // 10, "title": "Lamp", "variant_title": None,
                "quantity": 1, "price": "89.00"}  # fmt: skip
        self.session.add(
            Checkout(shop_id=self.shop_id, token=token, cart_token=f"cart-{token}", email=email,
                     buyer_accepts_marketing=accepts, currency="USD", line_items=[line],
                     abandoned_checkout_url=f"https://lumen.example/checkouts/{token}/recover",
                     created_at=at, updated_at=at)
        )  # fmt: skip

    def order(
        self,
        order_id: int,
        email: str,
        ago: timedelta,
        *,
        customer: int | None = None,
        checkout: str | None = None,
        status: str = "paid",
        fulfilled: timedelta | None = None,
        cancelled: timedelta | None = None,
    ) -> None:
        at = self.ago(ago)
        line = {"variant_id": LAMP, "product_id": 10, "title": "Lamp", "variant_title": None, "quantity": 1,
                "price": "89.00"}  # fmt: skip
        self.session.add(
            Order(shop_id=self.shop_id, order_id=order_id, name=f"#{order_id}", checkout_token=checkout,
                  cart_token=f"cart-{checkout}" if checkout else None, customer_id=customer, email=email,
                  source_name="web", financial_status=status, buyer_accepts_marketing=True, currency="USD",
                  total_price=Decimal("89.00"), line_items=[line], created_at=at, processed_at=at, updated_at=at,
                  fulfillment_status="fulfilled" if fulfilled else None,
                  fulfilled_at=self.ago(fulfilled) if fulfilled else None,
                  cancelled_at=self.ago(cancelled) if cancelled else None)
        )  # fmt: skip
        if customer is not None and cancelled is None:
            row = self.session.exec(
                select(Customer).where(Customer.shop_id == self.shop_id, Customer.customer_id == customer)
            ).one()
            row.last_order_at = max(at, row.last_order_at or at)

    def customer(self, customer_id: int, email: str, *consents: tuple[str, timedelta]) -> None:
        """A customer and their email consent history: (state, how long ago) in order."""
        long_ago = self.ago(300 * DAY)
        state, changed = (consents[-1][0], self.ago(consents[-1][1])) if consents else (None, None)
        self.session.add(
            Customer(shop_id=self.shop_id, customer_id=customer_id, email=email, first_name=email.split("@")[0],
                     created_at=long_ago, updated_at=long_ago, email_consent_state=state,
                     email_consent_opt_in_level="single_opt_in" if state else None, email_consent_updated_at=changed)
        )  # fmt: skip
        self.session.flush()
        for consent_state, ago in consents:
            self.session.add(
                ConsentRecord(shop_id=self.shop_id, customer_id=customer_id, channel="email", state=consent_state,
                              opt_in_level="single_opt_in", consent_updated_at=self.ago(ago),
                              source="shopify_webhook", recorded_at=self.ago(ago))
            )  # fmt: skip


@pytest.fixture
def mirror(mail_runtime: Runtime, shop: Shop, db: Db) -> Runtime:  # noqa: F811
    """A few weeks of a lamp shop, counted back from the wall clock's now (as `chorus flows preview` counts).

    The runtime returned answers with its clock frozen at that now.
    """
    now = datetime.now(UTC).replace(microsecond=0)
    assert shop.id is not None
    with db.write() as session:
        stored = session.get(Shop, shop.id)
        assert stored is not None
        stored.name, stored.postal_address = "Lumen Lamps", "12 Harbor Street, Portland, ME 04101, United States"
        m = Mirror(session, shop.id, now)
        m.product(10, LAMP, "Lamp")
        m.product(20, SHADE, "Shade")
        m.product(30, SOLD_OUT, "Sconce", stock=0)

        # Abandoned checkouts (every one accepts marketing at checkout, but Fay).
        m.checkout("ck-ada", "ada@example.com", 10 * DAY)  # both reminders
        m.checkout("ck-bea", "bea@example.com", 5 * DAY)
        m.order(6001, "bea@example.com", 5 * DAY - 20 * MINUTE, checkout="ck-bea")  # bought before the reminder
        m.checkout("ck-cy", "cy@example.com", 4 * DAY)
        m.order(6002, "cy@example.com", 4 * DAY - 3 * HOUR, checkout="ck-cy")  # bought after the first reminder
        m.checkout("ck-dee", "dee@example.com", 30 * MINUTE)  # the reminder is not due yet
        m.checkout("ck-eve", "eve@example.com", 6 * HOUR)  # reminded; the second reminder is not due yet
        m.checkout("ck-fay", "fay@example.com", 2 * DAY, accepts=False)  # no consent: never enters
        m.checkout("ck-gus-1", "gus@example.com", 3 * DAY)  # replaced by his newer checkout half an hour later
        m.checkout("ck-gus-2", "gus@example.com", 3 * DAY - 30 * MINUTE)
        m.checkout("ck-uma", "uma@example.com", 6 * DAY, variant=SOLD_OUT)  # nothing left to remind of
        m.checkout("ck-old", "old@example.com", 40 * DAY)  # before the window

        # Paid orders: post-purchase (Bea's and Cy's above too, from their checkouts).
        m.order(5001, "pia@example.com", 28 * DAY, fulfilled=25 * DAY)  # thanks, review, related products
        m.order(5002, "quin@example.com", 3 * DAY)  # not shipped yet
        m.order(5003, "ray@example.com", 2 * DAY, status="pending")  # not paid: no post-purchase
        m.order(5004, "sam@example.com", 20 * DAY, cancelled=19 * DAY)

        # Subscribers: welcome.
        m.customer(31, "hal@example.com", ("subscribed", 10 * DAY))  # all three
        m.customer(32, "ivy@example.com", ("subscribed", 1 * DAY))  # the second is not due yet
        m.customer(33, "jo@example.com", ("subscribed", 6 * DAY))
        m.order(6003, "jo@example.com", 5 * DAY, customer=33)  # bought before the second
        m.customer(34, "kim@example.com", ("subscribed", 8 * DAY), ("unsubscribed", 7 * DAY))
        m.customer(35, "abe@example.com", ("subscribed", 40 * DAY))  # subscribed before the window

        # Lapsed customers: winback (a last order 90 days old crossed the threshold in the window).
        m.customer(41, "lou@example.com", ("subscribed", 200 * DAY))
        m.order(7001, "lou@example.com", 100 * DAY, customer=41)  # lapsed 10 days ago: both emails
        m.customer(42, "max@example.com", ("subscribed", 200 * DAY))
        m.order(7002, "max@example.com", 95 * DAY, customer=42)  # lapsed 5 days ago: the follow-up is not due
        m.customer(43, "ned@example.com", ("subscribed", 200 * DAY))
        m.order(7003, "ned@example.com", 110 * DAY, customer=43)
        m.order(7004, "ned@example.com", 105 * DAY, customer=43)  # lapsed 15 days ago...
        m.order(7005, "ned@example.com", 12 * DAY, customer=43)  # ...and came back before the follow-up
        m.customer(44, "oz@example.com")  # never subscribed
        m.order(7006, "oz@example.com", 100 * DAY, customer=44)
    return at_clock(mail_runtime, now)


def step(name: str, sent: int = 0, waiting: int = 0, **counts: dict[str, int]) -> dict[str, Any]:
    return {"step": name, "sent": sent, "skipped": counts.get("skipped", {}), "exited": counts.get("exited", {}),
            "waiting": waiting}  # fmt: skip


EXPECTED: dict[str, dict[str, Any]] = {
    "abandoned_checkout": {
        "entered": 8,
        "steps": [
            step("reminder", sent=4, waiting=1, skipped={"nothing_left": 1},
                 exited={"order_placed": 1, "superseded": 1}),
            step("second_reminder", sent=2, waiting=1, skipped={"nothing_left": 1}, exited={"order_placed": 1}),
        ],
    },
    "post_purchase": {
        "entered": 7,  # Bea, Cy, Jo, Ned, Pia, Quin, Sam
        "steps": [
            step("thank_you", sent=7),
            step("review_request", sent=1, waiting=5, exited={"order_cancelled": 1}),  # Pia's was shipped
            step("cross_sell", sent=1),
        ],
    },
    "welcome": {
        "entered": 4,
        "steps": [
            step("welcome_1", sent=4),
            step("welcome_2", sent=1, waiting=1, exited={"consent_withdrawn": 1, "ordered_since": 1}),
            step("welcome_3", sent=1),
        ],
    },
    "winback": {
        "entered": 3,
        "steps": [step("winback", sent=3), step("winback_followup", sent=1, waiting=1, exited={"ordered_since": 1})],
    },
}  # fmt: skip
NEVER_ENTERED = {"abandoned_checkout": {"no_consent": 1}, "winback": {"no_consent": 1}}


def counted(result: dict[str, Any]) -> dict[str, Any]:
    return {"entered": result["entered"], "steps": result["steps"]}


def api_preview(client: FlaskClient, flow: str, query: str = "") -> dict[str, Any]:
    response = client.get(f"/api/flows/{flow}/preview{query}", headers=bearer(session_token(SHOP)))
    assert response.status_code == 200, response.json
    assert response.json is not None
    result: dict[str, Any] = response.json
    return result


def snapshot(runtime: Runtime) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table."""
    with runtime.engine.connect() as connection:
        return {
            table.name: [tuple(row) for row in connection.execute(table.select().order_by(*table.primary_key.columns))]
            for table in SQLModel.metadata.sorted_tables
        }


def test_each_flow_previews_what_it_would_have_done_and_nothing_is_written_or_sent(
    db_url: str,
    mirror: Runtime,
    smtp: SmtpServer,  # noqa: F811
) -> None:
    before = snapshot(mirror)
    client = create_app(mirror).test_client()
    env = {"SMTP_URL": smtp.url, "EMAIL_FROM": "reminders@mail.chorus.example"}
    preview = ["flows", "preview", "--shop", SHOP]

    *as_json, text, too_many = chorus_all(
        db_url,
        *(Call([*preview[:2], flow, *preview[2:], "--json"], env) for flow in EXPECTED),
        Call([*preview[:2], "abandoned_checkout", *preview[2:], "--days", "30"], env),
        Call([*preview[:2], "abandoned_checkout", *preview[2:], "--days", "366"], env),
    )
    from_api = {flow: api_preview(client, flow) for flow in EXPECTED}

    for flow, result in zip(EXPECTED, as_json, strict=True):
        assert result.returncode == 0, result.stderr
        printed = json.loads(result.stdout)
        assert (printed["flow"], printed["days"]) == (flow, 30)
        assert counted(printed) == EXPECTED[flow], flow
        assert printed == from_api[flow]  # the admin shows the same
        assert printed.get("ineligible", {}) == NEVER_ENTERED.get(flow, {})
    assert text.returncode == 0, text.stderr
    assert text.stdout.splitlines() == [
        "abandoned_checkout, last 30 days: 8 entered",
        "  reminder: 4 sent, 1 waiting; skipped nothing_left 1, exited order_placed 1, exited superseded 1",
        "  second_reminder: 2 sent, 1 waiting; skipped nothing_left 1, exited order_placed 1",
    ]
    assert too_many.returncode == 2
    assert "Invalid value for '--days': 366 is not in the range 1<=x<=365" in too_many.stderr

    assert snapshot(mirror) == before  # not a row written, changed or removed
    assert smtp.sink.received == []


def test_the_preview_follows_the_flow_as_configured_now(mirror: Runtime) -> None:
    client = create_app(mirror).test_client()
    last_week = api_preview(client, "abandoned_checkout", "?days=7")  # Ada's checkout is older
    assert (last_week["days"], counted(last_week)) == (7, {
        "entered": 7,
        "steps": [
            step("reminder", sent=3, waiting=1, skipped={"nothing_left": 1},
                 exited={"order_placed": 1, "superseded": 1}),
            step("second_reminder", sent=1, waiting=1, skipped={"nothing_left": 1}, exited={"order_placed": 1}),
        ],
    })  # fmt: skip

    change = {"steps": {"reminder": {"delay_minutes": 600}, "second_reminder": {"enabled": False}}}
    auth = bearer(session_token(SHOP))
    assert client.patch("/api/flows/abandoned_checkout", headers=auth, json=change).status_code == 200

    # Ten hours: Cy bought before the reminder, Eve's is not due yet; the second is skipped, and the journeys end.
    assert counted(api_preview(client, "abandoned_checkout")) == {
        "entered": 8,
        "steps": [
            step("reminder", sent=2, waiting=2, skipped={"nothing_left": 1},
                 exited={"order_placed": 2, "superseded": 1}),
            step("second_reminder", skipped={"step_disabled": 3}),
        ],
    }  # fmt: skip
    assert counted(api_preview(client, "post_purchase")) == EXPECTED["post_purchase"]  # other flows as they were

    assert client.patch("/api/flows/welcome", headers=auth, json={"enabled": False}).status_code == 200
    switched_off = api_preview(client, "welcome")
    assert counted(switched_off) == {"entered": 0, "steps": [step("welcome_1"), step("welcome_2"), step("welcome_3")]}


def test_the_preview_refuses_a_window_out_of_range_and_sees_only_the_shops_own_mirror(mirror: Runtime, db: Db) -> None:
    client = create_app(mirror).test_client()
    auth = bearer(session_token(SHOP))
    for days in ("0", "366", "-1", "a week", "1.5"):
        response = client.get(f"/api/flows/winback/preview?days={days}", headers=auth)
        assert response.status_code == 400, days
        assert response.json is not None
        assert response.json["error"].startswith("days "), response.json
    assert client.get("/api/flows/no_such_flow/preview", headers=auth).status_code == 404
    assert api_preview(client, "winback", "?days=365")["days"] == 365

    with db.write() as session:
        register_shop(
            session, mirror.secret_box, webhooks.OTHER_SHOP, access_token="t2", webhook_secret=None, now=RECEIVED_AT
        )
    elsewhere = client.get(
        "/api/flows/abandoned_checkout/preview", headers=bearer(session_token(webhooks.OTHER_SHOP))
    ).json
    assert elsewhere is not None
    assert elsewhere["entered"] == 0
    assert all(s["sent"] == s["waiting"] == 0 for s in elsewhere["steps"])
