"""Shopify's GraphQL Admin API: one POST per document, with Shopify's cost-based rate limit respected.

Shopify meters every shop with a leaky bucket of query-cost points. Each answer says what the query cost and
how full the bucket is (`extensions.cost`); the client remembers both, so it can wait *before* sending a query
it knows to be expensive instead of being refused, and waits exactly as long as Shopify says when refused
anyway. 5xx answers and network failures are retried with exponential backoff; a 401 gets one retry with a
refreshed token. The access token never appears in an exception or a log line.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import requests

log = logging.getLogger(__name__)

# Never wait less than this after a THROTTLED answer: the bucket's numbers are already a little stale.
MIN_THROTTLE_WAIT = 1.0
# Transient failures wait 1, 2, 4, 8... seconds, never more than BACKOFF_CAP.
BACKOFF_BASE = 1.0
BACKOFF_CAP = 30.0

_NETWORK_ERRORS = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)


class AdminApiError(Exception):
    """The Admin API call did not produce data. `status` is the HTTP status when there was one."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ThrottledError(AdminApiError):
    """Still throttled after the retry budget: the shop's bucket is busy (other apps share its limits)."""


class AuthenticationError(AdminApiError):
    """The access token was refused, and a refreshed one too: the merchant must open the app again."""


class TransientError(AdminApiError):
    """5xx answers or network failures until the retry budget ran out: worth trying again later."""


