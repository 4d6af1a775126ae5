"""Event handling throughput: stored webhooks drained by real `chorus worker --once` processes on PostgreSQL.

Method. For each measurement a fresh PostgreSQL schema is migrated and one shop registered (installed a
month before `NOW`); the shop's profile (shop/update) and its catalogue (products/create, one per product)
are delivered and handled by an in-process worker pass first, with the shop's install job, so the measured
run starts from a store that exists. Then N correctly signed webhooks are stored through the real intake
(`build_intake(runtime).receive(Delivery.from_headers(...))`, in-process: signature checked, deduplicated,
inserted as pending; this is not timed), in the order they happened during the 50 minutes before `NOW`.

Timed: one `chorus worker --once --now NOW` subprocess, from its start to its exit (the whole drain as an
operator runs it: process start-up, every event batch, the journeys the events made due). Then the same set
is stored again into a second fresh schema and drained by two `chorus worker --once --now NOW` processes
started together (timed until both have exited). events/s = events handled in the run / wall time; the
"net" figure subtracts the wall time of one more `chorus worker --once` on the drained schema (start-up and
an idle pass). Events that failed in the run and wait for a retry (e.g. deadlock victims between two
workers) are counted and reported with their errors, then handled by a later untimed pass. Afterwards every
event must be done, each with exactly one committed attempt. Peak RSS is each worker's own high-water mark
(VmHWM; see `support.ChildRun`). SMTP is not configured (nothing is sent: due sends wait for a channel).

Mix (shares of N; see `benchmarks.workload.events_mix`): checkouts/create 20%, checkouts/update 20%
(random updates of those checkouts: zero to several each), orders/create 15% and orders/paid 15% (each
order created, then paid; half of them complete one of the checkouts, which ends its journey),
products/update 10% (about five updates each of N/50 products, price and stock), customers/create 10%
(80% subscribed to email marketing, so the welcome flow enrols them) and customers/update 10% (updates
of those customers). Half the buyers are those customers, the others known only from their checkouts and
orders; 70% of checkouts have the marketing box ticked. Bodies are Shopify's documented samples (a
checkout about 7 kB, an order about 15 kB) with ids, people, lines and times changed.

    python -m benchmarks.events [--events 10000] [--quick] [--single-only]
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

from benchmarks import workload
from benchmarks.support import (
    NOW,
    ChildRun,
    Webhook,
    bench_database,
    chorus_command,
    count_rows,
    counts_by,
    iso,
    load_average,
    prepare_schema,
    process_env,
    run_checked,
    scalar,
    store_webhooks,
    warm_up,
)

DEFAULT_EVENTS = 10_000
QUICK_EVENTS = 1_000
# Why events were left for a retry, by the first line of their error (ids and transaction numbers cut off).
ERRORS = """
SELECT split_part(last_error, E'\\n', 1), count(*) FROM webhook_events WHERE status = 'pending' GROUP BY 1
"""
DONE_ATTEMPTS = """
SELECT n::text, count(*)
FROM (SELECT count(*) AS n FROM event_attempts WHERE outcome = 'done' GROUP BY event_id) AS per_event
GROUP BY n
"""


@dataclass
class Drain:
    workers: int
    events: int
    wall_s: float
    events_per_s: float
    peak_rss_mb: float
    handled_by_worker: list[int]
    left_for_retry: int = 0  # failed in the measured run (e.g. deadlock victims), handled by a later pass
    errors: dict[str, int] = field(default_factory=dict)
    idle_pass_s: float | None = None  # start-up plus an idle pass, on the drained schema
    events_per_s_net: float | None = None
    journeys: dict[str, int] = field(default_factory=dict)


@dataclass
class EventsResult:
    events: int
    mix: dict[str, int]
    one: Drain
    two: Drain | None

    @property
    def speedup(self) -> float | None:
        return round(self.two.events_per_s / self.one.events_per_s, 2) if self.two else None

    def figures(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "events_per_s": self.one.events_per_s,
            "events_per_s_net": self.one.events_per_s_net,
            "events_two_workers_per_s": self.two.events_per_s if self.two else None,
            "events_two_workers_speedup": self.speedup,
            "events_worker_peak_rss_mb": max(self.one.peak_rss_mb, self.two.peak_rss_mb if self.two else 0),
        }

    def rows(self) -> list[tuple[str, str]]:
        one = self.one
        rows = [
            ("events: N", f"{self.events}"),
            (
                "events: 1 worker",
                f"{one.events_per_s:.0f} events/s ({one.wall_s:.1f} s, peak RSS {one.peak_rss_mb:.0f} MB)",
            ),
            (
                "events: 1 worker, net of start-up",
                f"{one.events_per_s_net:.0f} events/s (idle pass {one.idle_pass_s:.2f} s)",
            ),
        ]
        if self.two:
            two = self.two
            shares = "/".join(map(str, two.handled_by_worker))
            rows.append(
                (
                    "events: 2 workers",
                    f"{two.events_per_s:.0f} events/s ({two.wall_s:.1f} s, speed-up {self.speedup:.2f}x, "
                    f"peak RSS {two.peak_rss_mb:.0f} MB, handled {shares})",
                )
            )
        for drain in (one, self.two):
            if drain and drain.left_for_retry:
                causes = ", ".join(f"{n} {cause[:70]}" for cause, n in drain.errors.items())
                rows.append((f"events: {drain.workers} worker(s), left to retry", f"{drain.left_for_retry}: {causes}"))
        return rows


def seed_store(database_url: str, products: list[list[workload.Item]]) -> None:
    """The shop's profile and catalogue, handled before anything is measured."""
    before = NOW - timedelta(days=1)
    store_webhooks(
        database_url,
        [workload.shop_profile(before - timedelta(days=1))]
        + [Webhook("products/create", workload.product_payload(v, before), before) for v in products],
    )
    warm_up(database_url)


