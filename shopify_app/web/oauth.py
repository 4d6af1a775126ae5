"""Installing from outside the admin: the authorization code grant.

`GET /auth?shop=…` sends the merchant to Shopify to approve, with a state nonce tied to this browser by
a signed cookie. `GET /auth/callback` accepts the answer only when the state cookie, the query's HMAC,
the shop and the timestamp all check out; only then is the code traded for a token.
"""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime

from flask import Blueprint, Flask, redirect, render_template, request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from werkzeug.wrappers import Response

from shopify_app.runtime import current_runtime
from shopify_app.shopify.library import canonical_shop_domain
from shopify_app.shopify.oauth import TokenRequestError, authorize_url, query_is_signed
from shopify_app.web.access import current_access

log = logging.getLogger(__name__)

blueprint = Blueprint("oauth", __name__, template_folder="templates")

STATE_COOKIE = "chorus_oauth_state"
STATE_MAX_AGE = 600  # seconds the merchant has to approve
TIMESTAMP_TOLERANCE = 300  # seconds of clock difference accepted on the callback


def init_app(app: Flask) -> None:
    app.register_blueprint(blueprint)


@blueprint.get("/auth")
def begin() -> Response | tuple[str, int]:
    runtime = current_runtime()
    shop = canonical_shop_domain(request.args.get("shop"))
    if shop is None:
        return _refuse(400, "The shop parameter must be a shop domain such as example.myshopify.com.")
    state = secrets.token_urlsafe(24)
    response = redirect(authorize_url(runtime.settings, shop, state))
    response.set_cookie(
        STATE_COOKIE,
        _state_signer().dumps({"state": state, "shop": shop}),
        max_age=STATE_MAX_AGE,
        httponly=True,
        secure=runtime.settings.app_url.startswith("https://"),
        samesite="Lax",  # sent on Shopify's top-level redirect back to us
        path="/auth",
    )
    return response


@blueprint.get("/auth/callback")
def callback() -> Response | tuple[str, int]:
    runtime = current_runtime()
    params = request.args.to_dict()
    shop = canonical_shop_domain(params.get("shop"))
    if not (shop and params.get("code") and params.get("state") and params.get("timestamp")):
        return _refuse(400, "The request from Shopify is incomplete.")
    if not query_is_signed(params, runtime.settings.webhook_secrets):
        return _refuse(400, "The request's signature is not valid.")
    if not _fresh(params["timestamp"], runtime.clock.now()):
        return _refuse(400, "The request has expired; start the installation again.")
    expected = _cookie_state()
    if expected is None or expected != {"state": params["state"], "shop": shop}:
        return _refuse(403, "This installation was not started from this browser; start it again.")
    try:
        current_access().install_with_code(shop, params["code"])
    except TokenRequestError as exc:
        log.warning("install of %s failed at the token endpoint: %s", shop, exc.error)
        return _refuse(502, "Shopify did not grant access; please try again.")
    log.info("shop %s installed", shop)
    response = redirect(f"https://{shop}/admin/apps/{runtime.settings.shopify_api_key}")
    response.delete_cookie(STATE_COOKIE, path="/auth")
    return response


def _state_signer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_runtime().settings.secret_key, salt="chorus.oauth-state.v1")


def _cookie_state() -> object:
    raw = request.cookies.get(STATE_COOKIE)
    if not raw:
        return None
    try:
        return _state_signer().loads(raw, max_age=STATE_MAX_AGE)
    except BadSignature:
        return None


def _fresh(timestamp: str, now: datetime) -> bool:
    try:
        moment = datetime.fromtimestamp(int(timestamp), tz=UTC)
    except (ValueError, OverflowError):
        return False
    return abs((now - moment).total_seconds()) <= TIMESTAMP_TOLERANCE


def _refuse(status: int, message: str) -> tuple[str, int]:
    return render_template("install_refused.html", message=message), status
