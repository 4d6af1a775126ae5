"""`/demo`: every event (webhooks and the storefront's), decision and rendered message, for the demo only.

It needs no Shopify login, so it exists only in demo mode (which only `chorus demo` can set; no
environment variable does) and only for requests from this machine.
"""

from __future__ import annotations

from flask import Blueprint, Flask, abort, render_template, request
from sqlmodel import col, select

from flows.reasons import Reason
from shopify_app.models import Decision, Journey, Message, PixelEvent, WebhookEvent
from shopify_app.runtime import current_runtime

LOOPBACK = frozenset({"127.0.0.1", "::1"})
LIMIT = 500

blueprint = Blueprint("demo", __name__, template_folder="templates")


def init_app(app: Flask) -> None:
    app.register_blueprint(blueprint)


def is_local_demo() -> bool:
    return current_runtime().settings.demo_mode and request.remote_addr in LOOPBACK


@blueprint.before_request
def only_local_demo() -> None:
    if not is_local_demo():
        abort(404)


@blueprint.get("/demo")
def overview() -> str:
    with current_runtime().read_session() as session:
        events = session.exec(select(WebhookEvent).order_by(col(WebhookEvent.id)).limit(LIMIT)).all()
        decisions = session.exec(select(Decision, Journey).join(Journey).order_by(col(Decision.id)).limit(LIMIT)).all()
        messages = session.exec(select(Message).order_by(col(Message.id)).limit(LIMIT)).all()
        browsing = session.exec(select(PixelEvent).order_by(col(PixelEvent.id)).limit(LIMIT)).all()
    return render_template("demo.html", events=events, decisions=decisions, messages=messages, browsing=browsing,
                           describe=_describe)  # fmt: skip


@blueprint.get("/demo/messages/<int:message_id>")
def message(message_id: int) -> str:
    with current_runtime().read_session() as session:
        found = session.get(Message, message_id)
    if found is None:
        abort(404)
    return render_template("demo_message.html", message=found)


def _describe(reason: str) -> str:
    try:
        return Reason(reason).description
    except ValueError:
        return reason
