"""Row access for the mirror: lock (or create) a row, and decide whether incoming data is newer.

A batch of webhooks locks the rows it will write all at once beforehand (`mirror.preload`), into the
session's `RowCache`; `locked_row` then finds them there instead of asking the database for each.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator
from datetime import datetime
from typing import Any, TypeVar, cast

from sqlalchemy import Table, or_
from sqlmodel import Session, SQLModel, select

from shopify_app.db.statements import among, dialect_insert

M = TypeVar("M", bound=SQLModel)

_CACHE = "mirror_rows"


class RowCache:
    """The mirror rows a transaction has locked, by model and key, and what else a batch read up front."""

    def __init__(self) -> None:
        self._rows: dict[tuple[type[SQLModel], tuple[Any, ...]], SQLModel] = {}
        self._by_model: dict[type[SQLModel], list[SQLModel]] = defaultdict(list)
        # Groups whose every row is here (e.g. all the variants of a product): no query needed to list them.
        self.complete: set[tuple[str, Any]] = set()
        # Each preloaded customer's email subscriptions on record: (webhook event id, when it was given).
        self.subscriptions: dict[int, list[tuple[int | None, datetime]]] = {}

    @staticmethod
    def of(session: Session) -> RowCache | None:
        return cast(RowCache | None, session.info.get(_CACHE))

    @staticmethod
    def start(session: Session) -> RowCache:
        cache = RowCache()
        session.info[_CACHE] = cache
        return cache

    def get(self, model: type[M], key: dict[str, Any]) -> M | None:
        return cast(M | None, self._rows.get((model, _key(key))))

    def put(self, model: type[M], key: dict[str, Any], row: M) -> None:
        if (model, _key(key)) not in self._rows:
            self._by_model[model].append(row)
        self._rows[(model, _key(key))] = row

    def note_subscription(self, customer_id: int, event_id: int | None, at: datetime) -> None:
        if customer_id in self.subscriptions:  # else not preloaded: read from the database when asked
            self.subscriptions[customer_id].append((event_id, at))

    def rows(self, model: type[M]) -> Iterator[M]:
        return (cast(M, row) for row in self._by_model.get(model, ()))


def locked_row(session: Session, model: type[M], key: dict[str, Any], defaults: dict[str, Any] | None = None) -> M:
    """The row with `key`, created if missing, locked until the transaction ends.

    Insert-if-absent first, then select for update: two workers racing on a new row both end up
    holding the same row in turn instead of one failing on the unique key.
    """
    cache = RowCache.of(session)
    if cache is not None and (held := cache.get(model, key)) is not None:
        return held
    query = select(model).filter_by(**key).with_for_update()
    row = session.exec(query).first()
    if row is None:
        dialect = session.get_bind().dialect.name
        session.execute(dialect_insert(dialect, model).values(**key, **(defaults or {})).on_conflict_do_nothing())
        row = session.exec(query).one()
    if cache is not None:
        cache.put(model, key, row)
    return row


def known_row(session: Session, model: type[M], key: dict[str, Any]) -> M | None:
    """The row with `key` if it exists (from the cache when the batch holds it), without locking it."""
    cache = RowCache.of(session)
    if cache is not None and (held := cache.get(model, key)) is not None:
        return held
    return session.exec(select(model).filter_by(**key)).first()


def lock_rows(
    session: Session,
    model: type[M],
    shop_id: int,
    column: str,
    values: Collection[Any],
    defaults: dict[str, Any] | None = None,
    *,
    also: tuple[str, Collection[Any]] | None = None,
) -> list[M]:
    """Every row of the shop with one of these `column` values, created if missing, locked in id order (the
    order every writer locks in); with `also`, the existing rows matching it as well. Each goes into the
    session's cache under its key."""
    if not values and not (also is not None and also[1]):
        return []
    cache = RowCache.of(session) or RowCache.start(session)
    found = {getattr(row, column): row for row in _locked(session, model, shop_id, column, values, also)}
    missing = sorted(set(values) - set(found))
    if missing:
        dialect = session.get_bind().dialect.name
        fresh = [{"shop_id": shop_id, column: value, **(defaults or {})} for value in missing]
        session.execute(dialect_insert(dialect, model).values(fresh).on_conflict_do_nothing())
        found |= {getattr(row, column): row for row in _locked(session, model, shop_id, column, missing, None)}
    for value, row in found.items():
        cache.put(model, {"shop_id": shop_id, column: value}, row)
    return list(found.values())


def _locked(
    session: Session,
    model: type[M],
    shop_id: int,
    column: str,
    values: Iterable[Any],
    also: tuple[str, Collection[Any]] | None,
) -> list[M]:
    table: Table = model.__table__  # type: ignore[attr-defined]
    wanted = [among(session, table.c[column], values)]
    if also is not None and also[1]:
        wanted.append(among(session, table.c[also[0]], also[1]))
    query = select(model).where(table.c.shop_id == shop_id, or_(*wanted)).order_by(table.c.id).with_for_update()
    return list(session.exec(query))


def is_newer(incoming: datetime | None, stored: datetime | None) -> bool:
    """Whether data versioned `incoming` may replace data versioned `stored`.

    Equal versions may: a repeat carries the same data. Unversioned data never replaces versioned data.
    """
    if stored is None:
        return True
    if incoming is None:
        return False
    return incoming >= stored


def _key(key: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(sorted(key.items()))
