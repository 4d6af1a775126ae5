"""Short-lived database access for assertions, so a test never holds a transaction open.

(SQLite has one writer: a test that kept a transaction open would block the worker it is testing.)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlmodel import Session, SQLModel, select
from sqlmodel.sql.expression import SelectOfScalar

from shopify_app.runtime import Runtime

M = TypeVar("M", bound=SQLModel)


class Db:
    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    def rows(self, statement: SelectOfScalar[Any]) -> list[Any]:
        with self._runtime.read_session() as session:
            return list(session.exec(statement))

    def all(self, model: type[M], *where: Any) -> list[M]:
        statement = select(model).where(*where).order_by(model.id)  # type: ignore[attr-defined]
        return self.rows(statement)

    def one(self, model: type[M], *where: Any) -> M:
        [row] = self.all(model, *where)
        return row

    @contextmanager
    def write(self) -> Iterator[Session]:
        with self._runtime.session() as session, session.begin():
            yield session
