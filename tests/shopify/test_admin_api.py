"""The Admin API client against a fake Shopify: cost-based throttling, retries, token refresh, errors."""

from __future__ import annotations

import logging

import pytest
import requests
import responses

from shopify_app.shopify.admin_api import (
    AdminApiError,
    AuthenticationError,
    GraphQLError,
    ThrottledError,
    TransientError,
    admin_endpoint,
)
from tests.shopify.fakes import (
    ENDPOINT,
    FIRST_TOKEN,
    REFRESHED_TOKEN,
    FakeTime,
    FakeTokens,
    answer,
    make_api,
    sent,
    throttled,
)

SHOP_QUERY = "query { shop { name } }"
SHOP_DATA = {"shop": {"name": "Lumen Lamps"}}
CUSTOMER_QUERY = "query Customer($id: ID!) { customer(id: $id) { id } }"
EXPENSIVE = "query Everything { products(first: 250) { nodes { id } } }"
UNAUTHORIZED = {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}


def test_the_request_is_the_documented_post(shopify: responses.RequestsMock) -> None:
    shopify.post(ENDPOINT, json=answer({"customer": {"id": "gid://shopify/Customer/7"}}))

    data = make_api().execute(CUSTOMER_QUERY, {"id": "gid://shopify/Customer/7"})

    assert data == {"customer": {"id": "gid://shopify/Customer/7"}}
    [call] = shopify.calls
    assert call.request.url == "https://lumen-lamps.myshopify.com/admin/api/2026-10/graphql.json"
    assert call.request.headers["X-Shopify-Access-Token"] == FIRST_TOKEN
    assert call.request.headers["Content-Type"] == "application/json"
    assert sent(call) == {"query": CUSTOMER_QUERY, "variables": {"id": "gid://shopify/Customer/7"}}


def test_a_query_without_variables_sends_an_empty_object(shopify: responses.RequestsMock) -> None:
    shopify.post(ENDPOINT, json=answer(SHOP_DATA))
    make_api().execute(SHOP_QUERY)
    assert sent(shopify.calls[0]) == {"query": SHOP_QUERY, "variables": {}}


@pytest.mark.parametrize(
    ("base", "endpoint"),
    [
        ("https://lumen-lamps.myshopify.com", "https://lumen-lamps.myshopify.com/admin/api/2026-10/graphql.json"),
        ("http://127.0.0.1:9000/", "http://127.0.0.1:9000/admin/api/2026-10/graphql.json"),
    ],
)
def test_admin_endpoint(base: str, endpoint: str) -> None:
    assert admin_endpoint(base, "2026-10") == endpoint


@pytest.mark.parametrize("status", [200, 429])
def test_a_throttled_answer_waits_what_shopify_says_then_retries(shopify: responses.RequestsMock, status: int) -> None:
    shopify.post(ENDPOINT, json=throttled(requested=752, available=152, rate=100.0), status=status)
    shopify.post(ENDPOINT, json=answer(SHOP_DATA))
    time = FakeTime()

    assert make_api(time=time).execute(SHOP_QUERY) == SHOP_DATA

    assert time.sleeps == [6.0]  # (752 - 152) / 100
    assert len(shopify.calls) == 2


def test_a_throttled_answer_waits_at_least_a_little(shopify: responses.RequestsMock) -> None:
    shopify.post(ENDPOINT, json=throttled(requested=50, available=49.5, rate=100.0))
    shopify.post(ENDPOINT, json=answer(SHOP_DATA))
    time = FakeTime()
    make_api(time=time).execute(SHOP_QUERY)
    assert time.sleeps == [1.0]


def test_still_throttled_after_the_budget(shopify: responses.RequestsMock) -> None:
    for _ in range(3):
        shopify.post(ENDPOINT, json=throttled(requested=1000, available=0, rate=50.0), status=429)
    time = FakeTime()

    with pytest.raises(ThrottledError):
        make_api(time=time, max_attempts=3).execute(SHOP_QUERY)

    assert time.sleeps == [20.0, 20.0]  # no pointless wait after the last attempt


