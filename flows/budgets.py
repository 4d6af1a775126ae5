"""What a message on a paid channel (SMS, WhatsApp) may cost: at most its step's cap on its price, and no more
than is left of the shop's monthly budget for the channel.

A message is priced when it is decided, by the caller, from the shop's rates for the number's country (an SMS
at the most segments its step allows, since it is rendered only later and can only come out shorter; a
WhatsApp template at its category) and the price is stored with the message as its estimate when it is
created. A channel's spend for the month is every message of the shop on it created since the month began in
the shop's time zone that went out or still may (a deferred one is decided again before it is retried), each
at its cost where one is recorded in the price's currency, else at its estimate in it.

Currencies are never converted: a budget is in the currency of the channel's rates. A message with no amount
in that currency (its rates were in another one then) counts as much as the message being decided: not
knowing what it cost is no reason to count it as free.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flows.policy import PAID_CHANNELS, ShopPolicy
from flows.reasons import Reason

ZERO = Decimal(0)


@dataclass(frozen=True)
class Price:
    amount: Decimal
    currency: str

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"


@dataclass(frozen=True)
class Spend:
    """A paid channel's messages of the month: what they came to, by currency (each message once per currency:
    its cost where recorded in it, else its estimate in it)."""

    amounts: Mapping[str, Decimal] = field(default_factory=dict)
    counted: Mapping[str, int] = field(default_factory=dict)  # by currency: how many messages `amounts` holds
    messages: int = 0  # all of them, whatever their currency

    def in_currency(self, price: Price) -> Decimal:
        """The month's spend in the price's currency; a message with no amount in it counts at this price."""
        unknown = self.messages - self.counted.get(price.currency, 0)
        return self.amounts.get(price.currency, ZERO) + unknown * price.amount

    def plus(self, price: Price) -> Spend:
        """With one more message, at this price (one decided in the same batch, not yet stored)."""
        amounts = {**self.amounts, price.currency: self.amounts.get(price.currency, ZERO) + price.amount}
        counted = {**self.counted, price.currency: self.counted.get(price.currency, 0) + 1}
        return Spend(amounts, counted, self.messages + 1)


NOTHING_SPENT = Spend()

# One group of a month's messages, as the database sums them: the currency of their recorded cost (None: no
# cost recorded) and of their estimate (None: none stored), what each sums to, and how many messages there are.
SpendGroup = tuple[str | None, Decimal | None, str | None, Decimal | None, int]


def spend_of(groups: Iterable[SpendGroup]) -> Spend:
    """The spend of messages grouped by (cost currency, estimate currency); a message whose cost and estimate are
    in one currency counts once, at its cost."""
    amounts: dict[str, Decimal] = {}
    counted: dict[str, int] = {}
    messages = 0

    def add(currency: str, amount: Decimal | None, count: int) -> None:
        amounts[currency] = amounts.get(currency, ZERO) + (amount or ZERO)
        counted[currency] = counted.get(currency, 0) + count

    for cost_currency, cost, estimate_currency, estimate, count in groups:
        messages += count
        if cost_currency is not None:
            add(cost_currency, cost, count)
        if estimate_currency is not None and estimate_currency != cost_currency:
            add(estimate_currency, estimate, count)
    return Spend(amounts, counted, messages)


def month_start(now: datetime, timezone: str | None) -> datetime:
    """When the calendar month of `now` began in the shop's time zone (UTC when it has none, or an unknown one),
    as an aware instant."""
    try:
        zone = ZoneInfo(timezone) if timezone else UTC
    except (ZoneInfoNotFoundError, ValueError):
        zone = UTC
    local = now.astimezone(zone)
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


def cost_refusal(
    channel: str, policy: ShopPolicy, price: Price | None, spend: Spend, max_price: Decimal | None = None
) -> Reason | None:
    """Why this message may not go out on `channel` for what it costs, or None. A message without a price is not
    judged here: only the runner, which sends, prices messages (a webhook's move leaves the send to it)."""
    if channel not in PAID_CHANNELS or price is None:
        return None
    if max_price is not None and price.amount > max_price:
        return Reason.OVER_PRICE
    budget = policy.budgets.get(channel)
    if budget is not None and spend.in_currency(price) + price.amount > budget:
        return Reason.OVER_BUDGET
    return None
