"""Which channel a step reaches the customer on: the first of its channels, in order, that may be used.

Email, SMS and WhatsApp exist; push and inbox are accepted in definitions and skipped as not configured
until their connectors arrive. A step none of whose channels is set up waits for one to be; a step whose set-up
channels all refuse (no address, no consent, too dear for the step or the shop's budget: `flows.budgets`) is
skipped with the first refusal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from flows.budgets import NOTHING_SPENT, Price, cost_refusal
from flows.consent import marketing_consent_refusal
from flows.facts import Facts
from flows.phones import phone_region
from flows.policy import CHEAP_CHANNELS
from flows.reasons import Reason

CHANNELS = ("email", "sms", "whatsapp", "push", "inbox")
CONSENT_SOURCES = ("email", "sms", "whatsapp")  # the channels whose marketing consent Chorus knows of


@dataclass(frozen=True)
class ChannelCheck:
    channel: str
    address: str | None
    refusal: Reason | None  # None: usable
    price: Price | None = None  # what the message would cost on it, where that was judged

    def as_detail(self) -> dict[str, str]:
        detail = {"channel": self.channel, "outcome": str(self.refusal) if self.refusal else "usable"}
        return detail | ({"price": str(self.price)} if self.price is not None else {})


@dataclass(frozen=True)
class Choice:
    checks: tuple[ChannelCheck, ...]

    @property
    def chosen(self) -> ChannelCheck | None:
        return next((c for c in self.checks if c.refusal is None), None)

    @property
    def waits_for_setup(self) -> bool:
        """Nothing usable because nothing is set up: worth looking at again once it may be."""
        return self.chosen is None and all(c.refusal is Reason.NOT_CONFIGURED for c in self.checks)

    @property
    def refusal(self) -> Reason:
        """Why the step cannot go out: the first refusal of a channel that is set up."""
        refusals = [c.refusal for c in self.checks if c.refusal not in (None, Reason.NOT_CONFIGURED)]
        return refusals[0] if refusals and refusals[0] is not None else Reason.NO_CHANNEL


def check(channel: str, facts: Facts, max_price: Decimal | None = None) -> ChannelCheck:
    """How the channel is judged for this message; `max_price` is the step's cap on what it pays."""
    if channel not in facts.configured_channels:
        return ChannelCheck(channel, None, Reason.NOT_CONFIGURED)
    if channel in facts.unusable:
        return ChannelCheck(channel, None, facts.unusable[channel])
    if channel not in CHEAP_CHANNELS and facts.shop.monthly_active < facts.shop.policy.growth_threshold:
        return ChannelCheck(channel, None, Reason.GROWTH_STAGE)  # a small shop stays on the cheap channels
    if channel == "email":
        return ChannelCheck(channel, facts.email, email_refusal(facts))
    if channel in ("sms", "whatsapp"):
        # Cost last: a channel the customer cannot be reached on is refused for that, whatever it would cost.
        price = facts.prices.get(channel)
        refusal = phone_refusal(channel, facts) or cost_refusal(
            channel, facts.shop.policy, price, facts.shop.spend.get(channel, NOTHING_SPENT), max_price
        )
        return ChannelCheck(channel, facts.phone, refusal, price)
    return ChannelCheck(channel, None, Reason.NOT_CONFIGURED)


def choose(channels: Sequence[str], facts: Facts, max_price: Decimal | None = None) -> Choice:
    return Choice(tuple(check(channel, facts, max_price) for channel in regional_order(channels, facts)))


def regional_order(channels: Sequence[str], facts: Facts) -> tuple[str, ...]:
    """The step's channels in the order the shop sets for the recipient's country (never one the step lacks),
    those the country's order does not name after them, as the step lists them."""
    country = facts.contact.country if facts.contact is not None else None
    country = country or (phone_region(facts.phone) if facts.phone else None)
    preferred = facts.shop.policy.regions.get(country or "", ())
    first = [c for c in preferred if c in channels]
    return (*first, *(c for c in channels if c not in first))


def candidates(checks: Sequence[Mapping[str, str]]) -> list[dict[str, object]]:
    """Every channel considered, in the order considered: accepted or not, and why; the first accepted won."""
    found: list[dict[str, object]] = []
    chosen = False
    for c in checks:
        ok = c["outcome"] == "usable"
        reason = ("chosen: the first usable" if not chosen else "usable, after the one chosen") if ok else c["outcome"]
        found.append({"channel": c["channel"], "ok": ok, "reason": reason})
        chosen = chosen or ok
    return found


def email_refusal(facts: Facts) -> Reason | None:
    """Why marketing email may not go to this subject's address now, or None."""
    if facts.email and facts.email in facts.refused_addresses:
        return Reason.ADDRESS_REFUSED
    refusal = consent_refusal("email", facts)
    if refusal is None and not facts.shop.postal_address:
        return Reason.NO_POSTAL_ADDRESS
    return refusal


def phone_refusal(channel: str, facts: Facts) -> Reason | None:
    """Why marketing by SMS or WhatsApp may not go to this subject's number now, or None."""
    if facts.phone and facts.phone in facts.refused_addresses:
        return Reason.ADDRESS_REFUSED
    return consent_refusal(channel, facts)


def consent_refusal(channel: str, facts: Facts) -> Reason | None:
    """None when the subject agreed to marketing on the channel, at the address it would go to."""
    if channel == "email":
        if not facts.email:
            return Reason.NO_EMAIL
        box, box_at = facts.consent_box
        return marketing_consent_refusal(facts.email_consent, box, box_at)
    if channel == "sms":
        if not facts.phone:
            return Reason.NO_PHONE
        box, box_at = facts.sms_box
        return marketing_consent_refusal(facts.sms_consent, box, box_at)
    if channel == "whatsapp":  # no checkout box grants it: only the customer's own opt-in to the number
        return marketing_consent_refusal(facts.whatsapp_consent, None, None) if facts.phone else Reason.NO_PHONE
    return Reason.NO_CONSENT  # no consent source exists yet for the other channels: they cannot grant it


def marketing_refusal(channels: Sequence[str], facts: Facts) -> Reason | None:
    """At entry: None when the customer agreed to marketing on one of the flow's channels.

    Consent does not depend on whether the channel is set up yet: a shop may connect it later.
    """
    refusals = [consent_refusal(c, facts) for c in dict.fromkeys(channels) if c in CONSENT_SOURCES]
    if any(refusal is None for refusal in refusals):
        return None
    return refusals[0] or Reason.NO_CONSENT if refusals else Reason.NO_CONSENT
