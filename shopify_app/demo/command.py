"""Playing the demo: a fresh SQLite database, a demo shop, a local outbox, the scripted journey sent
through the real HTTP endpoint and worker, then the app left running for a look around."""

from __future__ import annotations

import secrets
import socket
import threading
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlmodel import col, select
from werkzeug.serving import make_server

from shopify_app.app import create_app
from shopify_app.browsing.keys import ensure_pixel_key
from shopify_app.clock import FrozenClock
from shopify_app.crypto import generate_key
from shopify_app.db import migrate
from shopify_app.demo import script
from shopify_app.demo.outbox import Outbox
from shopify_app.demo.sms_outbox import SmsOutbox
from shopify_app.messaging.accounts import connect, parse_account
from shopify_app.messaging.wording import set_wording
from shopify_app.models import Journey, PixelEvent
from shopify_app.runtime import Runtime
from shopify_app.settings import Settings
from shopify_app.shops import register_shop
from shopify_app.worker import RunSummary, Worker

DEMO_FILES = ("chorus.db", "chorus.db-wal", "chorus.db-shm")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class DemoResult:
    posted: list[tuple[str, int]]
    days: list[tuple[int, RunSummary]]  # the worker's run on each day of the demo
    outcomes: list[str]  # every journey, and where it stands
    outbox: list[Path]
    signups: list[str]  # what came of the sign-up form
    storefront: list[str]  # what the web pixel reported, and whose it turned out to be


def demo_settings(directory: Path, port: int, smtp_url: str, twilio_url: str) -> Settings:
    """Everything the demo needs, made up on the spot: nothing is read from the environment."""
    return Settings(
        shopify_api_key="chorus-demo",
        shopify_api_secret=secrets.token_urlsafe(32),
        app_url=f"http://localhost:{port}",
        encryption_keys=(generate_key(),),
        secret_key=secrets.token_urlsafe(32),
        database_url=f"sqlite:///{directory.resolve() / 'chorus.db'}",
        port=port,
        smtp_url=smtp_url,
        email_from="reminders@demo.chorus.localhost",
        twilio_api_base_url=twilio_url,  # the local SMS outbox stands in for Twilio
        log_level="WARNING",
        demo_mode=True,
        # The demo shop exists only here: nothing may be asked of a real Shopify.
        webhooks_managed_by="toml",
        sync_on_install=False,
        # The story's webhooks are hours apart but posted at once: handled one by one, each journey meets the
        # store as it was then (a live worker handles them as they come; together, they would be decided on
        # the state they leave, and Grace's checkout, bought before its journey started, would start none).
        worker_batch_size=1,
    )


class DemoError(Exception):
    pass


