"""May this customer receive marketing email?"""

from __future__ import annotations

from datetime import datetime

from flows.facts import EmailConsent
from flows.reasons import Reason

# Shopify's email consent states that allow marketing ("pending" still awaits a double opt-in).
ALLOWING_STATES = frozenset({"subscribed"})


def email_marketing_refusal(
    consent: EmailConsent, checkout_accepts: bool | None, checkout_at: datetime | None
) -> Reason | None:
    """None when marketing email is allowed, else why not.

    Either signal grants consent: the customer's subscribed state, or the box ticked in the checkout.
    A customer state that says otherwise and is newer than the checkout withdraws what the box granted;
    an unsubscribe through Chorus's own link always wins.
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
