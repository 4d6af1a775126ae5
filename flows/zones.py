"""Which time zone a person lives in: from their address (country, and its state or province where the country
spans several zones), else from their phone number's region, else none (the caller uses the shop's).

Countries with one zone come from the IANA table shipped with `tzdata` (zone.tab); for the large countries
with several, the zone most of a state's or province's people live in. A number whose region spans several
zones names none of them here.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

import phonenumbers
from phonenumbers import timezone as number_zones

# For countries that span several zones: the zone of most of each state's or province's people.
_US = {
    "AL": "America/Chicago", "AK": "America/Anchorage", "AZ": "America/Phoenix", "AR": "America/Chicago",
    "CA": "America/Los_Angeles", "CO": "America/Denver", "CT": "America/New_York", "DE": "America/New_York",
    "DC": "America/New_York", "FL": "America/New_York", "GA": "America/New_York", "HI": "Pacific/Honolulu",
    "ID": "America/Boise", "IL": "America/Chicago", "IN": "America/Indiana/Indianapolis", "IA": "America/Chicago",
    "KS": "America/Chicago", "KY": "America/New_York", "LA": "America/Chicago", "ME": "America/New_York",
    "MD": "America/New_York", "MA": "America/New_York", "MI": "America/Detroit", "MN": "America/Chicago",
    "MS": "America/Chicago", "MO": "America/Chicago", "MT": "America/Denver", "NE": "America/Chicago",
    "NV": "America/Los_Angeles", "NH": "America/New_York", "NJ": "America/New_York", "NM": "America/Denver",
    "NY": "America/New_York", "NC": "America/New_York", "ND": "America/Chicago", "OH": "America/New_York",
    "OK": "America/Chicago", "OR": "America/Los_Angeles", "PA": "America/New_York", "RI": "America/New_York",
    "SC": "America/New_York", "SD": "America/Chicago", "TN": "America/Chicago", "TX": "America/Chicago",
    "UT": "America/Denver", "VT": "America/New_York", "VA": "America/New_York", "WA": "America/Los_Angeles",
    "WV": "America/New_York", "WI": "America/Chicago", "WY": "America/Denver", "PR": "America/Puerto_Rico",
}  # fmt: skip
_CA = {
    "AB": "America/Edmonton", "BC": "America/Vancouver", "MB": "America/Winnipeg", "NB": "America/Moncton",
    "NL": "America/St_Johns", "NS": "America/Halifax", "NT": "America/Yellowknife", "NU": "America/Iqaluit",
    "ON": "America/Toronto", "PE": "America/Halifax", "QC": "America/Toronto", "SK": "America/Regina",
    "YT": "America/Whitehorse",
}  # fmt: skip
_AU = {
    "ACT": "Australia/Sydney", "NSW": "Australia/Sydney", "NT": "Australia/Darwin", "QLD": "Australia/Brisbane",
    "SA": "Australia/Adelaide", "TAS": "Australia/Hobart", "VIC": "Australia/Melbourne", "WA": "Australia/Perth",
}  # fmt: skip
_BR = {
    "AC": "America/Rio_Branco", "AM": "America/Manaus", "RR": "America/Boa_Vista", "RO": "America/Porto_Velho",
    "MT": "America/Cuiaba", "MS": "America/Campo_Grande", "PA": "America/Belem", "AP": "America/Belem",
    "TO": "America/Araguaina", "MA": "America/Fortaleza", "PI": "America/Fortaleza", "CE": "America/Fortaleza",
    "RN": "America/Fortaleza", "PB": "America/Fortaleza", "PE": "America/Recife", "AL": "America/Maceio",
    "SE": "America/Maceio", "BA": "America/Bahia",
}  # fmt: skip
BY_PROVINCE = {"US": _US, "CA": _CA, "AU": _AU, "BR": _BR}
# The rest of a country with several zones, where one holds nearly everyone (Brazil's other states: São Paulo's).
PRINCIPAL = {
    "BR": "America/Sao_Paulo", "DE": "Europe/Berlin", "ES": "Europe/Madrid", "PT": "Europe/Lisbon",
    "CN": "Asia/Shanghai", "NZ": "Pacific/Auckland", "CY": "Asia/Nicosia", "MY": "Asia/Kuala_Lumpur",
    "EC": "America/Guayaquil", "CL": "America/Santiago", "AR": "America/Argentina/Buenos_Aires",
    "UA": "Europe/Kyiv", "UZ": "Asia/Tashkent", "CD": "Africa/Kinshasa", "PG": "Pacific/Port_Moresby",
}  # fmt: skip


@cache
def _country_zones() -> dict[str, tuple[str, ...]]:
    zones: dict[str, list[str]] = {}
    table = files("tzdata").joinpath("zoneinfo", "zone.tab").read_text(encoding="utf-8")
    for line in table.splitlines():
        if line and not line.startswith("#"):
            country, _coordinates, zone, *_comment = line.split("\t")
            zones.setdefault(country, []).append(zone)
    return {country: tuple(found) for country, found in zones.items()}


def zone_of_address(country: str | None, province: str | None) -> str | None:
    """The zone of an address's country (and state or province); None when the country has several zones and
    the province does not tell which."""
    if not country:
        return None
    country = country.upper()
    by_province = BY_PROVINCE.get(country, {})
    if province and province.upper() in by_province:
        return by_province[province.upper()]
    zones = _country_zones().get(country, ())
    if len(zones) == 1:
        return zones[0]
    return PRINCIPAL.get(country)


def zones_of_number(number: str | None) -> tuple[str, ...]:
    """The zones a phone number's region spans (several for a large country's mobile range)."""
    if not number:
        return ()
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return ()
    found = number_zones.time_zones_for_number(parsed)
    return tuple(z for z in found if z != number_zones.UNKNOWN_TIMEZONE)


def contact_zone(country: str | None, province: str | None, phone: str | None) -> str | None:
    """Where a contact lives: their address's zone, else their number's when it has only one; else None."""
    by_address = zone_of_address(country, province)
    if by_address is not None:
        return by_address
    by_number = zones_of_number(phone)
    return by_number[0] if len(by_number) == 1 else None
