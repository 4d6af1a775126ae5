"""Correctly signed bodies that are hostile to a JSON parser: intake stores and classifies every one (never a 5xx,
which Shopify would retry for hours), and the worker parks any it cannot read instead of retrying it."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.test import TestResponse

from shopify_app.db.engine import load_json
from shopify_app.events.replay import requeue_events
from shopify_app.models import EventStatus, PrivacyRequest, Shop, WebhookEvent
from shopify_app.runtime import Runtime
from tests.support import webhooks
from tests.support.db import Db
from tests.support.pipeline import deliver, process

DEEP = 5000  # levels: far past what the standard library's parser (about 1000) or orjson (1024) will nest


def deep_array(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def deep_object(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


def deep_inside_an_object(depth: int) -> bytes:
    return b'{"id": 1001, "note_attributes": ' + deep_array(depth) + b"}"


def post(client: FlaskClient, topic: str, body: bytes) -> TestResponse:
    return client.post("/webhooks", data=body, headers=webhooks.headers(topic, body))


HOSTILE: dict[str, tuple[bytes, EventStatus, str | None]] = {
    # name: (body, how intake keeps it, what its last_error says)
    "deep arrays": (deep_array(DEEP), EventStatus.MALFORMED, "depth limit exceeded"),
    "deep objects": (deep_object(DEEP), EventStatus.MALFORMED, "depth limit exceeded"),
    "deep inside an object": (deep_inside_an_object(DEEP), EventStatus.MALFORMED, "depth limit exceeded"),
    "a number of 5000 digits": (b'{"id": ' + b"9" * 5000 + b"}", EventStatus.MALFORMED, "not valid JSON"),
    "a number beyond a double": (b'{"id": 1e999}', EventStatus.MALFORMED, "not valid JSON"),
    "NaN": (b'{"total_price": NaN}', EventStatus.MALFORMED, "not valid JSON"),
    "a lone surrogate": (b'{"id": 1001, "note": "\\ud800"}', EventStatus.MALFORMED, "surrogate"),
    "a raw NUL byte in a string": (b'{"id": 1001, "note": "a\x00b"}', EventStatus.MALFORMED, "control character"),
    "a bare NUL byte": (b"\x00", EventStatus.MALFORMED, "not valid JSON"),
    "bytes that are not UTF-8": (b'{"note": "\xff\xfe"}', EventStatus.MALFORMED, "UTF-8"),
    "an array": (b"[1, 2, 3]", EventStatus.MALFORMED, "not an object"),
    "nothing": (b"", EventStatus.MALFORMED, "not valid JSON"),
    # Valid JSON objects: stored for the worker, which decides what their values mean.
    "an escaped NUL": (b'{"id": 1001, "note": "a\\u0000b"}', EventStatus.PENDING, None),
    "an id beyond 64 bits": (b'{"id": 99999999999999999999999}', EventStatus.PENDING, None),
    "nesting orjson still reads": (deep_inside_an_object(1000), EventStatus.PENDING, None),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_signed_hostile_body_is_stored_verbatim_and_classified(
    client: FlaskClient, shop: Shop, db: Db, name: str
) -> None:
    body, status, reason = HOSTILE[name]

    response = post(client, "orders/create", body)

    assert (response.status_code, response.json) == (200, {"result": "stored"})
    [event] = db.all(WebhookEvent)
    assert event.body == body
    assert event.status == status
    if reason is None:
        assert event.last_error is None
    else:
        assert event.last_error is not None
        assert reason in event.last_error


def test_a_deep_body_reaching_the_worker_is_parked_at_once_with_the_reason(
    runtime: Runtime, shop: Shop, db: Db
) -> None:
    # Deeper than the standard library parses, within orjson's limit: intake keeps it and the worker reads it.
    deliver(runtime, "orders/create", deep_inside_an_object(1020))
    # Stored as malformed, then put back in the queue by hand (`requeue_events` takes any status).
    deliver(runtime, "orders/create", deep_array(DEEP))
    with db.write() as session:
        requeue_events(session, statuses=[EventStatus.MALFORMED])
    deliver(runtime, "orders/create", webhooks.encode({"id": 1002, "updated_at": "2026-11-20T11:00:00Z"}))

    report = process(runtime)

    first, second, third = db.all(WebhookEvent)
    assert (report.claimed, report.parked, report.done) == (3, 1, 2)
    assert (second.status, second.attempts) == (EventStatus.PARKED, 1)
    assert second.last_error == "PermanentEventError: body is JSON nested too deeply to handle"
    assert first.status == third.status == EventStatus.DONE


def test_a_data_request_exports_a_malformed_body_that_names_the_customer(runtime: Runtime, shop: Shop, db: Db) -> None:
    deliver(runtime, "customers/update", b'{"id": 501, "email": "ada@example.com", "tags": ' + deep_array(DEEP) + b"}")
    deliver(runtime, "customers/update", b'{"id": 501, "email": "ada@example.com", "note": "cut sh')

    deliver(runtime, "customers/data_request", {"customer": {"id": 501, "email": "ada@example.com"}})
    report = process(runtime)

    assert (report.claimed, report.done) == (1, 1)
    [request] = db.all(PrivacyRequest)
    assert request.export is not None
    bodies = [e["body"] for e in request.export["events"] if e["topic"] == "customers/update"]
    assert len(bodies) == 2
    assert all(isinstance(b, str) and "ada@example.com" in b for b in bodies)  # as text: still handed over


def nested(depth: int, kind: str) -> bytes:
    return {"array": deep_array, "object": deep_object, "inside": deep_inside_an_object}[kind](depth)


def text_in_a_string(text: str) -> bytes:
    # Raw, unescaped: control characters, NUL bytes and lone surrogates land in the body as they are.
    return b'{"id": 1001, "note": "' + text.encode("utf-8", "surrogatepass") + b'"}'


hostile_bodies = st.one_of(
    st.builds(nested, st.integers(min_value=1, max_value=6000), st.sampled_from(["array", "object", "inside"])),
    st.binary(max_size=300),
    st.text(max_size=50).map(text_in_a_string),
    st.integers(min_value=1, max_value=5000).map(lambda digits: b'{"id": ' + b"7" * digits + b"}"),
    st.recursive(
        st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=20),
        lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
        max_leaves=20,
    ).map(lambda value: json.dumps(value).encode()),  # NaN and Infinity as Python writes them (not JSON)
)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=hostile_bodies)
def test_no_signed_body_gets_a_server_error_and_each_is_stored_and_classified(
    client: FlaskClient, shop: Shop, db: Db, body: bytes
) -> None:
    before = len(db.all(WebhookEvent))

    response = post(client, "orders/create", body)

    assert response.status_code == 200
    events = db.all(WebhookEvent)
    assert len(events) == before + 1
    event = events[-1]
    assert event.body == body
    assert event.status in (EventStatus.PENDING, EventStatus.MALFORMED)
    assert (event.status == EventStatus.MALFORMED) == (event.last_error is not None)


def outcome(read: Callable[[bytes], object], body: bytes) -> str:
    try:
        return repr(read(body))  # repr: NaN equals itself, and key order counts
    except ValueError as exc:
        return f"{type(exc).__name__}: {exc}"


@settings(max_examples=300)
@given(
    body=hostile_bodies
    | st.integers(min_value=-(2**70), max_value=2**70).map(lambda n: b'{"id": %d, "note": "%d"}' % (n, n))
    | st.dictionaries(st.sampled_from("abc"), st.integers(), max_size=6).map(
        lambda value: b"{" + b", ".join(b'"%s": %d' % (k.encode(), v) for k, v in value.items()) * 2 + b"}"
    )
)
def test_the_worker_reads_a_body_as_the_standard_library_does(body: bytes) -> None:
    # Integers beyond 64 bits stay exact (orjson alone would make them floats), duplicate keys keep the last
    # value, and what the standard library refuses is refused with its message; only nesting it is too deep
    # for, and orjson is not (about 1000 to 1024 levels), is read.
    try:
        expected = outcome(json.loads, body)
    except RecursionError:
        assert depth(body) > 900
        return
    assert outcome(load_json, body) == expected


def depth(body: bytes) -> int:
    level = deepest = 0
    for byte in body:
        level += (byte in b"[{") - (byte in b"]}")
        deepest = max(deepest, level)
    return deepest
