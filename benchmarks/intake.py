"""Webhook intake throughput and latency: Chorus under gunicorn against PostgreSQL, next to a bare baseline.

Both servers run with the same gunicorn settings on loopback, in turn, for several rounds; `wrk` sends
Shopify's documented orders/create body, correctly signed, with a fresh webhook and event id on every
request (the signature covers only the body), so every request is a real insert, not a duplicate. These
full-load runs (closed loop, `--connections` connections) give each server's peak throughput (median of
the rounds) and its latency at peak.

Then Chorus is paced at 80% of its own peak: the same connections, each waiting a random (exponential)
think time before every request, so that the offered rate is about 80% of the peak. Debian's wrk has no
`-R`, so the think time is calibrated with short runs (rate = connections / (latency + think time)) before
the measured run. It is still a closed loop: a slow answer delays the next request of its connection, so
the tail is somewhat understated compared with an open-loop load (coordinated omission).

    python -m benchmarks.intake [--duration 15] [--connections 16] [--rounds 5] [--no-paced] [--quick]

Needs `wrk` on the PATH and a PostgreSQL server (BENCH_DATABASE_URL, else TEST_DATABASE_URL, else the
local default). Prints a table and one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from benchmarks.support import (
    ROOT,
    SECRET,
    SHOP,
    bench_database,
    chorus_env,
    count_rows,
    free_port,
    load_average,
    prepare_schema,
)
from shopify_app.shopify.signatures import webhook_signature

BODY = ROOT / "tests" / "fixtures" / "shopify" / "webhooks" / "orders_create.json"
GUNICORN = ["--worker-class", "gthread", "--threads", "4"]
PACED_SHARE = 0.8
CALIBRATION_SECONDS = 5
CALIBRATION_TRIES = 5
WARM_UP_SECONDS = 2

LUA = r"""
local body = [==[%(body)s]==]
local headers = {
  ["Content-Type"] = "application/json",
  ["X-Shopify-Topic"] = "orders/create",
  ["X-Shopify-Hmac-Sha256"] = "%(signature)s",
  ["X-Shopify-Shop-Domain"] = "%(shop)s",
  ["X-Shopify-API-Version"] = "2026-07",
  ["X-Shopify-Triggered-At"] = "2026-11-20T10:00:00.000Z",
}
local think_ms = %(think_ms)s
local next_thread = 1
function setup(thread)
  thread:set("thread_id", next_thread)
  next_thread = next_thread + 1
end
function init(args)
  prefix = "%(run)s-" .. thread_id .. "-"
  counter = 0
  math.randomseed(thread_id)
end
if think_ms > 0 then
  function delay()
    return -think_ms * math.log(1 - math.random())
  end
end
function request()
  counter = counter + 1
  headers["X-Shopify-Webhook-Id"] = "wh-" .. prefix .. counter
  headers["X-Shopify-Event-Id"] = "ev-" .. prefix .. counter
  return wrk.format("POST", "/webhooks", headers, body)
end
function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    '{"requests": %%d, "duration_us": %%d, "non_2xx": %%d, "socket_errors": %%d, ' ..
    '"p50_us": %%d, "p90_us": %%d, "p99_us": %%d, "max_us": %%d, "mean_us": %%d}\n',
    summary.requests, summary.duration, errors.status,
    errors.connect + errors.read + errors.write + errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
