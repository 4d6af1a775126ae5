"""`POST /pixel/<shop key>`: what the shop's web pixel reports of its storefront.

Unsigned and sent by browsers: everything in it is untrusted (see `browsing.intake`). Beacons send text/plain,
which needs no CORS preflight; `application/json` is accepted too, after one. Answers: 204 accepted, 400 nothing
valid, 403 another site's page, 404 no such key, 413 over 20 events or 64 KiB, 415 another content type, 429 over
the rate limit of the client id or of the source address.
"""

from __future__ import annotations

import logging
import re
import time

from flask import Blueprint, Flask, Response, request
from sqlmodel import select

from shopify_app.browsing.intake import MAX_BODY, TooLarge, parse_body, store
from shopify_app.browsing.limits import RateLimiter
from shopify_app.models import Shop
from shopify_app.runtime import current_runtime

log = logging.getLogger(__name__)
blueprint = Blueprint("pixel", __name__)
_KEY = re.compile(r"[A-Za-z0-9_-]{1,32}")
CONTENT_TYPES = frozenset({"text/plain", "application/json"})
BY_CLIENT = RateLimiter(limit=60, window_seconds=60)  # a browser's pixel sends a batch every few seconds at most
BY_ADDRESS = RateLimiter(limit=600, window_seconds=60)  # many shoppers may share an address (offices, mobile NAT)


def init_app(app: Flask) -> None:
    app.register_blueprint(blueprint)


@blueprint.route("/pixel/<key>", methods=["OPTIONS"])
def preflight(key: str) -> Response:
    shop = _shop(key)
    origin = request.headers.get("Origin")
    if shop is None or not _allowed(shop, origin):
        return Response(status=403 if shop else 404)
    answer = _cors(Response(status=204), origin)
    answer.headers["Access-Control-Allow-Methods"] = "POST"
    answer.headers["Access-Control-Allow-Headers"] = "Content-Type"
    answer.headers["Access-Control-Max-Age"] = "86400"
    return answer


@blueprint.post("/pixel/<key>")
def receive(key: str) -> Response:
    runtime = current_runtime()
    shop = _shop(key)
    if shop is None:
        return Response(status=404)
    origin = request.headers.get("Origin")
    if not _allowed(shop, origin):
        return Response(status=403)
    if (request.mimetype or "text/plain") not in CONTENT_TYPES:
        return _cors(Response(status=415), origin)
    if (request.content_length or 0) > MAX_BODY:
        return _cors(Response(status=413), origin)
    if not BY_ADDRESS.allow(f"{shop.id}:{request.remote_addr}", time.monotonic()):
        return _cors(Response(status=429), origin)
    now = runtime.clock.now()
    try:
        parsed = parse_body(request.stream.read(MAX_BODY + 1), now)
    except TooLarge:
        return _cors(Response(status=413), origin)
    except ValueError:
        return _cors(Response(status=400), origin)
    clients = {e["client_id"] for e in parsed.events}
    if not all(BY_CLIENT.allow(f"{shop.id}:{client}", time.monotonic()) for client in sorted(clients)):
        return _cors(Response(status=429), origin)
    if not parsed.events:
        return _cors(Response(status=400), origin)
    assert shop.id is not None
    with runtime.session() as session, session.begin():
        received = store(session, shop.id, parsed, now)
    if received.dropped:
        log.info("shop %s: pixel events: %d stored, %d repeated, %d invalid dropped", shop.id, received.stored,
                 received.duplicates, received.dropped)  # fmt: skip
    return _cors(Response(status=204), origin)


def _shop(key: str) -> Shop | None:
    if not _KEY.fullmatch(key):
        return None  # no key Chorus makes (and nothing a database should be asked about: a NUL, say)
    with current_runtime().read_session() as session:
        shop = session.exec(select(Shop).where(Shop.pixel_key == key)).first()
        return shop if shop is not None and shop.installed else None


def _allowed(shop: Shop, origin: str | None) -> bool:
    """From the shop's storefront, or from Shopify's pixel sandbox (its sandboxed frames say `Origin: null`), or
    from no browser page (no Origin): never another site's page. Nothing is trusted for it either way."""
    if origin is None or origin == "null":
        return True
    return origin in {f"https://{shop.domain}", *([f"https://{shop.primary_domain}"] if shop.primary_domain else [])}


def _cors(answer: Response, origin: str | None) -> Response:
    if origin is not None and origin != "null":  # the sandbox reads no answer: "null" is never allowed to
        answer.headers["Access-Control-Allow-Origin"] = origin
        answer.headers["Vary"] = "Origin"
    return answer
