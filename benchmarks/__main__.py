"""Every benchmark in turn: intake, events, sending, scheduling, pixel. Prints one table and ONE JSON line.

    python -m benchmarks [--quick] [--only intake,events,sending,scheduling] [--events N] [--messages M]
                         [--small 10000] [--large 1000000] [--repeat 7] [--duration 15] [--rounds 5]

Each benchmark's docstring says what it measures and how (`python -m benchmarks.<name> --help`). They run
one after the other on their own PostgreSQL schemas, dropped afterwards; a benchmark that fails is reported
(its figures null) and the others still run. `--quick` runs small sizes for a fast check: 1,000 events, 200
messages, 10,000 vs 100,000 waiting journeys, one 3-second intake round.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from benchmarks import events, intake, pixel, scheduling, sending
from benchmarks.support import ROOT, load_average

NAMES = ("intake", "events", "sending", "scheduling", "pixel")
KEYS = (
    "intake_rps",
    "intake_bare_rps",
    "intake_p99_ms",
    "events_per_s",
    "events_two_workers_per_s",
    "sends_per_s",
    "pixel_events_per_s",
    "idle_pass_10k_s",
    "idle_pass_1m_s",
    "worker_peak_rss_mb",
)


class Result(Protocol):
    def figures(self) -> dict[str, Any]: ...

    def rows(self) -> list[tuple[str, str]]: ...


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a fast check")
    parser.add_argument("--only", default=",".join(NAMES), help="comma-separated subset of: " + ", ".join(NAMES))
    parser.add_argument(
        "--events", type=int, help=f"webhooks for the events benchmark (default {events.DEFAULT_EVENTS})"
    )
    parser.add_argument("--single-worker-only", action="store_true", help="events: skip the two-worker drain")
    parser.add_argument("--messages", type=int, help=f"due reminders to send (default {sending.DEFAULT_MESSAGES})")
    parser.add_argument("--small", type=int, default=scheduling.SMALL, help="waiting journeys, small set")
    parser.add_argument("--large", type=int, help=f"waiting journeys, large set (default {scheduling.LARGE:,})")
    parser.add_argument("--repeat", type=int, default=scheduling.REPEAT, help="idle passes per set")
    parser.add_argument("--duration", type=int, help="intake: seconds per wrk run (default 15; 3 quick)")
    parser.add_argument("--rounds", type=int, help="intake: rounds of baseline and Chorus (default 5; 1 quick)")
    parser.add_argument("--connections", type=int, default=16, help="intake: wrk connections")
    parser.add_argument("--no-paced", action="store_true", help="intake: skip the run at 80%% of Chorus's peak")
    args = parser.parse_args()
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = set(chosen) - set(NAMES)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}; known: {', '.join(NAMES)}")

    benchmarks: dict[str, Callable[[], Result]] = {
        "intake": lambda: intake.run(
            intake.IntakeSettings(
                duration=args.duration or (3 if args.quick else 15),
                connections=args.connections,
                rounds=args.rounds or (1 if args.quick else 5),
                paced=not args.no_paced,
                calibration_seconds=2 if args.quick else intake.CALIBRATION_SECONDS,
            ),
        ),
        "events": lambda: events.run(
            args.events or (events.QUICK_EVENTS if args.quick else events.DEFAULT_EVENTS),
            two_workers=not args.single_worker_only,
        ),
        "sending": lambda: sending.run(
            args.messages or (sending.QUICK_MESSAGES if args.quick else sending.DEFAULT_MESSAGES)
        ),
        "scheduling": lambda: scheduling.run(
            args.small, args.large or (scheduling.QUICK_LARGE if args.quick else scheduling.LARGE), args.repeat
        ),
        "pixel": lambda: pixel.run(pixel.QUICK_REQUESTS if args.quick else pixel.DEFAULT_REQUESTS),
    }
    started_at = datetime.now(UTC)
    load_before = load_average()
    figures: dict[str, Any] = dict.fromkeys(KEYS)
    rows: list[tuple[str, str]] = []
    seconds: dict[str, float] = {}
    failures: dict[str, str] = {}
    for name in chosen:
        print(f"== {name} (load average {format_load(load_average())})", flush=True)
        began = time.perf_counter()
        try:
            result = benchmarks[name]()
        except Exception as exc:
            traceback.print_exc()
            failures[name] = f"{type(exc).__name__}: {exc}"[:500]
            rows.append((f"{name}: FAILED", failures[name].splitlines()[0]))
        else:
            figures.update(result.figures())
            rows.extend(result.rows())
        seconds[name] = round(time.perf_counter() - began, 1)

    peaks = [figures.get(k) for k in ("events_worker_peak_rss_mb", "sending_worker_peak_rss_mb")]
    known = [p for p in peaks if p is not None]
    figures["worker_peak_rss_mb"] = max(known) if known else None
    if figures["worker_peak_rss_mb"] is not None:
        rows.append(("worker peak RSS (events, sending)", f"{figures['worker_peak_rss_mb']:.0f} MB"))
    load_after = load_average()

    print()
    width = max((len(name) for name, _ in rows), default=10) + 2
    print(f"{'benchmark':{width}}result")
    print(f"{'-' * (width - 2):{width}}{'-' * 60}")
    for name, value in rows:
        print(f"{name:{width}}{value}")
    print(f"load average before {format_load(load_before)}, after {format_load(load_after)}; {revision()}")
    print(
        json.dumps(
            {
                **figures,
                "at": started_at.isoformat(timespec="seconds"),
                "quick": args.quick,
                "ran": chosen,
                "failed": failures,
                "seconds": seconds,
                "load_average_before": load_before,
                "load_average_after": load_after,
                "revision": revision(),
                "cpus": f"{platform.machine()} x{os.cpu_count()}",
            }
        )
    )
    if failures:
        raise SystemExit(1)


def format_load(load: tuple[float, float, float]) -> str:
    return " ".join(f"{value:.2f}" for value in load)


def revision() -> str:
    """The commit the code was run from, and whether the working tree differed from it (BENCH_REVISION, if set,
    names it instead: e.g. for an exported tree)."""
    if os.environ.get("BENCH_REVISION"):
        return os.environ["BENCH_REVISION"]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return f"not a git checkout ({ROOT})"
    return f"{commit}{' with uncommitted changes' if dirty else ''} ({ROOT})"


if __name__ == "__main__":
    main()
