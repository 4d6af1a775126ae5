"""A storefront browser becomes a contact's only by proof: a checkout token that the browser's checkout event
and a signed webhook both carry, whichever arrives first. Its anonymous events then join the contact's story."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient

from shopify_app.contacts import BROWSER
from shopify_app.journeys.facts import monthly_active
from shopify_app.journeys.timeline import timeline
from shopify_app.models import Contact, ContactIdentity, PixelEvent, Shop
from shopify_app.runtime import Runtime
from tests.conftest import RECEIVED_AT
from tests.support import payloads
from tests.support.db import Db
from tests.support.pipeline import deliver, process
from tests.test_pixel_intake import client, event, fresh_limits, key, post

# The intake tests' fixtures: empty rate limits, the shop's pixel key (its storefront at lumen.example), a client.
__all__ = ["client", "fresh_limits", "key"]

ADA = {"id": 501, "email": "ada@example.com", "first_name": "Ada", "updated_at": "2026-11-20T09:00:00Z"}
BOB = {"id": 502, "email": "bob@example.com", "first_name": "Bob", "updated_at": "2026-11-20T09:00:00Z"}


def browse_then_check_out(client: FlaskClient, key: str, token: str, browser: str = "client-1", n: int = 0) -> None:
    post(client, key, {"events": [event(f"view-{browser}-{n}", client_id=browser),
                                  event(f"co-{browser}-{n}", "checkout_started", client_id=browser,
                                        checkout={"token": token})]})  # fmt: skip


def checkout(runtime: Runtime, token: str, customer: dict[str, Any]) -> None:
    deliver(runtime, "checkouts/create", payloads.checkout(token, email=customer["email"], customer=customer))
    process(runtime)


def browser_owner(db: Db, client_id: str) -> int | None:
    found = db.all(ContactIdentity, ContactIdentity.kind == BROWSER, ContactIdentity.value == client_id)
    return found[0].contact_id if found else None


def contact_of(db: Db, customer_id: int) -> int:
    contact_id = db.one(Contact, Contact.customer_id == customer_id).id
    assert contact_id is not None
    return contact_id


@pytest.mark.parametrize("webhook_first", [False, True], ids=["pixel first", "webhook first"])
def test_a_checkout_token_both_sides_carry_links_the_browser_whichever_comes_first(
    runtime: Runtime, key: str, client: FlaskClient, db: Db, shop: Shop, webhook_first: bool
) -> None:
    if webhook_first:
        checkout(runtime, "ck-1", ADA)
        browse_then_check_out(client, key, "ck-1")
    else:
        browse_then_check_out(client, key, "ck-1")
        checkout(runtime, "ck-1", ADA)

    ada = contact_of(db, 501)
    assert browser_owner(db, "client-1") == ada
    assert {e.contact_id for e in db.all(PixelEvent)} == {ada}  # the anonymous view joined her too
    # Later events of that browser are hers as they arrive.
    post(client, key, {"events": [event("later", client_id="client-1")]})
    assert db.one(PixelEvent, PixelEvent.event_id == "later").contact_id == ada
    with runtime.read_session() as session:
        story = timeline(session, shop.id or 0, email="ada@example.com")
    browsed = [e for e in story if e["kind"] == "browse"]
    assert [e["outcome"] for e in browsed][:2] == ["product_viewed", "checkout_started"]
    assert browsed[0]["detail"]["variant_id"] == 808950810


def test_what_a_pixel_event_says_identifies_nobody(runtime: Runtime, key: str, client: FlaskClient, db: Db) -> None:
    checkout(runtime, "ck-1", ADA)
    claims = {"checkout": {"token": "ck-unknown", "email": "ada@example.com"}, "customer": {"id": 501}}
    post(client, key, {"events": [event("co", "checkout_started", client_id="stranger", **claims)]})

    assert browser_owner(db, "stranger") is None
    assert db.one(PixelEvent).contact_id is None


def test_a_shared_browser_moves_to_the_latest_proof_and_never_merges_two_people(
    runtime: Runtime, key: str, client: FlaskClient, db: Db
) -> None:
    browse_then_check_out(client, key, "ck-ada")
    checkout(runtime, "ck-ada", ADA)
    browse_then_check_out(client, key, "ck-bob", n=1)
    checkout(runtime, "ck-bob", BOB)

    ada, bob = contact_of(db, 501), contact_of(db, 502)
    assert ada != bob
    assert browser_owner(db, "client-1") == bob
    owners = {e.event_id: e.contact_id for e in db.all(PixelEvent)}
    assert owners == {"view-client-1-0": ada, "co-client-1-0": ada, "view-client-1-1": bob, "co-client-1-1": bob}


def test_storefront_visits_of_known_contacts_count_as_monthly_activity(
    runtime: Runtime, key: str, client: FlaskClient, db: Db, shop: Shop
) -> None:
    placed = "2026-11-10T10:00:00Z"
    buyer = payloads.order(1, customer={"id": 11, "email": "c11@example.com"}, email="c11@example.com",
                           created_at=placed, updated_at=placed, cancelled_at=None)  # fmt: skip
    deliver(runtime, "orders/create", buyer)
    process(runtime)
    with runtime.read_session() as session:
        assert monthly_active(session, shop.id or 0, RECEIVED_AT) == 1

    browse_then_check_out(client, key, "ck-ada")  # Ada browses and starts a checkout: she is known from it
    checkout(runtime, "ck-ada", ADA)
    post(client, key, {"events": [event("anonymous", client_id="stranger")]})  # nobody known: not counted

    with runtime.read_session() as session:
        assert monthly_active(session, shop.id or 0, RECEIVED_AT) == 2
        assert monthly_active(session, shop.id or 0, RECEIVED_AT + timedelta(days=31)) == 0
