"""Why a flow did, or did not, do something: stable codes, stored with every decision."""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    # Entry
    ENROLLED = "enrolled"
    NO_EMAIL = "no_email"
    NO_PHONE = "no_phone"  # no valid mobile number with SMS consent is known
    NO_ITEMS = "no_items"
    NO_TIMESTAMP = "no_timestamp"  # the subject says nothing of when it happened: no wait can be anchored
    NO_CONSENT = "no_consent"
    ALREADY_IN_FLOW = "already_in_flow"  # the customer is on another journey of this flow
    ENTERED_RECENTLY = "entered_recently"  # re-entry only after the flow's period
    SUPERSEDED = "superseded"  # the customer's newer subject took this journey's place
    # Goals: the journey ends, on every channel
    ORDER_PLACED = "order_placed"  # an order carries this checkout's token or cart token
    ORDERED_SINCE = "ordered_since"  # the same customer ordered after the journey's subject began (any channel)
    CHECKOUT_COMPLETED = "checkout_completed"
    CHECKOUT_STARTED = "checkout_started"  # the contact started a checkout since their cart (that flow takes over)
    ADDED_TO_CART = "added_to_cart"  # the contact added to cart since the view (the abandoned cart flow takes over)
    CONSENT_WITHDRAWN = "consent_withdrawn"
    UNSUBSCRIBED = "unsubscribed"
    ORDER_CANCELLED = "order_cancelled"
    ORDER_REFUNDED = "order_refunded"
    # The journey's premises, checked when something is due
    SUBJECT_GONE = "subject_gone"  # the checkout, order or customer is no longer in the mirror
    NOTHING_LEFT = "nothing_left"  # every item was deleted or sold out
    NOTHING_TO_OFFER = "nothing_to_offer"  # no related product can be bought now
    SHOP_UNINSTALLED = "shop_uninstalled"
    MERGED = "merged"  # its contact turned out to be another's, whose journey in the flow began first
    FLOW_DISABLED = "flow_disabled"
    STEP_DISABLED = "step_disabled"
    TOO_OLD = "too_old"
    WAIT_EXPIRED = "wait_expired"  # the fact a wait was anchored at never came
    NO_POSTAL_ADDRESS = "no_postal_address"  # marketing email must carry the sender's postal address
    ADDRESS_REFUSED = "address_refused"  # the provider refused this address for good earlier
    NOT_CONFIGURED = "not_configured"  # the shop has not set this channel up
    NO_CHANNEL = "no_channel"  # none of the step's channels is set up: looked at again later
    SMS_HOURS = "sms_hours"  # a release before quiet hours held marketing SMS to the shop's daytime
    QUIET_HOURS = "quiet_hours"  # outside the channel's window in the recipient's time (or the law's): held
    CAPPED = "capped"  # the contact had as many marketing messages as a frequency cap allows: held until it has room
    GROWTH_STAGE = "growth_stage"  # the shop has fewer monthly active customers than its threshold for paid channels
    OVER_PRICE = "over_price"  # the message would cost more on this channel than its step pays at most
    OVER_BUDGET = "over_budget"  # the message would take the month's spend on this channel over the shop's budget
    GIVES_WAY = "gives_way"  # it would fill a cap while a more important flow's message is due within the hour
    TOO_LONG = "too_long"  # the SMS is longer than the step allows, in segments
    NO_TEMPLATE = "no_template"  # no approved WhatsApp template is set for this step
    RENDER_FAILED = "render_failed"  # the message could not be rendered for this channel
    OUTSIDE_WINDOW = "outside_window"  # WhatsApp: more than 24 hours since the customer last wrote
    CHANNEL_REFUSED = "channel_refused"  # the provider will not carry this message (its template) on this channel
    # The engine's own moves
    WAIT = "wait"
    WAITED = "waited"
    BRANCH_YES = "branch_yes"
    BRANCH_NO = "branch_no"
    COMPLETED = "completed"  # past the last step
    EXIT = "exit"  # an exit step
    SEND = "send"
    # Handing over to the channel
    SENT = "sent"
    SEND_DEFERRED = "send_deferred"  # the channel was unreachable; the message certainly did not leave
    SEND_REFUSED = "send_refused"
    SEND_GAVE_UP = "send_gave_up"  # certainly not sent, but too many attempts failed
    SEND_INTERRUPTED = "send_interrupted"  # stopped mid-hand-over: it may have gone out

    @property
    def description(self) -> str:
        return _DESCRIPTIONS[self]


