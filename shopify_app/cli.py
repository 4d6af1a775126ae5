"""The `chorus` command."""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from functools import wraps
from pathlib import Path
from typing import Any, TextIO, TypeVar

import click
from sqlmodel import col, select

from connectors.delivery import DeliveryError
from flows.definition import DefinitionError
from flows.policy import InvalidPolicy
from shopify_app.clock import Clock, FrozenClock, parse_instant
from shopify_app.crypto import generate_key
from shopify_app.events.replay import requeue_events
from shopify_app.journeys.budgets import month_spend
from shopify_app.journeys.preview import preview
from shopify_app.journeys.timeline import consent_history, person, timeline
from shopify_app.journeys.tuning import (
    InvalidChange,
    StepChange,
    UnknownFlow,
    UnknownStep,
    configure,
    describe,
    load_tunings,
)
from shopify_app.key_rotation import rotate_secrets
from shopify_app.messaging.accounts import (
    PROVIDERS,
    InvalidAccount,
    accounts_of,
    connect,
    describe_channels,
    disconnect,
    parse_account,
    rates_of,
    reset_rates,
    set_rate,
    set_whatsapp_template,
    templates_of,
)
from shopify_app.messaging.costs import (
    RATED_CHANNELS,
    WHATSAPP_CATEGORIES,
    InvalidRates,
    describe_rates,
    parse_rate,
)
from shopify_app.messaging.directory import CannotTest, directory_for, reachable_channels, send_test_message
from shopify_app.messaging.wording import (
    WORDED_CHANNELS,
    InvalidWording,
    NotWorded,
    describe_wording,
    reset_wording,
    set_wording,
)
from shopify_app.models import EventStatus, Shop, WebhookEvent
from shopify_app.runtime import Runtime
from shopify_app.settings import ConfigError, Settings
from shopify_app.shop_policy import policy_of, set_policy
from shopify_app.shops import InvalidShopDomain, register_shop

F = TypeVar("F", bound=Callable[..., Any])


def load_settings() -> Settings:
    try:
        return Settings.from_env(os.environ)
    except ConfigError as exc:
        click.echo(f"chorus: {exc}", err=True)
        sys.exit(2)


def with_runtime(func: F) -> F:
    """Give the command a runtime built from the environment, and close it afterwards."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        settings = load_settings()
        configure_logging(settings.log_level)
        runtime = build_runtime(settings)
        try:
            return func(runtime, *args, **kwargs)
        finally:
            runtime.close()

    return wrapper  # type: ignore[return-value]


def build_runtime(settings: Settings, clock: Clock | None = None) -> Runtime:
    try:
        return Runtime.build(settings, clock=clock)
    except DefinitionError as exc:
        click.echo(f"chorus: a flow definition is unusable:\n{exc}", err=True)
        sys.exit(2)


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)


@click.group()
def main() -> None:
    """Chorus: cross-channel marketing automation for Shopify stores."""


@main.command()
@click.option("--port", default=8000, show_default=True, help="Port of the web app on localhost.")
@click.option("--smtp-port", default=0, help="Port of the local outbox SMTP server (default: any free port).")
@click.option(
    "--directory", default="demo", show_default=True, type=click.Path(path_type=Path), help="Where its files go."
)
@click.option("--no-serve", is_flag=True, help="Play the journey, print what happened and exit.")
def demo(port: int, smtp_port: int, directory: Path, no_serve: bool) -> None:
    """Run Chorus on its embedded defaults: SQLite, a demo shop, a scripted journey, a local outbox."""
    from shopify_app.demo.command import Demo, DemoError, describe, free_port

    configure_logging("WARNING")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # its request log would bury the summary
    try:
        with Demo(directory, port, smtp_port or free_port()) as running:
            click.echo(describe(running.play(), running.settings.app_url))
            if not no_serve:
                click.echo("Serving; press Ctrl-C to stop.")
                threading.Event().wait()
    except DemoError as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        pass


@main.command()
def web() -> None:
    """Serve the app with gunicorn on 0.0.0.0:$PORT."""
    from shopify_app.web_server import ChorusServer

    settings = load_settings()
    configure_logging(settings.log_level)
    ChorusServer(settings).run()


@main.command()
@click.option("--once", is_flag=True, help="Do everything due now, until nothing more is due, then exit.")
@click.option("--now", "now_text", metavar="ISO-8601", help="With --once: freeze the clock at this instant.")
def worker(once: bool, now_text: str | None) -> None:
    """Process stored webhooks and scheduled work (one scheduler per process)."""
    from shopify_app.worker import Worker, tune_collector

    if now_text and not once:
        raise click.UsageError("--now goes with --once")
    settings = load_settings()
    configure_logging(settings.log_level)
    try:
        clock = FrozenClock(parse_instant(now_text)) if now_text else None
    except ValueError:
        raise click.BadParameter(f"{now_text!r} is not an ISO-8601 instant", param_hint="--now") from None
    runtime = build_runtime(settings, clock=clock)
    try:
        work = Worker(runtime)
        tune_collector()
        if once:
            if clock is None:
                runtime.clock = FrozenClock(runtime.clock.now())
            click.echo(work.run_once().describe())
        else:
            work.run_forever()
    finally:
        runtime.close()


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Apply migrations (the release phase runs this)."""
    from shopify_app.db import migrate  # alembic: only these commands need it, not every worker's start

    migrate.upgrade(load_settings().database_url, revision)


