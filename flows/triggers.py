"""What a trigger requires of its subject before any entry rule is looked at."""

from __future__ import annotations

from flows.facts import Facts
from flows.reasons import Reason


def qualification(event: str, facts: Facts) -> Reason | None:
    """None when the subject can start a journey of a flow with this trigger, else why not."""
    if event == "checkout_changed":
        checkout = facts.checkout
        if checkout is None:
            return Reason.SUBJECT_GONE
        if not checkout.email and not facts.phone:  # a phone-only checkout may still be reached by SMS
            return Reason.NO_EMAIL
        if not checkout.lines:
            return Reason.NO_ITEMS
        if checkout.updated_at is None and checkout.created_at is None:
            return Reason.NO_TIMESTAMP
        return None
    if event == "cart_abandoned":
        if facts.customer is None or facts.browsing is None:
            return Reason.SUBJECT_GONE
        if not facts.email and not facts.phone:
            return Reason.NO_EMAIL
        return None if facts.browsing.cart else Reason.NO_ITEMS
    if event == "product_browsed":
        if facts.customer is None or facts.browsing is None:
            return Reason.SUBJECT_GONE
        if not facts.email and not facts.phone:
            return Reason.NO_EMAIL
        return None if facts.browsing.browsed else Reason.NO_ITEMS
    if event == "price_dropped":
        if facts.customer is None or facts.browsing is None:
            return Reason.SUBJECT_GONE
        if not facts.email and not facts.phone:
            return Reason.NO_EMAIL
        return None if facts.browsing.price_drops else Reason.NO_ITEMS
    if event == "order_paid":
        return None if facts.order is not None else Reason.SUBJECT_GONE
    return None if facts.customer is not None else Reason.SUBJECT_GONE
