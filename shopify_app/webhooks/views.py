"""`POST /webhooks`: every Shopify webhook topic arrives here."""

from __future__ import annotations

from flask import Blueprint, Flask, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from shopify_app.events.registry import HANDLED_TOPICS
from shopify_app.runtime import Runtime, current_runtime
from shopify_app.webhooks.intake import Delivery, Outcome, ShopDirectory, WebhookIntake

blueprint = Blueprint("webhooks", __name__)

EXTENSION = "chorus.webhook_intake"
SHOP_CACHE_SECONDS = 10.0

_STATUS = {
    Outcome.STORED: 200,
    Outcome.DUPLICATE: 200,
    Outcome.UNKNOWN_SHOP: 200,
    Outcome.SHOP_UNINSTALLED: 200,
    Outcome.BAD_SIGNATURE: 401,
    Outcome.MISSING_HEADERS: 400,
}


def read_body(limit: int) -> bytes:
    """The raw body, or 413 when it is longer than `limit`, whether declared or chunked."""
    body = request.get_data(cache=False)  # a declared Content-Length over the limit raises 413 here
    if len(body) > limit:
        raise RequestEntityTooLarge()
    return body


def build_intake(runtime: Runtime, shop_cache_seconds: float = SHOP_CACHE_SECONDS) -> WebhookIntake:
    secrets = runtime.settings.webhook_secrets
    shops = ShopDirectory(runtime.engine, runtime.secret_box, secrets, shop_cache_seconds)
    return WebhookIntake(runtime.engine, shops, secrets, HANDLED_TOPICS, runtime.clock)


def init_app(app: Flask, runtime: Runtime) -> None:
    app.extensions[EXTENSION] = build_intake(runtime)
    app.register_blueprint(blueprint)


@blueprint.post("/webhooks")
def receive() -> tuple[dict[str, str], int]:
    body = read_body(current_runtime().settings.webhook_max_body_bytes)
    intake: WebhookIntake = current_app.extensions[EXTENSION]
    outcome = intake.receive(Delivery.from_headers(dict(request.headers.items()), body))
    return {"result": outcome.value}, _STATUS[outcome]
