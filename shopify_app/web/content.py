"""The shop's own wording of a flow's step on a channel: `GET|PUT|DELETE
/api/flows/<flow>/steps/<step>/content/<channel>`, scoped to the session token's shop.

`PUT {"template": "..."}` keeps the wording once it renders for an example customer (400 with the problems
otherwise, nothing kept); every answer shows the wording in force, the shipped one, and that preview.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, request

from shopify_app.messaging.wording import InvalidWording, NotWorded, describe_wording, reset_wording, set_wording
from shopify_app.models import Shop
from shopify_app.runtime import current_runtime
from shopify_app.web.session import current_shop, session_required

blueprint = Blueprint("content", __name__, url_prefix="/api/flows")
ROUTE = "/<flow>/steps/<step>/content/<channel>"


def init_app(app: Flask) -> None:
    app.register_blueprint(blueprint)


@blueprint.get(ROUTE)
@session_required
def wording(flow: str, step: str, channel: str) -> tuple[dict[str, Any], int]:
    runtime = current_runtime()
    with runtime.read_session() as session:
        shop = session.get(Shop, current_shop().id)
        assert shop is not None
        try:
            return {"content": describe_wording(session, shop, runtime.flows, flow, step, channel).as_json()}, 200
        except NotWorded as exc:
            return {"error": str(exc)}, 404


@blueprint.put(ROUTE)
@session_required
def set_shop_wording(flow: str, step: str, channel: str) -> tuple[dict[str, Any], int]:
    body = request.get_json(silent=True)
    source = body.get("template") if isinstance(body, dict) else None
    if not isinstance(source, str) or not source.strip():
        return {"error": 'expected {"template": the wording, a template}'}, 400
    runtime = current_runtime()
    with runtime.session() as session, session.begin():
        shop = session.get(Shop, current_shop().id, with_for_update=True)
        assert shop is not None
        try:
            kept = set_wording(session, shop, runtime.flows, flow, step, channel, source, runtime.clock.now())
        except NotWorded as exc:
            return {"error": str(exc)}, 404
        except InvalidWording as exc:
            return {"error": "the wording was not saved: " + str(exc), "problems": exc.problems}, 400
    return {"content": kept.as_json()}, 200


@blueprint.delete(ROUTE)
@session_required
def reset_shop_wording(flow: str, step: str, channel: str) -> tuple[dict[str, Any] | str, int]:
    runtime = current_runtime()
    with runtime.session() as session, session.begin():
        shop = session.get(Shop, current_shop().id, with_for_update=True)
        assert shop is not None
        try:
            reset_wording(session, shop, runtime.flows, flow, step, channel)
        except NotWorded as exc:
            return {"error": str(exc)}, 404
    return "", 204
