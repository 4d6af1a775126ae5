"""Meta's webhook for one shop's WhatsApp number: `GET /channels/whatsapp/<shop key>` (the subscription
check) and `POST` (message statuses, and what customers write).

The check answers `hub.challenge` only when `hub.mode` is `subscribe` and `hub.verify_token` is the shop's
(403 otherwise). A POST is verified with the shop's app secret (`X-Hub-Signature-256`): otherwise 403 and
nothing is stored; an unknown shop key is 404; a body that is not JSON 400. Only changes for the shop's own
phone number id are read. Statuses move the shop's messages forward (sent, delivered, read; failed is
undelivered), and their pricing corrects a message's estimated cost (free, or billed in another category).
A customer's message opens the 24-hour window for free-text replies; START (or another opt-in word) is their
consent to the shop's marketing on WhatsApp, STOP (or another opt-out word) ends it, HELP (or INFO) gets the
shop's help text in reply.
"""

from __future__ import annotations

import hmac
import json
import logging
from datetime import datetime
from typing import Any

from flask import Blueprint, Flask, Response, abort, request
from sqlmodel import Session, select

from connectors.whatsapp.cloud import valid_webhook_signature
from flows.keywords import Keyword, keyword
from flows.phones import normalise_phone
from shopify_app.consent import record_keyword
from shopify_app.crypto import DecryptionError
from shopify_app.jobs.replies import answer_help_later
from shopify_app.messaging.accounts import callback_target, secrets_of
from shopify_app.messaging.feedback import record_pricing, record_receipt
from shopify_app.models import ChannelAccount, MessageStatus, Shop, WhatsAppWindow
from shopify_app.runtime import current_runtime

log = logging.getLogger(__name__)

blueprint = Blueprint("whatsapp", __name__, url_prefix="/channels/whatsapp")

REPORTED = {"delivered": MessageStatus.DELIVERED, "read": MessageStatus.READ, "failed": MessageStatus.UNDELIVERED}
# Meta's pricing categories priced as one of the template categories (an international authentication
# rate, or a marketing message through the Marketing Messages API).
PRICED_AS = {"authentication_international": "authentication", "marketing_lite": "marketing"}


def init_app(app: Flask) -> None:
    app.register_blueprint(blueprint)


@blueprint.get("/<key>")
def verify(key: str) -> Response:
    with current_runtime().read_session() as session:
        _shop, _account_row, secrets = _account(session, key)
    token = request.args.get("hub.verify_token", "")
    expected = secrets.get("verify_token", "")
    if request.args.get("hub.mode") != "subscribe" or not expected or not hmac.compare_digest(token, expected):
        abort(403)
    return Response(request.args.get("hub.challenge", ""), mimetype="text/plain")


@blueprint.post("/<key>")
def receive(key: str) -> tuple[str, int]:
    runtime = current_runtime()
    body = request.get_data(cache=False)
    with runtime.session() as session, session.begin():
        shop, account, secrets = _account(session, key)
        signature = request.headers.get("X-Hub-Signature-256", "")
        app_secret = secrets.get("app_secret", "")
        if not app_secret or not signature or not valid_webhook_signature(app_secret, body, signature):
            log.warning("shop %s: a WhatsApp webhook with no valid signature was refused", shop.id)
            abort(403)
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):
            abort(400)
        assert shop.id is not None
        for value in _values(payload, str(account.settings.get("phone_number_id"))):
            _take(session, shop.id, value, runtime.clock.now())
    return "", 200


def _values(payload: Any, phone_number_id: str) -> list[dict[str, Any]]:
    """The changes of the webhook that concern this number."""
    found = []
    entries = payload.get("entry") if isinstance(payload, dict) else None
    for entry in entries if isinstance(entries, list) else []:
        changes = entry.get("changes") if isinstance(entry, dict) else None
        for change in changes if isinstance(changes, list) else []:
            value = change.get("value") if isinstance(change, dict) else None
            if not isinstance(value, dict):
                continue
            metadata = value.get("metadata")
            if isinstance(metadata, dict) and str(metadata.get("phone_number_id")) == phone_number_id:
                found.append(value)
    return found


def _take(session: Session, shop_id: int, value: dict[str, Any], now: datetime) -> None:
    for status in _objects(value.get("statuses")):
        reported = REPORTED.get(str(status.get("status")))
        wamid = status.get("id")
        if reported is not None and isinstance(wamid, str) and wamid:
            errors = _objects(status.get("errors"))
            code = str(errors[0].get("code"))[:20] if errors else None
            record_receipt(session, shop_id=shop_id, provider="whatsapp", provider_message_id=wamid,
                           status=reported, error_code=code, at=now)  # fmt: skip
        pricing = status.get("pricing")
        if isinstance(pricing, dict) and isinstance(wamid, str) and wamid:  # with "sent" too, which moves nothing
            # `billable` is false for a free message; newer versions say so by `type` (free_customer_service...)
            free = pricing.get("billable") is False or str(pricing.get("type") or "").startswith("free")
            category = str(pricing.get("category") or "")
            record_pricing(session, shop_id=shop_id, provider_message_id=wamid, free=free,
                           category=PRICED_AS.get(category, category) or None)  # fmt: skip
    for message in _objects(value.get("messages")):
        sender = message.get("from")
        number = normalise_phone(f"+{sender}") if isinstance(sender, str) and sender.isdigit() else None
        if number is None:
            continue
        window = _opened_window(session, shop_id, number, now)
        text = (message.get("text") or {}).get("body") if isinstance(message.get("text"), dict) else None
        button = (message.get("button") or {}).get("payload") if isinstance(message.get("button"), dict) else None
        said = keyword(text if isinstance(text, str) else button if isinstance(button, str) else None)
        if said in (Keyword.OPT_OUT, Keyword.OPT_IN):
            opted_in = said is Keyword.OPT_IN
            window.opted_in_at = now if opted_in else None  # asked, in their own words, for the shop's messages
            record_keyword(session, shop_id, "whatsapp", number, said, message.get("id"), now)
            if not opted_in:
                log.info("shop %s: a number opted out of WhatsApp by keyword", shop_id)
        elif said is Keyword.HELP:
            answer_help_later(session, window, now)  # free text, inside the window this message opened


def _opened_window(session: Session, shop_id: int, number: str, now: datetime) -> WhatsAppWindow:
    window = session.exec(
        select(WhatsAppWindow).where(WhatsAppWindow.shop_id == shop_id, WhatsAppWindow.phone == number)
    ).first()
    if window is None:
        window = WhatsAppWindow(shop_id=shop_id, phone=number, last_inbound_at=now)
        session.add(window)
    elif window.last_inbound_at < now:
        window.last_inbound_at = now
    return window


def _objects(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _account(session: Session, key: str) -> tuple[Shop, ChannelAccount, dict[str, str]]:
    target = callback_target(session, key, "whatsapp", "meta")
    if target is None:
        abort(404)
    shop, account = target.shop, target.account
    if account is None:
        abort(403)
    try:
        secrets = secrets_of(current_runtime().secret_box, account)
    except DecryptionError:
        abort(403)
    return shop, account, secrets
