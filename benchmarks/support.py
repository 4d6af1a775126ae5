"""What the benchmarks share: a private PostgreSQL schema, Chorus's environment, a registered shop, signed
deliveries through the real intake, and child processes timed with their peak memory.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import make_url

from shopify_app.clock import FrozenClock
from shopify_app.crypto import SecretBox
from shopify_app.db import migrate
from shopify_app.runtime import Runtime
from shopify_app.settings import Settings, normalise_database_url
from shopify_app.shopify.signatures import webhook_signature
from shopify_app.shops import register_shop
from shopify_app.webhooks.intake import Delivery, Outcome
from shopify_app.webhooks.views import build_intake

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "shopify" / "webhooks"
SHOP = "bench.myshopify.com"
SECRET = "bench_secret_key"
ENCRYPTION_KEY = "kOgVXBTbDvIP3gqaWPwAH24kaxaVP3-cGn1JDMY2fdE="
EMAIL_FROM = "reminders@mail.chorus.example"
# The instant every worker run of the events and sending benchmarks is frozen at (`--now`); the generated
# store activity happens in the hours before it.
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def fixture(name: str) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads((FIXTURES / name).read_bytes())
    return payload


def chorus_env(database_url: str, **overrides: str) -> dict[str, str]:
    """A complete configuration. Installing a shop then makes no Admin API call (nothing leaves the machine)."""
    env = {
        "SHOPIFY_API_KEY": "bench",
        "SHOPIFY_API_SECRET": SECRET,
        "APP_URL": "https://chorus.example",
        "ENCRYPTION_KEY": ENCRYPTION_KEY,
        "SECRET_KEY": "b" * 40,
        "DATABASE_URL": database_url,
        "LOG_LEVEL": "WARNING",
        "WEBHOOKS_MANAGED_BY": "toml",  # shopify.app.toml declares the subscriptions: no API call on install
        "SYNC_ON_INSTALL": "false",  # no backfill from the Admin API
        "SHOPIFY_ADMIN_BASE_URL": "http://127.0.0.1:9/{shop}",  # should anything call Shopify, it fails at once
    }
    env.update(overrides)
    return env


def process_env(database_url: str, **overrides: str) -> dict[str, str]:
    """The environment of a `chorus` child process: Chorus's configuration over this one's PATH and HOME."""
    base = {key: os.environ[key] for key in ("PATH", "HOME", "LANG", "PYTHONPATH") if key in os.environ}
    return {**base, **chorus_env(database_url, **overrides)}


def build_runtime(database_url: str, *, at: datetime = NOW, env: Mapping[str, str] | None = None) -> Runtime:
    """An in-process runtime on the benchmark's schema, its clock frozen `at`; `env` overrides settings."""
    return Runtime.build(Settings.from_env(chorus_env(database_url, **(env or {}))), clock=FrozenClock(at))


def chorus_command(*args: str) -> list[str]:
    return [str(Path(sys.executable).parent / "chorus"), *args]


@contextmanager
def bench_database() -> Iterator[str]:
    """A private schema in the benchmark database (BENCH_DATABASE_URL, else TEST_DATABASE_URL, else the local
    default), dropped afterwards whatever happens. Yields its SQLAlchemy URL."""
    raw = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL", DEFAULT_DATABASE_URL)
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


