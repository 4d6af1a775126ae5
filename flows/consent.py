"""May this customer receive marketing on a channel (email, SMS)?"""

from __future__ import annotations

from datetime import datetime

from flows.facts import Consent
from flows.reasons import Reason

# Shopify's consent states that allow marketing, for email and SMS alike ("pending" still awaits a double opt-in).
ALLOWING_STATES = frozenset({"subscribed"})


def marketing_consent_refusal(
    consent: Consent, checkout_accepts: bool | None, checkout_at: datetime | None
) -> Reason | None:
    """None when marketing on the channel is allowed, else why not.

    Either signal grants consent: the customer's subscribed state, or the channel's box ticked in the
    checkout. A customer state that says otherwise and is newer than the checkout withdraws what the box
    granted; an opt-out through Chorus itself (an unsubscribe link, a STOP reply) always wins.
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
