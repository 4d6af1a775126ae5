"""Contacts: one person per shop across customers, checkouts and orders, merged when two records turn out to be
one person (never two Shopify customers), with their journeys; every message refers to its contact."""

from __future__ import annotations

from typing import Any

from shopify_app.models import Contact, ContactIdentity, Decision, Journey, Message
from shopify_app.runtime import Runtime
from tests.conftest import RECEIVED_AT
from tests.support import payloads
from tests.support.db import Db
from tests.support.pipeline import deliver, process
from tests.support.smtp import SmtpServer
from tests.test_abandoned_checkout_flow import AFTER_DUE, mail_runtime, run_worker, smtp, store

__all__ = ["mail_runtime", "smtp", "store"]  # fixtures

PHONE = "+14155550123"


def identities(db: Db) -> dict[int, set[tuple[str, str]]]:
    found: dict[int, set[tuple[str, str]]] = {}
    for identity in db.all(ContactIdentity):
        found.setdefault(identity.contact_id, set()).add((identity.kind, identity.value))
    return found


def guest_checkout(token: str, updated_at: str = "2026-11-20T10:00:00Z", **changes: Any) -> dict[str, Any]:
    """A checkout by someone with no customer account."""
    return payloads.checkout(token, customer=None, updated_at=updated_at, **changes)


def test_a_customer_is_one_contact_known_by_id_email_and_number_living_where_their_address_says(
    store: Runtime, db: Db
) -> None:
    address = {"country_code": "US", "province_code": "FL", "country": "United States", "province": "Florida"}
    deliver(store, "customers/create", payloads.customer(7, email="Ada@Example.com", phone="+1 415 555 0123",
                                                         default_address=address, locale="en"))  # fmt: skip
    process(store)

    [contact] = db.all(Contact)
    assert (contact.customer_id, contact.country, contact.province) == (7, "US", "FL")
    assert (contact.timezone, contact.language) == ("America/New_York", "en")  # the state's, not the number's
    assert identities(db) == {contact.id: {("customer", "7"), ("email", "ada@example.com"), ("phone", PHONE)}}


def test_a_guest_checkout_with_a_customers_email_is_that_customer(store: Runtime, db: Db) -> None:
    deliver(store, "customers/create", payloads.customer(7, email="ada@example.com"))
    deliver(store, "checkouts/create", guest_checkout("ck-guest", email="ADA@example.com", phone="+14155550123"))
    process(store)

    [contact] = db.all(Contact)
    assert identities(db) == {contact.id: {("customer", "7"), ("email", "ada@example.com"), ("phone", PHONE)}}
    assert (contact.country, contact.province) == ("US", "KY")  # the checkout's shipping address
    assert db.one(Journey).contact_id == contact.id


def test_two_records_that_turn_out_to_be_one_person_merge_and_their_journeys_with_them(store: Runtime, db: Db) -> None:
    # Two guests, as far as anyone knew: one by email, one by the number ticked for SMS; both left a cart.
    deliver(store, "checkouts/create", guest_checkout("ck-mail", email="bea@example.com",
                                                      buyer_accepts_marketing=True))  # fmt: skip
    deliver(store, "checkouts/create", guest_checkout(
        "ck-text", updated_at="2026-11-20T10:05:00Z", email=None, buyer_accepts_marketing=False,
        buyer_accepts_sms_marketing=True, sms_marketing_phone=PHONE,
    ))  # fmt: skip
    process(store)
    assert len(db.all(Contact)) == 2
    assert [j.state for j in db.all(Journey)] == ["waiting", "waiting"]

    # Then she opens an account with both: one person, one journey in the flow (the one that began first).
    deliver(store, "customers/create", payloads.customer(9, email="bea@example.com", phone=PHONE))
    process(store)

    [contact] = db.all(Contact)
    assert contact.customer_id == 9
    assert identities(db) == {
        contact.id: {("customer", "9"), ("email", "bea@example.com"), ("phone", PHONE)},
    }
    journeys = {j.subject: j for j in db.all(Journey)}
    assert {s: (j.state, j.reason, j.contact_id) for s, j in journeys.items()} == {
        "ck-mail": ("waiting", "enrolled", contact.id),
        "ck-text": ("done", "merged", contact.id),
    }
    assert [(d.outcome, d.reason) for d in db.all(Decision) if d.journey_id == journeys["ck-text"].id][-1] == (
        "ended", "merged",
    )  # fmt: skip


def test_two_customers_sharing_an_address_stay_two_contacts(store: Runtime, db: Db) -> None:
    deliver(store, "customers/create", payloads.customer(1, email="family@example.com"))
    deliver(store, "customers/create", payloads.customer(2, email="family@example.com", phone=PHONE))
    process(store)

    by_customer = {c.customer_id: c.id for c in db.all(Contact)}
    assert set(by_customer) == {1, 2}
    assert identities(db) == {
        by_customer[1]: {("customer", "1"), ("email", "family@example.com")},  # the address stays with the first
        by_customer[2]: {("customer", "2"), ("phone", PHONE)},
    }


def test_every_message_refers_to_its_contact(store: Runtime, smtp: SmtpServer, db: Db) -> None:
    deliver(
        store,
        "checkouts/create",
        payloads.checkout("ck-1", buyer_accepts_marketing=True, updated_at="2026-11-20T10:00:00Z"),
    )
    run_worker(store, RECEIVED_AT)
    assert run_worker(store, AFTER_DUE).journeys.sent == 1

    [contact] = db.all(Contact)
    assert db.one(Message).contact_id == contact.id
    assert db.one(Journey).contact_id == contact.id
