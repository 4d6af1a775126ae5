"""The long-lived objects a process needs, built once from `Settings` by web, worker and CLI alike."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from sqlalchemy import Engine
from sqlmodel import Session

from shopify_app.clock import Clock, SystemClock
from shopify_app.crypto import SecretBox
from shopify_app.db.engine import make_engine, read_only
from shopify_app.journeys.catalog import FlowCatalog
from shopify_app.settings import Settings


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    secret_box: SecretBox
    clock: Clock = field(default_factory=SystemClock)

    @classmethod
    def build(cls, settings: Settings, clock: Clock | None = None) -> Runtime:
        """Raises DefinitionError when a flow definition is unusable: a process must not start with it."""
        runtime = cls(
            settings=settings,
            engine=make_engine(settings.database_url),
            secret_box=SecretBox(settings.encryption_keys),
            clock=clock or SystemClock(),
        )
        _ = runtime.flows
        return runtime

    @cached_property
    def flows(self) -> FlowCatalog:
        return FlowCatalog.load(self.settings.flows_dir)

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def read_session(self) -> Session:
        """For work that only reads (listing, reports); it never waits for a writer on SQLite."""
        return Session(read_only(self.engine), expire_on_commit=False)

    def close(self) -> None:
        self.engine.dispose()


FLASK_EXTENSION = "chorus"


def current_runtime() -> Runtime:
    """The runtime of the Flask app handling the current request."""
    from flask import current_app

    runtime: Runtime = current_app.extensions[FLASK_EXTENSION]
    return runtime
