"""What a message costs when its provider does not say at hand-over: estimated from the rate tables shipped
with Chorus (`messaging/rates/*.toml`), under the shop's own rates (its provider contract) where it set any.

One model for every paid channel: a rate per (country, category), `category` empty for SMS and the template's
(marketing, utility, authentication) for WhatsApp. The rate of a message is the shop's for its country and
category, else the shop's for every country ("*") in that category, else the shipped one for the country,
else the shipped default; in the currency that rate is in (a shop's may be EUR: the message records EUR).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from functools import cache
from importlib.resources import files
from typing import Any

from sqlalchemy import Table, func, select
from sqlmodel import Session, col

from flows.budgets import Price as Price  # the flows' own: what they judge a message's cost on
from flows.phones import phone_region
from shopify_app.models import ChannelRate, Message

_MESSAGES: Table = Message.__table__  # type: ignore[attr-defined]

RATED_CHANNELS = ("sms", "whatsapp")
WHATSAPP_CATEGORIES = ("marketing", "utility", "authentication")
ANY_COUNTRY = "*"
PLACES = Decimal("0.0001")  # what a stored amount keeps (NUMERIC(20, 4))
# Any currency may be given (a rupiah or a dong rate is in the thousands): the limit only catches a slip.
MAX_RATE = Decimal("10000")
MAX_RATES = 1000  # per channel: every country in every category, with room to spare


@dataclass(frozen=True)
class RateTable:
    """One channel's rates by (country, category): shipped, and the shop's own on top."""

    currency: str  # the shipped rates'
    default: Mapping[str, Decimal]  # by category, for a country the table does not list
    shipped: Mapping[tuple[str, str], Decimal]
    own: Mapping[tuple[str, str], Price] = field(default_factory=dict)  # (country or "*", category)

    def rate(self, country: str | None, category: str = "") -> Price:
        for key in ((country or "", category), (ANY_COUNTRY, category)):
            if key in self.own:
                return self.own[key]
        return Price(self.shipped.get((country or "", category), self.default[category]), self.currency)

    def estimate(self, number: str, category: str = "", count: int = 1) -> Price:
        """`count` messages (SMS: segments) to this number, at the rate of its country."""
        rate = self.rate(phone_region(number), category)
        return Price(rate.amount * max(count, 1), rate.currency)

    def with_own(self, own: Mapping[tuple[str, str], Price]) -> RateTable:
        return RateTable(self.currency, self.default, self.shipped, dict(own))


@cache
def shipped_rates(channel: str) -> RateTable:
    """The table shipped for the channel: SMS per segment by country; WhatsApp per message by country and
    category."""
    text = files("shopify_app.messaging").joinpath(f"rates/{channel}.toml").read_text(encoding="utf-8")
    table = tomllib.loads(text)
    if channel == "sms":
        default = {"": Decimal(str(table["default"]))}
        shipped = {(str(country), ""): Decimal(str(rate)) for country, rate in table["segment"].items()}
    else:
        default = {str(category): Decimal(str(rate)) for category, rate in table["default"].items()}
        shipped = {
            (str(country), str(category)): Decimal(str(rate))
            for country, rates in table["country"].items()
            for category, rate in rates.items()
        }
    return RateTable(str(table["currency"]), default, shipped)


def shop_rates(session: Session, shop_id: int, channel: str) -> RateTable:
    """The channel's rates as the shop pays them."""
    rows = session.execute(
        select(ChannelRate).where(col(ChannelRate.shop_id) == shop_id, col(ChannelRate.channel) == channel)
    ).scalars()
    return shipped_rates(channel).with_own({(r.country, r.category): Price(r.amount, r.currency) for r in rows})


@dataclass(frozen=True)
class OwnRate:
    """A shop's rate as it gave it, checked."""

    country: str
    category: str
    amount: Decimal
    currency: str


