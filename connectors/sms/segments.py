"""How many SMS segments a body is sent as, which is what it costs.

A body written entirely in the GSM 03.38 alphabet travels as 7-bit septets: 160 in one segment, 153 per
segment once it is split (the rest of each carries the concatenation header). Characters of the
alphabet's extension table (`€`, `[`, `{`, ...) take two septets, an escape and the character, and the
pair is never split across segments. Any other character (an emoji, a curly quote, most accents outside
Western Europe) turns the whole body into UCS-2: 70 UTF-16 code units in one segment, 67 per segment
once split, a surrogate pair never split.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# 3GPP TS 23.038, the default alphabet (escape excluded) and its extension table.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = frozenset("\f^{}\\[~]|€")

Encoding = Literal["GSM-7", "UCS-2"]


@dataclass(frozen=True)
class Segments:
    encoding: Encoding
    count: int  # segments the body is sent as (0 for an empty body)
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)


def is_gsm7(body: str) -> bool:
    return all(char in GSM7_BASIC or char in GSM7_EXTENDED for char in body)


def count_segments(body: str) -> Segments:
    if is_gsm7(body):
        sizes = [2 if char in GSM7_EXTENDED else 1 for char in body]
        return Segments("GSM-7", _packed(sizes, single=160, multi=153), sum(sizes))
    sizes = [2 if ord(char) > 0xFFFF else 1 for char in body]
    return Segments("UCS-2", _packed(sizes, single=70, multi=67), sum(sizes))


def _packed(sizes: list[int], *, single: int, multi: int) -> int:
    """Segments needed for these indivisible units, filled in order."""
    total = sum(sizes)
    if total <= single:
        return 1 if total else 0
    count, room = 1, multi
    for size in sizes:
        if size > room:
            count, room = count + 1, multi
        room -= size
    return count
