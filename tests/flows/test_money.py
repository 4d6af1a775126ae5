"""Prices in the shop's own money format."""

from __future__ import annotations

from decimal import Decimal

import pytest

from flows.money import clean_money_format, format_money


@pytest.mark.parametrize(
    ("money_format", "amount", "expected"),
    [
        ("${{amount}}", "79", "$79.00"),
        ("${{amount}}", "1234.5", "$1,234.50"),
        ("{{amount_with_comma_separator}} €", "1234.5", "1.234,50 €"),
        ("{{ amount_no_decimals }} kr", "1234.5", "1,235 kr"),
        ("CHF {{amount_with_apostrophe_separator}}", "1234.5", "CHF 1'234.50"),
        ("{{amount_with_space_separator}} zł", "1234.5", "1 234,50 zł"),
        ("{{amount_no_decimals_with_comma_separator}} ₫", "1234567", "1.234.567 ₫"),
        ("${{amount}}", "-5", "$-5.00"),
    ],
)
def test_shopify_placeholders(money_format: str, amount: str, expected: str) -> None:
    assert format_money(Decimal(amount), money_format) == expected


def test_a_format_is_cleaned_of_html_and_must_name_an_amount() -> None:
    assert clean_money_format('<span class="money">${{amount}}</span>') == "${{amount}}"
    assert clean_money_format("$") is None
    assert clean_money_format(None) is None
    assert clean_money_format("{{amount}}" + "x" * 200) is None
