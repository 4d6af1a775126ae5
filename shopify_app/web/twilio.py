"""Twilio's callbacks for one shop: `POST /channels/twilio/<shop key>/status` (a message's delivery status) and
`POST /channels/twilio/<shop key>/inbound` (a text a customer sent to the shop's number).

Each request is verified with the shop's own auth token (`X-Twilio-Signature` over the URL as Twilio called
it, which is this deployment's APP_URL and the path, and the POST parameters): otherwise 403 and nothing is
stored. An unknown shop key is 404. Logs name the shop, never a number or a message.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from xml.sax.saxutils import escape

from flask import Blueprint, Flask, Response, abort, request
from sqlmodel import Session

from connectors.sms.twilio import valid_twilio_signature
from flows.keywords import Keyword, keyword
from flows.phones import normalise_phone
from shopify_app.consent import record_keyword
from shopify_app.crypto import DecryptionError
from shopify_app.jobs.prices import ask_price_later
from shopify_app.messaging.accounts import callback_target, secrets_of
from shopify_app.messaging.channels import help_text
from shopify_app.messaging.feedback import record_receipt
from shopify_app.models import ChannelAccount, MessageStatus
from shopify_app.runtime import current_runtime

log = logging.getLogger(__name__)

blueprint = Blueprint("twilio", __name__, url_prefix="/channels/twilio")

# Twilio's MessageStatus values that say more than "accepted"; the others (queued, sending, sent...) do not.
REPORTED = {
    "delivered": MessageStatus.DELIVERED,
    "read": MessageStatus.READ,
    "undelivered": MessageStatus.UNDELIVERED,
    "failed": MessageStatus.UNDELIVERED,  # accepted, then could not be sent: the provider gave up
}


def init_app(app: Flask) -> None:
    app.register_blueprint(blueprint)


@dataclass(frozen=True)
class _Caller:
    shop_id: int
    shop_name: str
    shop_email: str | None


@blueprint.post("/<key>/status")
def status(key: str) -> tuple[str, int]:
    runtime = current_runtime()
    with runtime.session() as session, session.begin():
        caller = _verified(session, key)
        sid = request.form.get("MessageSid") or request.form.get("SmsSid")
        reported = REPORTED.get((request.form.get("MessageStatus") or request.form.get("SmsStatus") or "").lower())
        if sid and reported is not None:
            code = request.form.get("ErrorCode") or None
            moved = record_receipt(session, shop_id=caller.shop_id, provider="twilio", provider_message_id=sid,
                                   status=reported, error_code=code[:20] if code else None,
                                   at=runtime.clock.now())  # fmt: skip
            if moved is not None and reported is not MessageStatus.READ:
                ask_price_later(session, moved, runtime.clock.now())  # its final status: Twilio prices it next
    return "", 204


@blueprint.post("/<key>/inbound")
def inbound(key: str) -> Response:
    runtime = current_runtime()
    with runtime.session() as session, session.begin():
        caller = _verified(session, key)
        number = normalise_phone(request.form.get("From"))
        said = keyword(request.form.get("Body"))
        if number is None or said is None:
            return _twiml(None)
        now = runtime.clock.now()
        if said in (Keyword.OPT_OUT, Keyword.OPT_IN):
            opted_in = said is Keyword.OPT_IN
            record_keyword(session, caller.shop_id, "sms", number, said, request.form.get("MessageSid"), now)
            log.info("shop %s: a number opted %s SMS by keyword", caller.shop_id, "in to" if opted_in else "out of")
            # Twilio confirms a STOP or START itself; anything more would not be delivered
            return _twiml(None)
    return _twiml(help_text(caller.shop_name, caller.shop_email))


def _verified(session: Session, key: str) -> _Caller:
    """The shop the key names, once the request is shown to come from its Twilio account (else 404 or 403)."""
    target = callback_target(session, key, "sms", "twilio")
    if target is None:
        abort(404)
    shop, account = target.shop, target.account
    token = _auth_token(account)
    signature = request.headers.get("X-Twilio-Signature", "")
    url = current_runtime().settings.app_url.rstrip("/") + request.full_path.rstrip("?")
    params = list(request.form.items(multi=True))
    if token is None or not signature or not valid_twilio_signature(token, url, params, signature):
        log.warning("shop %s: a Twilio callback with no valid signature was refused", shop.id)
        abort(403)
    assert account is not None
    if request.form.get("AccountSid") not in (None, account.settings.get("account_sid")):
        log.warning("shop %s: a Twilio callback for another account was refused", shop.id)
        abort(403)
    return _Caller(target.shop_id, shop.name or shop.domain, shop.email)


def _auth_token(account: ChannelAccount | None) -> str | None:
    if account is None:
        return None
    try:
        return secrets_of(current_runtime().secret_box, account).get("auth_token")
    except DecryptionError:
        return None


def _twiml(reply: str | None) -> Response:
    body = f"<Message>{escape(reply)}</Message>" if reply else ""
    return Response(f'<?xml version="1.0" encoding="UTF-8"?><Response>{body}</Response>', mimetype="text/xml")
