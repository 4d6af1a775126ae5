"""Webhook intake throughput and latency: Chorus under gunicorn against PostgreSQL, next to a bare baseline.

Both servers run with the same gunicorn settings on loopback, in turn, for several rounds; `wrk` sends
Shopify's documented orders/create body, correctly signed, with a fresh webhook and event id on every
request (the signature covers only the body), so every request is a real insert, not a duplicate.

    python -m benchmarks.intake [--duration 15] [--connections 16] [--rounds 3]

Needs `wrk` on the PATH and a PostgreSQL server (BENCH_DATABASE_URL, else TEST_DATABASE_URL, else the
local default). Prints a table and one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import requests
from sqlalchemy import make_url

from shopify_app.crypto import SecretBox
from shopify_app.db import migrate
from shopify_app.runtime import Runtime
from shopify_app.settings import Settings, normalise_database_url
from shopify_app.shopify.signatures import webhook_signature
from shopify_app.shops import register_shop

ROOT = Path(__file__).resolve().parent.parent
BODY = ROOT / "tests" / "fixtures" / "shopify" / "webhooks" / "orders_create.json"
SHOP = "bench.myshopify.com"
SECRET = "bench_secret_key"
ENCRYPTION_KEY = "kOgVXBTbDvIP3gqaWPwAH24kaxaVP3-cGn1JDMY2fdE="
GUNICORN = ["--worker-class", "gthread", "--threads", "4"]

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
local next_thread = 1
function setup(thread)
  thread:set("thread_id", next_thread)
  next_thread = next_thread + 1
end
function init(args)
  prefix = "%(run)s-" .. thread_id .. "-"
  counter = 0
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
    '"p50_us": %%d, "p90_us": %%d, "p99_us": %%d, "max_us": %%d}\n',
    summary.requests, summary.duration, errors.status,
    errors.connect + errors.read + errors.write + errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=15, help="seconds per run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes (each with 4 threads)")
    parser.add_argument("--rounds", type=int, default=3, help="baseline and Chorus alternate this many times")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (Debian/Ubuntu: apt-get install wrk)")

    with bench_database() as database_url:
        prepare_chorus(database_url)
        runs: list[Run] = []
        for round_number in range(1, args.rounds + 1):
            for server in ("baseline", "chorus"):
                # A fresh script per run: its ids must never repeat an earlier run's, or it measures duplicates.
                run = measure(server, database_url, write_script(BODY.read_bytes()), args)
                runs.append(run)
                print(f"round {round_number} {server:8} {run.requests_per_second:8.0f} req/s  "
                      f"p50 {run.p50_ms:6.2f} ms  p99 {run.p99_ms:7.2f} ms  "
                      f"non-2xx {run.non_2xx}  socket errors {run.socket_errors}", flush=True)  # fmt: skip
        stored = count_rows(database_url, "webhook_events")
        expected = sum(r.requests for r in runs if r.server == "chorus")
    report(runs, args, stored_events=stored, chorus_requests=expected)


def measure(server: str, database_url: str, script: Path, args: argparse.Namespace) -> Run:
    with serving(server, database_url, args.workers) as base_url:
        result = subprocess.run(
            ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration}s", "-s", str(script),
             f"{base_url}/webhooks"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
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
    )


def report(runs: list[Run], args: argparse.Namespace, *, stored_events: int, chorus_requests: int) -> None:
    def median(server: str, field: str) -> float:
        return float(statistics.median(getattr(r, field) for r in runs if r.server == server))

    print()
    print(f"{'':10}{'req/s':>10}{'p50 ms':>10}{'p90 ms':>10}{'p99 ms':>10}   (medians of {args.rounds} runs)")
    for server in ("baseline", "chorus"):
        print(f"{server:10}{median(server, 'requests_per_second'):10.0f}{median(server, 'p50_ms'):10.2f}"
              f"{median(server, 'p90_ms'):10.2f}{median(server, 'p99_ms'):10.2f}")  # fmt: skip
    ratio = median("chorus", "requests_per_second") / median("baseline", "requests_per_second")
    print(f"chorus/baseline throughput: {ratio:.2f}")
    # wrk counts the requests answered within the run; a few more are in flight when it stops.
    print(f"events stored by chorus: {stored_events} (requests answered: {chorus_requests})")
    summary = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "settings": vars(args),
        "throughput_ratio": round(ratio, 3),
        "stored_events": stored_events,
        "runs": [asdict(r) for r in runs],
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
        process.wait(timeout=30)


def wait_for(base_url: str, process: subprocess.Popen[bytes]) -> None:
    http = requests.Session()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"server exited with {process.returncode}")
        try:
            http.post(f"{base_url}/webhooks", data=b"{}", timeout=1)  # any answer means it is up
            return
        except requests.ConnectionError:
            time.sleep(0.1)
    sys.exit("server did not start within 30 s")


def chorus_env(database_url: str) -> dict[str, str]:
    return {
        "SHOPIFY_API_KEY": "bench",
        "SHOPIFY_API_SECRET": SECRET,
        "APP_URL": "https://chorus.example",
        "ENCRYPTION_KEY": ENCRYPTION_KEY,
        "SECRET_KEY": "b" * 40,
        "DATABASE_URL": database_url,
    }


def prepare_chorus(database_url: str) -> None:
    migrate.upgrade(database_url)
    runtime = Runtime.build(Settings.from_env(chorus_env(database_url)))
    with runtime.session() as session, session.begin():
        register_shop(session, SecretBox((ENCRYPTION_KEY,)), SHOP, access_token="t", webhook_secret=None,
                      now=datetime.now(UTC))  # fmt: skip
    runtime.close()


def write_script(body: bytes) -> Path:
    script = Path(tempfile.mkdtemp()) / "intake.lua"
    script.write_text(
        LUA
        % {
            "body": body.decode(),
            "signature": webhook_signature(SECRET, body),
            "shop": SHOP,
            "run": uuid.uuid4().hex[:8],
        }
    )
    return script


@contextmanager
def bench_database() -> Iterator[str]:
    """A private schema in the benchmark database, dropped afterwards."""
    raw = os.environ.get("BENCH_DATABASE_URL") or os.environ.get(
        "TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    )
    base = make_url(normalise_database_url(raw))
    conninfo = base.set(drivername="postgresql").render_as_string(hide_password=False)
    schema = f"chorus_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield base.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(conninfo, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


def count_rows(database_url: str, table: str) -> int:
    url = make_url(database_url)
    conninfo = url.set(drivername="postgresql", query={}).render_as_string(hide_password=False)
    options = url.query.get("options")
    with psycopg.connect(conninfo, options=str(options)) as connection:
        row = connection.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608  a fixed name
    return int(row[0]) if row else 0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


if __name__ == "__main__":
    main()
