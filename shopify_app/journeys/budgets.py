"""What the runner's decisions need of cost: each message's price on the paid channels, and the month's spend of
the shop on each channel it set a budget for, never exceeded however many workers decide at once.

The spend read and the creation of the messages it allows are serialized per shop and budgeted channel: the
batch's transaction takes a PostgreSQL advisory lock for each before it reads anything (all of them at once,
in order, so that two batches never wait on each other in a cycle) and keeps them until it commits, with its
messages and their estimates. SQLite has one writer: a batch's transaction already begins holding it. Within a
batch the messages decided count as they are decided (`BatchSpend`), as they are only stored at its end.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Table, func, text
from sqlalchemy import select as rows_of
from sqlmodel import Session, col, select

from flows.budgets import Spend, month_start, spend_of
from flows.definition import FlowDefinition, SendStep
from flows.facts import Facts
from flows.journey import SendIntent
from flows.policy import PAID_CHANNELS
from shopify_app.messaging.costs import PLACES, shop_rates
from shopify_app.models import SENT_STATUSES, Message, Shop, WhatsAppTemplate
from shopify_app.shop_policy import policy_of

_MESSAGES: Table = Message.__table__  # type: ignore[attr-defined]
# The first key of each channel's advisory locks (the second is the shop's id); the two-key space of advisory
# locks is apart from the one-key space the event claims use.
BUDGET_LOCKS = {"sms": 0x62756401, "whatsapp": 0x62756402}


def hold_budgets(session: Session, shops: Iterable[Shop]) -> None:
    """Hold, until the transaction ends, the budgeted channels of these shops: another transaction that may
    create messages on them waits for this one to commit."""
    if session.get_bind().dialect.name != "postgresql":
        return  # SQLite: one writer, and the transaction began with the write lock
    held = sorted((shop.id, channel) for shop in shops if shop.id is not None for channel in policy_of(shop).budgets)
    for shop_id, channel in held:
        # A shop id beyond 32 bits folds onto another's lock: at worst two shops take turns.
        key = {"channel": BUDGET_LOCKS[channel], "shop": shop_id % 2**31}
        session.execute(text("SELECT pg_advisory_xact_lock(:channel, :shop)"), key)


def month_spend(session: Session, shop_id: int, channels: Iterable[str], now: datetime, timezone: str | None
                ) -> dict[str, Spend]:  # fmt: skip
    """The month's spend on each channel: the shop's messages on it created since the month began in its time
    zone that went out or still may, summed by the currencies of their costs and estimates."""
    wanted = sorted(set(channels))
    if not wanted:
        return {}
    m = _MESSAGES.c
    query = (
        rows_of(m.channel, m.cost_currency, func.sum(m.cost), m.estimate_currency, func.sum(m.estimate), func.count())
        .where(m.shop_id == shop_id, m.created_at >= month_start(now, timezone), m.channel.in_(wanted))
        .where(m.status.in_([str(s) for s in SENT_STATUSES]))
        .group_by(m.channel, m.cost_currency, m.estimate_currency)
    )
    groups: dict[str, list[tuple[str | None, Decimal | None, str | None, Decimal | None, int]]] = {
        c: [] for c in wanted
    }
    for channel, cost_currency, cost, estimate_currency, estimate, count in session.execute(query):
        groups[channel].append((cost_currency, _amount(cost), estimate_currency, _amount(estimate), int(count)))
    return {channel: spend_of(found) for channel, found in groups.items()}


def priced_channels(shop: Shop, definition: FlowDefinition, configured: frozenset[str]) -> tuple[str, ...]:
    """The paid channels set up for the shop that this flow's messages are judged on for cost: those it budgets,
    and all of them where one of the flow's steps caps its price."""
    policy = policy_of(shop)
    capped = any(step.max_price is not None for step in definition.send_steps)
    return tuple(c for c in PAID_CHANNELS if c in configured and (capped or c in policy.budgets))


def with_prices(
    session: Session,
    shop: Shop,
    definition: FlowDefinition,
    found: dict[str, Facts],
    steps: Mapping[str, str | None],
    channels: Iterable[str],
) -> dict[str, Facts]:
    """Each subject's facts with its message's price on these channels, from the shop's rates for its number's
    country: an SMS at the most segments its step allows (rendered later, it can only come out shorter), a
    WhatsApp template at the category of the one set for the step (marketing where none is)."""
    assert shop.id is not None
    tables = {channel: shop_rates(session, shop.id, channel) for channel in channels}
    if not tables:
        return found
    categories = dict(
        session.exec(
            select(WhatsAppTemplate.step, WhatsAppTemplate.category).where(
                WhatsAppTemplate.shop_id == shop.id, col(WhatsAppTemplate.flow) == definition.name
            )
        ).all()
    ) if "whatsapp" in tables else {}  # fmt: skip
    for subject, facts in found.items():
        step = _send_step(definition, steps.get(subject))
        if facts.phone is None or step is None:
            continue
        prices = {
            channel: rates.estimate(facts.phone, categories.get(step.id, "marketing"))
            if channel == "whatsapp" else rates.estimate(facts.phone, count=step.sms_segments)
            for channel, rates in tables.items()
        }  # fmt: skip
        found[subject] = replace(facts, prices=prices)
    return found


class BatchSpend:
    """The month's spend of a batch's shops on their budgeted channels: read once per shop (its budgets held),
    then with each message the batch decides counted at its price, since the batch stores them only at its end."""

    def __init__(self, session: Session, now: datetime) -> None:
        self._session = session
        self._now = now
        self._spent: dict[int, dict[str, Spend]] = {}

    def applied(self, shop: Shop, facts: Facts) -> Facts:
        """The facts with the shop's spend as of now, this batch's messages included."""
        assert shop.id is not None
        if shop.id not in self._spent:
            budgets = facts.shop.policy.budgets
            self._spent[shop.id] = month_spend(self._session, shop.id, budgets, self._now, facts.shop.timezone)
        spent = self._spent[shop.id]
        return replace(facts, shop=replace(facts.shop, spend=dict(spent))) if spent else facts

    def count(self, shop: Shop, intent: SendIntent) -> None:
        """A message the batch decides to send, on a budgeted channel of the shop: it counts from now."""
        spent = self._spent.get(shop.id or 0, {})
        if intent.price is not None and intent.channel in spent:
            spent[intent.channel] = spent[intent.channel].plus(intent.price)


def _send_step(definition: FlowDefinition, step_id: str | None) -> SendStep | None:
    step = next((s for s in definition.send_steps if s.id == step_id), None)
    return step


def _amount(value: object) -> Decimal | None:
    """A sum as the database gives it (SQLite sums its text amounts as floats): to the places amounts keep."""
    return None if value is None else Decimal(str(value)).quantize(PLACES)
