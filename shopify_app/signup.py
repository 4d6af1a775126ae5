"""Opt-ins Chorus collects itself (its sign-up form; later the storefront), with double opt-in.

An opt-in is kept with its proof: the wording the person saw (its version and digest), their IP address and user
agent. It counts at once, unless the shop asks for double opt-in on the channel, or the address opted out
through Chorus before (anyone can type an address into a form: only its owner may undo their opt-out). Then it
counts once the person follows the link emailed to them (`/confirm/<token>`), and the confirmation is kept as
proof too.

The token is derived from the confirmation's id under the deployment's secret key, so the job that sends the
email can write it while only its digest is stored: a copy of the database confirms nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from email_validator import EmailNotValidError, validate_email
from sqlmodel import Session, col, select

from flows.consent import Source, form_level
from flows.phones import normalise_phone
from shopify_app.consent import record_consent
from shopify_app.contacts import Seen, observe
from shopify_app.jobs.queue import enqueue
from shopify_app.models import ConsentConfirmation, Shop, Suppression
from shopify_app.shop_policy import policy_of
from shopify_app.suppressions import UNSUBSCRIBED

CONFIRMATION_JOB = "consent_confirmation"
CONFIRMATION_LIFETIME = timedelta(days=7)
RESEND_AFTER = timedelta(hours=24)  # at most one confirmation email per address a day: a form is open to anyone
WORDING_VERSION = "signup-2026-12"
_TOKEN_SALT = b"chorus.confirm.v1:"


def wording(shop_name: str) -> dict[str, str]:
    """What the form says each opt-in means, per channel: the person agrees to exactly this text."""
    return {
        "email": f"Email me news and offers from {shop_name}. I can unsubscribe at any time.",
        "sms": (
            f"Text me marketing messages from {shop_name} at this number. Message frequency varies; message and "
            "data rates may apply. Consent is not a condition of purchase. Reply STOP to opt out, HELP for help."
        ),
    }


class Problem(StrEnum):
    INVALID_EMAIL = "Enter a valid email address."
    INVALID_PHONE = "Enter a valid mobile number, with its country code."
    NOTHING_CHOSEN = "Choose how you would like to hear from us."
    EMAIL_NEEDED = "Enter your email address as well: we send a link to confirm."


@dataclass(frozen=True)
class SignUp:
    """What the form was given: an email, a number, the channels ticked."""

    email: str | None
    phone: str | None
    channels: frozenset[str]


@dataclass(frozen=True)
class Outcome:
    subscribed: tuple[str, ...]  # the channels that count now
    to_confirm: tuple[str, ...]  # those awaiting the emailed link
    problems: tuple[Problem, ...] = ()


def parse_sign_up(form: Mapping[str, str], region: str | None) -> tuple[SignUp | None, tuple[Problem, ...]]:
    """The sign-up a form's fields describe, or what is wrong with them (all at once)."""
    problems: list[Problem] = []
    channels = frozenset(c for c in ("email", "sms") if form.get(f"consent_{c}") in ("on", "1", "true", "yes"))
    email = (form.get("email") or "").strip()
    phone_raw = (form.get("phone") or "").strip()
    normalised_email: str | None = None
    if email:
        try:
            normalised_email = validate_email(email, check_deliverability=False).normalized.lower()
        except EmailNotValidError:
            problems.append(Problem.INVALID_EMAIL)
    elif "email" in channels:
        problems.append(Problem.INVALID_EMAIL)
    phone = normalise_phone(phone_raw, region) if phone_raw else None
    if (phone_raw or "sms" in channels) and phone is None:
        problems.append(Problem.INVALID_PHONE)
    if not channels:
        problems.append(Problem.NOTHING_CHOSEN)
    if problems:
        return None, tuple(problems)
    return SignUp(normalised_email, phone, channels), ()


