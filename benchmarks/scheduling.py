"""Scheduling cost: an idle worker pass (nothing due) with 10,000 waiting journeys, then with 1,000,000.

Method. A fresh PostgreSQL schema is migrated and one shop registered; an in-process worker pass does the
shop's install job first. Waiting journeys are inserted directly with one server-side multi-row
`INSERT ... SELECT FROM generate_series` (valid rows for the current schema: a third each in
abandoned_checkout at step `reminder`, welcome at `welcome_2` after `welcome_1` was sent, post_purchase
at `review_request` after `thank_you` was sent; distinct subjects and customers, so the partial unique
indexes hold; every one due between one minute and seven days after `NOW`), then `VACUUM ANALYZE journeys`
(as autovacuum would have by then).

Timed, in-process (no process start-up in the figure): `Worker(runtime).run_once()` with the clock frozen
at `NOW`, a fresh `Worker` for each repetition (as each `chorus worker --once` builds one, so each pass also
does the lapse sweep, the reconciliation check and the purge), after one untimed warm-up pass; the median of
the repetitions is reported for the small set, then the large set is completed (the same rows plus the
rest) and measured the same way. Every pass must find nothing to do.

    python -m benchmarks.scheduling [--small 10000] [--large 1000000] [--repeat 7] [--quick]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any

from benchmarks.support import (
    NOW,
    bench_database,
    build_runtime,
    connect,
    count_rows,
    load_average,
    prepare_schema,
    scalar,
    warm_up,
)
from shopify_app.events.processor import BatchReport
from shopify_app.jobs.queue import JobReport
from shopify_app.journeys.runner import JourneyReport
from shopify_app.worker import Worker

SMALL, LARGE, QUICK_LARGE, REPEAT = 10_000, 1_000_000, 100_000, 7

INSERT = """
INSERT INTO journeys (
    shop_id, flow, subject, customer_id, email, exclusive_key, state, step, reason,
    due_at, entered_at, arrived_at, previous_at, performed, created_at, updated_at
)
SELECT
    %(shop_id)s::bigint,
    (ARRAY['abandoned_checkout', 'welcome', 'post_purchase'])[i %% 3 + 1],
    CASE i %% 3 WHEN 0 THEN 'sched' || lpad(i::text, 24, '0') WHEN 1 THEN (2000000000 + i)::text
                ELSE (6000000000 + i)::text END,
    2000000000 + i,
    'waiting' || i || '@example.com',
    CASE WHEN i %% 3 = 2 THEN NULL ELSE 'id:' || (2000000000 + i) END,
    'waiting',
    (ARRAY['reminder', 'welcome_2', 'review_request'])[i %% 3 + 1],
    'wait',
    %(now)s::timestamptz + interval '1 minute' + (i %% 10080) * interval '1 minute',
    %(now)s - interval '1 hour',
    %(now)s - interval '1 hour',
    CASE WHEN i %% 3 = 0 THEN NULL ELSE %(now)s - interval '1 hour' END,
    (CASE i %% 3 WHEN 0 THEN '{}' WHEN 1 THEN '{"welcome_1": "sent"}' ELSE '{"thank_you": "sent"}' END)::json,
    %(now)s - interval '1 hour',
    %(now)s - interval '1 hour'
FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g(i)
"""


@dataclass
class Passes:
    journeys: int
    insert_s: float
    seconds: list[float]

    @property
    def median_s(self) -> float:
        return statistics.median(self.seconds)


@dataclass
class SchedulingResult:
    small: Passes
    large: Passes

    @property
    def ratio(self) -> float:
        return round(self.large.median_s / self.small.median_s, 2)

    def figures(self) -> dict[str, Any]:
        return {
            "idle_pass_10k_s": round(self.small.median_s, 4),
            "idle_pass_1m_s": round(self.large.median_s, 4),
            "idle_pass_ratio": self.ratio,
            "idle_pass_sizes": [self.small.journeys, self.large.journeys],
        }

    def rows(self) -> list[tuple[str, str]]:
        def spread(p: Passes) -> str:
            return f"{p.median_s * 1000:.1f} ms median of {len(p.seconds)} (min {min(p.seconds) * 1000:.1f}, max {max(p.seconds) * 1000:.1f})"  # noqa: E501

        return [
            (f"idle pass: {self.small.journeys:,} waiting", spread(self.small)),
            (f"idle pass: {self.large.journeys:,} waiting", spread(self.large)),
            ("idle pass: large / small", f"{self.ratio:.2f}x"),
        ]


def insert_waiting(database_url: str, shop_id: int, first: int, last: int) -> float:
    started = time.perf_counter()
    with connect(database_url) as connection:
        connection.execute(INSERT, {"shop_id": shop_id, "now": NOW, "first": first, "last": last})
        connection.execute("VACUUM ANALYZE journeys")
    return time.perf_counter() - started


def idle_passes(database_url: str, repeat: int) -> list[float]:
    runtime = build_runtime(database_url)
    try:
        seconds = []
        for n in range(repeat + 1):
            worker = Worker(runtime)
            started = time.perf_counter()
            summary = worker.run_once()
            elapsed = time.perf_counter() - started
            idle = (summary.events, summary.journeys, summary.jobs) == (BatchReport(), JourneyReport(), JobReport())
            if not idle or summary.lapsed or summary.bodies_purged:
                raise RuntimeError(f"the pass was not idle: {summary.describe()}")
            if n:  # the first warms the connection pool and the caches
                seconds.append(elapsed)
        return seconds
    finally:
        runtime.close()


def run(small: int = SMALL, large: int = LARGE, repeat: int = REPEAT) -> SchedulingResult:
    with bench_database() as url:
        prepare_schema(url)
        warm_up(url)  # the install job: done before anything is measured
        shop_id = int(scalar(url, "SELECT id FROM shops"))
        inserted = insert_waiting(url, shop_id, 1, small)
        small_passes = Passes(count_rows(url, "journeys"), round(inserted, 2), idle_passes(url, repeat))
        inserted = insert_waiting(url, shop_id, small + 1, large)
        large_passes = Passes(count_rows(url, "journeys"), round(inserted, 2), idle_passes(url, repeat))
    return SchedulingResult(small_passes, large_passes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=SMALL)
    parser.add_argument("--large", type=int, default=None, help=f"default {LARGE:,} ({QUICK_LARGE:,} with --quick)")
    parser.add_argument("--repeat", type=int, default=REPEAT)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    result = run(args.small, args.large or (QUICK_LARGE if args.quick else LARGE), args.repeat)
    for name, value in result.rows():
        print(f"{name:40} {value}")
    print(json.dumps({**result.figures(), "load_average": load_average(), "detail": asdict(result)}))


if __name__ == "__main__":
    main()