class Demo:
    """The demo's resources, set up on entry (fresh files, outbox, database, shop, web server), closed on exit."""

    def __init__(self, directory: Path, port: int, smtp_port: int) -> None:
        self.directory = directory
        self.port = port
        self.smtp_port = smtp_port

    def __enter__(self) -> Demo:
        self.directory.mkdir(parents=True, exist_ok=True)
        for name in DEMO_FILES:
            (self.directory / name).unlink(missing_ok=True)
        for pattern in ("*.eml", "*.sms.txt"):
            for old in (self.directory / "outbox").glob(pattern):
                old.unlink()
        self.outbox = Outbox(self.directory / "outbox", self.smtp_port)
        try:
            self.outbox.start()
        except (OSError, RuntimeError) as exc:
            raise DemoError(f"cannot start the outbox SMTP server on port {self.smtp_port}: {exc}") from exc
        self.sms_outbox = SmsOutbox(self.directory / "outbox", script.TWILIO_SID, script.TWILIO_TOKEN)
        self.sms_outbox.start()
        self.settings = demo_settings(self.directory, self.port, self.outbox.url, self.sms_outbox.url)
        migrate.upgrade(self.settings.database_url)
        self.runtime = Runtime.build(self.settings)
        with self.runtime.session() as session, session.begin():
            shop = register_shop(
                session,
                self.runtime.secret_box,
                script.SHOP,
                access_token=secrets.token_urlsafe(16),  # the demo never calls the Admin API
                webhook_secret=None,
                now=self.runtime.clock.now(),
            )
            shop.policy = dict(script.ALL_DAY) | script.DOUBLE_OPT_IN
            self.pixel_key = ensure_pixel_key(shop)
            # The merchant's Twilio account, answered by the local SMS outbox.
            sms = {"account_sid": script.TWILIO_SID, "auth_token": script.TWILIO_TOKEN, "from": script.TWILIO_FROM}
            connect(session, self.runtime.secret_box, shop, parse_account("sms", sms), self.runtime.clock.now())
            set_wording(session, shop, self.runtime.flows, "abandoned_checkout", "second_reminder", "sms",
                        script.SECOND_REMINDER_SMS, self.runtime.clock.now())  # fmt: skip
        try:
            self.server = make_server("127.0.0.1", self.port, create_app(self.runtime), threaded=True)
        except OSError as exc:
            self.outbox.stop()
            self.sms_outbox.stop()
            self.runtime.close()
            raise DemoError(f"cannot serve on port {self.port} ({exc.strerror}); choose another with --port") from exc
        threading.Thread(target=self.server.serve_forever, name="demo-web", daemon=True).start()
        return self

    def play(self) -> DemoResult:
        """Post the scripted story to the running app, then run the worker on each day of the demo."""
        start = datetime.now(UTC)
        pixel = script.post_browsing(f"http://127.0.0.1:{self.port}", self.pixel_key, start)
        posted = script.post_all(
            f"http://127.0.0.1:{self.port}", self.settings.shopify_api_secret, script.journey(start)
        )
        signed_up = script.sign_up(f"http://127.0.0.1:{self.port}")
        signups = [f"{script.IDA_EMAIL} signed up (HTTP {signed_up}); a confirmation email is on its way"]
        days = []
        for day in script.DAYS:
            # In Hedy's daytime (her texts may only go out then), and a little later each day, so that a step due
            # exactly N days after a send on an earlier day is due.
            at = script.in_texting_hours(start + timedelta(days=day)) + timedelta(minutes=10 * day)
            clock = FrozenClock(at)
            runtime = Runtime(self.settings, self.runtime.engine, self.runtime.secret_box, clock)
            days.append((day, Worker(runtime).run_once()))
            if len(signups) == 1:  # once the confirmation email is out (the day its job is due), Ida confirms
                signups += script.confirm_sign_up(self.outbox.messages())
        with self.runtime.read_session() as session:
            journeys = session.exec(select(Journey).order_by(col(Journey.flow), col(Journey.email), col(Journey.id)))
            outcomes = [
                f"{j.flow} / {j.email or j.subject}: {j.state}"
                + (f" at {j.step}" if j.state != "done" and j.step else "")
                + f" ({j.reason})"
                for j in journeys
            ]
            browsed = session.exec(select(PixelEvent).where(PixelEvent.client_id == script.ADA_BROWSER)).all()
        linked = {e.contact_id for e in browsed} - {None}
        storefront = [f"{len(browsed)} events from Ada's browser (HTTP {pixel}), "
                      + ("linked to her through her checkout" if linked else "not linked to anyone")]  # fmt: skip
        return DemoResult(posted, days, outcomes, self.outbox.messages() + self.sms_outbox.messages(), signups,
                          storefront)  # fmt: skip

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.outbox.stop()
        self.sms_outbox.stop()
        self.runtime.close()


def describe(result: DemoResult, app_url: str) -> str:
    statuses = Counter(status for _topic, status in result.posted)
    lines = [
        f"Webhooks posted: {len(result.posted)} ({', '.join(f'{n} x HTTP {s}' for s, n in sorted(statuses.items()))})",
        *(f"Day {day}: {summary.describe()}" for day, summary in result.days),
        "Storefront (web pixel):",
        *(f"  {line}" for line in result.storefront),
        "Sign-up form:",
        *(f"  {line}" for line in result.signups),
        "Journeys:",
        *(f"  {outcome}" for outcome in result.outcomes),
        "Outbox:",
        *(f"  {path}" for path in result.outbox),
        f"Open {app_url}/demo to see every event, decision and message.",
    ]
    return "\n".join(lines)
