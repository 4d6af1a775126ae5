"""Ids for new rows taken from their sequence before a flush, on PostgreSQL.

A batch of webhooks records consent for hundreds of customers. Inserted without their ids, the rows
need `INSERT … RETURNING` in multi-row statements (`insertmanyvalues`) whose text, a placeholder per
value, SQLAlchemy renders and the driver parses again for each statement. With the ids known, the flush
sends one short prepared INSERT for all of them (psycopg's pipelined `executemany`), and nothing comes back.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import event, func, inspect, literal, select
from sqlalchemy.orm import Session, UOWTransaction
from sqlmodel import SQLModel

# Models whose new rows come by the hundred in one flush.
_MODELS: set[type[SQLModel]] = set()


def preassign_ids(model: type[SQLModel]) -> type[SQLModel]:
    """Class decorator: new rows of this model get their ids before the flush (PostgreSQL only)."""
    _MODELS.add(model)
    return model


@event.listens_for(Session, "before_flush")
def _take_ids(session: Session, _flush: UOWTransaction, _instances: object) -> None:
    pending: dict[type[Any], list[Any]] = defaultdict(list)
    for instance in session.new:
        if type(instance) in _MODELS and instance.id is None:
            pending[type(instance)].append(instance)
    if not pending or session.get_bind().dialect.name != "postgresql":
        return
    with session.no_autoflush:
        for model, rows in pending.items():
            sequence = func.pg_get_serial_sequence(literal(model.__table__.name), literal("id"))
            taken = select(func.nextval(sequence)).select_from(func.generate_series(1, len(rows)))
            rows.sort(key=lambda row: inspect(row).insert_order)  # ids in the order the rows were added
            for row, new_id in zip(rows, session.execute(taken).scalars(), strict=True):
                row.id = new_id
