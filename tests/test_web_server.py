"""`chorus web`: gunicorn serving the app over real HTTP on loopback."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from shopify_app.models import Shop, WebhookEvent
from tests.support import webhooks
from tests.support.db import Db
from tests.support.env import chorus_command, process_env
from tests.support.net import free_port


@pytest.fixture
def server(db_url: str, shop: Shop, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    log = (tmp_path / "web.log").open("wb")
    process = subprocess.Popen(
        [*chorus_command(), "web"],
        env=process_env(db_url, PORT=str(port), WEB_CONCURRENCY="2", WEBHOOK_MAX_BODY_BYTES="65536"),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    http = requests.Session()
    deadline = time.monotonic() + 30
    while True:
        try:
            if http.get(f"{base}/healthz", timeout=1).status_code == 200:
                break
        except requests.ConnectionError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            log.close()
            pytest.fail(f"chorus web did not start: {(tmp_path / 'web.log').read_text()}")
        time.sleep(0.1)
    yield base
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    log.close()


@pytest.mark.slow
def test_gunicorn_serves_webhook_intake(server: str, db: Db) -> None:
    http = requests.Session()
    body = webhooks.fixture_bytes("orders_create.json")

    accepted = http.post(f"{server}/webhooks", data=body, headers=webhooks.headers("orders/create", body), timeout=5)
    forged = http.post(
        f"{server}/webhooks", data=body, headers=webhooks.headers("orders/create", body, secret="nope"), timeout=5
    )

    def oversized():
        for _ in range(100):  # 100 KiB, chunked, over the 64 KiB limit
            yield b" " * 1024

    too_large = http.post(
        f"{server}/webhooks", data=oversized(), headers=webhooks.headers("orders/create", b""), timeout=5
    )

    assert (accepted.status_code, forged.status_code, too_large.status_code) == (200, 401, 413)
    [event] = db.all(WebhookEvent)
    assert event.body == body