@contextmanager
def connect(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A plain psycopg connection to the benchmark's schema (autocommit)."""
    url = make_url(database_url)
    conninfo = url.set(drivername="postgresql", query={}).render_as_string(hide_password=False)
    options = url.query.get("options")
    with psycopg.connect(conninfo, options=str(options) if options else "", autocommit=True) as connection:
        yield connection


def scalar(database_url: str, sql: str) -> Any:
    with connect(database_url) as connection:
        row = connection.execute(sql).fetchone()
    return row[0] if row else None


def count_rows(database_url: str, table: str) -> int:
    return int(scalar(database_url, f"SELECT count(*) FROM {table}"))  # noqa: S608  a fixed name


def counts_by(database_url: str, sql: str) -> dict[str, int]:
    with connect(database_url) as connection:
        rows = connection.execute(sql).fetchall()
    return {str(key): int(value) for key, value in rows}


def prepare_schema(database_url: str) -> None:
    """Migrate the schema and register the shop, installed a month before `NOW`."""
    migrate.upgrade(database_url)
    runtime = build_runtime(database_url)
    with runtime.session() as session, session.begin():
        shop = register_shop(session, SecretBox((ENCRYPTION_KEY,)), SHOP, access_token="t", webhook_secret=None,
                             now=NOW - timedelta(days=30))  # fmt: skip
        # Every message of the workload may go at the benchmark's instant: no window, no cap holds one back
        # (the policy is still looked at for each of them, as for any shop).
        shop.policy = {
            "quiet_hours": {"email": "00:00-24:00", "sms": "00:00-24:00", "whatsapp": "00:00-24:00"},
            "caps": [],
            "growth_threshold": 0,
        }
    runtime.close()


class SettableClock:
    """The intake's clock: each delivery is received when the benchmark says (a little after it happened)."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


@dataclass(frozen=True)
class Webhook:
    topic: str
    payload: dict[str, Any]
    at: datetime  # when it happened (X-Shopify-Triggered-At)


def store_webhooks(database_url: str, webhooks: Iterable[Webhook], run: str = "") -> int:
    """Store signed deliveries through the real intake in-process (signature checked, deduplicated, inserted).

    Each is received two seconds after it happened. Returns how many were stored; anything else stops the
    benchmark, since it would measure something else than it says.
    """
    runtime = build_runtime(database_url)
    clock = SettableClock(NOW)
    runtime.clock = clock
    intake = build_intake(runtime)
    run = run or uuid.uuid4().hex[:8]
    stored = 0
    try:
        for number, webhook in enumerate(webhooks):
            body = json.dumps(webhook.payload).encode()
            headers = {
                "Content-Type": "application/json",
                "X-Shopify-Topic": webhook.topic,
                "X-Shopify-Hmac-Sha256": webhook_signature(SECRET, body),
                "X-Shopify-Shop-Domain": SHOP,
                "X-Shopify-API-Version": "2026-07",
                "X-Shopify-Webhook-Id": f"wh-{run}-{number}",
                "X-Shopify-Event-Id": f"ev-{run}-{number}",
                "X-Shopify-Triggered-At": iso(webhook.at),
            }
            clock.at = webhook.at + timedelta(seconds=2)
            outcome = intake.receive(Delivery.from_headers(headers, body))
            if outcome is not Outcome.STORED:
                raise RuntimeError(f"delivery {number} ({webhook.topic}) was not stored: {outcome}")
            stored += 1
    finally:
        runtime.close()
    return stored


def warm_up(database_url: str, *, at: datetime = NOW, env: Mapping[str, str] | None = None) -> str:
    """One in-process worker pass at `NOW` before anything is measured: the shop's install job and the
    per-shop rows a long-installed shop already has (flow watermarks) are then done, as in production."""
    from shopify_app.worker import Worker

    logging.getLogger("shopify_app").setLevel(logging.ERROR)  # e.g. "SMTP_URL is not set", said once per child
    runtime = build_runtime(database_url, at=at, env=env)
    try:
        return Worker(runtime).run_once().describe()
    finally:
        runtime.close()


@dataclass(frozen=True)
class ChildRun:
    """One finished child process: its wall time (from the start of the first of its group), its own peak
    resident memory, its exit code and its output.

    The peak is the largest VmHWM read from /proc/<pid>/status while it ran (sampled every 10 ms; the
    high-water mark only rises, so at most the last few milliseconds are missed). Not `ru_maxrss` from
    `wait4` or RUSAGE_CHILDREN: Linux carries the maximum over `exec`, so a child forked from a big parent
    (this one holds the whole workload in memory) reports the parent's size instead of its own.
    """

    wall_s: float
    max_rss_mb: float
    returncode: int
    output: str


def high_water_mb(pid: int) -> float | None:
    """The process's own peak resident memory so far (VmHWM), None once it has exited."""
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except (FileNotFoundError, ProcessLookupError, ValueError):
        return None
    return None


def run_together(commands: list[list[str]], env: Mapping[str, str], *, timeout: float = 3600) -> list[ChildRun]:
    """Start every command at once and wait for all, following each one's peak RSS (see `ChildRun`)."""
    logs = [tempfile.TemporaryFile() for _ in commands]  # noqa: SIM115  closed below
    try:
        started = time.perf_counter()
        processes = [
            subprocess.Popen(command, env=dict(env), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
            for command, log in zip(commands, logs, strict=True)
        ]
        finished: dict[int, tuple[float, int]] = {}
        peaks = dict.fromkeys((p.pid for p in processes), 0.0)
        deadline = started + timeout
        sampled = 0.0
        while len(finished) < len(processes):
            now = time.perf_counter()
            if now - sampled >= 0.01:
                sampled = now
                for process in processes:
                    if process.pid not in finished:
                        peaks[process.pid] = max(peaks[process.pid], high_water_mb(process.pid) or 0.0)
            for process in processes:
                if process.pid in finished:
                    continue
                pid, status = os.waitpid(process.pid, os.WNOHANG)
                if pid:
                    process.returncode = os.waitstatus_to_exitcode(status)  # Popen must not wait for it again
                    finished[pid] = (time.perf_counter() - started, process.returncode)
            if time.perf_counter() > deadline:
                for process in processes:
                    if process.pid not in finished:
                        process.kill()
                raise TimeoutError(f"{commands[0]} did not finish within {timeout} s")
            time.sleep(0.002)
        runs = []
        for process, log in zip(processes, logs, strict=True):
            log.seek(0)
            wall, code = finished[process.pid]
            runs.append(ChildRun(wall, peaks[process.pid], code, log.read().decode(errors="replace")))
        return runs
    finally:
        for log in logs:
            log.close()


def run_checked(commands: list[list[str]], env: Mapping[str, str]) -> list[ChildRun]:
    runs = run_together(commands, env)
    for run in runs:
        if run.returncode != 0:
            raise RuntimeError(f"a child exited with {run.returncode}:\n{run.output[-3000:]}")
    return runs


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def load_average() -> tuple[float, float, float]:
    return os.getloadavg()
