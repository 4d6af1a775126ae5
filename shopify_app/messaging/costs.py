"""What a message costs when its provider does not say at hand-over: estimated from the rate tables shipped
with Chorus (`messaging/rates/*.toml`)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cache
from importlib.resources import files
from typing import Any

from sqlalchemy import Table, func, select
from sqlmodel import Session

from flows.phones import phone_region
from shopify_app.models import Message

_MESSAGES: Table = Message.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class SmsRates:
    currency: str
    default: Decimal
    per_segment: dict[str, Decimal]

    def estimate(self, number: str, segments: int) -> Decimal:
        """Segments times the rate of the number's country."""
        rate = self.per_segment.get(phone_region(number) or "", self.default)
        return rate * max(segments, 1)


@cache
def sms_rates() -> SmsRates:
    table = tomllib.loads(files("shopify_app.messaging").joinpath("rates/sms.toml").read_text(encoding="utf-8"))
    return SmsRates(
        currency=str(table["currency"]),
        default=Decimal(str(table["default"])),
        per_segment={str(k): Decimal(str(v)) for k, v in table["segment"].items()},
    )


def monthly_costs(session: Session, shop_id: int, since: datetime) -> list[dict[str, Any]]:
    """What the shop's messages sent since `since` cost, per channel, month (UTC) and currency."""
    m = _MESSAGES.c
    if session.get_bind().dialect.name == "postgresql":
        month = func.to_char(func.timezone("UTC", m.sent_at), "YYYY-MM")
    else:
        month = func.strftime("%Y-%m", m.sent_at)
    rows = session.execute(
        select(m.channel, month.label("month"), m.cost_currency, func.count(), func.sum(m.cost))
        .where(m.shop_id == shop_id, m.sent_at >= since, m.cost.is_not(None))
        .group_by(m.channel, month, m.cost_currency)
        .order_by(month, m.channel)
    )
    return [
        {"channel": channel, "month": str(at), "currency": currency, "messages": int(count),
         "cost": str(Decimal(str(total)).quantize(Decimal("0.0001")))}
        for channel, at, currency, count, total in rows
    ]  # fmt: skip