@db.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Revert migrations down to REVISION."""
    from shopify_app.db import migrate

    migrate.downgrade(load_settings().database_url, revision)


@main.group()
def shops() -> None:
    """The shops Chorus serves."""


@shops.command("add")
@click.argument("domain")
@click.option("--token", required=True, help="An Admin API access token (e.g. from a custom app).")
@click.option("--webhook-secret", help="The secret that app signs webhooks with (default: SHOPIFY_API_SECRET).")
@with_runtime
def shops_add(runtime: Runtime, domain: str, token: str, webhook_secret: str | None) -> None:
    """Register or update a shop. Makes no network call."""
    with runtime.session() as session, session.begin():
        try:
            shop = register_shop(
                session,
                runtime.secret_box,
                domain,
                access_token=token,
                webhook_secret=webhook_secret,
                now=runtime.clock.now(),
            )
        except InvalidShopDomain as exc:
            raise click.BadParameter(str(exc), param_hint="DOMAIN") from None
        click.echo(f"shop {shop.domain} registered")


@shops.command("set")
@click.argument("domain")
@click.option("--cap", help="Marketing messages per contact across channels and flows, e.g. 1/16h,5/7d.")
@click.option("--cap-channel", "cap_channel", multiple=True, help="A channel's own cap, e.g. sms=2/7d (repeat).")
@click.option("--quiet-hours", "quiet_hours", help="Sending windows, recipient's time: email=09:00-20:00,sms=...")
@click.option("--budget", help="Monthly budget per paid channel, e.g. sms=50,whatsapp=30 (none removes one).")
@click.option("--region", multiple=True, help="A country's channel order, e.g. BR=whatsapp,sms (repeat).")
@click.option(
    "--growth-threshold", "growth_threshold", help="Monthly active customers from which SMS and WhatsApp join."
)
@click.option(
    "--double-opt-in", "double_opt_in", help="Channels whose Chorus opt-ins need confirming: email (none: off)."
)
@with_runtime
def shops_set(runtime: Runtime, domain: str, **options: Any) -> None:
    """Set the shop's channel policy; what is not given stays as it is."""
    names = {"cap": "caps", "cap_channel": "channel_caps", "budget": "budgets", "region": "regions"}
    changes = {names.get(k, k): list(v) if isinstance(v, tuple) else v for k, v in options.items() if v}
    if not changes:
        raise click.UsageError("nothing to set: see chorus shops set --help")
    shop_id, _shop = _registered_shop(runtime, domain)
    with runtime.session() as session, session.begin():
        shop = session.get(Shop, shop_id, with_for_update=True)
        assert shop is not None
        try:
            policy = set_policy(shop, changes)
        except InvalidPolicy as exc:
            raise click.UsageError("\n".join(exc.problems)) from None
    click.echo(_policy_lines(policy.as_json()))


@shops.command("show")
@click.argument("domain")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@with_runtime
def shops_show(runtime: Runtime, domain: str, as_json: bool) -> None:
    """The shop's channel policy, defaults included, and this month's spend on each budgeted channel."""
    shop_id, shop = _registered_shop(runtime, domain)
    policy = policy_of(shop)
    with runtime.read_session() as session:
        spend = month_spend(session, shop_id, policy.budgets, runtime.clock.now(), shop.iana_timezone)
    signup = f"{runtime.settings.app_url.rstrip('/')}/subscribe/{shop.domain}"
    spent = {
        channel: {"amounts": {c: str(a) for c, a in sorted(s.amounts.items())}, "messages": s.messages}
        for channel, s in spend.items()
    }
    if as_json:
        click.echo(json.dumps({"domain": shop.domain, "policy": policy.as_json(), "spent": spent,
                               "signup_url": signup}, indent=2))  # fmt: skip
        return
    shown = [f"{ch}={' + '.join(f'{a} {c}' for c, a in sorted(s.amounts.items())) or '0'} ({s.messages} messages)"
             for ch, s in spend.items()]  # fmt: skip
    click.echo(_policy_lines(policy.as_json()) + f"\nspent this month: {', '.join(shown) or 'no budgets'}"
               f"\nsign-up form: {signup}")  # fmt: skip


