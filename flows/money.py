"""Prices as the shop writes them: Shopify's money format (e.g. `${{amount}}`, `{{amount_with_comma_separator}} €`)."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal

_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")
_TAG = re.compile(r"<[^>]*>")


def _grouped(amount: Decimal, decimals: int, thousands: str, point: str) -> str:
    rounded = amount.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    text = f"{abs(rounded):,.{decimals}f}"  # "1,234.50"
    whole, _, fraction = text.partition(".")
    sign = "-" if rounded < 0 else ""
    return sign + whole.replace(",", thousands) + (point + fraction if decimals else "")


# Shopify's placeholders: which grouping and decimal point each writes.
_STYLES = {
    "amount": (2, ",", "."),
    "amount_no_decimals": (0, ",", "."),
    "amount_with_comma_separator": (2, ".", ","),
    "amount_no_decimals_with_comma_separator": (0, ".", ","),
    "amount_with_apostrophe_separator": (2, "'", "."),
    "amount_no_decimals_with_space_separator": (0, " ", ","),
    "amount_with_space_separator": (2, " ", ","),
    "amount_with_period_and_space_separator": (2, " ", "."),
}


def clean_money_format(raw: str | None) -> str | None:
    """A format fit for any message: without the HTML some themes wrap it in; None when it names no amount."""
    if not raw:
        return None
    text = _TAG.sub("", raw).strip()
    return text if _PLACEHOLDER.search(text) and len(text) <= 100 else None


def format_money(amount: Decimal, money_format: str) -> str:
    def placeholder(found: re.Match[str]) -> str:
        style = _STYLES.get(found.group(1))
        return _grouped(amount, *style) if style else found.group(0)

    return _PLACEHOLDER.sub(placeholder, money_format)
