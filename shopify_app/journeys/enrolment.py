"""Enrolling checkouts in the abandoned checkout flow as they change."""

from __future__ import annotations

from sqlmodel import select

from flows import abandoned_checkout
from shopify_app.events.context import WebhookContext
from shopify_app.journeys import facts
from shopify_app.journeys.decisions import transition
from shopify_app.mirror.store import locked_row
from shopify_app.models import FINISHED_STATES, Checkout, Journey, JourneyState


def on_checkout(ctx: WebhookContext) -> None:
    """After the mirror took the checkout: (re)compute whether and when a reminder is due."""
    token = str(ctx.payload.get("token"))
    checkout = ctx.session.exec(
        select(Checkout).where(Checkout.shop_id == ctx.shop.id, Checkout.token == token)
    ).one()  # the mirror handler ran first, in this transaction
    customer = facts.customer_of(ctx.session, checkout)
    enrolment = abandoned_checkout.enrol(
        facts.checkout_facts(checkout, customer),
        facts.email_consent(ctx.session, checkout.shop_id, checkout.email, customer),
        facts.policy(ctx.session, checkout.shop_id),
    )
    journey = locked_row(
        ctx.session,
        Journey,
        {"shop_id": ctx.shop.id, "flow": abandoned_checkout.NAME, "subject": token},
        {
            "state": JourneyState.INELIGIBLE,
            "reason": "new",
            "created_at": ctx.now,
            "updated_at": ctx.now,
        },
    )
    if journey.state in FINISHED_STATES or journey.state == JourneyState.SENDING:
        return  # one reminder per checkout; a finished journey stays finished
    state = JourneyState.WAITING if enrolment.enrolled else JourneyState.INELIGIBLE
    if (journey.state, journey.reason, journey.due_at) == (state, enrolment.reason, enrolment.due_at):
        return
    transition(
        ctx.session,
        journey,
        state,
        enrolment.reason,
        step="enrol",
        now=ctx.now,
        due_at=enrolment.due_at,
        detail={"due_at": enrolment.due_at.isoformat()} if enrolment.due_at else {},
    )
