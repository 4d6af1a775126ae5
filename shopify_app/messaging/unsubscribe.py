"""Unsubscribing through the link in a message: which address, for which shop, and recording it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, select

from shopify_app.jobs.queue import enqueue
from shopify_app.journeys.hooks import JourneyHooks
from shopify_app.models import Customer, Message, Shop
from shopify_app.suppressions import UNSUBSCRIBED, suppress

EMAIL_UNSUBSCRIBE_JOB = "email_unsubscribe"


@dataclass(frozen=True)
class Subscription:
    message_id: int
    shop_id: int
    shop_name: str
    channel: str
    address: str

    @property
    def masked_address(self) -> str:
        """Enough for the owner to recognise it, too little for anyone else to learn it."""
        local, _, domain = self.address.partition("@")
        return f"{local[:1]}{'*' * max(len(local) - 1, 2)}@{domain}" if domain else f"{'*' * 6}{self.address[-2:]}"


def subscription_of(session: Session, message_id: int) -> Subscription | None:
    message = session.get(Message, message_id)
    if message is None:
        return None
    shop = session.get(Shop, message.shop_id)
    return Subscription(
        message_id=message_id,
        shop_id=message.shop_id,
        shop_name=(shop.name if shop else None) or "this shop",
        channel=message.channel,
        address=message.address,
    )


def unsubscribe(session: Session, subscription: Subscription, now: datetime, journeys: JourneyHooks) -> None:
    """Never contact the address again on this channel, end the journeys it was on (an unsubscribe is a
    goal of every flow), and tell Shopify, so the store's own records (and every other app reading them)
    agree."""
    suppress(
        session,
        shop_id=subscription.shop_id,
        channel=subscription.channel,
        address=subscription.address,
        reason=UNSUBSCRIBED,
        message_id=subscription.message_id,
        now=now,
    )
    shop = session.get(Shop, subscription.shop_id)
    if shop is not None and subscription.channel == "email":
        journeys.touch(session, shop, now, email=subscription.address)
    customer_id = session.exec(
        select(Customer.customer_id).where(
            Customer.shop_id == subscription.shop_id, Customer.email == subscription.address
        )
    ).first()
    if subscription.channel == "email" and customer_id is not None:
        enqueue(
            session,
            subscription.shop_id,
            EMAIL_UNSUBSCRIBE_JOB,
            now,
            {"customer_id": customer_id, "at": now.isoformat()},
        )