_DESCRIPTIONS = {
    Reason.ENROLLED: "entered the flow",
    Reason.NO_EMAIL: "no email address is known",
    Reason.NO_PHONE: "no mobile number is known",
    Reason.NO_ITEMS: "the checkout has no items",
    Reason.NO_TIMESTAMP: "the checkout carries no creation or update time",
    Reason.NO_CONSENT: "the customer has not agreed to marketing",
    Reason.ALREADY_IN_FLOW: "the customer is already on a journey of this flow",
    Reason.ENTERED_RECENTLY: "the customer went through this flow too recently",
    Reason.SUPERSEDED: "a newer checkout of the same customer took over",
    Reason.ORDER_PLACED: "an order was placed from this checkout",
    Reason.ORDERED_SINCE: "the customer placed an order",
    Reason.CHECKOUT_COMPLETED: "the checkout was completed",
    Reason.CHECKOUT_STARTED: "the contact started a checkout",
    Reason.ADDED_TO_CART: "the contact added to the cart",
    Reason.CONSENT_WITHDRAWN: "the customer withdrew marketing consent",
    Reason.UNSUBSCRIBED: "the address unsubscribed",
    Reason.ORDER_CANCELLED: "the order was cancelled",
    Reason.ORDER_REFUNDED: "the order was refunded",
    Reason.SUBJECT_GONE: "what the journey was about is no longer known",
    Reason.NOTHING_LEFT: "nothing in it can still be bought",
    Reason.NOTHING_TO_OFFER: "no related product can be bought now",
    Reason.SHOP_UNINSTALLED: "the shop uninstalled Chorus",
    Reason.MERGED: "the customer turned out to be someone already on this flow, whose journey goes on",
    Reason.FLOW_DISABLED: "the shop switched this flow off",
    Reason.STEP_DISABLED: "the shop switched this step off",
    Reason.TOO_OLD: "older than the flow's cutoff",
    Reason.WAIT_EXPIRED: "what the step waited for did not happen in time",
    Reason.NO_POSTAL_ADDRESS: "the shop's postal address is unknown, and marketing email must show it",
    Reason.ADDRESS_REFUSED: "the provider refused this address before; it is not tried again",
    Reason.NOT_CONFIGURED: "the channel is not set up for this shop",
    Reason.NO_CHANNEL: "none of the step's channels is set up; looked at again in a few minutes",
    Reason.SMS_HOURS: "marketing SMS go out between 08:00 and 21:00 in the shop's time zone; held until then",
    Reason.QUIET_HOURS: "outside the shop's sending hours (or the law's, for texts) in the recipient's time; held",
    Reason.CAPPED: "the customer has had as many messages as the shop's frequency cap allows; held until there is room",
    Reason.GROWTH_STAGE: "the shop is below the monthly active customers it set for SMS and WhatsApp",
    Reason.OVER_PRICE: "on this channel the message would cost more than its step pays at most",
    Reason.OVER_BUDGET: "the message would take this month's spend on the channel over the shop's budget for it",
    Reason.GIVES_WAY: "held so that a more important flow's message, due within the hour, goes out first",
    Reason.TOO_LONG: "the text message is longer than the step allows",
    Reason.NO_TEMPLATE: "no approved WhatsApp template is set for this step",
    Reason.RENDER_FAILED: "the message could not be rendered for this channel",
    Reason.OUTSIDE_WINDOW: "WhatsApp allows this message only within 24 hours of the customer's last message",
    Reason.CHANNEL_REFUSED: "the provider would not carry this message on this channel (its template)",
    Reason.WAIT: "waiting until the step is due",
    Reason.WAITED: "the wait is over",
    Reason.BRANCH_YES: "the condition held",
    Reason.BRANCH_NO: "the condition did not hold",
    Reason.COMPLETED: "every step is done",
    Reason.EXIT: "the flow ends here",
    Reason.SEND: "all checks passed",
    Reason.SENT: "the provider accepted the message",
    Reason.SEND_DEFERRED: "the channel was unreachable; the message did not leave and will be tried again",
    Reason.SEND_REFUSED: "the provider refused the message",
    Reason.SEND_GAVE_UP: "the channel stayed unreachable after every attempt; the message never left",
    Reason.SEND_INTERRUPTED: "interrupted while handing the message over: it may or may not have gone out",
}