def drain(webhooks: list[Webhook], products: list[list[workload.Item]], workers: int, *, idle: bool) -> Drain:
    with bench_database() as url:
        prepare_schema(url)
        seed_store(url, products)
        seeded = count_rows(url, "webhook_events")
        stored = store_webhooks(url, webhooks)
        env = process_env(url)
        command = chorus_command("worker", "--once", "--now", iso(NOW))
        runs = run_checked([command] * workers, env)
        wall = max(run.wall_s for run in runs)
        handled = [handled_count(run) for run in runs]
        left = int(scalar(url, "SELECT count(*) FROM webhook_events WHERE status = 'pending'"))
        errors = counts_by(url, ERRORS)
        journeys = counts_by(url, "SELECT flow || ' ' || state, count(*) FROM journeys GROUP BY 1 ORDER BY 1")
        if left:  # retried later (e.g. a deadlock victim): a later pass, not timed, must finish them
            run_checked([chorus_command("worker", "--once", "--now", iso(NOW + timedelta(hours=1)))], env)
        check_exactly_once(url, seeded + stored)
        result = Drain(
            workers=workers,
            events=stored,
            wall_s=round(wall, 3),
            events_per_s=round(sum(handled) / wall, 1),
            peak_rss_mb=round(max(run.max_rss_mb for run in runs), 1),
            handled_by_worker=handled,
            left_for_retry=left,
            errors=errors,
            journeys=journeys,
        )
        if idle:
            [again] = run_checked([command], env)
            result.idle_pass_s = round(again.wall_s, 3)
            result.events_per_s_net = round(sum(handled) / max(wall - again.wall_s, 1e-6), 1)
        return result


def check_exactly_once(database_url: str, total: int) -> None:
    """Every event done, with exactly one committed (done) attempt."""
    statuses = counts_by(database_url, "SELECT status, count(*) FROM webhook_events GROUP BY status")
    attempts = counts_by(database_url, DONE_ATTEMPTS)
    if statuses != {"done": total} or attempts != {"1": total}:
        raise RuntimeError(f"not every event was handled exactly once: {statuses}, done attempts per event {attempts}")


def handled_count(run: ChildRun) -> int:
    found = re.search(r"events: (\d+) handled", run.output)
    if found is None:
        raise RuntimeError(f"the worker printed no summary:\n{run.output[-2000:]}")
    return int(found.group(1))


def run(events: int = DEFAULT_EVENTS, *, two_workers: bool = True, seed: int = 1) -> EventsResult:
    webhooks, products = workload.events_mix(events, seed=seed)
    mix: dict[str, int] = {}
    for webhook in webhooks:
        mix[webhook.topic] = mix.get(webhook.topic, 0) + 1
    one = drain(webhooks, products, 1, idle=True)
    two = drain(webhooks, products, 2, idle=False) if two_workers else None
    return EventsResult(events=len(webhooks), mix=mix, one=one, two=two)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=None, help=f"how many webhooks (default {DEFAULT_EVENTS})")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_EVENTS} events unless --events says")
    parser.add_argument("--single-only", action="store_true", help="skip the two-worker measurement")
    args = parser.parse_args()
    events = args.events or (QUICK_EVENTS if args.quick else DEFAULT_EVENTS)
    result = run(events, two_workers=not args.single_only)
    for name, value in result.rows():
        print(f"{name:40} {value}")
    print(json.dumps({**result.figures(), "mix": result.mix, "load_average": load_average(),
                      "one": asdict(result.one), "two": asdict(result.two) if result.two else None}))  # fmt: skip


if __name__ == "__main__":
    main()
