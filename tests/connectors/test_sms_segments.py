"""What an SMS body costs in segments: GSM-7 septets or UCS-2 code units, split where carriers split."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.sms.segments import GSM7_BASIC, GSM7_EXTENDED, count_segments


@pytest.mark.parametrize(
    ("body", "encoding", "count", "units"),
    [
        ("", "GSM-7", 0, 0),
        ("a" * 160, "GSM-7", 1, 160),
        ("a" * 161, "GSM-7", 2, 161),
        ("a" * 306, "GSM-7", 2, 306),
        ("a" * 307, "GSM-7", 3, 307),
        ("€" * 80, "GSM-7", 1, 160),  # an extension character is two septets
        ("€" * 81, "GSM-7", 2, 162),
        ("a" * 152 + "€", "GSM-7", 1, 154),
        ("a" * 159 + "€", "GSM-7", 2, 161),
        ("a" * 151 + "€" + "b" * 152, "GSM-7", 2, 305),
        ("a" * 152 + "€" + "b" * 152, "GSM-7", 3, 306),  # the escape pair is not split: 152, 153, 1
        ("Ça coûte 5€", "UCS-2", 1, 11),  # û is not in the GSM alphabet
        ("a" * 70, "GSM-7", 1, 70),
        ("“" + "a" * 69, "UCS-2", 1, 70),  # a curly quote makes the whole body UCS-2
        ("“" + "a" * 70, "UCS-2", 2, 71),
        ("👍" * 35, "UCS-2", 1, 70),  # an emoji is a surrogate pair
        ("a" * 66 + "👍", "UCS-2", 1, 68),
        ("a" * 66 + "👍" + "a" * 66, "UCS-2", 3, 134),  # the pair is not split: 66, 67, 1
    ],
)
def test_segments(body: str, encoding: str, count: int, units: int) -> None:
    segments = count_segments(body)
    assert (segments.encoding, segments.count, segments.units) == (encoding, count, units)


ALPHABET = sorted(GSM7_BASIC | GSM7_EXTENDED)


@given(st.text(alphabet=st.sampled_from(ALPHABET), max_size=800))
def test_a_gsm_body_takes_no_more_segments_than_its_septets_need_plus_the_unsplittable_pairs(body: str) -> None:
    segments = count_segments(body)
    assert segments.encoding == "GSM-7"
    if segments.units <= 160:
        assert segments.count == (1 if body else 0)
    else:
        assert -(-segments.units // 153) <= segments.count <= -(-segments.units // 152)


@given(
    st.text(min_size=1, max_size=400).filter(lambda s: any(c not in GSM7_BASIC and c not in GSM7_EXTENDED for c in s))
)
def test_any_other_character_makes_it_ucs2(body: str) -> None:
    segments = count_segments(body)
    assert segments.encoding == "UCS-2"
    assert segments.units == len(body.encode("utf-16-le")) // 2
    assert segments.count >= -(-segments.units // 67) if segments.units > 70 else segments.count == 1
