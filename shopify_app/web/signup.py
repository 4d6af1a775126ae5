"""A shop's hosted sign-up form, and the link that confirms an opt-in.

`/subscribe/<shop domain>`: GET shows the form with each channel's wording, POST records the opt-ins with their
proof (the wording's version, the browser's IP address and user agent). Anyone may post it: nothing in it is
trusted beyond what it asks for, a hidden field that people leave empty catches simple bots, and confirmation
emails are limited per address.

`/confirm/<token>`: GET shows a page with a button and changes nothing (mail scanners prefetch links); POST
confirms.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, render_template, request
from sqlmodel import select

from shopify_app.models import Shop
from shopify_app.runtime import current_runtime
from shopify_app.signup import confirm, parse_sign_up, pending_confirmation, sign_up, wording

blueprint = Blueprint("signup", __name__, template_folder="templates")
MAX_FIELD = 320
TRAP = "website"  # hidden from people by the page's style; filled in by bots that fill in everything


def init_app(app: Flask) -> None:
    app.register_blueprint(blueprint)


@blueprint.get("/subscribe/<domain>")
def form(domain: str) -> tuple[str, int]:
    shop = _shop(domain)
    if shop is None:
        return render_template("signup_unknown.html"), 404
    return _form(shop, {}, ()), 200


@blueprint.post("/subscribe/<domain>")
def submit(domain: str) -> tuple[str, int]:
    runtime = current_runtime()
    shop = _shop(domain)
    if shop is None:
        return render_template("signup_unknown.html"), 404
    fields = {k: v[:MAX_FIELD] for k, v in request.form.items() if k in ("email", "phone", "consent_email",
                                                                          "consent_sms", TRAP)}  # fmt: skip
    name = shop.name or shop.domain
    if fields.get(TRAP):
        return render_template("signup_done.html", shop_name=name, subscribed=(), to_confirm=()), 200
    signup, problems = parse_sign_up(fields, None)
    if signup is None:
        return _form(shop, fields, problems), 422
    with runtime.session() as session, session.begin():
        held = session.get(Shop, shop.id)
        assert held is not None
        outcome = sign_up(session, held, signup, _evidence(), runtime.clock.now(), runtime.settings.secret_key)
    if outcome.problems:
        return _form(shop, fields, outcome.problems), 422
    return render_template("signup_done.html", shop_name=name, subscribed=outcome.subscribed,
                           to_confirm=outcome.to_confirm), 200  # fmt: skip


@blueprint.get("/confirm/<token>")
def confirm_page(token: str) -> tuple[str, int]:
    runtime = current_runtime()
    with runtime.read_session() as session:
        row = pending_confirmation(session, token, runtime.clock.now())
        if row is None:
            return render_template("confirm_invalid.html"), 404
        shop = session.get(Shop, row.shop_id)
        return render_template("confirm.html", shop_name=_name(shop), confirmed=row.confirmed_at is not None), 200


@blueprint.post("/confirm/<token>")
def confirm_apply(token: str) -> tuple[str, int]:
    runtime = current_runtime()
    now = runtime.clock.now()
    with runtime.session() as session, session.begin():
        row = pending_confirmation(session, token, now)
        if row is None:
            return render_template("confirm_invalid.html"), 404
        confirm(session, row, _evidence(), now)
        shop = session.get(Shop, row.shop_id)
        return render_template("confirm_done.html", shop_name=_name(shop)), 200


def _form(shop: Shop, fields: dict[str, str], problems: tuple[Any, ...]) -> str:
    return render_template("signup.html", shop_name=_name(shop), wording=wording(_name(shop)), fields=fields,
                           problems=[str(p) for p in problems], trap=TRAP)  # fmt: skip


def _shop(domain: str) -> Shop | None:
    with current_runtime().read_session() as session:
        shop = session.exec(select(Shop).where(Shop.domain == domain.strip().lower()[:255])).first()
        return shop if shop is not None and shop.installed else None


def _name(shop: Shop | None) -> str:
    return (shop.name or shop.domain) if shop is not None else "the shop"


def _evidence() -> dict[str, Any]:
    """What proves the browser's part: its address (the connecting peer) and its user agent."""
    return {"ip": request.remote_addr, "user_agent": (request.user_agent.string or "")[:300] or None}
