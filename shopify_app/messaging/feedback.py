"""What providers say about a message after they accepted it: delivered, read, or given up (undelivered).

Every callback is kept as a receipt, then applied to its message, found by provider, provider message id
and shop (a callback naming another shop's message changes nothing). A status only moves forward: sent,
delivered, read; or from sent to undelivered, which is final. So a late, repeated or reordered callback
changes nothing it should not. A callback may also come before the worker has recorded the hand-over
(the provider is faster than the commit): the message takes its receipts when it is recorded.

What a status says of the price changes the message's cost, never its status (`record_pricing`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal

from sqlmodel import Session, col, select

from shopify_app.db.statements import among
from shopify_app.messaging.costs import WHATSAPP_CATEGORIES, shipped_rates, shop_rates
from shopify_app.models import DELIVERY_ORDER, DeliveryReceipt, Message, MessageStatus

FEEDBACK = (MessageStatus.DELIVERED, MessageStatus.READ, MessageStatus.UNDELIVERED)


def moved_status(current: str, reported: MessageStatus) -> MessageStatus | None:
    """The status a message takes on this report, or None when it stays as it is."""
    if current not in DELIVERY_ORDER:
        return None  # not (yet) accepted by the provider as far as Chorus knows, or undelivered: final
    if reported is MessageStatus.UNDELIVERED:
        return reported if current == MessageStatus.SENT else None
    if DELIVERY_ORDER[reported] > DELIVERY_ORDER[MessageStatus(current)]:
        return reported
    return None


def record_receipt(
    session: Session,
    *,
    shop_id: int,
    provider: str,
    provider_message_id: str,
    status: MessageStatus,
    error_code: str | None,
    at: datetime,
) -> Message | None:
    """Keep the receipt and apply it to its message; returns the message when it moved."""
    session.add(
        DeliveryReceipt(shop_id=shop_id, provider=provider, provider_message_id=provider_message_id[:100],
                        status=status, error_code=error_code, received_at=at)
    )  # fmt: skip
    message = session.exec(
        select(Message)
        .where(Message.shop_id == shop_id, Message.provider == provider)
        .where(Message.provider_message_id == provider_message_id)
        .with_for_update()
    ).first()
    if message is None or not _apply(message, status, error_code, at):
        return None
    return message


def apply_receipts(session: Session, messages: Sequence[tuple[int, int, str, str]]) -> None:
    """Receipts that came before these messages (id, shop id, provider, provider message id) were recorded as
    sent: each message takes them, in the order they came."""
    if not messages:
        return
    ids = [provider_id for _id, _shop, _provider, provider_id in messages]
    receipts: dict[tuple[int, str, str], list[DeliveryReceipt]] = {}
    for receipt in session.exec(
        select(DeliveryReceipt)
        .where(among(session, col(DeliveryReceipt.provider_message_id), ids))
        .order_by(col(DeliveryReceipt.id))
    ):
        receipts.setdefault((receipt.shop_id, receipt.provider, receipt.provider_message_id), []).append(receipt)
    if not receipts:
        return
    for message_id, shop_id, provider, provider_id in messages:
        found = receipts.get((shop_id, provider, provider_id))
        if found:
            message = session.get(Message, message_id, with_for_update=True)
            if message is not None:
                _apply_all(message, found)


def _apply_all(message: Message, receipts: Iterable[DeliveryReceipt]) -> None:
    for receipt in receipts:
        _apply(message, MessageStatus(receipt.status), receipt.error_code, receipt.received_at)


def _apply(message: Message, reported: MessageStatus, error_code: str | None, at: datetime) -> bool:
    new = moved_status(message.status, reported)
    if new is None:
        return False
    message.status = new
    if new is MessageStatus.DELIVERED:
        message.delivered_at = at
    elif new is MessageStatus.READ:
        message.read_at = at
        message.delivered_at = message.delivered_at or at  # read implies it arrived
    else:
        message.error = f"the provider gave up on it after accepting it (error {error_code or 'not given'})"
    return True


def record_pricing(
    session: Session, *, shop_id: int, provider_message_id: str, free: bool, category: str | None
) -> Message | None:
    """What Meta's status says a WhatsApp message is billed: nothing (free, such as a utility template inside
    the customer service window), or as a message of another category than the one it was estimated at, which
    it is estimated at again. Returns the message when its cost changed. A status that comes before the
    hand-over is recorded finds no message; Meta repeats the pricing with each later status."""
    message = session.exec(
        select(Message)
        .where(Message.shop_id == shop_id, Message.provider == "whatsapp")
        .where(Message.provider_message_id == provider_message_id)
        .with_for_update()
    ).first()
    if message is None:
        return None
    estimated = str(message.payload.get("category") or "marketing")
    if free:
        cost, currency = Decimal(0), message.cost_currency or shipped_rates("whatsapp").currency
    elif category is not None and category in WHATSAPP_CATEGORIES and category != estimated:
        price = shop_rates(session, shop_id, "whatsapp").estimate(message.address, category)
        cost, currency = price.amount, price.currency
    else:
        return None
    if (cost, currency) == (message.cost, message.cost_currency):
        return None
    message.cost, message.cost_currency = cost, currency
    return message
