from __future__ import annotations

import pytest

from shopify_app.shopify.signatures import verify_webhook_signature, webhook_signature
from tests.support.webhooks import fixture_bytes

# Shopify's published vector (shopify-app-js webhook validation tests).
PUBLISHED_SECRET = "test_secret_key"
PUBLISHED_BODY = b'{"foo": "bar"}'
PUBLISHED_HMAC = "B23tXN681gZ0qIWNRrgtzBE9XSDo5yaUu6wfmhu3a7g="


def test_published_vector_is_accepted() -> None:
    assert webhook_signature(PUBLISHED_SECRET, PUBLISHED_BODY) == PUBLISHED_HMAC
    assert verify_webhook_signature(PUBLISHED_BODY, PUBLISHED_HMAC, [PUBLISHED_SECRET])


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        ("orders_create.json", "nDUqIWSLQlBhgRJAVPg4SWZEbBe8M619OS7UyZ+nNxo="),
        ("checkouts_create.json", "TQf+4AlDLPhlj6EPaPQU4jJRrrHltdWa/cqJWGidj7M="),
        ("customers_create.json", "87MzYX5UVtGJjQjELNysjVHs/an56q0sQU9+OJpQpNU="),
        ("app_uninstalled.json", "D/eSc31LzEPiMoj/D/OsvaaP4N4pDcW1kNTXsMnlGTg="),
        ("customers_redact.json", "dXXrEWvK6lX5oaB5c+pcyywafMRKteuHVgu6eyfna1M="),
        ("shop_redact.json", "XYn6dOs/UV3fQitDX68atFRDez8zJrkeuHpSiv+4ke4="),
    ],
)
def test_vectors_over_documented_payloads(fixture: str, expected: str) -> None:
    assert verify_webhook_signature(fixture_bytes(fixture), expected, [PUBLISHED_SECRET])


@pytest.mark.parametrize(
    ("body", "header", "secrets"),
    [
        pytest.param(PUBLISHED_BODY, PUBLISHED_HMAC, ["another_secret"], id="wrong secret"),
        pytest.param(b'{"foo":"bar"}', PUBLISHED_HMAC, [PUBLISHED_SECRET], id="body re-serialised"),
        pytest.param(b'{"foo": "baz"}', PUBLISHED_HMAC, [PUBLISHED_SECRET], id="body tampered"),
        pytest.param(PUBLISHED_BODY, None, [PUBLISHED_SECRET], id="header missing"),
        pytest.param(PUBLISHED_BODY, "", [PUBLISHED_SECRET], id="header empty"),
        pytest.param(PUBLISHED_BODY, PUBLISHED_HMAC.lower(), [PUBLISHED_SECRET], id="header case changed"),
        pytest.param(PUBLISHED_BODY, "not base64 at all", [PUBLISHED_SECRET], id="header garbage"),
        pytest.param(PUBLISHED_BODY, PUBLISHED_HMAC, [], id="no secret configured"),
    ],
)
def test_rejections(body: bytes, header: str | None, secrets: list[str]) -> None:
    assert not verify_webhook_signature(body, header, secrets)


def test_any_secret_of_a_rotation_is_accepted() -> None:
    assert verify_webhook_signature(PUBLISHED_BODY, PUBLISHED_HMAC, ["new_secret", PUBLISHED_SECRET])
