"""Pixel intake throughput: batches of storefront events through `POST /pixel/<key>`, on PostgreSQL.

Method. A fresh schema is migrated, the shop registered with its pixel key and a catalogue of 50 products (so
that each product view is priced from the mirror). Then R requests of 10 events each (product views, cart
additions, page views; every id, browser and address new, one checkout every 10th request) go through the Flask
application in process (no HTTP server: what is measured is Chorus's own work, validation, limits, the
mirror's prices, the insert and the stitching query) from `--threads` threads, each request in its own
transaction as the web server runs it. requests/s and events/s = R (x 10) / wall time. Afterwards every event
must be stored once and every answer must be 204.

    python -m benchmarks.pixel [--requests 3000] [--threads 4] [--quick]
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

from sqlmodel import select

from benchmarks import workload
from benchmarks.support import (
    NOW,
    bench_database,
    build_runtime,
    connect,
    count_rows,
    iso,
    prepare_schema,
    store_webhooks,
    warm_up,
)
from shopify_app.app import create_app
from shopify_app.browsing.keys import ensure_pixel_key
from shopify_app.models import Shop

SETUP_AT = NOW - timedelta(hours=1)
EVENTS_PER_REQUEST = 10
DEFAULT_REQUESTS = 3000
QUICK_REQUESTS = 300


@dataclass
class PixelResult:
    requests: int
    events: int
    threads: int
    wall_s: float
    requests_per_s: float
    events_per_s: float
    stored: int
    statuses: dict[str, int]

    def figures(self) -> dict[str, Any]:
        return {"pixel_requests_per_s": self.requests_per_s, "pixel_events_per_s": self.events_per_s}

    def rows(self) -> list[tuple[str, str]]:
        return [
            (f"pixel: {self.requests} requests x {EVENTS_PER_REQUEST} events", f"{self.threads} threads in process"),
            ("pixel: intake", f"{self.requests_per_s:.0f} requests/s, {self.events_per_s:.0f} events/s"),
        ]


def batch(n: int, variants: list[int]) -> bytes:
    """The n-th request's batch: a new browser's views and a cart addition (a checkout every 10th)."""
    client = f"bench-{n}"
    events: list[dict[str, Any]] = []
    for i in range(EVENTS_PER_REQUEST):
        variant = variants[(n * EVENTS_PER_REQUEST + i) % len(variants)]
        merchandise = {"id": f"gid://shopify/ProductVariant/{variant}", "product": {"id": "1"}}
        data: dict[str, Any]
        if i == EVENTS_PER_REQUEST - 1 and n % 10 == 0:
            name, data = "checkout_started", {"checkout": {"token": f"bench-ck-{n}"}}
        elif i % 4 == 3:
            name, data = "product_added_to_cart", {"cartLine": {"quantity": 1, "merchandise": merchandise}}
        elif i % 4 == 0:
            name, data = "page_viewed", {"url": "/collections/all"}
        else:
            name, data = "product_viewed", {"productVariant": merchandise, "url": "/products/p"}
        events.append({"id": f"{client}-{i}", "name": name, "timestamp": iso(NOW), "clientId": client, "data": data})
    return json.dumps({"events": events}).encode()


def run(requests: int = DEFAULT_REQUESTS, threads: int = 4) -> PixelResult:
    catalogue, _checkouts, _addresses = workload.abandoned_checkouts(EVENTS_PER_REQUEST * 10, seed=3)
    with bench_database() as url:
        prepare_schema(url)
        store_webhooks(url, [workload.shop_profile(SETUP_AT), *catalogue])
        warm_up(url, at=SETUP_AT)
        runtime = build_runtime(url)
        with runtime.session() as session, session.begin():
            shop = session.exec(select(Shop)).one()
            key = ensure_pixel_key(shop)
        variants = [int(v) for v in _variants(url)]
        bodies = [batch(n, variants) for n in range(requests)]
        app = create_app(runtime)
        statuses: dict[str, int] = {}
        lock = threading.Lock()

        def send(n: int) -> None:
            # Each request from its own shopper's address, as on a storefront (one address would be rate limited).
            address = f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"
            answer = app.test_client().post(f"/pixel/{key}", data=bodies[n], content_type="text/plain",
                                            environ_base={"REMOTE_ADDR": address})  # fmt: skip
            with lock:
                statuses[str(answer.status_code)] = statuses.get(str(answer.status_code), 0) + 1

        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(send, range(requests)))
        wall = time.perf_counter() - started
        stored = count_rows(url, "pixel_events")
        runtime.close()
    if statuses != {"204": requests} or stored != requests * EVENTS_PER_REQUEST:
        raise RuntimeError(f"not every event was taken once: {statuses}, {stored} stored")
    return PixelResult(requests, requests * EVENTS_PER_REQUEST, threads, round(wall, 3), round(requests / wall, 1),
                       round(requests * EVENTS_PER_REQUEST / wall, 1), stored, statuses)  # fmt: skip


def _variants(url: str) -> list[str]:
    with connect(url) as connection:
        return [str(row[0]) for row in connection.execute("SELECT variant_id FROM variants ORDER BY variant_id")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=None, help=f"how many requests (default {DEFAULT_REQUESTS})")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="300 requests")
    args = parser.parse_args()
    result = run(args.requests or (QUICK_REQUESTS if args.quick else DEFAULT_REQUESTS), args.threads)
    for name, value in result.rows():
        print(f"{name:40} {value}")
    print(json.dumps(asdict(result)))


if __name__ == "__main__":
    main()
