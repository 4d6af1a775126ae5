"""Named conditions over facts, for branches, and goals that end a journey. Definitions refer to them by
name; nothing is evaluated from text."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from flows.channels import email_refusal
from flows.consent import marketing_consent_refusal
from flows.facts import Facts, OrderFacts
from flows.journey import Journey, Performed
from flows.reasons import Reason

Predicate = Callable[[Facts, Journey], bool]
Goal = Callable[[Facts, Journey], Reason | None]


def order_placed(facts: Facts, _journey: Journey) -> Reason | None:
    """An order carries the checkout's token or its cart's."""
    checkout = facts.checkout
    if checkout is None:
        return None
    for order in facts.orders:
        if order.checkout_token == checkout.token or (
            checkout.cart_token is not None and order.cart_token == checkout.cart_token
        ):
            return Reason.ORDER_PLACED
    return None


def ordered_since(facts: Facts, journey: Journey) -> Reason | None:
    """The same customer (id, else email) placed an order, on any sales channel, since the subject began."""
    since = facts.started_at or journey.entered_at
    subject_order = facts.order.order_id if facts.order else None
    for order in _orders_of_customer(facts, facts.orders):
        if order.order_id == subject_order:
            continue
        if since is None or order.created_at is None or order.created_at >= since:
            return Reason.ORDERED_SINCE
    return None


def checkout_completed(facts: Facts, _journey: Journey) -> Reason | None:
    return Reason.CHECKOUT_COMPLETED if facts.checkout and facts.checkout.completed_at else None


def checkout_started(facts: Facts, journey: Journey) -> Reason | None:
    """The contact started a checkout (on the storefront, or as a signed checkout webhook says) since the
    journey's cart: the abandoned checkout flow takes over from there."""
    started = facts.browsing.checkout_started_at if facts.browsing else None
    since = journey.entered_at
    return Reason.CHECKOUT_STARTED if started is not None and since is not None and started >= since else None


def added_to_cart(facts: Facts, journey: Journey) -> Reason | None:
    """The contact's browser added something to the cart since the journey's view: the abandoned cart flow
    takes over from there."""
    added = facts.browsing.added_to_cart_at if facts.browsing else None
    since = journey.entered_at
    return Reason.ADDED_TO_CART if added is not None and since is not None and added >= since else None


def unsubscribed(facts: Facts, _journey: Journey) -> Reason | None:
    """The customer said no: through Chorus's link, or in Shopify's consent record."""
    box, box_at = facts.consent_box
    refusal = marketing_consent_refusal(facts.email_consent, box, box_at)
    if refusal in (Reason.UNSUBSCRIBED, Reason.CONSENT_WITHDRAWN):
        return refusal
    if refusal is Reason.NO_CONSENT and facts.email_consent.state == "unsubscribed":
        return Reason.CONSENT_WITHDRAWN  # an explicit opt-out, not merely never asked
    return None


def order_cancelled(facts: Facts, _journey: Journey) -> Reason | None:
    return Reason.ORDER_CANCELLED if facts.order and facts.order.cancelled_at else None


def order_refunded(facts: Facts, _journey: Journey) -> Reason | None:
    return Reason.ORDER_REFUNDED if facts.order and facts.order.financial_status == "refunded" else None


GOALS: Mapping[str, Goal] = {
    "order_placed": order_placed,
    "ordered_since": ordered_since,
    "checkout_completed": checkout_completed,
    "checkout_started": checkout_started,
    "added_to_cart": added_to_cart,
    "unsubscribed": unsubscribed,
    "order_cancelled": order_cancelled,
    "order_refunded": order_refunded,
}


PREDICATES: Mapping[str, Predicate] = {
    "order_fulfilled": lambda facts, _j: bool(facts.order and facts.order.fulfilled_at),
    "order_paid": lambda facts, _j: bool(
        facts.order and facts.order.financial_status in ("paid", "partially_refunded")
    ),
    "order_has_several_items": lambda facts, _j: bool(facts.order and sum(li.quantity for li in facts.order.lines) > 1),
    "email_allowed": lambda facts, _j: email_refusal(facts) is None,
    "previous_step_sent": lambda _f, journey: Performed.SENT in journey.performed.values(),
    "returning_customer": lambda facts, _j: len(list(_orders_of_customer(facts, facts.orders))) > 1,
    "checkout_has_items": lambda facts, _j: bool(facts.checkout and facts.checkout.lines),
}


def _orders_of_customer(facts: Facts, orders: Iterable[OrderFacts]) -> Iterable[OrderFacts]:
    customer_id, email = facts.customer_id, facts.email
    for order in orders:
        if (customer_id is not None and order.customer_id == customer_id) or (
            email is not None and order.email == email
        ):
            yield order