def test_a_known_expensive_query_waits_for_points_instead_of_being_refused(shopify: responses.RequestsMock) -> None:
    # The first run reports its cost (requested 500) and leaves 100 points, refilling at 50 per second.
    shopify.post(ENDPOINT, json=answer(SHOP_DATA, requested=500, actual=480, available=100, rate=50.0))
    shopify.post(ENDPOINT, json=answer(SHOP_DATA, requested=500, actual=480, available=20, rate=50.0))
    time = FakeTime()
    api = make_api(time=time)

    api.execute(EXPENSIVE)
    assert time.sleeps == []  # nothing known yet: no reason to wait
    time.now += 2.0  # two seconds later the bucket should hold 200 points
    api.execute(EXPENSIVE)

    assert time.sleeps == [6.0]  # the missing 300 points at 50 per second, before sending
    assert len(shopify.calls) == 2  # and no throttled answer was needed


def test_a_cheap_query_is_not_held_back_by_an_expensive_one(shopify: responses.RequestsMock) -> None:
    shopify.post(ENDPOINT, json=answer(SHOP_DATA, requested=500, actual=480, available=100, rate=50.0))
    shopify.post(ENDPOINT, json=answer(SHOP_DATA, requested=1, actual=1, available=99, rate=50.0))
    shopify.post(ENDPOINT, json=answer(SHOP_DATA, requested=1, actual=1, available=98, rate=50.0))
    time = FakeTime()
    api = make_api(time=time)

    api.execute(EXPENSIVE)
    api.execute(SHOP_QUERY)
    api.execute(SHOP_QUERY)

    assert time.sleeps == []


def test_server_errors_are_retried_with_growing_waits(shopify: responses.RequestsMock) -> None:
    shopify.post(ENDPOINT, status=503, body="Service Unavailable")
    shopify.post(ENDPOINT, status=502, body="Bad Gateway")
    shopify.post(ENDPOINT, status=500, json={"errors": "Internal error"})
    shopify.post(ENDPOINT, json=answer(SHOP_DATA))
    time = FakeTime()

    assert make_api(time=time).execute(SHOP_QUERY) == SHOP_DATA

    assert time.sleeps == [1.0, 2.0, 4.0]


def test_server_errors_give_up_after_the_budget(shopify: responses.RequestsMock) -> None:
    for _ in range(3):
        shopify.post(ENDPOINT, status=503)
    time = FakeTime()

    with pytest.raises(TransientError) as raised:
        make_api(time=time, max_attempts=3).execute(SHOP_QUERY)

    assert raised.value.status == 503
    assert time.sleeps == [1.0, 2.0]
    assert len(shopify.calls) == 3


@pytest.mark.parametrize(
    "failure", [requests.ConnectionError("connection reset by peer"), requests.ReadTimeout("read timed out")]
)
def test_network_failures_are_retried(shopify: responses.RequestsMock, failure: Exception) -> None:
    shopify.post(ENDPOINT, body=failure)
    shopify.post(ENDPOINT, json=answer(SHOP_DATA))
    time = FakeTime()

    assert make_api(time=time).execute(SHOP_QUERY) == SHOP_DATA
    assert time.sleeps == [1.0]


def test_network_failures_give_up_after_the_budget(shopify: responses.RequestsMock) -> None:
    for _ in range(2):
        shopify.post(ENDPOINT, body=requests.ConnectionError("connection refused"))
    with pytest.raises(TransientError, match="network error"):
        make_api(max_attempts=2).execute(SHOP_QUERY)


def test_a_401_asks_for_a_refreshed_token_and_retries_with_it(shopify: responses.RequestsMock) -> None:
    shopify.post(ENDPOINT, status=401, json=UNAUTHORIZED)
    shopify.post(ENDPOINT, json=answer(SHOP_DATA))
    tokens = FakeTokens(REFRESHED_TOKEN)
    time = FakeTime()

    assert make_api(tokens, time).execute(SHOP_QUERY) == SHOP_DATA

    assert tokens.rejected == [FIRST_TOKEN]
    assert [call.request.headers["X-Shopify-Access-Token"] for call in shopify.calls] == [
        FIRST_TOKEN,
        REFRESHED_TOKEN,
    ]
    assert time.sleeps == []


