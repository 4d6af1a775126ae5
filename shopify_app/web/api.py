"""The embedded admin's JSON API. Every query is scoped to the session token's shop."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from flask import Blueprint, Flask, Response, request
from sqlmodel import col, select

from flows.definition import FlowDefinition
from flows.policy import InvalidPolicy
from shopify_app.journeys.preview import preview
from shopify_app.journeys.timeline import consent_history, person, timeline
from shopify_app.journeys.tuning import (
    MAX_DELAY,
    InvalidChange,
    StepChange,
    UnknownStep,
    configure,
    describe,
    load_tunings,
)
from shopify_app.messaging.directory import reachable_channels
from shopify_app.models import Message, PrivacyRequest, Shop, WebhookEvent
from shopify_app.runtime import current_runtime
from shopify_app.shop_policy import policy_of, set_policy
from shopify_app.sync import progress_of
from shopify_app.web.session import current_shop, session_required

blueprint = Blueprint("api", __name__, url_prefix="/api")

MAX_PAGE = 200
DEFAULT_PREVIEW_DAYS = 30
MAX_PREVIEW_DAYS = 365
LEGACY_MAX_DELAY_MINUTES = 10080  # the older top-level delay_minutes: a week at most


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


@blueprint.get("/shop/policy")
@session_required
def shop_policy() -> dict[str, Any]:
    return {"policy": policy_of(current_shop()).as_json()}


@blueprint.patch("/shop/policy")
@session_required
def change_shop_policy() -> tuple[dict[str, Any], int]:
    changes = request.get_json(silent=True)
    if not isinstance(changes, dict) or not changes:
        return {"error": "expected a JSON object of the settings to change, as GET /api/shop/policy shows them"}, 400
    with current_runtime().session() as session, session.begin():
        shop = session.get(Shop, current_shop().id, with_for_update=True)
        assert shop is not None
        try:
            policy = set_policy(shop, changes)
        except InvalidPolicy as exc:
            return {"error": "nothing was changed: " + str(exc), "problems": exc.problems}, 400
    return {"policy": policy.as_json()}, 200


@blueprint.get("/flows")
@session_required
def flows() -> dict[str, Any]:
    return {"flows": _flows(current_shop())}


@blueprint.patch("/flows/<flow>")
@session_required
def update_flow(flow: str) -> tuple[dict[str, Any], int]:
    runtime = current_runtime()
    if flow not in runtime.flows:
        return {"error": f"unknown flow {flow!r}"}, 404
    try:
        enabled, steps = _flow_patch(request.get_json(silent=True), runtime.flows[flow])
    except InvalidChange as exc:
        return {"error": str(exc)}, 400
    shop = current_shop()
    assert shop.id is not None
    with runtime.session() as session, session.begin():
        try:
            configure(session, shop.id, runtime.flows, flow, enabled=enabled, steps=steps, now=runtime.clock.now())
        except UnknownStep as exc:
            return {"error": str(exc)}, 404
        except InvalidChange as exc:
            return {"error": str(exc)}, 400
    return {"flow": next(f for f in _flows(shop) if f["name"] == flow)}, 200


@blueprint.get("/flows/<flow>/preview")
@session_required
def flow_preview(flow: str) -> tuple[dict[str, Any], int]:
    runtime = current_runtime()
    definition = runtime.flows.get(flow)
    if definition is None:
        return {"error": f"unknown flow {flow!r}"}, 404
    try:
        days = int(request.args.get("days", DEFAULT_PREVIEW_DAYS))
    except ValueError:
        return {"error": "days must be a whole number"}, 400
    if not 1 <= days <= MAX_PREVIEW_DAYS:
        return {"error": f"days must be from 1 to {MAX_PREVIEW_DAYS}"}, 400
    shop = current_shop()
    assert shop.id is not None
    with runtime.read_session() as session:
        configured = reachable_channels(session, runtime.settings, shop.id)
        return preview(session, shop, definition, days=days, configured=configured, now=runtime.clock.now()), 200


@blueprint.get("/customers/timeline")
@session_required
def customer_timeline() -> tuple[dict[str, Any], int]:
    email = (request.args.get("email") or "").strip().lower() or None
    phone = (request.args.get("phone") or "").strip() or None
    if (email is None) == (phone is None):
        return {"error": "name the customer by email or by phone (one of them)"}, 400
    shop = current_shop()
    assert shop.id is not None
    with current_runtime().read_session() as session:
        who = person(session, shop.id, email=email, phone=phone)
        described = who.describe(consent_history(session, shop.id, who))
        return {**described, "entries": timeline(session, shop.id, email=email, phone=phone)}, 200


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
                "step": m.step,
                "channel": m.channel,
                "recipient": m.address,
                "address": m.address,
                "subject": m.subject,
                "status": m.status,
                "attempts": m.attempts,
                "provider": m.provider,
                "provider_message_id": m.provider_message_id,
                "cost": str(m.cost) if m.cost is not None else None,
                "cost_currency": m.cost_currency,
                "error": m.error,
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
    runtime = current_runtime()
    with runtime.read_session() as session:
        tunings = load_tunings(session, shop.id, runtime.flows)
    return [describe(definition, tunings[definition.name]) for definition in runtime.flows]


def _flow_patch(body: Any, definition: FlowDefinition) -> tuple[bool | None, dict[str, StepChange]]:
    """`{"enabled": bool, "steps": {step: {"delay_minutes", "enabled", "channels"}}}`, any part optional; the
    older `{"delay_minutes": n}` sets the first step's delay. InvalidChange names the field at fault."""
    if not isinstance(body, dict) or not body:
        raise InvalidChange("send a JSON object with enabled, steps and/or delay_minutes")
    unknown = set(body) - {"enabled", "steps", "delay_minutes"}
    if unknown:
        raise InvalidChange(f"{sorted(unknown)[0]}: not a flow setting (enabled, steps, delay_minutes)")
    enabled = body.get("enabled")
    if enabled is not None and not isinstance(enabled, bool):
        raise InvalidChange("enabled: must be true or false")
    steps: dict[str, StepChange] = {}
    if "delay_minutes" in body:
        steps[definition.steps[0].id] = StepChange(delay=_minutes(body["delay_minutes"], "delay_minutes", low=1))
    raw_steps = body.get("steps", {})
    if not isinstance(raw_steps, dict):
        raise InvalidChange("steps: must be an object of step ids")
    for step_id, change in raw_steps.items():
        field = f"steps.{step_id}"
        if not isinstance(change, dict) or not change or set(change) - {"delay_minutes", "enabled", "channels"}:
            raise InvalidChange(f"{field}: an object with delay_minutes, enabled and/or channels")
        step_enabled = change.get("enabled")
        if step_enabled is not None and not isinstance(step_enabled, bool):
            raise InvalidChange(f"{field}.enabled: must be true or false")
        channels = change.get("channels")
        if channels is not None and (not isinstance(channels, list) or not all(isinstance(c, str) for c in channels)):
            raise InvalidChange(f"{field}.channels: a list of channel names, in order of preference")
        delay = change.get("delay_minutes")
        steps[str(step_id)] = StepChange(
            delay=_minutes(delay, f"{field}.delay_minutes", low=0) if delay is not None else None,
            enabled=step_enabled,
            channels=tuple(channels) if channels is not None else None,
        )
    return enabled, steps


def _minutes(value: Any, field: str, *, low: int) -> timedelta:
    most = int(MAX_DELAY.total_seconds() // 60) if low == 0 else LEGACY_MAX_DELAY_MINUTES
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= most:
        raise InvalidChange(f"{field}: a whole number of minutes from {low} to {most}")
    return timedelta(minutes=value)


def _limit() -> int:
    try:
        return max(1, min(int(request.args.get("limit", 50)), MAX_PAGE))
    except ValueError:
        return 50
