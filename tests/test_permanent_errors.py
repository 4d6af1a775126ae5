"""Deliveries whose data can never be handled are parked at once, with the reason, instead of being retried with
backoff for hours; the rest of their batch is handled as usual. Each database refuses different things: SQLite
stores long strings, NUL bytes and wide numbers that PostgreSQL refuses, so the same body may be handled on one
and parked on the other, but it is never retried on either."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, insert, text
from sqlalchemy.exc import OperationalError

from shopify_app.events.failures import is_permanent, permanent_reason
from shopify_app.events.replay import requeue_events
from shopify_app.models import Customer, EventStatus, Order, PrivacyRequest, Shop, Variant, WebhookEvent
from shopify_app.runtime import Runtime
from tests.support import payloads, webhooks
from tests.support.db import Db
from tests.support.pipeline import deliver, process


@dataclass(frozen=True)
class Case:
    topic: str
    payload: dict[str, Any]
    # The reason each database gives; None: that database takes the data, and the event is done.
    sqlite: str | None
    postgresql: str | None


TOO_LONG = "permanent data error: a text value too long for its column (SQLSTATE 22001)"
OUT_OF_RANGE = "permanent data error: a number out of range for its column (SQLSTATE 22003)"
NUL_REFUSED = "permanent data error: a value the database driver refuses"
WRONG_TYPE = "permanent data error: a payload value of an unexpected type"

CASES = {
    "a checkout token longer than its column": Case(
        "checkouts/create", payloads.checkout("t" * 300), sqlite=None, postgresql=TOO_LONG
    ),
    "a shop currency longer than its column": Case(
        "shop/update", {"name": "Acme", "currency": "DOLLARS"}, sqlite=None, postgresql=TOO_LONG
    ),
    "a stock level beyond a 32-bit column": Case(
        "variants/in_stock", payloads.variant(808950810, inventory_quantity=2**40), sqlite=None, postgresql=OUT_OF_RANGE
    ),
    "a total beyond its numeric column": Case(
        "orders/create", payloads.order(1001, total_price="1" + "0" * 30), sqlite=None, postgresql=OUT_OF_RANGE
    ),
    "an order id beyond 64 bits": Case(
        "orders/create",
        payloads.order(2**64 + 5),
        sqlite="PermanentEventError: expected a 64-bit integer, got 18446744073709551621",
        postgresql="PermanentEventError: expected a 64-bit integer, got 18446744073709551621",
    ),
    "a customer id of 2**63": Case(
        "customers/create",
        payloads.customer(2**63),
        sqlite="PermanentEventError: expected a 64-bit integer, got 9223372036854775808",
        postgresql="PermanentEventError: expected a 64-bit integer, got 9223372036854775808",
    ),
    "a NUL byte in a name": Case(
        "customers/create", payloads.customer(501, first_name="Ada\x00"), sqlite=None, postgresql=NUL_REFUSED
    ),
    "a list for an image id": Case(
        "products/create",
        payloads.product(images=[{"id": [850703190], "src": "https://cdn.shopify.com/a.png"}]),
        sqlite=WRONG_TYPE,
        postgresql=WRONG_TYPE,
    ),
    # An optional yes/no field of another type is as good as absent: the checkout is kept, its box unknown.
    "text for a yes/no field": Case(
        "checkouts/create", payloads.checkout("ck-2", buyer_accepts_marketing="yes"), None, None
    ),
    "a number for a time": Case(
        "orders/create",
        payloads.order(1001) | {"updated_at": 12},
        sqlite="PermanentEventError: expected an ISO-8601 time, got 12",
        postgresql="PermanentEventError: expected an ISO-8601 time, got 12",
    ),
    "NaN as an amount": Case(
        "orders/create",
        payloads.order(1001, total_price="NaN"),
        sqlite="PermanentEventError: expected a finite decimal amount, got 'NaN'",
        postgresql="PermanentEventError: expected a finite decimal amount, got 'NaN'",
    ),
    # Read as absent, as a missing key is: the order is kept without them.
    "text for the line items": Case("orders/create", payloads.order(1001, line_items="x"), None, None),
    "a list for the customer": Case("orders/create", payloads.order(1001, customer=[]), None, None),
}


def stored_before_and_after(runtime: Runtime, topic: str, body: bytes) -> None:
    """The event between two good ones, all three claimed in one batch."""
    deliver(runtime, "orders/create", payloads.order(7001))
    deliver(runtime, topic, body)
    deliver(runtime, "orders/create", payloads.order(7002))


def assert_handled_or_parked_at_once(runtime: Runtime, db: Db, reason: str | None) -> None:
    report = process(runtime)

    first, event, last = db.all(WebhookEvent)
    assert report.claimed == 3  # one batch
    assert (first.status, last.status) == (EventStatus.DONE, EventStatus.DONE)
    assert {7001, 7002} <= {o.order_id for o in db.all(Order)}
    if reason is None:
        assert (event.status, event.attempts, event.last_error) == (EventStatus.DONE, 1, None)
    else:
        assert (event.status, event.attempts, event.next_attempt_at) == (EventStatus.PARKED, 1, None)
        assert event.last_error is not None
        assert event.last_error.startswith(reason), event.last_error


@pytest.mark.parametrize("name", list(CASES))
def test_data_that_can_never_be_stored_is_parked_after_one_attempt(
    runtime: Runtime, shop: Shop, db: Db, name: str
) -> None:
    case = CASES[name]
    stored_before_and_after(runtime, case.topic, webhooks.encode(case.payload))

    expected = case.sqlite if runtime.engine.dialect.name == "sqlite" else case.postgresql
    assert_handled_or_parked_at_once(runtime, db, expected)


def test_a_lone_surrogate_is_refused_at_intake_and_parked_by_a_worker_that_meets_it(
    runtime: Runtime, shop: Shop, db: Db
) -> None:
    body = b'{"id": 501, "first_name": "\\ud800", "updated_at": "2026-11-20T10:00:00Z"}'
    stored_before_and_after(runtime, "customers/create", body)
    assert db.all(WebhookEvent)[1].status == EventStatus.MALFORMED  # never claimed
    # Stored as pending before intake refused it, or put back in the queue by hand: neither database takes it.
    with db.write() as session:
        requeue_events(session, statuses=[EventStatus.MALFORMED])

    assert_handled_or_parked_at_once(runtime, db, "permanent data error: text that cannot be encoded")
    assert db.all(Customer, Customer.customer_id == 501) == []


def test_a_redaction_whose_customer_id_is_no_number_still_erases_by_email(runtime: Runtime, shop: Shop, db: Db) -> None:
    deliver(runtime, "customers/create", payloads.customer(501, email="ada@example.com"))
    process(runtime)
    request = {"customer": {"id": "gid://shopify/Customer/501", "email": "ada@example.com"}, "orders_to_redact": ["²"]}
    stored_before_and_after(runtime, "customers/redact", webhooks.encode(request))

    report = process(runtime)

    assert (report.claimed, report.done) == (3, 3)
    assert db.all(Customer, Customer.customer_id == 501) == []
    [redaction] = db.all(PrivacyRequest)
    assert (redaction.kind, redaction.customer_id) == ("customers_redact", None)


def refused(engine: Engine, statement: Any, row: dict[str, Any]) -> BaseException | None:
    """What the database (or its driver) raises for `row`, or None when it stores it."""
    try:
        with engine.begin() as connection:
            connection.execute(statement, row)
    except Exception as exc:
        return exc
    return None


def test_each_database_refuses_what_it_refuses_and_each_refusal_is_permanent(runtime: Runtime, shop: Shop) -> None:
    engine, postgres = runtime.engine, runtime.engine.dialect.name == "postgresql"
    variant = insert(Variant)
    row = {"shop_id": shop.id, "variant_id": 1, "product_id": 1}

    wide = refused(engine, variant, row | {"variant_id": 2**64})  # PostgreSQL: bigint out of range; SQLite: driver
    long = refused(engine, variant, row | {"variant_id": 2, "inventory_policy": "x" * 300})
    nul = refused(engine, variant, row | {"variant_id": 3, "title": "a\x00b"})
    surrogate = refused(engine, variant, row | {"variant_id": 4, "title": "\ud800"})

    assert wide is not None
    too_wide = OUT_OF_RANGE if postgres else "permanent data error: a number too large for the database driver"
    assert permanent_reason(wide) == too_wide
    assert (permanent_reason(long) if long else None) == (TOO_LONG if postgres else None)
    assert (permanent_reason(nul) if nul else None) == (NUL_REFUSED if postgres else None)
    assert surrogate is not None
    assert permanent_reason(surrogate) == "permanent data error: text that cannot be encoded (a lone surrogate?)"


def test_a_failure_of_the_moment_is_not_permanent(runtime: Runtime) -> None:
    assert not is_permanent(ConnectionError("database went away"))
    assert not is_permanent(TimeoutError())
    if runtime.engine.dialect.name == "postgresql":
        with runtime.engine.begin() as connection:
            connection.execute(text("SET LOCAL statement_timeout = 1"))
            with pytest.raises(OperationalError) as cancelled:
                connection.execute(text("SELECT pg_sleep(1)"))
        assert not is_permanent(cancelled.value)  # 57014 (query cancelled): may well pass the next time


# Hostile values for the fields handlers read, at the top of a payload and inside its objects.
hostile_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=10),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=256, max_size=300),
    st.sampled_from(["\x00", "a\x00b", "2026-13-45T99:00:00Z", "NaN", "-1", "1e400", "", " "]),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.sampled_from(["id", "src", "state"]), st.integers() | st.text(max_size=5), max_size=2),
)
EMAIL_CONSENT = {"state": "subscribed", "opt_in_level": "single_opt_in", "consent_updated_at": "2026-11-20T09:00:00Z"}
# (topic, the payload around the spoiled object, the object, the keys to spoil in it)
SPOILABLE: list[tuple[str, Any, dict[str, Any], list[str]]] = [
    ("orders/create", lambda o: o, payloads.order(1001),
     ["id", "email", "total_price", "currency", "updated_at", "created_at", "cancelled_at", "line_items", "customer",
      "fulfillment_status", "fulfillments", "buyer_accepts_marketing", "checkout_token", "name"]),
    ("orders/create", lambda line: payloads.order(1001, line_items=[line]), payloads.order(1001)["line_items"][0],
     ["variant_id", "product_id", "quantity", "price", "title"]),
    ("customers/create", lambda c: c, payloads.customer(501),
     ["id", "email", "phone", "first_name", "updated_at", "created_at", "state", "default_address",
      "email_marketing_consent", "sms_marketing_consent", "locale"]),
    ("customers/create", lambda consent: payloads.customer(501, email_marketing_consent=consent), EMAIL_CONSENT,
     ["state", "opt_in_level", "consent_updated_at"]),
    ("checkouts/create", lambda c: c, payloads.checkout("ck-h"),
     ["token", "id", "email", "updated_at", "line_items", "customer", "total_price", "completed_at",
      "buyer_accepts_marketing", "abandoned_checkout_url", "shipping_address", "presentment_currency"]),
    ("products/create", lambda p: p, payloads.product(),
     ["id", "title", "handle", "updated_at", "images", "image", "variants", "status"]),
    ("products/create", lambda v: payloads.product(variants=[v]), payloads.variant(808950810),
     ["id", "product_id", "price", "inventory_quantity", "sku", "image_id", "updated_at"]),
    ("variants/in_stock", lambda v: v, payloads.variant(808950810),
     ["id", "product_id", "price", "inventory_quantity", "sku", "updated_at"]),
    ("customers/redact", lambda r: r, {"customer": {"id": 501, "email": "a@b.c"}, "orders_to_redact": [1]},
     ["customer", "orders_to_redact"]),
]  # fmt: skip


def spoiled(topic: str, wrap: Any, base: dict[str, Any], keys: list[str]) -> st.SearchStrategy[tuple[str, Any]]:
    changes = st.dictionaries(st.sampled_from(keys), hostile_values, min_size=1, max_size=3)
    return changes.map(lambda changed: (topic, wrap(base | changed)))


hostile_deliveries = st.one_of(*(spoiled(*spoilable) for spoilable in SPOILABLE))


@settings(max_examples=80, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(delivery=hostile_deliveries)
def test_no_payload_value_makes_an_event_retry(runtime: Runtime, shop: Shop, db: Db, delivery: Any) -> None:
    topic, payload = delivery
    body = json.dumps(payload).encode()
    deliver(runtime, topic, body)

    process(runtime)

    event = db.all(WebhookEvent)[-1]
    assert event.body == body or event.topic == "customers/redact"
    assert event.status in (EventStatus.DONE, EventStatus.PARKED, EventStatus.MALFORMED), event.last_error
    assert event.attempts <= 1
