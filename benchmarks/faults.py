"""Fault injection: webhooks with duplicates and reordering arrive while workers are killed and PostgreSQL
restarts; afterwards nothing may be lost, duplicated, stale or sent twice. Not a benchmark (`make bench`
does not run it): a check of the processing model under the faults production sees.

Method. The events benchmark's mix (`--events`, default 3,000) is first handled in order by one in-process
pass on a reference schema. On a second schema, two `chorus worker` processes run with the real clock (so
every flow's steps are due and sent at once) and an SMTP server on loopback that records each message's
Message-ID; the deliveries go through the real intake reordered within windows of 40, 10% delivered again
with the same webhook id, 5% again with a new webhook id and the same event id (a doubled subscription), a
delivery that fails (PostgreSQL away) retried as Shopify would. Every 2 to 4 seconds one worker is
SIGKILLed and started again, until the deliveries are in and `--kill-seconds` have passed; with
`--restart-postgres COMMAND` (e.g. "pg_ctlcluster 15 main restart -m fast", run by an operator who may)
PostgreSQL is restarted once, 12 seconds in. When nothing is pending or due, the checks:

- every event stored once and done, with exactly one committed attempt;
- the mirror (customers, checkouts, orders, products, variants) equal to the in-order reference;
- no step of any journey with two live messages; every message recorded as sent received exactly once,
  and nothing received twice; what else was received is at most the messages left unknown (a worker
  killed during their hand-over: they may have left, and are never sent again).

    python -m benchmarks.faults [--events 3000] [--kill-seconds 40] [--restart-postgres COMMAND]

Exits 1 if a check fails. Needs PostgreSQL (as the benchmarks do).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aiosmtpd.controller import Controller

from benchmarks import workload
from benchmarks.events import seed_store
from benchmarks.support import (
    EMAIL_FROM,
    NOW,
    SECRET,
    SHOP,
    Webhook,
    bench_database,
    build_runtime,
    chorus_command,
    connect,
    free_port,
    iso,
    prepare_schema,
    process_env,
    store_webhooks,
)
from shopify_app.shopify.signatures import webhook_signature
from shopify_app.webhooks.intake import Delivery
from shopify_app.webhooks.views import build_intake
from shopify_app.worker import Worker

MIRROR = {
    "customers": "customer_id, email, phone, first_name, last_name, state, email_consent_state, "
    "email_consent_updated_at, sms_consent_state, last_order_at, updated_at",
    "checkouts": "token, cart_token, customer_id, email, buyer_accepts_marketing, line_items::text, total_price, "
    "updated_at, completed_at",
    "orders": "order_id, checkout_token, customer_id, email, financial_status, fulfillment_status, line_items::text, "
    "updated_at",
    "products": "product_id, title, status, updated_at",
    "variants": "variant_id, product_id, price, inventory_quantity, updated_at",
}
MESSAGE_ID = re.compile(rb"^Message-ID:\s*(\S+)", re.MULTILINE | re.IGNORECASE)
QUIET = """
SELECT (SELECT count(*) FROM webhook_events WHERE status = 'pending')
     + (SELECT count(*) FROM journeys WHERE state IN ('waiting', 'sending') AND due_at <= now())
     + (SELECT count(*) FROM messages WHERE status = 'sending')
"""


class Recorder:
    """An SMTP handler keeping each message's Message-ID."""

    def __init__(self) -> None:
        self.message_ids: list[str] = []
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        found = MESSAGE_ID.search(envelope.original_content or b"")
        with self._lock:
            self.message_ids.append(found.group(1).decode() if found else "?")
        return "250 Message accepted"


@contextmanager
def smtp_recorder() -> Iterator[tuple[str, Recorder]]:
    recorder = Recorder()
    port = free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port, ready_timeout=10)
    controller.start()
    try:
        yield f"smtp://127.0.0.1:{port}", recorder
    finally:
        controller.stop(no_assert=True)


def mirror_of(database_url: str) -> dict[str, list[tuple[Any, ...]]]:
    with connect(database_url) as connection:
        return {t: connection.execute(f"SELECT {c} FROM {t} ORDER BY 1").fetchall() for t, c in MIRROR.items()}  # noqa: S608  fixed names


def deliveries(webhooks: list[Webhook], rng: random.Random) -> list[tuple[int, str, str]]:
    """(webhook, webhook id, event id): reordered within windows of 40, some delivered twice."""
    order = list(range(len(webhooks)))
    for start in range(0, len(order), 40):
        window = order[start : start + 40]
        rng.shuffle(window)
        order[start : start + 40] = window
    planned: list[tuple[int, str, str]] = []
    for n in order:
        planned.append((n, f"wh-{n}", f"ev-{n}"))
        if rng.random() < 0.10:
            planned.append((n, f"wh-{n}", f"ev-{n}"))  # Shopify delivering again
        if rng.random() < 0.05:
            planned.append((n, f"wh-{n}-again", f"ev-{n}"))  # a doubled subscription
    return planned


def deliver(
    database_url: str, webhooks: list[Webhook], planned: list[tuple[int, str, str]], seen: Counter[str]
) -> None:
    runtime = build_runtime(database_url)
    intake = build_intake(runtime)
    try:
        for n, webhook_id, event_id in planned:
            webhook = webhooks[n]
            body = json.dumps(webhook.payload).encode()
            headers = {
                "X-Shopify-Topic": webhook.topic,
                "X-Shopify-Hmac-Sha256": webhook_signature(SECRET, body),
                "X-Shopify-Shop-Domain": SHOP,
                "X-Shopify-API-Version": "2026-07",
                "X-Shopify-Webhook-Id": webhook_id,
                "X-Shopify-Event-Id": event_id,
                "X-Shopify-Triggered-At": iso(webhook.at),
            }
            while True:  # what was not acknowledged, Shopify sends again
                try:
                    seen[str(intake.receive(Delivery.from_headers(headers, body)))] += 1
                    break
                except Exception as exc:
                    seen[f"failed ({type(exc).__name__}), sent again"] += 1
                    time.sleep(0.2)
            time.sleep(0.002)
    finally:
        runtime.close()