def test_a_second_401_is_an_authentication_error(
    shopify: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    shopify.post(ENDPOINT, status=401, json=UNAUTHORIZED)
    shopify.post(ENDPOINT, status=401, json=UNAUTHORIZED)
    tokens = FakeTokens(REFRESHED_TOKEN, "shpat_never_used")
    caplog.set_level(logging.DEBUG)

    with pytest.raises(AuthenticationError) as raised:
        make_api(tokens).execute(SHOP_QUERY)

    assert tokens.rejected == [FIRST_TOKEN]  # one refresh, not a loop
    for secret in (FIRST_TOKEN, REFRESHED_TOKEN):
        assert secret not in str(raised.value)
        assert secret not in caplog.text


def test_a_token_source_without_a_fresh_token_ends_the_call(shopify: responses.RequestsMock) -> None:
    shopify.post(ENDPOINT, status=401, json=UNAUTHORIZED)
    with pytest.raises(AuthenticationError):
        make_api(FakeTokens()).execute(SHOP_QUERY)
    assert len(shopify.calls) == 1


def test_a_field_error_is_a_graphql_error_with_shopifys_message(shopify: responses.RequestsMock) -> None:
    shopify.post(
        ENDPOINT,
        json={
            "errors": [
                {
                    "message": "Field 'nope' doesn't exist on type 'Shop'",
                    "locations": [{"line": 1, "column": 16}],
                    "path": ["query", "shop", "nope"],
                    "extensions": {"code": "undefinedField", "typeName": "Shop", "fieldName": "nope"},
                }
            ]
        },
    )

    with pytest.raises(GraphQLError, match="Field 'nope' doesn't exist on type 'Shop'") as raised:
        make_api().execute("query { shop { nope } }")

    assert raised.value.messages == ("Field 'nope' doesn't exist on type 'Shop'",)
    assert raised.value.codes == ("undefinedField",)
    assert len(shopify.calls) == 1


def test_access_denied_is_not_retried(shopify: responses.RequestsMock) -> None:
    shopify.post(
        ENDPOINT,
        json={
            "data": {"customer": None},
            "errors": [
                {
                    "message": "Access denied for customer field. Required access: `read_customers` access scope.",
                    "locations": [{"line": 1, "column": 31}],
                    "path": ["customer"],
                    "extensions": {
                        "code": "ACCESS_DENIED",
                        "documentation": "https://shopify.dev/api/usage/access-scopes",
                        "requiredAccess": "`read_customers` access scope.",
                    },
                }
            ],
            "extensions": {"cost": {"requestedQueryCost": 1, "actualQueryCost": 1}},
        },
    )

    with pytest.raises(GraphQLError, match="read_customers") as raised:
        make_api().execute(CUSTOMER_QUERY, {"id": "gid://shopify/Customer/7"})

    assert raised.value.codes == ("ACCESS_DENIED",)
    assert raised.value.data == {"customer": None}


@pytest.mark.parametrize("status", [400, 402, 403, 404, 423])
def test_other_client_errors_are_not_retried(shopify: responses.RequestsMock, status: int) -> None:
    shopify.post(ENDPOINT, status=status, json={"errors": "Unavailable Shop"})
    time = FakeTime()

    with pytest.raises(AdminApiError) as raised:
        make_api(time=time).execute(SHOP_QUERY)

    assert raised.value.status == status
    assert "Unavailable Shop" in str(raised.value)
    assert (len(shopify.calls), time.sleeps) == (1, [])


def test_a_429_without_cost_numbers_honours_retry_after(shopify: responses.RequestsMock) -> None:
    shopify.post(ENDPOINT, status=429, body="Too Many Requests", headers={"Retry-After": "2.0"})
    shopify.post(ENDPOINT, json=answer(SHOP_DATA))
    time = FakeTime()

    assert make_api(time=time).execute(SHOP_QUERY) == SHOP_DATA
    assert time.sleeps == [2.0]