class InvalidRates(ValueError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


_COUNTRY = re.compile(r"[A-Z]{2}")
_CURRENCY = re.compile(r"[A-Z]{3}")
_RATE_FIELDS = frozenset({"country", "category", "amount", "currency"})


def parse_rates(channel: str, values: Any) -> list[OwnRate]:
    """The rates these values describe (a list of objects); `InvalidRates` lists every problem at once."""
    if channel not in RATED_CHANNELS:
        raise InvalidRates([f"channel: rates are set for {' or '.join(RATED_CHANNELS)}, not {channel!r}"])
    if not isinstance(values, list) or len(values) > MAX_RATES:
        raise InvalidRates([f"rates: expected a list of at most {MAX_RATES} objects"])
    problems: list[str] = []
    parsed: list[OwnRate] = []
    seen: set[tuple[str, str]] = set()
    for number, item in enumerate(values, start=1):
        where = f"rates[{number}]."
        try:
            rate = parse_rate(channel, item, where)
        except InvalidRates as exc:
            problems.extend(exc.problems)
            continue
        if (rate.country, rate.category) in seen:
            named = " ".join(part for part in (rate.country, rate.category) if part)
            problems.append(f"{where}country: {named} is given twice")
        seen.add((rate.country, rate.category))
        parsed.append(rate)
    if problems:
        raise InvalidRates(problems)
    return parsed


def parse_rate(channel: str, values: Any, where: str = "") -> OwnRate:
    """One rate: `country` (ISO alpha-2 in capitals, or "*" for every other), `category` (none for SMS;
    marketing, utility or authentication for WhatsApp, marketing unless given), `amount` (at most 4 decimal
    places) and `currency` (ISO 4217)."""
    if channel not in RATED_CHANNELS:
        raise InvalidRates([f"channel: rates are set for {' or '.join(RATED_CHANNELS)}, not {channel!r}"])
    if not isinstance(values, Mapping):
        raise InvalidRates(
            [f"{where.rstrip('.') or 'rate'}: expected an object with country, category, amount, currency"]
        )
    problems = [f"{where}{name}: unknown field" for name in sorted(set(values) - _RATE_FIELDS)]
    country = values.get("country")
    if not isinstance(country, str) or not (country == ANY_COUNTRY or _COUNTRY.fullmatch(country)):
        problems.append(f'{where}country: expected two capital letters (ISO 3166, such as US) or "*" for every other')
    category = values.get("category")
    if category is None:
        category = "marketing" if channel == "whatsapp" else ""
    if channel == "sms" and category != "":
        problems.append(f"{where}category: SMS has no categories (its rate is per segment): leave it out")
    elif channel == "whatsapp" and category not in WHATSAPP_CATEGORIES:
        problems.append(f"{where}category: expected one of {', '.join(WHATSAPP_CATEGORIES)}")
    amount = _amount(values.get("amount"))
    if amount is None:
        problems.append(f"{where}amount: expected a number from 0 to {MAX_RATE} with at most 4 decimal places")
    currency = values.get("currency")
    if not isinstance(currency, str) or not _CURRENCY.fullmatch(currency):
        problems.append(f"{where}currency: expected a three-letter currency code in capitals, such as USD")
    if problems or amount is None:
        raise InvalidRates(problems)
    return OwnRate(str(country), str(category), amount, str(currency))


def _amount(raw: Any) -> Decimal | None:
    """A non-negative amount of at most 4 decimal places, from a JSON number or a string; None otherwise."""
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        return None
    try:
        amount = Decimal(str(raw).strip())
    except InvalidOperation:
        return None
    if not amount.is_finite() or not 0 <= amount <= MAX_RATE or amount != amount.quantize(PLACES):
        return None
    return abs(amount).quantize(PLACES)  # abs: "-0" is zero


def describe_rates(rates: Sequence[ChannelRate]) -> list[dict[str, str]]:
    """The shop's own rates, JSON-safe."""
    return [
        {"country": r.country, "category": r.category, "amount": f"{r.amount.quantize(PLACES)}", "currency": r.currency}
        for r in rates
    ]


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