class GraphQLError(AdminApiError):
    """Shopify answered with `errors` (unknown field, ACCESS_DENIED, ...): retrying will not help."""

    def __init__(
        self,
        messages: Sequence[str],
        codes: Sequence[str],
        *,
        data: Mapping[str, Any] | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__("; ".join(messages) or "GraphQL error without a message", status=status)
        self.messages = tuple(messages)
        self.codes = tuple(codes)
        self.data = data  # what Shopify did return next to the errors, if anything


@dataclass(frozen=True)
class UserError:
    """One entry of a mutation's `userErrors`: `field` is the path to the offending input, if any."""

    field: tuple[str, ...] | None
    message: str


class UserErrorsError(AdminApiError):
    """A mutation was refused for its input (`userErrors` not empty); nothing was changed."""

    def __init__(self, errors: Sequence[UserError]) -> None:
        super().__init__("; ".join(_describe(error) for error in errors))
        self.errors = list(errors)


def _describe(error: UserError) -> str:
    return f"{'.'.join(error.field)}: {error.message}" if error.field else error.message


def raise_for_user_errors(payload: Mapping[str, Any] | None) -> None:
    """Raise UserErrorsError when a mutation payload carries `userErrors`."""
    raw = (payload or {}).get("userErrors") or []
    if raw:
        raise UserErrorsError(
            [UserError(tuple(item["field"]) if item.get("field") else None, str(item.get("message"))) for item in raw]
        )


class AccessTokenSource(Protocol):
    def current(self) -> str:
        """A token believed usable (refreshed ahead of expiry by the source)."""
        ...

    def after_rejection(self, rejected: str) -> str:
        """A new token after Shopify answered 401 to `rejected`; raises AuthenticationError if there is none."""
        ...


def admin_endpoint(base_url: str, api_version: str) -> str:
    """`https://{shop}` (or a replacement such as a local fake) to the versioned GraphQL endpoint."""
    return f"{base_url.rstrip('/')}/admin/api/{api_version}/graphql.json"


@dataclass(frozen=True)
class _Bucket:
    """Shopify's last word on the shop's points, and when (monotonic seconds) it was heard."""

    available: float
    maximum: float
    restore_rate: float
    observed_at: float

    def estimated(self, now: float) -> float:
        return min(self.maximum, self.available + self.restore_rate * max(0.0, now - self.observed_at))


class _Retry(Exception):
    """Internal: this attempt failed in a way worth retrying, after `wait` seconds or the next backoff step."""

    def __init__(self, wait: float | None, error: AdminApiError) -> None:
        self.wait = wait
        self.error = error


class _Unauthorized(Exception):
    """Internal: HTTP 401."""


class AdminApi:
    """One shop's Admin API. Safe to share between threads; the pacing state is per instance."""

    def __init__(
        self,
        http: requests.Session,
        *,
        endpoint: str,
        tokens: AccessTokenSource,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        max_attempts: int = 5,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._http = http
        self._endpoint = endpoint
        self._tokens = tokens
        self._sleep = sleep
        self._monotonic = monotonic
        self._max_attempts = max_attempts
        self._lock = threading.Lock()
        self._bucket: _Bucket | None = None
        self._costs: dict[str, float] = {}  # document -> requestedQueryCost last reported

    @property
    def endpoint(self) -> str:
        return self._endpoint

    def execute(self, document: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Run one query or mutation and return its `data`; raises an AdminApiError subclass otherwise.

        A mutation may be sent again after a 5xx or a network failure (it may have been applied): the ones
        Chorus sends are idempotent, or refused as duplicates through `userErrors`.
        """
        body = {"query": document, "variables": dict(variables or {})}
        token = self._tokens.current()
        refreshed = False
        attempt = 1
        while True:
            self._pace(document)
            try:
                return self._attempt(document, body, token)
            except _Unauthorized:
                if refreshed:
                    raise AuthenticationError("Shopify refused the refreshed access token", status=401) from None
                log.info("Admin API answered 401; asking for a refreshed access token")
                token = self._tokens.after_rejection(token)
                refreshed = True
            except _Retry as retry:
                if attempt >= self._max_attempts:
                    raise retry.error from None
                wait = retry.wait if retry.wait is not None else min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1))
                log.info("Admin API attempt %d failed (%s); retrying in %.1fs", attempt, retry.error, wait)
                self._sleep(wait)
                attempt += 1

    def _attempt(self, document: str, body: Mapping[str, Any], token: str) -> dict[str, Any]:
        headers = {"X-Shopify-Access-Token": token, "Content-Type": "application/json", "Accept": "application/json"}
        try:
            response = self._http.post(self._endpoint, json=body, headers=headers)
        except _NETWORK_ERRORS as exc:
            raise _Retry(None, TransientError(f"network error: {type(exc).__name__}")) from None
        status = response.status_code
        if status == 401:
            raise _Unauthorized
        if status >= 500:
            raise _Retry(None, TransientError(f"Shopify answered HTTP {status}", status=status))
        payload = _json_object(response)
        if payload is not None:
            self._observe(document, payload)
        if status == 429 or (payload is not None and _throttled(payload)):
            raise _Retry(self._throttle_wait(payload, response), ThrottledError("throttled by Shopify", status=status))
        if payload is None:
            raise AdminApiError(f"Shopify answered HTTP {status} without a JSON object", status=status)
        messages, codes = _errors(payload)
        if status != 200:
            detail = f": {'; '.join(messages)}" if messages else ""
            raise AdminApiError(f"Shopify answered HTTP {status}{detail}", status=status)
        data = payload.get("data")
        if messages or codes:
            raise GraphQLError(messages, codes, data=data if isinstance(data, dict) else None, status=status)
        if not isinstance(data, dict):
            raise AdminApiError("Shopify answered without data", status=status)
        return data

    def _pace(self, document: str) -> None:
        """Wait until the bucket should hold what this document cost last time, instead of being refused."""
        with self._lock:
            bucket, cost = self._bucket, self._costs.get(document)
        if bucket is None or cost is None or bucket.restore_rate <= 0 or cost > bucket.maximum:
            return
        missing = cost - bucket.estimated(self._monotonic())
        if missing > 0:
            wait = missing / bucket.restore_rate
            log.info("pausing %.1fs for the shop's query-cost bucket to refill", wait)
            self._sleep(wait)

    def _observe(self, document: str, payload: Mapping[str, Any]) -> None:
        cost = _cost(payload)
        if cost is None:
            return
        now = self._monotonic()
        with self._lock:
            requested = cost.get("requestedQueryCost")
            if isinstance(requested, int | float):
                self._costs[document] = float(requested)
            status = cost.get("throttleStatus")
            if isinstance(status, dict):
                try:
                    self._bucket = _Bucket(
                        available=float(status["currentlyAvailable"]),
                        maximum=float(status["maximumAvailable"]),
                        restore_rate=float(status["restoreRate"]),
                        observed_at=now,
                    )
                except (KeyError, TypeError, ValueError):
                    log.warning("unexpected throttleStatus shape in an Admin API answer")

    def _throttle_wait(self, payload: Mapping[str, Any] | None, response: requests.Response) -> float | None:
        """Shopify's own arithmetic: the points missing for this query divided by the restore rate.

        None (the next backoff step) when the answer gives neither the cost numbers nor Retry-After.
        """
        cost = _cost(payload) if payload is not None else None
        if cost is not None:
            try:
                requested = float(cost["requestedQueryCost"])
                status = cost["throttleStatus"]
                missing = requested - float(status["currentlyAvailable"])
                return max(MIN_THROTTLE_WAIT, missing / float(status["restoreRate"]))
            except (KeyError, TypeError, ValueError, ZeroDivisionError):
                pass
        retry_after = response.headers.get("Retry-After")
        try:
            return max(MIN_THROTTLE_WAIT, float(retry_after)) if retry_after else None
        except ValueError:
            return None


def _json_object(response: requests.Response) -> dict[str, Any] | None:
    try:
        payload = response.json()
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


def _cost(payload: Mapping[str, Any]) -> Mapping[str, Any] | None:
    extensions = payload.get("extensions")
    cost = extensions.get("cost") if isinstance(extensions, dict) else None
    return cost if isinstance(cost, dict) else None


def _error_items(payload: Mapping[str, Any]) -> list[Any]:
    errors = payload.get("errors")
    if isinstance(errors, list):
        return errors
    return [{"message": errors}] if errors else []  # some non-GraphQL answers carry a plain string


def _errors(payload: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    messages: list[str] = []
    codes: list[str] = []
    for item in _error_items(payload):
        if isinstance(item, dict):
            messages.append(str(item.get("message", "")))
            extensions = item.get("extensions")
            code = extensions.get("code") if isinstance(extensions, dict) else None
            if code:
                codes.append(str(code))
        else:
            messages.append(str(item))
    return messages, codes


def _throttled(payload: Mapping[str, Any]) -> bool:
    return "THROTTLED" in _errors(payload)[1]
