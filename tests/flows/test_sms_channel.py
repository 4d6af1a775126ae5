"""SMS as a journey channel: the number and its consent, opt-outs that win, and the hours it may go out."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from flows.engine import advance
from flows.facts import Consent, ContactFacts, CustomerFacts, Facts
from flows.journey import Advance
from flows.reasons import Reason
from flows.tuning import FlowTuning, StepTuning
from tests.flows.test_engine import (
    ABANDONED,
    CUSTOMER,
    EMAIL,
    HOUR,
    IN_LONDON,
    T0,
    checkout,
    checkout_facts,
    entered,
)

PHONE = "+14155550123"
SMS_FIRST = FlowTuning(steps={"reminder": StepTuning(channels=("sms", "email"))})
BOTH = frozenset({"email", "sms"})


def sms_facts(**changes: Any) -> Facts:
    """A checkout whose buyer ticked the SMS box with their number; email and SMS are set up."""
    base = checkout_facts(
        checkout=checkout(accepts_sms_marketing=True, sms_marketing_phone=PHONE),
        configured_channels=BOTH,
        contact=IN_LONDON,
    )
    return replace(base, **changes)


def decide(facts: Facts, at: datetime = T0 + HOUR, tuning: FlowTuning = SMS_FIRST) -> Advance:
    moved = entered(ABANDONED, facts, tuning=tuning)
    return advance(ABANDONED, tuning, moved.journey, facts, at)


def test_the_number_given_with_the_sms_box_gets_the_message_in_the_day() -> None:
    moved = decide(sms_facts())

    assert moved.send is not None
    assert (moved.send.channel, moved.send.address) == ("sms", PHONE)
    assert moved.send.checks[0] == {"channel": "sms", "outcome": "usable"}


def test_the_customers_own_subscribed_number_is_used_without_the_box() -> None:
    facts = checkout_facts(
        customer=CustomerFacts(CUSTOMER, EMAIL, PHONE, "Ada"),
        sms_consent=Consent("subscribed", T0 - HOUR, unsubscribed_here=False),
        configured_channels=BOTH,
        contact=IN_LONDON,
    )

    moved = decide(facts)

    assert moved.send is not None
    assert (moved.send.channel, moved.send.address) == ("sms", PHONE)


def test_without_sms_consent_the_next_channel_is_used() -> None:
    cases = {
        "no box, not subscribed": checkout_facts(
            customer=CustomerFacts(CUSTOMER, EMAIL, PHONE, "Ada"), configured_channels=BOTH
        ),
        "box ticked, then unsubscribed in Shopify": sms_facts(
            sms_consent=Consent("unsubscribed", T0 + 10 * timedelta(minutes=1), unsubscribed_here=False)
        ),
        "replied STOP": sms_facts(sms_consent=Consent("subscribed", T0, unsubscribed_here=True)),
        "number refused by the provider": sms_facts(refused_addresses=frozenset({PHONE})),
        "no number": checkout_facts(configured_channels=BOTH),
    }
    expected = {
        "no box, not subscribed": "no_consent",
        "box ticked, then unsubscribed in Shopify": "consent_withdrawn",
        "replied STOP": "unsubscribed",
        "number refused by the provider": "address_refused",
        "no number": "no_phone",
    }
    for case, facts in cases.items():
        moved = decide(facts)
        assert moved.send is not None, case
        assert moved.send.channel == "email", case
        assert moved.send.checks[0] == {"channel": "sms", "outcome": expected[case]}, case


def test_sms_consent_alone_admits_a_customer_to_a_flow_that_may_text_them() -> None:
    facts = sms_facts(checkout=checkout(accepts_marketing=False, accepts_sms_marketing=True, sms_marketing_phone=PHONE))

    moved = decide(facts)

    assert moved.send is not None
    assert moved.send.channel == "sms"


def test_at_night_where_the_recipient_lives_the_step_is_held_until_eight_not_sent_by_email() -> None:
    new_york = sms_facts(contact=ContactFacts(1, "America/New_York", "US", "NY"))
    late = datetime(2026, 11, 21, 3, 30, tzinfo=UTC)  # 22:30 in New York

    moved = decide(new_york, at=late)

    assert moved.send is None
    assert moved.journey.reason is Reason.QUIET_HOURS
    assert moved.journey.due_at == datetime(2026, 11, 21, 13, 0, tzinfo=UTC)  # 08:00 EST
    [held] = [d for d in moved.decisions if d.outcome == "deferred"]
    assert held.detail["until"] == "2026-11-21T13:00:00+00:00"
    # Looked at again before then (an event touched the journey), it stays held without a new decision.
    again = advance(ABANDONED, SMS_FIRST, moved.journey, new_york, late + HOUR)
    assert again.send is None
    assert again.journey.due_at == moved.journey.due_at
    assert again.decisions == ()
    # At eight it goes out.
    morning = advance(ABANDONED, SMS_FIRST, moved.journey, new_york, datetime(2026, 11, 21, 13, 0, tzinfo=UTC))
    assert morning.send is not None
    assert morning.send.channel == "sms"
