"""Phone numbers to E.164, as a customer or merchant may have typed them."""

from __future__ import annotations

import pytest

from flows.phones import normalise_phone


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("+1 (415) 555-0123", None, "+14155550123"),
        ("415-555-0123", "US", "+14155550123"),
        ("415-555-0123", "us", "+14155550123"),
        ("020 7946 0958", "GB", "+442079460958"),
        ("+44 20 7946 0958", "US", "+442079460958"),  # a country code wins over the region
        ("00 49 30 901820", "DE", "+4930901820"),
        ("415-555-0123", None, None),  # no country code, no region to read it with
        ("+1 555", None, None),
        ("not a number", "US", None),
        ("", "US", None),
        (None, "US", None),
        ("+1" + "2" * 200, None, None),
    ],
)
def test_normalise_phone(raw: str | None, region: str | None, expected: str | None) -> None:
    assert normalise_phone(raw, region) == expected