def sign_up(
    session: Session, shop: Shop, signup: SignUp, evidence: Mapping[str, Any], now: datetime, secret_key: str
) -> Outcome:
    """Record the opt-ins, each counting now or once confirmed; the confirmation email follows from a job."""
    assert shop.id is not None
    double = policy_of(shop).double_opt_in
    addresses = {"email": signup.email, "sms": signup.phone}
    confirm = {c for c in signup.channels if c in double or _opted_out_here(session, shop.id, c, addresses[c] or "")}
    if confirm and signup.email is None:
        return Outcome((), (), (Problem.EMAIL_NEEDED,))
    proof = {**evidence, "form": "signup", "wording_version": WORDING_VERSION}
    texts = wording(shop.name or shop.domain)
    for channel in sorted(signup.channels):
        address = addresses[channel]
        assert address is not None
        state, level = form_level(channel in confirm, confirmed=False)
        signal = {**proof, "wording_sha256": hashlib.sha256(texts[channel].encode()).hexdigest()}
        record_consent(session, shop.id, channel=channel, address=address, state=state, source=Source.FORM,
                       at=now, level=level, evidence=signal)  # fmt: skip
    observe(session, shop.id, Seen(emails=(signup.email,), phones=(signup.phone,)), now)
    if confirm:
        assert signup.email is not None
        opt_ins = {c: addresses[c] or "" for c in sorted(confirm)}
        _ask_to_confirm(session, shop.id, signup.email, opt_ins, proof, now, secret_key)
    return Outcome(tuple(sorted(signup.channels - confirm)), tuple(sorted(confirm)))


def _opted_out_here(session: Session, shop_id: int, channel: str, address: str) -> bool:
    s = Suppression
    query = select(s.id).where(s.shop_id == shop_id, s.channel == channel, s.address == address)
    return session.exec(query.where(s.reason == UNSUBSCRIBED)).first() is not None


def _ask_to_confirm(
    session: Session,
    shop_id: int,
    email: str,
    opt_ins: dict[str, str],
    evidence: Mapping[str, Any],
    now: datetime,
    secret_key: str,
) -> None:
    """A confirmation for these opt-ins, and the job that emails its link; none more than once a day per address
    (the latest asked for is what a confirmation confirms)."""
    recent = session.exec(
        select(ConsentConfirmation)
        .where(ConsentConfirmation.shop_id == shop_id, ConsentConfirmation.address == email)
        .where(col(ConsentConfirmation.confirmed_at).is_(None), ConsentConfirmation.created_at > now - RESEND_AFTER)
        .order_by(col(ConsentConfirmation.id).desc())
    ).first()
    if recent is not None:
        recent.opt_ins = {**recent.opt_ins, **opt_ins}
        return
    # The digest follows once the row has its id; until then a value no token hashes to, unique to the row.
    row = ConsentConfirmation(shop_id=shop_id, token_digest=secrets.token_hex(32), address=email, opt_ins=opt_ins,
                              evidence=dict(evidence), created_at=now,
                              expires_at=now + CONFIRMATION_LIFETIME)  # fmt: skip
    session.add(row)
    session.flush()
    assert row.id is not None
    row.token_digest = token_digest(confirmation_token(secret_key, row.id))
    enqueue(session, shop_id, CONFIRMATION_JOB, now, {"confirmation_id": row.id})


def confirmation_token(secret_key: str, confirmation_id: int) -> str:
    return hmac.new(secret_key.encode(), _TOKEN_SALT + str(confirmation_id).encode(), hashlib.sha256).hexdigest()


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def pending_confirmation(session: Session, token: str, now: datetime) -> ConsentConfirmation | None:
    """The confirmation a token is for, while it may still be confirmed (or was already: confirming is
    idempotent)."""
    if not token or len(token) > 128:
        return None
    row = session.exec(
        select(ConsentConfirmation).where(ConsentConfirmation.token_digest == token_digest(token))
    ).first()
    if row is None or (row.confirmed_at is None and row.expires_at <= now):
        return None
    return row


def confirm(session: Session, row: ConsentConfirmation, evidence: Mapping[str, Any], now: datetime) -> None:
    """The person followed the link: each opt-in it names counts from now, confirmed, with both proofs."""
    if row.confirmed_at is not None:
        return
    row.confirmed_at = now
    state, level = form_level(True, confirmed=True)
    for channel, address in sorted(row.opt_ins.items()):
        record_consent(session, row.shop_id, channel=channel, address=str(address), state=state,
                       source=Source.FORM, at=now, level=level,
                       evidence={**row.evidence, "confirmed": dict(evidence),
                                 "confirmation_id": row.id})  # fmt: skip
