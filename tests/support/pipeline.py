"""Driving the pipeline in-process: deliver a webhook through intake, then let the worker handle it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from shopify_app.events.processor import BatchReport, EventProcessor
from shopify_app.events.registry import HANDLERS, PRELOAD
from shopify_app.journeys.hooks import for_runtime
from shopify_app.runtime import Runtime
from shopify_app.webhooks.intake import Delivery, Outcome
from shopify_app.webhooks.views import build_intake
from tests.support import webhooks

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def deliver(
    runtime: Runtime,
    topic: str,
    payload: dict[str, Any] | bytes,
    *,
    shop: str = webhooks.SHOP,
    **header_options: Any,
) -> Outcome:
    body = payload if isinstance(payload, bytes) else webhooks.encode(payload)
    return build_intake(runtime).receive(
        Delivery.from_headers(webhooks.headers(topic, body, shop=shop, **header_options), body)
    )


def process(runtime: Runtime, now: datetime = NOW, **options: Any) -> BatchReport:
    """Handle the stored events as the worker does (journeys included), without sending anything."""
    options = {"preload": PRELOAD, **options}
    return EventProcessor(runtime.engine, HANDLERS, journeys=for_runtime(runtime), **options).drain(now)