def _policy_lines(described: Mapping[str, Any]) -> str:
    def pairs(values: Mapping[str, Any]) -> str:
        return ", ".join(f"{k}={','.join(v) if isinstance(v, list) else v}" for k, v in values.items()) or "none"

    return "\n".join([
        f"caps: {', '.join(described['caps']) or 'none'}",
        f"channel caps: {pairs(described['channel_caps'])}",
        f"quiet hours: {pairs(described['quiet_hours'])}",
        f"budgets: {pairs(described['budgets'])}",
        f"regions: {pairs(described['regions'])}",
        f"growth threshold: {described['growth_threshold']} monthly active customers",
        f"double opt-in: {', '.join(described['double_opt_in']) or 'none'}",
    ])  # fmt: skip


@shops.command("list")
@with_runtime
def shops_list(runtime: Runtime) -> None:
    """List shops and whether they are installed."""
    with runtime.read_session() as session:
        for shop in session.exec(select(Shop).order_by(Shop.domain)):
            state = "installed" if shop.installed else f"uninstalled {_when(shop.uninstalled_at)}"
            click.echo(f"{shop.domain}\t{state}")


@shops.command("sync")
@click.argument("domain")
@click.option("--restart", is_flag=True, help="Start the backfill again from the beginning.")
@with_runtime
def shops_sync(runtime: Runtime, domain: str, restart: bool) -> None:
    """Backfill the mirror from the Admin API: products, and recent customers and orders.

    Resumable: after an interruption, run it again to continue where it stopped.
    """
    from shopify_app.shopify.access import ShopifyAccess
    from shopify_app.shopify.admin_api import AdminApiError
    from shopify_app.sync import BACKFILL, Progress, StoreSync

    shop_id, shop = _registered_shop(runtime, domain)

    def report(progress: Progress) -> None:
        click.echo(f"{progress.resource}: {progress.synced} synced{', done' if progress.done else ''}")

    sync = StoreSync(ShopifyAccess(runtime), on_progress=report)
    if restart:
        sync.restart(shop_id, BACKFILL)
    try:
        while not (result := sync.run_slice(shop_id, BACKFILL, runtime.clock.now())).finished:
            if result.waiting:
                click.echo("products: Shopify is preparing the catalogue export...")
                time.sleep(10)
    except AdminApiError as exc:
        raise click.ClickException(f"sync of {shop.domain} interrupted: {exc}; run it again to resume") from None
    click.echo(f"{shop.domain}: backfill complete")


@shops.command("doctor")
@click.argument("domain")
@with_runtime
def shops_doctor(runtime: Runtime, domain: str) -> None:
    """Check a shop's webhook subscriptions, granted scopes and web pixel against what Chorus needs."""
    from shopify_app.shopify.access import ShopifyAccess
    from shopify_app.shopify.admin_api import AdminApiError
    from shopify_app.shopify.doctor import diagnose, report

    shop_id, shop = _registered_shop(runtime, domain)
    try:
        diagnosis = diagnose(ShopifyAccess(runtime).admin_api(shop_id), runtime.settings, shop)
    except AdminApiError as exc:
        raise click.ClickException(f"cannot ask Shopify about {shop.domain}: {exc}") from None
    for line in report(diagnosis, runtime.settings):
        click.echo(line)
    if not diagnosis.healthy:
        sys.exit(1)


@main.group()
def events() -> None:
    """Stored webhook events."""


@events.command("list")
@click.option("--status", type=click.Choice([s.value for s in EventStatus]), help="Only events in this state.")
@click.option("--shop", "shop_domain", help="Only this shop's events.")
@click.option("--limit", default=50, show_default=True)
@with_runtime
def events_list(runtime: Runtime, status: str | None, shop_domain: str | None, limit: int) -> None:
    """The newest events with their state and last error."""
    query = select(WebhookEvent).order_by(col(WebhookEvent.id).desc()).limit(limit)
    if status:
        query = query.where(WebhookEvent.status == status)
    if shop_domain:
        query = query.where(WebhookEvent.shop_domain == shop_domain)
    with runtime.read_session() as session:
        for event in session.exec(query):
            click.echo(
                f"{event.id}\t{_when(event.received_at)}\t{event.shop_domain}\t{event.topic}\t"
                f"{event.status}\tattempts={event.attempts}\t{event.last_error or ''}"
            )


