"""Unsubscribing through the link in a message: which address, for which shop, and recording it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from flows.consent import UNSUBSCRIBED, Source
from shopify_app.consent import record_consent
from shopify_app.journeys.hooks import JourneyHooks
from shopify_app.models import Message, Shop


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
    """Never contact the address again on this channel (until it opts in again), end the journeys it was on (an
    unsubscribe is a goal of every flow), and tell Shopify, so the store's own records (and every other app
    reading them) agree."""
    record_consent(session, subscription.shop_id, channel=subscription.channel, address=subscription.address,
                   state=UNSUBSCRIBED, source=Source.UNSUBSCRIBE_LINK, at=now,
                   evidence={"message_id": subscription.message_id}, message_id=subscription.message_id)  # fmt: skip
    shop = session.get(Shop, subscription.shop_id)
    if shop is not None and subscription.channel == "email":
        journeys.touch(session, shop, now, email=subscription.address)
