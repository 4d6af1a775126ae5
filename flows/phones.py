"""Phone numbers as channels address them: E.164 (`+14155552671`), whatever form a customer typed."""

from __future__ import annotations

import phonenumbers


def normalise_phone(raw: str | None, region: str | None = None) -> str | None:
    """The number in E.164, or None when it is not a valid number. `region` (ISO 3166 alpha-2, e.g. the
    shop's country) reads numbers written without their country code."""
    if not raw or len(raw) > 64:
        return None
    try:
        number = phonenumbers.parse(raw, region.upper() if region else None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phone_region(number: str) -> str | None:
    """The country (ISO 3166 alpha-2) an E.164 number belongs to, if it can be told."""
    try:
        region = phonenumbers.region_code_for_number(phonenumbers.parse(number, None))
    except phonenumbers.NumberParseException:
        return None
    return region if region and region != "ZZ" else None