@events.command("replay")
@click.option("--id", "ids", type=int, multiple=True, help="Only these events (repeatable).")
@click.option("--topic", help="Only events of this topic.")
@click.option("--shop", "shop_domain", help="Only this shop's events.")
@click.option("--unhandled", is_flag=True, help="Also re-queue events stored as unhandled.")
@with_runtime
def events_replay(
    runtime: Runtime, ids: tuple[int, ...], topic: str | None, shop_domain: str | None, unhandled: bool
) -> None:
    """Put parked events back in the queue with a fresh retry budget."""
    statuses = [EventStatus.PARKED, EventStatus.UNHANDLED] if unhandled else [EventStatus.PARKED]
    with runtime.session() as session, session.begin():
        count = requeue_events(session, statuses=statuses, ids=ids, topic=topic, shop_domain=shop_domain)
    click.echo(f"{count} event(s) re-queued")


@main.group()
def flows() -> None:
    """The flows of a shop: list, switch, tune, preview."""


SHOP_OPTION = click.option("--shop", "domain", required=True, help="The shop's myshopify domain.")


@flows.command("list")
@SHOP_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@with_runtime
def flows_list(runtime: Runtime, domain: str, as_json: bool) -> None:
    """Every flow, on or off, with its steps' delays, switches and channels."""
    shop_id, _shop = _registered_shop(runtime, domain)
    with runtime.read_session() as session:
        tunings = load_tunings(session, shop_id, runtime.flows)
    described = [describe(definition, tunings[definition.name]) for definition in runtime.flows]
    if as_json:
        click.echo(json.dumps({"flows": described}, indent=2))
        return
    for flow in described:
        click.echo(f"{flow['name']}\t{'on' if flow['enabled'] else 'off'}\t{flow['description']}")
        for step in flow["steps"]:
            state = "" if "enabled" not in step else ("on" if step["enabled"] else "off")
            channels = ",".join(step.get("channels", []))
            click.echo(f"  {step['id']}\t{step['kind']}\t{step['delay']} after {step['anchor']}\t{state}\t{channels}")


@flows.command("enable")
@click.argument("flow")
@SHOP_OPTION
@click.option("--delay", "delay_minutes", type=click.IntRange(min=1), help="Minutes to wait before the first step.")
@with_runtime
def flows_enable(runtime: Runtime, flow: str, domain: str, delay_minutes: int | None) -> None:
    """Switch FLOW on for a shop (new shops start with the shipped flows on)."""
    changes = {}
    definition = runtime.flows.get(flow)
    if delay_minutes is not None and definition is not None:
        changes[definition.steps[0].id] = StepChange(delay=timedelta(minutes=delay_minutes))
    _configure(runtime, flow, domain, enabled=True, steps=changes)


@flows.command("disable")
@click.argument("flow")
@SHOP_OPTION
@with_runtime
def flows_disable(runtime: Runtime, flow: str, domain: str) -> None:
    """Switch FLOW off for a shop: nothing more is sent; its journeys end when next due."""
    _configure(runtime, flow, domain, enabled=False, steps={})


@flows.command("set")
@click.argument("flow")
@SHOP_OPTION
@click.option("--step", "step_id", required=True, help="The step to change.")
@click.option("--delay", "delay_minutes", type=click.IntRange(min=0), help="Minutes its wait lasts.")
@click.option("--on/--off", "enabled", default=None, help="Switch the step on or off (a send step).")
@click.option("--channels", help="Channels in order of preference, e.g. email,sms.")
@with_runtime
def flows_set(
    runtime: Runtime, flow: str, domain: str, step_id: str, delay_minutes: int | None, enabled: bool | None,
    channels: str | None,
) -> None:  # fmt: skip
    """Tune one step of FLOW: its delay, on or off, its channels."""
    change = StepChange(
        delay=timedelta(minutes=delay_minutes) if delay_minutes is not None else None,
        enabled=enabled,
        channels=tuple(c.strip() for c in channels.split(",") if c.strip()) if channels is not None else None,
    )
    if change == StepChange():
        raise click.UsageError("say what to change: --delay, --on/--off or --channels")
    _configure(runtime, flow, domain, enabled=None, steps={step_id: change})