def quiet(database_url: str) -> bool:
    try:
        with connect(database_url) as connection:
            row = connection.execute(QUIET).fetchone()
    except Exception:
        return False
    return row is not None and row[0] == 0


def run(events: int, kill_seconds: float, restart_postgres: str | None, seed: int = 3) -> list[str]:
    """The run; returns the checks that failed (none: it held)."""
    rng = random.Random(seed)
    webhooks, products = workload.events_mix(events, seed=seed)
    with bench_database() as reference:
        prepare_schema(reference)
        seed_store(reference, products)
        store_webhooks(reference, webhooks)
        runtime = build_runtime(reference, at=NOW)
        try:
            Worker(runtime).run_once()
        finally:
            runtime.close()
        expected = mirror_of(reference)

    with bench_database() as url, smtp_recorder() as (smtp_url, recorder):
        prepare_schema(url)
        seed_store(url, products)
        env = process_env(url, SMTP_URL=smtp_url, EMAIL_FROM=EMAIL_FROM, WORKER_POLL_SECONDS="0.2", LOG_LEVEL="ERROR")

        def start() -> subprocess.Popen[bytes]:
            return subprocess.Popen(
                chorus_command("worker"), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )

        workers = [start(), start()]
        seen: Counter[str] = Counter()
        planned = deliveries(webhooks, rng)
        feeder = threading.Thread(target=deliver, args=(url, webhooks, planned, seen))
        started = time.monotonic()
        feeder.start()
        kills, restarted = 0, restart_postgres is None
        while True:
            time.sleep(rng.uniform(2, 4))
            elapsed = time.monotonic() - started
            if feeder.is_alive() or elapsed < kill_seconds:
                victim = rng.randrange(len(workers))
                workers[victim].send_signal(signal.SIGKILL)
                workers[victim].wait()
                workers[victim] = start()
                kills += 1
            if not restarted and elapsed > 12:
                subprocess.run(shlex.split(restart_postgres or ""), check=True)
                restarted = True
                print(f"PostgreSQL restarted {elapsed:.0f} s in", flush=True)
            if not feeder.is_alive() and elapsed >= kill_seconds and quiet(url):
                time.sleep(3)
                if quiet(url):
                    break
            if elapsed > 1800:
                return ["the run did not settle within 30 minutes"]
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            worker.wait(timeout=30)
        print(f"{time.monotonic() - started:.0f} s, {kills} workers killed, deliveries: {dict(seen)}", flush=True)

        failures: list[str] = []
        with connect(url) as connection:
            statuses = dict(connection.execute("SELECT status, count(*) FROM webhook_events GROUP BY 1").fetchall())
            attempts = Counter(
                n for (n,) in connection.execute(
                    "SELECT count(*) FROM event_attempts WHERE outcome = 'done' GROUP BY event_id"
                )
            )  # fmt: skip
            messages = dict(connection.execute("SELECT status, count(*) FROM messages GROUP BY 1").fetchall())
            doubled = connection.execute(
                "SELECT journey_id, step FROM messages WHERE status IN ('sent', 'sending', 'unknown') "
                "GROUP BY 1, 2 HAVING count(*) > 1"
            ).fetchall()
            sent = {r[0] for r in connection.execute("SELECT provider_message_id FROM messages WHERE status = 'sent'")}
            # An interrupted hand-over (its worker killed) is unknown: it may have left, and is never sent again.
            unknown = messages.get("unknown", 0)
        stored = len(webhooks) + len(products) + 1  # the deliveries, the catalogue and the shop's profile
        received = Counter(recorder.message_ids)
        print(f"events {statuses}, done attempts per event {dict(attempts)}; messages {messages}, "
              f"{len(recorder.message_ids)} received", flush=True)  # fmt: skip
        if statuses != {"done": stored}:
            failures.append(f"events not all done once: {statuses} (expected {stored} done)")
        if set(attempts) != {1} or sum(attempts.values()) != stored:
            failures.append(f"done attempts per event: {dict(attempts)}")
        if mirror_of(url) != expected:
            failures.append("the mirror differs from the in-order reference (stale data kept)")
        if doubled:
            failures.append(f"steps with two live messages: {doubled[:5]}")
        if any(n > 1 for n in received.values()):
            failures.append(f"messages received twice: {[m for m, n in received.items() if n > 1][:5]}")
        if sent - set(received):
            failures.append(f"recorded as sent but never received: {len(sent - set(received))}")
        if len(set(received) - sent) > unknown:
            failures.append(f"received but neither sent nor unknown: {len(set(received) - sent) - unknown} or more")
        return failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=3000, help="webhooks of the events mix (default 3000)")
    parser.add_argument("--kill-seconds", type=float, default=40, help="keep killing workers at least this long")
    parser.add_argument("--restart-postgres", metavar="COMMAND", help="a command that restarts PostgreSQL")
    args = parser.parse_args()
    failures = run(args.events, args.kill_seconds, args.restart_postgres)
    for failure in failures:
        print(f"FAILED: {failure}")
    print("held: nothing lost, duplicated, stale or sent twice" if not failures else f"{len(failures)} check(s) failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
