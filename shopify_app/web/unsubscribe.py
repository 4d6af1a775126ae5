"""`/unsubscribe/<token>`: GET shows a confirmation and changes nothing (mail scanners prefetch links);
POST unsubscribes, whether from the page's button or an RFC 8058 one-click client (no cookies needed:
the signed token is the authority)."""

from __future__ import annotations

from flask import Blueprint, Flask, render_template

from shopify_app.journeys.hooks import for_runtime
from shopify_app.messaging.links import UnsubscribeLinks
from shopify_app.messaging.unsubscribe import Subscription, subscription_of, unsubscribe
from shopify_app.runtime import current_runtime

blueprint = Blueprint("unsubscribe", __name__, template_folder="templates")


def init_app(app: Flask) -> None:
    app.register_blueprint(blueprint)


@blueprint.get("/unsubscribe/<token>")
def confirm(token: str) -> tuple[str, int]:
    subscription = _subscription(token)
    if subscription is None:
        return render_template("unsubscribe_invalid.html"), 404
    return render_template("unsubscribe_confirm.html", subscription=subscription), 200


@blueprint.post("/unsubscribe/<token>")
def apply(token: str) -> tuple[str, int]:
    runtime = current_runtime()
    subscription = _subscription(token)
    if subscription is None:
        return render_template("unsubscribe_invalid.html"), 404
    with runtime.session() as session, session.begin():
        unsubscribe(session, subscription, runtime.clock.now(), for_runtime(runtime))
    return render_template("unsubscribe_done.html", subscription=subscription), 200


def _subscription(token: str) -> Subscription | None:
    runtime = current_runtime()
    message_id = UnsubscribeLinks(runtime.settings.secret_key, runtime.settings.app_url).message_id(token)
    if message_id is None:
        return None
    with runtime.read_session() as session:
        return subscription_of(session, message_id)
