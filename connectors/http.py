"""What a provider's HTTP API failing to answer means for a message: the part every HTTP connector shares."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import requests
from urllib3.exceptions import MaxRetryError, NewConnectionError

from connectors.delivery import DeliveryError, Failure


def post(provider: str, call: Callable[[], requests.Response]) -> requests.Response:
    """The provider's answer; a request that failed without one raises DeliveryError: not sent when no
    connection was made, unknown once the request may have been written."""
    try:
        return call()
    except requests.exceptions.ConnectTimeout as exc:
        raise DeliveryError(Failure.NOT_SENT, f"{provider} could not be reached: {type(exc).__name__}") from None
    except requests.exceptions.ConnectionError as exc:
        if _never_connected(exc):
            raise DeliveryError(Failure.NOT_SENT, f"{provider} could not be reached: no connection") from None
        raise DeliveryError(Failure.UNKNOWN, f"the connection to {provider} broke: {type(exc).__name__}") from None
    except requests.exceptions.Timeout as exc:
        raise DeliveryError(Failure.UNKNOWN, f"{provider} did not answer in time: {type(exc).__name__}") from None


def json_object(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def retry_after(response: requests.Response) -> timedelta | None:
    value = response.headers.get("Retry-After", "")
    return timedelta(seconds=int(value)) if value.isdigit() else None


def _never_connected(exc: requests.exceptions.ConnectionError) -> bool:
    """Whether the request failed before a connection existed (so nothing was written)."""
    reason = exc.args[0] if exc.args else None
    if isinstance(reason, MaxRetryError):
        reason = reason.reason
    return isinstance(reason, NewConnectionError)
