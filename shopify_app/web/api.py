"""The embedded admin's JSON API. Every query is scoped to the session token's shop."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from flask import Blueprint, Flask, Response, request
from sqlmodel import col, select

from flows import abandoned_checkout
from shopify_app.flow_settings import KNOWN_FLOWS, UnknownFlow, configure_flow
from shopify_app.journeys.facts import policy
from shopify_app.models import Message, PrivacyRequest, Shop, WebhookEvent
from shopify_app.runtime import current_runtime
from shopify_app.sync import progress_of
from shopify_app.web.session import current_shop, session_required

blueprint = Blueprint("api", __name__, url_prefix="/api")

MAX_PAGE = 200
FLOW_DESCRIPTIONS = {
    abandoned_checkout.NAME: "One reminder after a checkout is left, if it is still true when it is due.",
}


def init_app(app: Flask) -> None:
    app.register_blueprint(blueprint)


@blueprint.get("/shop")
@session_required
def shop() -> dict[str, Any]:
    current = current_shop()
    settings = current_runtime().settings
    return {
        "domain": current.domain,
        "name": current.name,
        "installed": current.installed,
        "currency": current.currency,
        "postal_address": current.postal_address,
        "scopes": (current.scopes or "").split(",") if current.scopes else [],
        "problem": current.token_problem,
        "flows": _flows(current),
        "privacy_requests": _privacy_requests(current),
        "sync": _sync_progress(current),
        "settings": {"webhooks_managed_by": settings.webhooks_managed_by, "email_enabled": bool(settings.smtp_url)},
    }


@blueprint.get("/flows")
@session_required
def flows() -> dict[str, Any]:
    return {"flows": _flows(current_shop())}


@blueprint.patch("/flows/<flow>")
@session_required
def update_flow(flow: str) -> tuple[dict[str, Any], int]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not set(body) <= {"enabled", "delay_minutes"} or not body:
        return {"error": "send a JSON object with enabled (true/false) and/or delay_minutes (1-10080)"}, 400
    enabled = body.get("enabled")
    delay = body.get("delay_minutes")
    if enabled is not None and not isinstance(enabled, bool):
        return {"error": "enabled must be true or false"}, 400
    if delay is not None and (not isinstance(delay, int) or isinstance(delay, bool) or not 1 <= delay <= 10080):
        return {"error": "delay_minutes must be a whole number of minutes from 1 to 10080 (a week)"}, 400
    runtime = current_runtime()
    shop = current_shop()
    with runtime.session() as session, session.begin():
        try:
            configure_flow(
                session,
                shop.domain,
                flow,
                enabled=enabled,
                delay=timedelta(minutes=delay) if delay is not None else None,
                now=runtime.clock.now(),
            )
        except UnknownFlow:
            return {"error": f"unknown flow {flow!r}"}, 404
    return {"flow": next(f for f in _flows(shop) if f["name"] == flow)}, 200


@blueprint.get("/messages")
@session_required
def messages() -> dict[str, Any]:
    shop_id = current_shop().id
    with current_runtime().read_session() as session:
        rows = session.exec(
            select(Message).where(Message.shop_id == shop_id).order_by(col(Message.id).desc()).limit(_limit())
        ).all()
    return {
        "messages": [
            {
                "id": m.id,
                "flow": m.flow,
                "channel": m.channel,
                "recipient": m.recipient,
                "subject": m.subject,
                "status": m.status,
                "created_at": m.created_at.isoformat(),
                "sent_at": m.sent_at.isoformat() if m.sent_at else None,
            }
            for m in rows
        ]
    }


@blueprint.get("/events")
@session_required
def events() -> dict[str, Any]:
    shop_id = current_shop().id
    query = select(WebhookEvent).where(WebhookEvent.shop_id == shop_id)
    if status := request.args.get("status"):
        query = query.where(WebhookEvent.status == status)
    with current_runtime().read_session() as session:
        rows = session.exec(query.order_by(col(WebhookEvent.id).desc()).limit(_limit())).all()
    return {
        "events": [
            {
                "id": e.id,
                "topic": e.topic,
                "status": e.status,
                "received_at": e.received_at.isoformat(),
                "attempts": e.attempts,
                "error": e.last_error,
            }
            for e in rows
        ]
    }


@blueprint.get("/privacy/<int:request_id>/export")
@session_required
def privacy_export(request_id: int) -> Response | tuple[dict[str, str], int]:
    """A customer data export, for the merchant to hand over to the customer."""
    with current_runtime().read_session() as session:
        found = session.exec(
            select(PrivacyRequest).where(
                PrivacyRequest.id == request_id,
                PrivacyRequest.shop_id == current_shop().id,
                PrivacyRequest.kind == "data_request",
            )
        ).first()
    if found is None or found.export is None:
        return {"error": "no such export"}, 404
    return Response(
        json.dumps(found.export, indent=2),
        mimetype="application/json",
        headers={"Content-Disposition": f'attachment; filename="customer-data-request-{request_id}.json"'},
    )


def _sync_progress(shop: Shop) -> dict[str, Any]:
    assert shop.id is not None
    with current_runtime().read_session() as session:
        return progress_of(session, shop.id)


def _privacy_requests(shop: Shop) -> list[dict[str, Any]]:
    with current_runtime().read_session() as session:
        rows = session.exec(
            select(PrivacyRequest).where(PrivacyRequest.shop_id == shop.id).order_by(col(PrivacyRequest.id).desc())
        ).all()
    return [
        {
            "id": r.id,
            "kind": r.kind,
            "customer_id": r.customer_id,
            "received_at": r.received_at.isoformat(),
            "completed_at": r.completed_at.isoformat() if r.completed_at else None,
            "export_url": f"/api/privacy/{r.id}/export" if r.export is not None else None,
        }
        for r in rows
    ]


def _flows(shop: Shop) -> list[dict[str, Any]]:
    assert shop.id is not None
    with current_runtime().read_session() as session:
        settings = policy(session, shop.id)
    return [
        {
            "name": name,
            "description": FLOW_DESCRIPTIONS[name],
            "enabled": settings.enabled,
            "delay_minutes": int(settings.delay.total_seconds() // 60),
        }
        for name in sorted(KNOWN_FLOWS)
    ]


def _limit() -> int:
    try:
        return max(1, min(int(request.args.get("limit", 50)), MAX_PAGE))
    except ValueError:
        return 50
