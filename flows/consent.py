"""May this customer receive marketing on a channel, and what each consent signal counts for.

Consent reaches Chorus as signals, each kept as proof: what the person agreed to (or withdrew), on which
channel, when, from which source and at which opt-in level. Shopify's own states are taken as Shopify reports
them; the signals Chorus collects itself follow the rules here.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from flows.facts import Consent
from flows.reasons import Reason

# Shopify's consent states that allow marketing, for email and SMS alike ("pending" still awaits a double opt-in).
ALLOWING_STATES = frozenset({"subscribed"})
SUBSCRIBED, UNSUBSCRIBED, PENDING = "subscribed", "unsubscribed", "pending"
SINGLE_OPT_IN, CONFIRMED_OPT_IN = "single_opt_in", "confirmed_opt_in"  # Shopify's levels, lower-cased


class Source(StrEnum):
    """Where a consent signal came from."""

    SHOPIFY_WEBHOOK = "shopify_webhook"  # a customer or consent webhook: Shopify's state, as it reports it
    RECONCILIATION = "reconciliation"  # Shopify's state, read back by the periodic sync
    CHECKOUT = "checkout"  # the marketing box of a checkout
    KEYWORD = "keyword"  # a texted STOP or START (SMS, WhatsApp)
    FORM = "form"  # a Chorus sign-up form
    UNSUBSCRIBE_LINK = "unsubscribe_link"  # the link in a Chorus message


CHORUS_SOURCES = frozenset({Source.KEYWORD, Source.FORM, Source.UNSUBSCRIBE_LINK})  # collected by Chorus itself
SHOPIFY_SOURCES = frozenset({Source.SHOPIFY_WEBHOOK, Source.RECONCILIATION})  # Shopify's state, as it says


def stands_as_opt_out(source: Source, state: str | None) -> bool:
    """An opt-out made through Chorus: it stands, whatever Shopify or a checkout box says later, until the
    person opts in again explicitly (`lifts_opt_out`)."""
    return source in (Source.KEYWORD, Source.UNSUBSCRIBE_LINK) and state == UNSUBSCRIBED


def lifts_opt_out(source: Source, state: str | None, level: str | None) -> bool:
    """An explicit opt-in: the person's own words to Chorus (START, a sign-up form, confirmed where the shop
    asks for it), or an opt-in Shopify reports as confirmed by the person. Not a checkout box (a shop may tick
    it in advance) nor a single opt-in Shopify reports (an import may set it)."""
    if state != SUBSCRIBED:
        return False
    if source in (Source.KEYWORD, Source.FORM):
        return True
    return source in (Source.SHOPIFY_WEBHOOK, Source.RECONCILIATION) and level == CONFIRMED_OPT_IN


def form_level(double_opt_in: bool, confirmed: bool) -> tuple[str, str]:
    """The state and level a sign-up form's opt-in is recorded with: under double opt-in it counts only once
    the emailed link is confirmed."""
    if not double_opt_in:
        return SUBSCRIBED, SINGLE_OPT_IN
    return (SUBSCRIBED, CONFIRMED_OPT_IN) if confirmed else (PENDING, CONFIRMED_OPT_IN)


def with_chorus_opt_in(consent: Consent, opted_in_at: datetime | None) -> Consent:
    """Shopify's state, or an opt-in collected by Chorus when it is newer (it reaches Shopify a little later,
    or never when the person is not one of the shop's customers)."""
    if opted_in_at is None or (consent.changed_at is not None and consent.changed_at >= opted_in_at):
        return consent
    return Consent(SUBSCRIBED, opted_in_at, consent.unsubscribed_here)


def marketing_consent_refusal(
    consent: Consent, checkout_accepts: bool | None, checkout_at: datetime | None
) -> Reason | None:
    """None when marketing on the channel is allowed, else why not.

    Either signal grants consent: the customer's subscribed state, or the channel's box ticked in the
    checkout. A customer state that says otherwise and is newer than the checkout withdraws what the box
    granted; an opt-out through Chorus itself (an unsubscribe link, a STOP reply) always wins: it is lifted
    only by an explicit opt-in, which removes it.
    """
    if consent.unsubscribed_here:
        return Reason.UNSUBSCRIBED
    if consent.state in ALLOWING_STATES:
        return None
    if not checkout_accepts:
        return Reason.NO_CONSENT
    changed_since = consent.changed_at is not None and checkout_at is not None and consent.changed_at > checkout_at
    if consent.state is not None and changed_since:
        return Reason.CONSENT_WITHDRAWN
    return None
