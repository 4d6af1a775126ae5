"""The embedded admin's channel accounts: `GET /api/channels`, `PUT` and `DELETE /api/channels/<channel>`;
the shop's WhatsApp templates (`PUT /api/channels/whatsapp/templates`) and its own rates for a paid channel
(`PUT /api/channels/<channel>/rates`, replacing that channel's).

Scoped to the session token's shop like the rest of the API; secrets go in and never come back out.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Blueprint, Flask, request

from connectors.delivery import DeliveryError
from shopify_app.messaging.accounts import (
    MAX_VALUE_LENGTH,
    PROVIDERS,
    InvalidAccount,
    accounts_of,
    connect,
    describe_channels,
    disconnect,
    parse_account,
    rates_of,
    replace_rates,
    set_whatsapp_template,
    templates_of,
)
from shopify_app.messaging.costs import InvalidRates, monthly_costs, parse_rates
from shopify_app.messaging.directory import CannotTest, directory_for, send_test_message
from shopify_app.models import Shop
from shopify_app.runtime import current_runtime
from shopify_app.web.session import current_shop, session_required

blueprint = Blueprint("channels", __name__, url_prefix="/api/channels")
COSTS_SHOWN = timedelta(days=365)  # the months whose costs the list adds up


def init_app(app: Flask) -> None:
    app.register_blueprint(blueprint)


@blueprint.get("")
@session_required
def channels() -> dict[str, Any]:
    runtime = current_runtime()
    shop_id = current_shop().id
    assert shop_id is not None
    since = runtime.clock.now() - COSTS_SHOWN
    with runtime.read_session() as session:
        costs = monthly_costs(session, shop_id, since.replace(day=1, hour=0, minute=0, second=0, microsecond=0))
    return {"channels": _described(), "costs": costs}


@blueprint.put("/<channel>")
@session_required
def connect_channel(channel: str) -> tuple[dict[str, Any], int]:
    if channel not in PROVIDERS:
        return {"error": f"unknown channel {channel!r}"}, 404
    values = request.get_json(silent=True)
    if not isinstance(values, dict):
        return {"error": "expected a JSON object of the account's fields"}, 400
    try:
        form = parse_account(channel, values)
    except InvalidAccount as exc:
        return {"error": str(exc), "problems": exc.problems}, 400
    runtime = current_runtime()
    with runtime.session() as session, session.begin():
        shop = session.get(Shop, current_shop().id, with_for_update=True)
        assert shop is not None
        connect(session, runtime.secret_box, shop, form, runtime.clock.now())
    return {"channel": _described(channel)}, 200


@blueprint.delete("/<channel>")
@session_required
def disconnect_channel(channel: str) -> tuple[dict[str, Any] | str, int]:
    if channel not in PROVIDERS:
        return {"error": f"unknown channel {channel!r}"}, 404
    shop_id = current_shop().id
    assert shop_id is not None
    with current_runtime().session() as session, session.begin():
        if not disconnect(session, shop_id, channel):
            return {"error": f"{channel} is not connected"}, 404
    return "", 204


@blueprint.put("/whatsapp/templates")
@session_required
def set_template() -> tuple[dict[str, Any], int]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return {"error": "expected a JSON object: flow, step, name, language, params, category"}, 400
    values = {key: body.get(key) for key in ("flow", "step", "name", "language")}
    params = body.get("params", [])
    category = body.get("category", "marketing")
    if not all(isinstance(v, str) for v in (*values.values(), category)) or not isinstance(params, list):
        return {"error": "flow, step, name, language and category are strings; params a list of strings"}, 400
    runtime = current_runtime()
    with runtime.session() as session, session.begin():
        shop = session.get(Shop, current_shop().id, with_for_update=True)
        assert shop is not None
        try:
            row = set_whatsapp_template(
                session, shop, runtime.flows, flow=str(values["flow"]), step=str(values["step"]),
                name=str(values["name"]), language=str(values["language"]), params=params, now=runtime.clock.now(),
                category=str(category),
            )  # fmt: skip
        except InvalidAccount as exc:
            return {"error": str(exc), "problems": exc.problems}, 400
        described = {"flow": row.flow, "step": row.step, "name": row.name, "language": row.language,
                     "params": list(row.params), "category": row.category}  # fmt: skip
    return {"template": described}, 200


@blueprint.put("/<channel>/rates")
@session_required
def set_rates(channel: str) -> tuple[dict[str, Any], int]:
    """The channel's own rates are the ones given (an empty list: the shipped estimates again)."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or set(body) != {"rates"}:
        return {"error": 'expected {"rates": [{"country", "category", "amount", "currency"}, ...]}'}, 400
    try:
        rates = parse_rates(channel, body["rates"])
    except InvalidRates as exc:
        return {"error": str(exc), "problems": exc.problems}, 400
    runtime = current_runtime()
    with runtime.session() as session, session.begin():
        shop = session.get(Shop, current_shop().id, with_for_update=True)  # one change of the shop at a time
        assert shop is not None
        assert shop.id is not None
        replace_rates(session, shop.id, channel, rates, runtime.clock.now())
    return {"channel": _described(channel)}, 200


@blueprint.post("/<channel>/test")
@session_required
def test_channel(channel: str) -> tuple[dict[str, Any], int]:
    if channel not in PROVIDERS:
        return {"error": f"unknown channel {channel!r}"}, 404
    body = request.get_json(silent=True)
    to = body.get("to") if isinstance(body, dict) else None
    if not isinstance(to, str) or not to or len(to) > MAX_VALUE_LENGTH:
        return {"error": 'expected {"to": a phone number or an email address}'}, 400
    runtime = current_runtime()
    directory = directory_for(runtime.settings, runtime.secret_box)
    with runtime.read_session() as session:
        shop = session.get(Shop, current_shop().id)
        assert shop is not None
        try:
            handover = send_test_message(directory, session, shop, channel, to, runtime.clock.now())
        except CannotTest as exc:
            return {"error": str(exc)}, 400
        except DeliveryError as exc:
            return {"error": exc.detail, "failure": str(exc.failure), "code": exc.code}, 422
    return {"sent": True, "provider": handover.provider, "provider_message_id": handover.provider_message_id}, 200


def _described(channel: str | None = None) -> Any:
    runtime = current_runtime()
    shop_id = current_shop().id
    assert shop_id is not None
    with runtime.read_session() as session:
        shop = session.get(Shop, shop_id)
        assert shop is not None
        described = describe_channels(
            accounts_of(session, shop_id), shop, runtime.settings.app_url, smtp_default=bool(runtime.settings.smtp_url),
            templates=templates_of(session, shop_id), rates=rates_of(session, shop_id),
        )  # fmt: skip
    return described if channel is None else next(c for c in described if c["channel"] == channel)
