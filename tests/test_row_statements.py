"""Rows written together (`insert_rows`, `update_rows`) are stored exactly as one statement per row would store
them, on both databases: text with quotes, backslashes and any character a column can hold, JSON of any
shape (integers beyond 64 bits included), aware datetimes, exact amounts and NULLs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import JSON, BigInteger, Column, Engine, Integer, MetaData, Table, Text, select, update
from sqlmodel import Session

from shopify_app.db.engine import make_engine
from shopify_app.db.statements import insert_rows, update_rows
from shopify_app.db.types import Amount, UTCDateTime

_PROBE = Table(
    "row_statements_probe",
    MetaData(),
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
    Column("label", Text, nullable=True),
    Column("body", JSON, nullable=True),
    Column("at", UTCDateTime, nullable=True),
    Column("amount", Amount, nullable=True),
    Column("count", BigInteger, nullable=True),
)

# What a text column can hold on both databases: PostgreSQL refuses NUL, and no driver writes a lone surrogate.
_TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=40)
_JSON_SCALARS = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | _TEXT
_BODIES = st.recursive(
    _JSON_SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3), max_leaves=8
)
# What JSON columns hold: objects and arrays (a bare number at the top would meet SQLite's numeric affinity,
# which turns an integer past 64 bits into a float; Chorus stores no such document).
_DOCUMENTS = st.lists(_BODIES, max_size=3) | st.dictionaries(_TEXT, _BODIES, max_size=3)
_AT = st.datetimes(datetime(1990, 1, 1), datetime(2090, 1, 1), timezones=st.just(UTC))
_ROW = st.fixed_dictionaries(
    {
        "label": st.none() | _TEXT,
        "body": st.none() | _DOCUMENTS,
        "at": st.none() | _AT,
        "amount": st.none() | st.decimals(-(10**12), 10**12, places=4, allow_nan=False, allow_infinity=False),
        "count": st.none() | st.integers(-(2**63), 2**63 - 1),
    }
)


@pytest.fixture
def probe(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    _PROBE.create(engine)
    yield engine
    _PROBE.drop(engine)
    engine.dispose()


def _stored(session: Session, ids: list[int]) -> list[dict[str, Any]]:
    found = {row.id: dict(row._mapping) for row in session.execute(select(_PROBE).where(_PROBE.c.id.in_(ids)))}
    return [{key: value for key, value in found[i].items() if key != "id"} for i in ids]


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    """As read back: SQL NULL and JSON null are both None; amounts compare by value."""
    return {**row, "amount": None if row["amount"] is None else Decimal(row["amount"])}


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=st.lists(_ROW, min_size=1, max_size=6), second=st.data())
def test_rows_written_together_read_back_as_written(probe: Engine, first: list[dict[str, Any]], second: Any) -> None:
    with Session(probe) as session, session.begin():
        ids = insert_rows(session, _PROBE, first)
    assert len(set(ids)) == len(first)
    with Session(probe) as session:
        assert [_plain(r) for r in _stored(session, ids)] == [_plain(r) for r in first]

    changes = second.draw(st.lists(_ROW, min_size=len(ids), max_size=len(ids)))
    with Session(probe) as session, session.begin():
        update_rows(session, _PROBE, [{"id": i, **change} for i, change in zip(ids, changes, strict=True)])
    # The same changes, one UPDATE per row, on a second copy: what update_rows must agree with.
    with Session(probe) as session, session.begin():
        copies = insert_rows(session, _PROBE, first)
        for i, change in zip(copies, changes, strict=True):
            session.execute(update(_PROBE).where(_PROBE.c.id == i).values(change))
    with Session(probe) as session:
        assert _stored(session, ids) == _stored(session, copies)
        assert [_plain(r) for r in _stored(session, ids)] == [_plain(r) for r in changes]


def test_only_the_named_columns_change(probe: Engine) -> None:
    at = datetime(2026, 11, 20, 12, tzinfo=UTC)
    with Session(probe) as session, session.begin():
        ids = insert_rows(
            session,
            _PROBE,
            [{"label": f"row {n}", "body": {"n": n}, "at": at, "amount": None, "count": n} for n in range(3)],
        )
        update_rows(session, _PROBE, [{"id": ids[1], "label": 'say "hi" \\ there', "at": at + timedelta(days=1)}])
    with Session(probe) as session:
        rows = _stored(session, ids)
    assert rows[1] == {
        "label": 'say "hi" \\ there',
        "body": {"n": 1},
        "at": at + timedelta(days=1),
        "amount": None,
        "count": 1,
    }
    assert [r["label"] for r in rows] == ["row 0", 'say "hi" \\ there', "row 2"]
