"""A worker process whose handling of one checkout kills it outright (as a segfault or the out-of-memory killer
would: no exception, no cleanup), for the tests of claims. Usage: python -m tests.support.fatal_worker URL TOKEN"""

from __future__ import annotations

import os
import signal
import sys
from datetime import timedelta

from shopify_app.events.context import WebhookContext
from shopify_app.events.processor import EventProcessor
from shopify_app.events.registry import HANDLERS
from shopify_app.runtime import Runtime
from shopify_app.settings import Settings
from tests.support.env import chorus_env
from tests.support.pipeline import NOW


def main(database_url: str, fatal_token: str) -> None:
    runtime = Runtime.build(Settings.from_env(chorus_env(database_url)))
    checkout = HANDLERS["checkouts/create"]

    def handle(ctx: WebhookContext) -> None:
        if ctx.payload.get("token") == fatal_token:
            os.kill(os.getpid(), signal.SIGKILL)
        checkout(ctx)

    # A lease of nothing: the next run finds every claim of a killed run abandoned at once.
    processor = EventProcessor(
        runtime.engine, {**HANDLERS, "checkouts/create": handle}, lease=timedelta(0), worker_id=f"fatal:{os.getpid()}"
    )
    report = processor.drain(NOW)
    print(f"claimed={report.claimed} done={report.done} parked={report.parked}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
