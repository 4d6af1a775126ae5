"""A private PgBouncer, in transaction pooling mode, on a free loopback port in front of the test PostgreSQL.

PgBouncer refuses startup parameters it does not keep track of, `options=-csearch_path=…` (how
`database.py` picks a test schema) among them. Here the schema is picked by the database aliases instead:
PgBouncer runs `SET search_path TO <schema>` (`connect_query`) on every server connection it opens for them,
and transaction pooling never resets a server connection (no `server_reset_query`), so every transaction of
every client runs in the schema. Clients connect to an alias without any startup option.

The process is our own (never Debian's `pgbouncer` service): its config, user list (trust, for the one
PostgreSQL user) and log live in a temporary directory. Without the binary the tests that need it are
skipped, or fail with `REQUIRE_PGBOUNCER=1` (CI, `.ci/run`).
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import URL

from tests.support.net import free_port

ALIAS = "chorus_test"  # pool of `default_pool_size` server connections, shared per transaction
SINGLE = "chorus_test_single"  # one server connection for every client: shows what sharing one does
POOL_SIZE = 4  # fewer server connections than clients: transactions really are multiplexed
# Debian installs it in /usr/sbin, which is not on every PATH.
CANDIDATES = ("pgbouncer", "/usr/sbin/pgbouncer", "/usr/local/sbin/pgbouncer")


def require_pgbouncer() -> bool:
    return os.environ.get("REQUIRE_PGBOUNCER") == "1"


def pgbouncer_binary() -> str:
    """The `pgbouncer` executable; skips the test (fails with REQUIRE_PGBOUNCER=1) when there is none."""
    for candidate in CANDIDATES:
        if found := shutil.which(candidate):
            return found
    reason = "no pgbouncer executable on PATH or in /usr/sbin"
    if require_pgbouncer():
        pytest.fail(f"PgBouncer is required (REQUIRE_PGBOUNCER=1) but {reason}", pytrace=False)
    pytest.skip(f"PgBouncer tests skipped: {reason} (apt-get install -y pgbouncer; REQUIRE_PGBOUNCER=1 to fail)")


@dataclass(frozen=True)
class PgBouncer:
    port: int
    user: str
    schema: str
    log: Path

    def url(self, alias: str = ALIAS) -> str:
        """A SQLAlchemy URL through PgBouncer to the test schema, without any startup option."""
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{alias}"

    def conninfo(self, alias: str = ALIAS) -> str:
        return f"host=127.0.0.1 port={self.port} user={self.user} dbname={alias} connect_timeout=3"

    def show(self, what: str) -> list[dict[str, object]]:
        """A `SHOW …` of PgBouncer's admin console (simple query protocol, no transaction)."""
        with psycopg.connect(self.conninfo("pgbouncer"), autocommit=True, cursor_factory=psycopg.ClientCursor) as conn:
            cursor = conn.execute(f"SHOW {what}")
            names = [column.name for column in cursor.description or []]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


@contextmanager
def pgbouncer(base: URL, schema: str, directory: Path) -> Iterator[PgBouncer]:
    """PgBouncer in front of `base`'s database, whose aliases run in `schema`; stopped on exit."""
    binary = pgbouncer_binary()
    # The schema goes unquoted into a quoted connect_query: only plain identifiers (as `postgres_schema` makes).
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", schema):
        raise ValueError(f"not a plain identifier: {schema!r}")
    user = base.username or "postgres"
    port = free_port()
    server = f"host={base.host or '127.0.0.1'} port={base.port or 5432} dbname={base.database or user}"
    userlist = directory / "userlist.txt"
    # With `trust` clients give no password; PgBouncer logs in to PostgreSQL with the one listed here.
    userlist.write_text(f'"{_quoted(user)}" "{_quoted(base.password or "")}"\n')
    lines = [
        "[databases]",
        f"{ALIAS} = {server} connect_query='SET search_path TO {schema}'",
        f"{SINGLE} = {server} pool_size=1 connect_query='SET search_path TO {schema}'",
        "[pgbouncer]",
        "listen_addr = 127.0.0.1",
        f"listen_port = {port}",
        "unix_socket_dir =",  # TCP only: no socket file next to the system's
        "auth_type = trust",
        f"auth_file = {userlist}",
        f"admin_users = {user}",
        "pool_mode = transaction",
        f"default_pool_size = {POOL_SIZE}",
        "max_client_conn = 500",
        "server_reset_query =",
        "query_wait_timeout = 20",  # a client starved of a server connection fails instead of hanging
        # Sent by some drivers (JDBC, asyncpg); psycopg sends none PgBouncer cannot track.
        "ignore_startup_parameters = extra_float_digits",
    ]
    if os.geteuid() == 0:
        # PgBouncer refuses to run as root; it reads this file and the user list before switching, and logs
        # to stderr (our file), so the temporary directory may stay private to root.
        lines.append(f"user = {_unprivileged_user()}")
    config = directory / "pgbouncer.ini"
    config.write_text("\n".join(lines) + "\n")
    log_path = directory / "pgbouncer.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([binary, str(config)], stdout=log, stderr=subprocess.STDOUT)
    running = PgBouncer(port=port, user=user, schema=schema, log=log_path)
    try:
        _wait_until_serving(running, process)
        yield running
    finally:
        process.send_signal(signal.SIGTERM)  # immediate shutdown
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _wait_until_serving(running: PgBouncer, process: subprocess.Popen[bytes]) -> None:
    """Until a client of the alias lands in the schema (connect_query errors are only logged by PgBouncer)."""
    deadline = time.monotonic() + 15
    while True:
        if process.poll() is not None:
            pytest.fail(f"pgbouncer exited with {process.returncode}:\n{running.log.read_text()}", pytrace=False)
        try:
            with psycopg.connect(running.conninfo(), autocommit=True) as conn:
                row = conn.execute("SELECT current_schema()").fetchone()
            break
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                pytest.fail(f"pgbouncer did not accept connections:\n{running.log.read_text()}", pytrace=False)
            time.sleep(0.05)
    if row is None or row[0] != running.schema:
        pytest.fail(f"connect_query did not choose {running.schema}: {row}\n{running.log.read_text()}", pytrace=False)


def _unprivileged_user() -> str:
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise RuntimeError("running as root, and neither a postgres nor a nobody user to run PgBouncer as")


def _quoted(value: str) -> str:
    return value.replace('"', '""')
