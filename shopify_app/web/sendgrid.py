"""SendGrid's event webhook for one shop: `POST /channels/sendgrid/<shop key>/events`.

Verified with the public key of the shop's SendGrid account (ECDSA over the timestamp header and the raw
body): otherwise 403 and nothing is stored; an unknown shop key is 404, a body that is not a JSON list 400.
Each event is matched to the shop's own message (by the id Chorus gave it, else by SendGrid's message id):
delivered moves it on; a bounce or a drop makes it undelivered and suppresses the address; a spam report or
an unsubscribe is an opt-out, as the message's own unsubscribe link is; an open is kept as a receipt only,
flagged unreliable (Apple Mail Privacy Protection opens every message it downloads).
"""

from __future__ import annotations

import json
import logging
from datetime import datetime

from flask import Blueprint, Flask, abort, request
from sqlmodel import Session, select

from connectors.email.sendgrid import MESSAGE_ID_ARG, valid_event_signature
from shopify_app.journeys.hooks import for_runtime
from shopify_app.messaging.accounts import callback_target
from shopify_app.messaging.feedback import record_receipt
from shopify_app.messaging.unsubscribe import Subscription, unsubscribe
from shopify_app.models import DeliveryReceipt, Message, MessageStatus, Shop
from shopify_app.runtime import current_runtime
from shopify_app.suppressions import REFUSED, suppress

log = logging.getLogger(__name__)

blueprint = Blueprint("sendgrid", __name__, url_prefix="/channels/sendgrid")

MAX_EVENTS = 2000  # SendGrid batches up to about a thousand events a request
OPT_OUTS = frozenset({"spamreport", "unsubscribe", "group_unsubscribe"})


def init_app(app: Flask) -> None:
    app.register_blueprint(blueprint)


@blueprint.post("/<key>/events")
def events(key: str) -> tuple[str, int]:
    runtime = current_runtime()
    body = request.get_data(cache=False)
    with runtime.session() as session, session.begin():
        shop = _verified(session, key, body)
        try:
            received = json.loads(body)
        except (ValueError, RecursionError):
            abort(400)
        if not isinstance(received, list) or len(received) > MAX_EVENTS:
            abort(400)
        assert shop.id is not None
        now = runtime.clock.now()
        for event in received:
            if isinstance(event, dict):
                _apply(session, shop, event, now)
    return "", 204


def _apply(session: Session, shop: Shop, event: dict[str, object], at: datetime) -> None:
    assert shop.id is not None
    kind = event.get("event")
    message = _message_of(session, shop.id, event)
    if message is None or not message.provider_message_id or not isinstance(kind, str):
        return  # not a message of this shop's (or no longer known): nothing to change
    provider_id = message.provider_message_id
    if kind == "delivered":
        record_receipt(session, shop_id=shop.id, provider="sendgrid", provider_message_id=provider_id,
                       status=MessageStatus.DELIVERED, error_code=None, at=at)  # fmt: skip
    elif kind == "open":
        session.add(DeliveryReceipt(shop_id=shop.id, provider="sendgrid", provider_message_id=provider_id,
                                    status="opened", error_code="unreliable", received_at=at))  # fmt: skip
    elif kind == "dropped" or (kind == "bounce" and event.get("type", "bounce") == "bounce"):
        record_receipt(session, shop_id=shop.id, provider="sendgrid", provider_message_id=provider_id,
                       status=MessageStatus.UNDELIVERED, error_code=kind, at=at)  # fmt: skip
        suppress(session, shop_id=shop.id, channel="email", address=message.address, reason=REFUSED,
                 message_id=message.id, now=at)  # fmt: skip
    elif kind in OPT_OUTS:
        assert message.id is not None
        subscription = Subscription(message.id, shop.id, shop.name or shop.domain, "email", message.address)
        unsubscribe(session, subscription, at, for_runtime(current_runtime()))


def _message_of(session: Session, shop_id: int, event: dict[str, object]) -> Message | None:
    """The shop's message the event is about: by the id Chorus gave it, else by SendGrid's message id."""
    reference = event.get(MESSAGE_ID_ARG)
    if isinstance(reference, str) and reference.isdigit() and len(reference) < 19:
        found = session.get(Message, int(reference))
        return found if found is not None and found.shop_id == shop_id and found.provider == "sendgrid" else None
    sg_id = event.get("sg_message_id")
    if not isinstance(sg_id, str) or not sg_id:
        return None
    provider_id = sg_id.split(".", 1)[0]  # SendGrid appends its own routing to the X-Message-Id it gave
    return session.exec(
        select(Message).where(
            Message.shop_id == shop_id, Message.provider == "sendgrid", Message.provider_message_id == provider_id
        )
    ).first()


def _verified(session: Session, key: str, body: bytes) -> Shop:
    target = callback_target(session, key, "email", "sendgrid")
    if target is None:
        abort(404)
    shop = target.shop
    public_key = target.account.settings.get("event_public_key") if target.account else None
    signature = request.headers.get("X-Twilio-Email-Event-Webhook-Signature", "")
    timestamp = request.headers.get("X-Twilio-Email-Event-Webhook-Timestamp", "")
    if (
        not public_key
        or not signature
        or not timestamp
        or not valid_event_signature(public_key, signature, timestamp, body)
    ):
        log.warning("shop %s: a SendGrid event webhook with no valid signature was refused", shop.id)
        abort(403)
    return shop
