"""Why a flow did, or did not, do something: stable codes, stored with every decision."""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    # Enrolment
    ENROLLED = "enrolled"
    NO_EMAIL = "no_email"
    NO_ITEMS = "no_items"
    NO_CONSENT = "no_consent"
    # Just before sending
    ORDER_PLACED = "order_placed"  # an order carries this checkout's token or cart token
    ORDERED_SINCE = "ordered_since"  # the same customer ordered after the checkout started (any channel)
    CHECKOUT_COMPLETED = "checkout_completed"
    CONSENT_WITHDRAWN = "consent_withdrawn"
    UNSUBSCRIBED = "unsubscribed"
    NOTHING_LEFT = "nothing_left"  # every item was deleted or sold out
    SHOP_UNINSTALLED = "shop_uninstalled"
    FLOW_DISABLED = "flow_disabled"
    TOO_OLD = "too_old"
    NO_POSTAL_ADDRESS = "no_postal_address"  # marketing email must carry the sender's postal address
    SEND = "send"
    # Handing over to the channel
    SENT = "sent"
    SEND_DEFERRED = "send_deferred"  # the channel was unreachable; the message certainly did not leave
    SEND_REFUSED = "send_refused"
    SEND_INTERRUPTED = "send_interrupted"  # stopped mid-hand-over: it may have gone out

    @property
    def description(self) -> str:
        return _DESCRIPTIONS[self]


_DESCRIPTIONS = {
    Reason.ENROLLED: "waiting for the reminder delay",
    Reason.NO_EMAIL: "the checkout has no email address",
    Reason.NO_ITEMS: "the checkout has no items",
    Reason.NO_CONSENT: "the customer has not agreed to marketing email",
    Reason.ORDER_PLACED: "an order was placed from this checkout",
    Reason.ORDERED_SINCE: "the customer placed an order after starting this checkout",
    Reason.CHECKOUT_COMPLETED: "the checkout was completed",
    Reason.CONSENT_WITHDRAWN: "the customer withdrew marketing consent",
    Reason.UNSUBSCRIBED: "the address unsubscribed",
    Reason.NOTHING_LEFT: "nothing in the checkout can still be bought",
    Reason.SHOP_UNINSTALLED: "the shop uninstalled Chorus",
    Reason.FLOW_DISABLED: "the shop switched this flow off",
    Reason.TOO_OLD: "the checkout is older than the recovery cutoff",
    Reason.NO_POSTAL_ADDRESS: "the shop's postal address is unknown, and marketing email must show it",
    Reason.SEND: "all checks passed",
    Reason.SENT: "the provider accepted the message",
    Reason.SEND_DEFERRED: "the channel was unreachable; the message did not leave and will be tried again",
    Reason.SEND_REFUSED: "the provider refused the message",
    Reason.SEND_INTERRUPTED: "interrupted while handing the message over: it may or may not have gone out",
}
