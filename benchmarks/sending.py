"""Sending throughput: M due abandoned-checkout reminders sent by one `chorus worker --once` to a real SMTP
server on loopback.

Method. A fresh PostgreSQL schema is migrated and one shop registered; its profile (with the postal
address marketing email must carry) and catalogue (M/20 products of three variants) are delivered through
the real intake, then M checkouts/create, each by a distinct guest who ticked the marketing box, left 110 to
70 minutes before `NOW`, and a price cut on every third product after them. An in-process worker pass an
hour before `NOW` handles all of that (not timed): every checkout enters the abandoned checkout flow, its
reminder due an hour after its last change, so all M are due at `NOW` and none earlier.

Timed: one `chorus worker --once --now NOW` subprocess with SMTP_URL pointing at an aiosmtpd server in this
process (plain SMTP on 127.0.0.1; it keeps each message's envelope and Message-ID), from start to exit.
For every due journey the worker gathers the facts again from the mirror (consent, orders since, current
prices and stock), decides, commits the message as SENDING, renders it from current data, hands it over
and records the outcome, as in production. sends/s = M / wall time; the "net" figure subtracts one more
`chorus worker --once` on the finished schema (start-up and an idle pass). Afterwards the server must have
received exactly one message for each of the M addresses (all Message-IDs distinct) and the database must
hold M messages SENT. Peak RSS is the worker's own high-water mark (VmHWM, see `support.ChildRun`).

    python -m benchmarks.sending [--messages 2000] [--quick]
"""

from __future__ import annotations

import argparse
import json
import re
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

from aiosmtpd.controller import Controller

from benchmarks import workload
from benchmarks.support import (
    EMAIL_FROM,
    NOW,
    bench_database,
    chorus_command,
    counts_by,
    free_port,
    iso,
    load_average,
    prepare_schema,
    process_env,
    run_checked,
    store_webhooks,
    warm_up,
)

DEFAULT_MESSAGES = 2_000
QUICK_MESSAGES = 200
SETUP_AT = NOW - timedelta(hours=1)  # after every checkout and price cut; before any reminder is due
MESSAGE_ID = re.compile(rb"^Message-ID:\s*(\S+)", re.MULTILINE | re.IGNORECASE)


@dataclass
class Counting:
    """An aiosmtpd handler that accepts everything and remembers who each message was for."""

    recipients: Counter[str] = field(default_factory=Counter)
    message_ids: Counter[bytes] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        found = MESSAGE_ID.search(envelope.original_content or b"")
        with self.lock:
            self.recipients.update(envelope.rcpt_tos)
            self.message_ids[found.group(1) if found else b"?"] += 1
        return "250 Message accepted"

    @property
    def received(self) -> int:
        return sum(self.message_ids.values())


@contextmanager
def smtp_sink() -> Iterator[tuple[str, Counting]]:
    handler = Counting()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, ready_timeout=10)
    controller.start()
    try:
        yield f"smtp://127.0.0.1:{port}", handler
    finally:
        controller.stop(no_assert=True)


@dataclass
class SendingResult:
    messages: int
    wall_s: float
    sends_per_s: float
    idle_pass_s: float
    sends_per_s_net: float
    peak_rss_mb: float
    received: int
    statuses: dict[str, int]

    def figures(self) -> dict[str, Any]:
        return {
            "messages": self.messages,
            "sends_per_s": self.sends_per_s,
            "sends_per_s_net": self.sends_per_s_net,
            "sending_worker_peak_rss_mb": self.peak_rss_mb,
        }

    def rows(self) -> list[tuple[str, str]]:
        return [
            ("sending: M", f"{self.messages} (received once each: {self.received})"),
            (
                "sending: 1 worker",
                f"{self.sends_per_s:.0f} sends/s ({self.wall_s:.1f} s, peak RSS {self.peak_rss_mb:.0f} MB)",
            ),
            (
                "sending: 1 worker, net of start-up",
                f"{self.sends_per_s_net:.0f} sends/s (idle pass {self.idle_pass_s:.2f} s)",
            ),
        ]


def run(messages: int = DEFAULT_MESSAGES, *, seed: int = 2) -> SendingResult:
    catalogue, checkouts, addresses = workload.abandoned_checkouts(messages, seed=seed)
    with bench_database() as url, smtp_sink() as (smtp_url, sink):
        mail = {"SMTP_URL": smtp_url, "EMAIL_FROM": EMAIL_FROM}
        prepare_schema(url)
        store_webhooks(url, [workload.shop_profile(SETUP_AT - timedelta(days=2)), *catalogue])
        store_webhooks(url, checkouts)
        warm_up(url, at=SETUP_AT, env=mail)
        waiting = counts_by(url, "SELECT state || ' ' || coalesce(step, ''), count(*) FROM journeys GROUP BY 1")
        if waiting != {"waiting reminder": messages} or sink.received:
            raise RuntimeError(f"the setup did not leave {messages} reminders waiting: {waiting}, {sink.received} sent")

        env = process_env(url, **mail)
        command = chorus_command("worker", "--once", "--now", iso(NOW))
        [timed] = run_checked([command], env)
        statuses = counts_by(url, "SELECT status, count(*) FROM messages GROUP BY status")
        sent = re.search(r"messages: (\d+) sent", timed.output)
        expected = Counter(addresses)
        if (
            sink.recipients != expected
            or set(expected.values()) != {1}
            or set(sink.message_ids.values()) != {1}
            or statuses != {"sent": messages}
            or sent is None
            or int(sent.group(1)) != messages
        ):
            raise RuntimeError(
                f"not exactly one message per address: received {sink.received} for "
                f"{len(sink.recipients)} addresses (expected {messages}), statuses {statuses}\n{timed.output[-2000:]}"
            )
        [idle] = run_checked([command], env)
        if sink.received != messages:
            raise RuntimeError("the idle pass sent something")
    return SendingResult(
        messages=messages,
        wall_s=round(timed.wall_s, 3),
        sends_per_s=round(messages / timed.wall_s, 1),
        idle_pass_s=round(idle.wall_s, 3),
        sends_per_s_net=round(messages / max(timed.wall_s - idle.wall_s, 1e-6), 1),
        peak_rss_mb=round(timed.max_rss_mb, 1),
        received=sink.received,
        statuses=statuses,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--messages", type=int, default=None, help=f"how many due reminders (default {DEFAULT_MESSAGES})"
    )
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_MESSAGES} messages unless --messages says")
    args = parser.parse_args()
    result = run(args.messages or (QUICK_MESSAGES if args.quick else DEFAULT_MESSAGES))
    for name, value in result.rows():
        print(f"{name:40} {value}")
    print(json.dumps({**result.figures(), "load_average": load_average(), "detail": asdict(result)}))


if __name__ == "__main__":
    main()