"""


@dataclass
class Run:
    server: str
    requests_per_second: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    requests: int
    non_2xx: int
    socket_errors: int
    mean_ms: float = 0.0
    think_ms: float = 0.0  # mean think time per request and connection (0: full load)


@dataclass
class IntakeSettings:
    duration: int = 15
    connections: int = 16
    threads: int = 1
    workers: int = 2
    rounds: int = 5
    paced: bool = True
    calibration_seconds: int = CALIBRATION_SECONDS


@dataclass
class IntakeResult:
    settings: IntakeSettings
    runs: list[Run]
    paced: Run | None
    calibration: list[Run] = field(default_factory=list)
    stored_events: int = 0
    chorus_requests: int = 0

    def median(self, server: str, name: str) -> float:
        return float(statistics.median(getattr(r, name) for r in self.runs if r.server == server))

    @property
    def ratio(self) -> float:
        return self.median("chorus", "requests_per_second") / self.median("baseline", "requests_per_second")

    def figures(self) -> dict[str, Any]:
        paced = self.paced
        return {
            "intake_rps": round(self.median("chorus", "requests_per_second"), 1),
            "intake_bare_rps": round(self.median("baseline", "requests_per_second"), 1),
            "intake_ratio": round(self.ratio, 3),
            # p99 at about 80% of Chorus's peak when paced; otherwise at full load (see intake_p99_load).
            "intake_p99_ms": paced.p99_ms if paced else self.median("chorus", "p99_ms"),
            "intake_p99_load": "paced" if paced else "full",
            "intake_paced_rps": paced.requests_per_second if paced else None,
            "intake_paced_share": round(paced.requests_per_second / self.median("chorus", "requests_per_second"), 2)
            if paced
            else None,
            "intake_p99_full_load_ms": self.median("chorus", "p99_ms"),
            "intake_bare_p99_full_load_ms": self.median("baseline", "p99_ms"),
        }

    def rows(self) -> list[tuple[str, str]]:
        f = self.figures()
        bare = f"{f['intake_bare_rps']:.0f} req/s (p99 {f['intake_bare_p99_full_load_ms']:.1f} ms)"
        chorus = (
            f"{f['intake_rps']:.0f} req/s (p99 {f['intake_p99_full_load_ms']:.1f} ms), {f['intake_ratio']:.2f}x bare"
        )
        rows = [("intake: bare baseline, full load", bare), ("intake: chorus, full load", chorus)]
        if self.paced:
            p = self.paced
            rows.append(
                (
                    "intake: chorus paced",
                    f"{p.requests_per_second:.0f} req/s ({f['intake_paced_share']:.0%} of peak): "
                    f"p50 {p.p50_ms:.1f} ms, p99 {p.p99_ms:.1f} ms",
                )
            )
        return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=None, help="seconds per run (default 15; 3 with --quick)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes (each with 4 threads)")
    parser.add_argument("--rounds", type=int, default=None, help="baseline and Chorus alternate (default 5; 1 quick)")
    parser.add_argument("--no-paced", action="store_true", help="skip the run at 80%% of Chorus's peak")
    parser.add_argument("--quick", action="store_true", help="short runs, one round")
    args = parser.parse_args()
    result = run(settings_for(args))
    print()
    report(result)


def settings_for(args: argparse.Namespace) -> IntakeSettings:
    return IntakeSettings(
        duration=args.duration or (3 if args.quick else 15),
        connections=args.connections,
        threads=args.threads,
        workers=args.workers,
        rounds=args.rounds or (1 if args.quick else 5),
        paced=not args.no_paced,
        calibration_seconds=2 if args.quick else CALIBRATION_SECONDS,
    )


def run(settings: IntakeSettings, *, verbose: bool = True) -> IntakeResult:
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (Debian/Ubuntu: apt-get install wrk)")
    with bench_database() as database_url:
        prepare_schema(database_url)
        runs: list[Run] = []
        for round_number in range(1, settings.rounds + 1):
            for server in ("baseline", "chorus"):
                with serving(server, database_url, settings.workers) as base_url:
                    warm(server, base_url, settings)
                    run = measure(server, base_url, settings, settings.duration)
                runs.append(run)
                if verbose:
                    print(f"round {round_number} {describe(run)}", flush=True)
        result = IntakeResult(settings, runs, paced=None)
        if settings.paced:
            peak = result.median("chorus", "requests_per_second")
            with serving("chorus", database_url, settings.workers) as base_url:
                warm("chorus", base_url, settings)
                think = calibrate(base_url, settings, PACED_SHARE * peak, result.calibration, verbose)
                result.paced = measure("chorus", base_url, settings, settings.duration, think_ms=think)
            if verbose:
                print(f"paced   {describe(result.paced)}", flush=True)
        result.stored_events = count_rows(database_url, "webhook_events")
        result.chorus_requests = sum(r.requests for r in runs if r.server == "chorus")
    return result


def calibrate(base_url: str, settings: IntakeSettings, target: float, trials: list[Run], verbose: bool) -> float:
    """The mean think time per request that brings the offered rate nearest `target` requests/s.

    Each trial's cycle per connection (connections / rate) is answer time + think time; the think time moves by
    most of the gap between the target cycle and the observed one. The best trial's think time is returned, so
    the measured run repeats a tried setting (the rate is noisy on a loaded machine).
    """
    connections = settings.connections
    think_s = connections / target / 2  # a first guess: half the cycle thinking
    tried: list[Run] = []
    for _ in range(CALIBRATION_TRIES):
        trial = measure("chorus", base_url, settings, settings.calibration_seconds, think_ms=think_s * 1000)
        trials.append(trial)
        if verbose:
            print(f"  calibrating: {describe(trial)}", flush=True)
        if trial.requests_per_second < 0.1 * target:
            continue  # a stall (a loaded machine): it says nothing about the think time; try again
        tried.append(trial)
        if abs(trial.requests_per_second - target) / target < 0.04:
            break
        gap = connections / target - connections / trial.requests_per_second
        think_s = max(think_s + 0.8 * gap, 0.0)
    if not tried:
        return think_s * 1000
    return min(tried, key=lambda t: abs(t.requests_per_second - target)).think_ms


def warm(server: str, base_url: str, settings: IntakeSettings) -> None:
    """A short full-load run, not counted: every gunicorn worker has booted, connected and warmed up."""
    measure(server, base_url, settings, WARM_UP_SECONDS)


def describe(run: Run) -> str:
    paced = f" think {run.think_ms:5.1f} ms" if run.think_ms else ""
    return (
        f"{run.server:8} {run.requests_per_second:8.0f} req/s  p50 {run.p50_ms:6.2f} ms  p99 {run.p99_ms:7.2f} ms  "
        f"non-2xx {run.non_2xx}  socket errors {run.socket_errors}{paced}"
    )


def measure(server: str, base_url: str, settings: IntakeSettings, duration: int, *, think_ms: float = 0.0) -> Run:
    # A fresh script per run: its ids must never repeat an earlier run's, or it measures duplicates.
    script = write_script(BODY.read_bytes(), think_ms)
    try:
        result = subprocess.run(
            ["wrk", f"-t{settings.threads}", f"-c{settings.connections}", f"-d{duration}s", "-s", str(script),
             f"{base_url}/webhooks"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
    finally:
        shutil.rmtree(script.parent, ignore_errors=True)
    figures = json.loads(next(line for line in reversed(result.stdout.splitlines()) if line.startswith("{")))
    seconds = figures["duration_us"] / 1e6
    return Run(
        server=server,
        requests_per_second=round(figures["requests"] / seconds, 1),
        p50_ms=figures["p50_us"] / 1000,
        p90_ms=figures["p90_us"] / 1000,
        p99_ms=figures["p99_us"] / 1000,
        max_ms=figures["max_us"] / 1000,
        requests=figures["requests"],
        non_2xx=figures["non_2xx"],
        socket_errors=figures["socket_errors"],
        mean_ms=round(figures["mean_us"] / 1000, 3),
        think_ms=round(think_ms, 2),
    )


def report(result: IntakeResult) -> None:
    settings = result.settings
    print(f"{'':10}{'req/s':>10}{'p50 ms':>10}{'p90 ms':>10}{'p99 ms':>10}   (medians of {settings.rounds} runs)")
    for server in ("baseline", "chorus"):
        print(f"{server:10}{result.median(server, 'requests_per_second'):10.0f}{result.median(server, 'p50_ms'):10.2f}"
              f"{result.median(server, 'p90_ms'):10.2f}{result.median(server, 'p99_ms'):10.2f}")  # fmt: skip
    if result.paced:
        p = result.paced
        print(f"{'paced':10}{p.requests_per_second:10.0f}{p.p50_ms:10.2f}{p.p90_ms:10.2f}{p.p99_ms:10.2f}   "
              f"(chorus at ~{PACED_SHARE:.0%} of its peak)")  # fmt: skip
    print(f"chorus/baseline throughput: {result.ratio:.2f}")
    # wrk counts the requests answered within the run; a few more are in flight when it stops. Warm-up,
    # calibration and paced runs store events too.
    print(f"events stored by chorus: {result.stored_events} (answered in the full-load runs: {result.chorus_requests})")
    summary = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "settings": asdict(settings),
        **result.figures(),
        "throughput_ratio": round(result.ratio, 3),
        "stored_events": result.stored_events,
        "load_average": load_average(),
        "runs": [asdict(r) for r in result.runs],
        "paced": asdict(result.paced) if result.paced else None,
        "calibration": [asdict(r) for r in result.calibration],
    }
    print(json.dumps(summary))


@contextmanager
def serving(server: str, database_url: str, workers: int) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        **chorus_env(database_url),
        "PORT": str(port),
        "WEB_CONCURRENCY": str(workers),
        "LOG_LEVEL": "WARNING",
    }
    if server == "chorus":
        command = [str(Path(sys.executable).parent / "chorus"), "web"]
    else:
        command = [
            str(Path(sys.executable).parent / "gunicorn"), *GUNICORN, "--workers", str(workers),
            "--bind", f"127.0.0.1:{port}", "--access-logfile", "-", "--log-level", "warning",
            "benchmarks.baseline_app:create_app()",
        ]  # fmt: skip
    process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_for(base_url, process)
        yield base_url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for(base_url: str, process: subprocess.Popen[bytes]) -> None:
    http = requests.Session()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            http.post(f"{base_url}/webhooks", data=b"{}", timeout=1)  # any answer means it is up
            return
        except (requests.ConnectionError, requests.Timeout):  # not listening yet, or still booting
            time.sleep(0.1)
    raise RuntimeError("server did not start within 30 s")


def write_script(body: bytes, think_ms: float = 0.0) -> Path:
    script = Path(tempfile.mkdtemp()) / "intake.lua"
    script.write_text(
        LUA
        % {
            "body": body.decode(),
            "signature": webhook_signature(SECRET, body),
            "shop": SHOP,
            "run": uuid.uuid4().hex[:8],
            "think_ms": f"{think_ms:.3f}",
        }
    )
    return script


if __name__ == "__main__":
    main()