@flows.command("preview")
@click.argument("flow")
@SHOP_OPTION
@click.option("--days", default=30, show_default=True, type=click.IntRange(1, 365), help="How far back to replay.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@with_runtime
def flows_preview(runtime: Runtime, flow: str, domain: str, days: int, as_json: bool) -> None:
    """What FLOW, as configured now, would have done with the shop's last DAYS: nothing is written or sent."""
    definition = runtime.flows.get(flow)
    if definition is None:
        raise click.UsageError(f"unknown flow {flow!r}; known: {', '.join(runtime.flows.names)}")
    shop_id, shop = _registered_shop(runtime, domain)
    with runtime.read_session() as session:
        configured = reachable_channels(session, runtime.settings, shop_id)
        result = preview(session, shop, definition, days=days, configured=configured, now=runtime.clock.now())
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(f"{flow}, last {days} days: {result['entered']} entered")
    for step in result["steps"]:
        extra = [f"skipped {r} {n}" for r, n in step["skipped"].items()]
        extra += [f"exited {r} {n}" for r, n in step["exited"].items()]
        click.echo(
            f"  {step['step']}: {step['sent']} sent, {step['waiting']} waiting{'; ' if extra else ''}{', '.join(extra)}"
        )


def _configure(runtime: Runtime, flow: str, domain: str, *, enabled: bool | None, steps: dict[str, StepChange]) -> None:
    shop_id, _shop = _registered_shop(runtime, domain)
    with runtime.session() as session, session.begin():
        try:
            tuning = configure(
                session, shop_id, runtime.flows, flow, enabled=enabled, steps=steps, now=runtime.clock.now()
            )
        except (UnknownFlow, UnknownStep, InvalidChange) as exc:
            raise click.UsageError(str(exc)) from None
    definition = runtime.flows[flow]
    summary = describe(definition, tuning)
    first = summary["steps"][0]
    click.echo(
        f"{flow} {'enabled' if tuning.enabled else 'disabled'} for {domain}, {first['id']} after {first['delay']}"
    )
    for step_id in steps:
        step = next(s for s in summary["steps"] if s["id"] == step_id)
        state = "" if "enabled" not in step else (", on" if step["enabled"] else ", off")
        channels = f", channels {','.join(step['channels'])}" if "channels" in step else ""
        click.echo(f"  {step_id}: {step['delay']} after {step['anchor']}{state}{channels}")


@main.group()
def customers() -> None:
    """One customer of a shop."""


@customers.command("timeline")
@SHOP_OPTION
@click.option("--email", help="The customer's email address.")
@click.option("--phone", help="The customer's phone number.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@with_runtime
def customers_timeline(runtime: Runtime, domain: str, email: str | None, phone: str | None, as_json: bool) -> None:
    """Every webhook, decision and message about the customer, oldest first."""
    if (email is None) == (phone is None):
        raise click.UsageError("name the customer with --email or --phone (one of them)")
    shop_id, _shop = _registered_shop(runtime, domain)
    address = email.strip().lower() if email else None
    with runtime.read_session() as session:
        who = person(session, shop_id, email=address, phone=phone)
        described = who.describe(consent_history(session, shop_id, who))
        entries = timeline(session, shop_id, email=address, phone=phone)
    if as_json:
        click.echo(json.dumps({**described, "entries": entries}, indent=2))
        return
    for contact in described["contacts"]:
        known = ", ".join(f"{i['kind']} {i['value']}" for i in contact["identities"])
        zone = contact["timezone"] or "the shop's"
        click.echo(f"contact {contact['id']}: {known} (time zone: {zone})")
    for record in described["consent_history"]:
        click.echo(f"{record['at']}\tconsent\t{record['channel']}\t{record['state']}\t{record['source']}")
    for entry in entries:
        where = "/".join(p for p in (entry["flow"], entry["step"]) if p)
        click.echo(f"{entry['at']}\t{entry['kind']}\t{where or '-'}\t{entry['outcome']}\t{entry['reason'] or ''}")


@main.group()
def channels() -> None:
    """A shop's own SMS, WhatsApp and email provider accounts."""


@channels.group("connect")
def channels_connect() -> None:
    """Connect a provider account (replacing the channel's previous one); secrets are stored encrypted."""


@channels_connect.command("sms")
@SHOP_OPTION
@click.option("--account-sid", required=True, help="The Twilio account SID (AC…).")
@click.option("--auth-token", required=True, help="The account's auth token.")
@click.option("--from", "sender", help="The Twilio number messages come from (E.164), or:")
@click.option("--messaging-service-sid", help="A Messaging Service (MG…) that picks the sender.")
@with_runtime
def channels_connect_sms(
    runtime: Runtime, domain: str, account_sid: str, auth_token: str, sender: str | None,
    messaging_service_sid: str | None,
) -> None:  # fmt: skip
    """SMS through the merchant's Twilio account."""
    values = {"account_sid": account_sid, "auth_token": auth_token, "from": sender,
              "messaging_service_sid": messaging_service_sid}  # fmt: skip
    _connect_channel(runtime, domain, "sms", values)


@channels_connect.command("whatsapp")
@SHOP_OPTION
@click.option("--phone-number-id", required=True, help="The WhatsApp Business phone number id.")
@click.option("--access-token", required=True, help="A system user's access token.")
@click.option("--app-secret", required=True, help="The Meta app's secret (signs the webhooks).")
@click.option("--verify-token", required=True, help="The token Meta's webhook verification echoes.")
@with_runtime
def channels_connect_whatsapp(
    runtime: Runtime, domain: str, phone_number_id: str, access_token: str, app_secret: str, verify_token: str
) -> None:
    """WhatsApp through the merchant's Cloud API number."""
    _connect_channel(runtime, domain, "whatsapp", {"phone_number_id": phone_number_id, "access_token": access_token,
                                                   "app_secret": app_secret, "verify_token": verify_token})  # fmt: skip


@channels_connect.command("email")
@SHOP_OPTION
@click.option("--provider", type=click.Choice(["sendgrid"]), required=True)
@click.option("--api-key", required=True, help="A SendGrid API key (SG.…) allowed to send mail.")
@click.option("--from", "sender", required=True, help="The address messages come from (a verified sender).")
@click.option("--event-public-key", required=True, help="The event webhook's verification key (base64).")
@with_runtime
def channels_connect_email(
    runtime: Runtime, domain: str, provider: str, api_key: str, sender: str, event_public_key: str
) -> None:
    """Email through the merchant's SendGrid account instead of the deployment's SMTP server."""
    _connect_channel(runtime, domain, "email", {"provider": provider, "api_key": api_key, "from": sender,
                                                "event_public_key": event_public_key})  # fmt: skip


@channels.command("list")
@SHOP_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@with_runtime
def channels_list(runtime: Runtime, domain: str, as_json: bool) -> None:
    """Each channel, its state, and the callback URLs to paste into the provider's console."""
    shop_id, shop = _registered_shop(runtime, domain)
    with runtime.read_session() as session:
        described = describe_channels(
            accounts_of(session, shop_id), shop, runtime.settings.app_url, smtp_default=bool(runtime.settings.smtp_url),
            templates=templates_of(session, shop_id), rates=rates_of(session, shop_id),
        )  # fmt: skip
    if as_json:
        click.echo(json.dumps({"channels": described}, indent=2))
        return
    for channel in described:
        shown = ", ".join(f"{k} {v}" for k, v in channel.get("settings", {}).items())
        click.echo(f"{channel['channel']}\t{channel['state']}\t{channel.get('provider', '-')}\t{shown}".rstrip())
        for name, url in channel.get("callbacks", {}).items():
            click.echo(f"  {name} callback: {url}")
        for t in channel.get("templates", []):
            click.echo(
                f"  {t['flow']}/{t['step']}: template {t['name']} ({t['language']}), {len(t['params'])} parameter(s),"
                f" {t['category']}"
            )
        for rate in channel.get("rates", []):
            click.echo(f"  rate {_rate_line(rate)}")


@channels.command("disconnect")
@click.argument("channel", type=click.Choice(list(PROVIDERS)))
@SHOP_OPTION
@with_runtime
def channels_disconnect(runtime: Runtime, channel: str, domain: str) -> None:
    """Forget the channel's account and its secrets; its messages wait for another channel."""
    shop_id, _shop = _registered_shop(runtime, domain)
    with runtime.session() as session, session.begin():
        removed = disconnect(session, shop_id, channel)
    if not removed:
        raise click.UsageError(f"{channel} is not connected for {domain}")
    click.echo(f"{channel} disconnected")


@channels.group("templates")
def channels_templates() -> None:
    """The approved WhatsApp templates the shop's flow steps go out as."""


@channels_templates.command("set")
@SHOP_OPTION
@click.option("--flow", required=True, help="The flow, e.g. abandoned_checkout.")
@click.option("--step", required=True, help="Its send step, e.g. reminder.")
@click.option("--name", required=True, help="The template's name, as approved in WhatsApp Manager.")
@click.option("--language", required=True, help="Its language code, e.g. en_US.")
@click.option("--param", "params", multiple=True, help="The body's next parameter, e.g. '{{first_name}}' (repeat).")
@click.option("--category", type=click.Choice(WHATSAPP_CATEGORIES), default="marketing", show_default=True,
              help="The category Meta approved it in: what it is priced at.")  # fmt: skip
@with_runtime
def channels_templates_set(
    runtime: Runtime, domain: str, flow: str, step: str, name: str, language: str, params: tuple[str, ...],
    category: str,
) -> None:  # fmt: skip
    """Send FLOW's STEP on WhatsApp as the template NAME, its parameters rendered from the message's content."""
    shop_id, _shop = _registered_shop(runtime, domain)
    with runtime.session() as session, session.begin():
        shop = session.get(Shop, shop_id, with_for_update=True)
        assert shop is not None
        try:
            set_whatsapp_template(session, shop, runtime.flows, flow=flow, step=step, name=name, language=language,
                                  params=params, now=runtime.clock.now(), category=category)  # fmt: skip
        except InvalidAccount as exc:
            raise click.UsageError("\n".join(exc.problems)) from None
    click.echo(f"{flow}/{step} goes out on WhatsApp as {name} ({language}, {category}) with {len(params)} parameter(s)")


@channels.group("rates")
def channels_rates() -> None:
    """What the shop pays per message (its provider contract), in place of the shipped estimates."""


@channels_rates.command("set")
@click.argument("channel", type=click.Choice(RATED_CHANNELS))
@SHOP_OPTION
@click.option("--country", required=True, help="The recipients' country (ISO 3166, e.g. US), or * for every other.")
@click.option("--category", type=click.Choice(WHATSAPP_CATEGORIES), help="WhatsApp only (marketing unless given).")
@click.option("--amount", required=True, help="Per SMS segment, or per WhatsApp message, e.g. 0.0100.")
@click.option("--currency", required=True, help="The amount's currency (ISO 4217, e.g. USD).")
@with_runtime
def channels_rates_set(
    runtime: Runtime, channel: str, domain: str, country: str, category: str | None, amount: str, currency: str
) -> None:
    """The shop pays AMOUNT for CHANNEL's messages to the country; its next message is estimated at it."""
    shop_id, _shop = _registered_shop(runtime, domain)
    values = {"country": country, "category": category, "amount": amount, "currency": currency}
    try:
        rate = parse_rate(channel, {k: v for k, v in values.items() if v is not None})
    except InvalidRates as exc:
        raise click.UsageError("\n".join(exc.problems)) from None
    with runtime.session() as session, session.begin():
        shop = session.get(Shop, shop_id, with_for_update=True)  # one change of the shop at a time
        assert shop is not None
        row = set_rate(session, shop_id, channel, rate, runtime.clock.now())
    click.echo(f"{channel} rate {_rate_line(describe_rates([row])[0])}")


@channels_rates.command("list")
@SHOP_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@with_runtime
def channels_rates_list(runtime: Runtime, domain: str, as_json: bool) -> None:
    """The shop's own rates, per channel; where it has none, the shipped estimates apply."""
    shop_id, _shop = _registered_shop(runtime, domain)
    with runtime.read_session() as session:
        rates = {channel: describe_rates(rates_of(session, shop_id, channel)) for channel in RATED_CHANNELS}
    if as_json:
        click.echo(json.dumps({"rates": rates}, indent=2))
        return
    for channel, own in rates.items():
        click.echo(f"{channel}: " + ("its own rates" if own else "the shipped estimates"))
        for rate in own:
            click.echo(f"  {_rate_line(rate)}")


@channels_rates.command("reset")
@click.argument("channel", type=click.Choice(RATED_CHANNELS))
@SHOP_OPTION
@click.option("--country", help="Only this country's rates (ISO 3166, or *); every one unless given.")
@with_runtime
def channels_rates_reset(runtime: Runtime, channel: str, domain: str, country: str | None) -> None:
    """Forget the shop's own rates for CHANNEL: the shipped estimates apply to its next messages."""
    shop_id, _shop = _registered_shop(runtime, domain)
    with runtime.session() as session, session.begin():
        shop = session.get(Shop, shop_id, with_for_update=True)
        assert shop is not None
        removed = reset_rates(session, shop_id, channel, runtime.clock.now(), country=country)
    where = f" for {country}" if country is not None else ""
    click.echo(f"{channel}: {removed} rate(s){where} reset; the shipped estimates apply")


def _rate_line(rate: Mapping[str, str]) -> str:
    where = " ".join(part for part in (rate["country"], rate["category"]) if part)
    return f"{where}: {rate['amount']} {rate['currency']}"


@channels.command("test")
@click.argument("channel", type=click.Choice(list(PROVIDERS)))
@SHOP_OPTION
@click.option("--to", "to", required=True, help="Where to send it: a phone number (E.164) or an email address.")
@with_runtime
def channels_test(runtime: Runtime, channel: str, domain: str, to: str) -> None:
    """Send one test message on the shop's channel (it bypasses consent and is never counted)."""
    shop_id, _shop = _registered_shop(runtime, domain)
    directory = directory_for(runtime.settings, runtime.secret_box)
    with runtime.read_session() as session:
        shop = session.get(Shop, shop_id)
        assert shop is not None
        try:
            handover = send_test_message(directory, session, shop, channel, to, runtime.clock.now())
        except CannotTest as exc:
            raise click.UsageError(str(exc)) from None
        except DeliveryError as exc:
            raise click.ClickException(f"not sent ({exc.failure}): {exc.detail}") from None
    click.echo(f"sent through {handover.provider}: {handover.provider_message_id or 'no message id given'}")


def _connect_channel(runtime: Runtime, domain: str, channel: str, values: dict[str, str | None]) -> None:
    shop_id, _shop = _registered_shop(runtime, domain)
    try:
        form = parse_account(channel, {k: v for k, v in values.items() if v is not None})
    except InvalidAccount as exc:
        raise click.UsageError("\n".join(exc.problems)) from None
    with runtime.session() as session, session.begin():
        shop = session.get(Shop, shop_id, with_for_update=True)
        assert shop is not None
        connect(session, runtime.secret_box, shop, form, runtime.clock.now())
    click.echo(f"{channel} connected through {form.provider}; callbacks: `chorus channels list --shop {domain}`")


@main.group()
def content() -> None:
    """The shop's own wording of a flow's step, per channel (in place of the shipped templates)."""


CONTENT_OPTIONS = [
    click.option("--flow", required=True, help="The flow, e.g. abandoned_checkout."),
    click.option("--step", required=True, help="Its send step, e.g. reminder."),
    click.option("--channel", required=True, type=click.Choice(WORDED_CHANNELS), help="The channel it words."),
]


def _content_options(command: Callable[..., None]) -> Callable[..., None]:
    for option in reversed(CONTENT_OPTIONS):
        command = option(command)
    return SHOP_OPTION(command)


@content.command("set")
@_content_options
@click.option("--file", "source", required=True, type=click.File(encoding="utf-8"),
              help="The template: for email the blocks subject, html and text; for SMS the message.")  # fmt: skip
@with_runtime
def content_set(runtime: Runtime, domain: str, flow: str, step: str, channel: str, source: TextIO) -> None:
    """Word FLOW's STEP on CHANNEL for the shop; refused, with what is wrong, unless it renders for an example
    customer."""
    shop_id, _shop = _registered_shop(runtime, domain)
    with runtime.session() as session, session.begin():
        shop = session.get(Shop, shop_id, with_for_update=True)
        assert shop is not None
        try:
            kept = set_wording(session, shop, runtime.flows, flow, step, channel, source.read(), runtime.clock.now())
        except (InvalidWording, NotWorded) as exc:
            problems = exc.problems if isinstance(exc, InvalidWording) else [str(exc)]
            raise click.UsageError("\n".join(problems)) from None
    click.echo(f"{flow}/{step} on {channel} now uses the shop's wording; for an example customer:")
    click.echo(_shown(kept.preview))


@content.command("show")
@_content_options
@with_runtime
def content_show(runtime: Runtime, domain: str, flow: str, step: str, channel: str) -> None:
    """The wording in force (the shop's, else the shipped one) and what it renders for an example customer."""
    shop_id, _shop = _registered_shop(runtime, domain)
    with runtime.read_session() as session:
        shop = session.get(Shop, shop_id)
        assert shop is not None
        try:
            described = describe_wording(session, shop, runtime.flows, flow, step, channel).as_json()
        except NotWorded as exc:
            raise click.UsageError(str(exc)) from None
    whose = "the shop's own" if described["template"] is not None else "shipped"
    click.echo(f"# {flow}/{step} on {channel}: {whose} wording\n{described['template'] or described['default']}")
    click.echo(f"# for an example customer:\n{_shown(described['preview'])}")


@content.command("reset")
@_content_options
@with_runtime
def content_reset(runtime: Runtime, domain: str, flow: str, step: str, channel: str) -> None:
    """Go back to the shipped wording."""
    shop_id, _shop = _registered_shop(runtime, domain)
    with runtime.session() as session, session.begin():
        shop = session.get(Shop, shop_id, with_for_update=True)
        assert shop is not None
        try:
            removed = reset_wording(session, shop, runtime.flows, flow, step, channel)
        except NotWorded as exc:
            raise click.UsageError(str(exc)) from None
    click.echo(f"{flow}/{step} on {channel} uses the shipped wording" + ("" if removed else " (it already did)"))


def _shown(preview: Mapping[str, Any]) -> str:
    if "problems" in preview:
        return "\n".join(f"problem: {p}" for p in preview["problems"])
    if "body" in preview:
        return f"{preview['body']}\n({preview['segments']} {preview['encoding']} segment(s))"
    return f"Subject: {preview['subject']}\n\n{preview['text']}"


@main.group()
def keys() -> None:
    """Encryption keys for secrets at rest."""


@keys.command("generate")
def keys_generate() -> None:
    """Print a new key for ENCRYPTION_KEY (put it first; keep older keys after it until rotated)."""
    click.echo(generate_key())


@keys.command("rotate")
@with_runtime
def keys_rotate(runtime: Runtime) -> None:
    """Re-encrypt every stored token and secret under the first ENCRYPTION_KEY; then drop the old keys."""
    with runtime.session() as session, session.begin():
        count = rotate_secrets(session, runtime.secret_box)
    click.echo(f"{count} secret(s) re-encrypted under the newest key")


def _registered_shop(runtime: Runtime, domain: str) -> tuple[int, Shop]:
    with runtime.read_session() as session:
        shop = session.exec(select(Shop).where(Shop.domain == domain.strip().lower())).first()
    if shop is None or shop.id is None:
        raise click.UsageError(f"no shop {domain!r}; register it with `chorus shops add`")
    return shop.id, shop


def _when(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment else "-"
