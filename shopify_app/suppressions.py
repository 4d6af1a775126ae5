"""Addresses that must not be contacted again on a channel (unsubscribed through Chorus, refused)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlmodel import Session

from shopify_app.db.statements import dialect_insert
from shopify_app.models import Suppression

UNSUBSCRIBED = "unsubscribed"  # opted out through Chorus (an unsubscribe link, a STOP reply) or its provider
REFUSED = "refused"  # a provider refused the address for good


def suppress(
    session: Session,
    *,
    shop_id: int,
    channel: str,
    address: str,
    reason: str,
    message_id: int | None,
    now: datetime,
) -> None:
    """Idempotent: the first reason given for an address is kept."""
    session.execute(
        dialect_insert(session.get_bind().dialect.name, Suppression)
        .values(
            shop_id=shop_id,
            channel=channel,
            address=address.strip().lower(),
            reason=reason,
            message_id=message_id,
            created_at=now,
        )
        .on_conflict_do_nothing()
    )


def lift_opt_out(session: Session, *, shop_id: int, channel: str, address: str) -> None:
    """The address asked to hear from the shop again on the channel: its opt-out through Chorus is lifted. An
    address a provider refused stays refused."""
    session.execute(
        delete(Suppression).where(
            Suppression.shop_id == shop_id,  # type: ignore[arg-type]
            Suppression.channel == channel,  # type: ignore[arg-type]
            Suppression.address == address,  # type: ignore[arg-type]
            Suppression.reason == UNSUBSCRIBED,  # type: ignore[arg-type]
        )
    )
