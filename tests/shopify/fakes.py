"""Fakes for the Admin API client: a token source, a clock that sleeping advances, Shopify's answer shapes."""

from __future__ import annotations

import json
from typing import Any

import responses

from shopify_app.http import http_session
from shopify_app.shopify.admin_api import AdminApi, AuthenticationError, admin_endpoint

SHOP = "lumen-lamps.myshopify.com"
ENDPOINT = admin_endpoint(f"https://{SHOP}", "2026-10")
FIRST_TOKEN = "shpat_first_0123456789abcdef"
REFRESHED_TOKEN = "shpat_refreshed_fedcba9876543210"


class FakeTokens:
    """Hands out FIRST_TOKEN, then `refreshed` tokens one per rejection; records what was rejected."""

    def __init__(self, *refreshed: str) -> None:
        self.token = FIRST_TOKEN
        self.refreshed = list(refreshed)
        self.rejected: list[str] = []

    def current(self) -> str:
        return self.token

    def after_rejection(self, rejected: str) -> str:
        self.rejected.append(rejected)
        if not self.refreshed:
            raise AuthenticationError("no refresh token")
        self.token = self.refreshed.pop(0)
        return self.token


class FakeTime:
    """A monotonic clock that only moves when slept on (or told to), recording every sleep."""

    def __init__(self) -> None:
        self.now = 5_000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def make_api(tokens: FakeTokens | None = None, time: FakeTime | None = None, **kwargs: Any) -> AdminApi:
    time = time or FakeTime()
    return AdminApi(
        http_session(),
        endpoint=ENDPOINT,
        tokens=tokens or FakeTokens(),
        sleep=time.sleep,
        monotonic=time.monotonic,
        **kwargs,
    )


def cost(requested: float = 12, actual: float | None = 10, available: float = 1990, rate: float = 100.0) -> Any:
    """`extensions.cost` as Shopify documents it (shopify.dev/docs/api/usage/limits#cost-calculation)."""
    return {
        "requestedQueryCost": requested,
        "actualQueryCost": actual,
        "throttleStatus": {"maximumAvailable": 2000.0, "currentlyAvailable": available, "restoreRate": rate},
    }


def answer(data: Any, **cost_numbers: float) -> dict[str, Any]:
    return {"data": data, "extensions": {"cost": cost(**cost_numbers)}}


def throttled(requested: float, available: float, rate: float = 100.0) -> dict[str, Any]:
    return {
        "errors": [
            {
                "message": "Throttled",
                "extensions": {"code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"},
            }
        ],
        "extensions": {"cost": cost(requested=requested, actual=None, available=available, rate=rate)},
    }


def sent(call: Any) -> dict[str, Any]:
    """The JSON body of a request the fake received."""
    body: dict[str, Any] = json.loads(call.request.body)
    return body


def sent_variables(mock: responses.RequestsMock) -> list[dict[str, Any]]:
    return [sent(call)["variables"] for call in mock.calls]
