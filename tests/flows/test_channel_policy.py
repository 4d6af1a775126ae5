"""The channel policy as a whole: whatever the consents, regions, growth stage and unusable channels, a channel
is chosen only with the person's consent for it, at an address, among the step's own channels."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from flows.channels import choose, consent_refusal
from flows.facts import Consent, ContactFacts
from flows.reasons import Reason
from tests.flows.test_engine import ALL_DAY, T0, checkout, checkout_facts, shop

STATES = st.sampled_from([None, "subscribed", "not_subscribed", "unsubscribed", "pending", "redacted"])
CHANNELS = ["email", "sms", "whatsapp", "push", "inbox"]


@st.composite
def consents(draw: st.DrawFn) -> Consent:
    return Consent(draw(STATES), T0, unsubscribed_here=draw(st.booleans()))


@given(
    step=st.lists(st.sampled_from(CHANNELS), min_size=1, max_size=5, unique=True),
    email=consents(), sms=consents(), whatsapp=consents(),
    boxes=st.tuples(st.sampled_from([None, True, False]), st.sampled_from([None, True, False])),
    phone=st.sampled_from([None, "+14155550123", "+5511987654321"]),
    country=st.sampled_from([None, "BR", "US", "GB"]),
    region=st.lists(st.sampled_from(CHANNELS), max_size=3, unique=True),
    active=st.integers(min_value=0, max_value=2000),
    configured=st.frozensets(st.sampled_from(CHANNELS)),
    unusable=st.frozensets(st.sampled_from(CHANNELS), max_size=2),
)  # fmt: skip
def test_a_channel_is_chosen_only_with_consent_for_it_at_an_address_and_only_one_the_step_has(
    step: list[str], email: Consent, sms: Consent, whatsapp: Consent, boxes: tuple[bool | None, bool | None],
    phone: str | None, country: str | None, region: list[str], active: int, configured: frozenset[str],
    unusable: frozenset[str],
) -> None:  # fmt: skip
    policy = replace(ALL_DAY, growth_threshold=1000, regions={"BR": tuple(region)} if region else {})
    facts = checkout_facts(
        checkout=checkout(accepts_marketing=boxes[0], accepts_sms_marketing=boxes[1], sms_marketing_phone=phone),
        email_consent=email, sms_consent=sms, whatsapp_consent=whatsapp,
        contact=ContactFacts(1, "Europe/London", country), shop=shop(policy=policy, monthly_active=active),
        configured_channels=configured, unusable=dict.fromkeys(unusable, Reason.CHANNEL_REFUSED),
    )  # fmt: skip

    choice = choose(step, facts)

    assert sorted(c.channel for c in choice.checks) == sorted(step)  # reordered, never added to
    chosen = choice.chosen
    if chosen is None:
        return
    assert chosen.channel in step
    assert chosen.channel in configured
    assert chosen.channel not in unusable
    assert chosen.address
    assert consent_refusal(chosen.channel, facts) is None
    if chosen.channel in ("sms", "whatsapp"):
        assert active >= 1000  # a shop below its growth threshold never pays for a message
