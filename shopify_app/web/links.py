"""`GET /l/<id>`: a message's short link. Recorded as a click, then a 302 to the target stored with it, never
anywhere a request names; an unknown id is 404. A HEAD (a link scanner's check) is answered, not counted."""

from __future__ import annotations

import re

from flask import Blueprint, Flask, abort, redirect, request
from werkzeug.wrappers import Response

from shopify_app.messaging.links import SHORT_ID_LENGTH
from shopify_app.models import Click, Link, Message
from shopify_app.runtime import current_runtime

blueprint = Blueprint("links", __name__)

_ID = re.compile(rf"[A-Za-z0-9_-]{{1,{SHORT_ID_LENGTH}}}")
MAX_USER_AGENT = 512


def init_app(app: Flask) -> None:
    app.register_blueprint(blueprint)


@blueprint.get("/l/<link_id>")
def follow(link_id: str) -> Response:
    if not _ID.fullmatch(link_id):
        abort(404)
    runtime = current_runtime()
    with runtime.session() as session, session.begin():
        link = session.get(Link, link_id)
        if link is None:
            abort(404)
        target = link.target
        if request.method == "GET":
            message = session.get(Message, link.message_id)
            agent = request.headers.get("User-Agent")
            session.add(
                Click(shop_id=link.shop_id, link_id=link.id, message_id=link.message_id,
                      channel=message.channel if message else "unknown", clicked_at=runtime.clock.now(),
                      user_agent=agent[:MAX_USER_AGENT] if agent else None)
            )  # fmt: skip
    response = redirect(target, code=302)
    response.headers["Cache-Control"] = "no-store"  # each visit is counted, and a link may be erased
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
