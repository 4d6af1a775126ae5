"""The scripted story the demo plays, as signed webhooks posted to the running app.

Times are relative to the moment the demo starts. Four customers subscribe (so each is welcomed); three
leave checkouts; between their visit and the reminder the lamp gets cheaper, Grace buys after all (her
order is paid and shipped: thanks, a review request, related products) and Linus unsubscribes; Hedy leaves
a checkout with only the SMS box ticked (her reminders go by SMS, through the shop's Twilio account); Margaret
last ordered almost three months ago (a winback once it is three months). Ida signs up through the shop's
form and confirms from the emailed link (the shop asks for double opt-in). Ada's browser reports her visit
through the web pixel before her checkout, which then proves the browser hers. The demo then moves the
worker's clock through the following weeks (`DAYS`) so that every later step comes due.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import requests

from shopify_app.shopify.signatures import webhook_signature

SHOP = "chorus-demo.myshopify.com"
LAMP, SHADE, BULB, DIMMER = 1001, 2001, 3001, 4001
# The instants the demo runs the worker at, in days after it starts.
DAYS = (0, 1, 2, 5, 8, 22)
# The demo merchant's Twilio account (answered by the local SMS outbox) and Hedy's mobile number.
TWILIO_SID, TWILIO_TOKEN, TWILIO_FROM = "AC" + "de" * 16, "d" * 32, "+12075550100"
HEDY_PHONE = "+12075550142"
HEDY_ZONE = ZoneInfo("America/New_York")  # her number's (Maine): the law lets texts reach her in her daytime
# The demo shop sends at any hour (its windows open all day; only the law's window for texts remains), and
# its story of three weeks in a few runs sends every message (no frequency cap).
ALL_DAY = {
    "quiet_hours": {"email": "00:00-24:00", "sms": "00:00-24:00", "whatsapp": "00:00-24:00"},
    "caps": [],
    "growth_threshold": 0,  # its handful of customers may be texted all the same
}
# Ida signs up through the shop's form; the shop asks for double opt-in, so she confirms from her inbox.
IDA_EMAIL = "ida@example.com"
DOUBLE_OPT_IN = {"double_opt_in": ["email"]}
# The merchant's own wording of the second reminder by SMS (`chorus content set`), in place of the shipped one.
SECOND_REMINDER_SMS = (
    "{{ content.first_name }}, the {{ content.items[0].title }} is still in your cart, at "
    "{{ content.items[0].unit_price | money(content.items[0].currency) }}: {{ content.recovery_url }}"
)


@dataclass(frozen=True)
class Webhook:
    topic: str
    payload: dict[str, Any]
    triggered_at: datetime


def journey(now: datetime) -> Iterator[Webhook]:
    def ago(minutes: int) -> str:
        return (now - timedelta(minutes=minutes)).isoformat()

    def hook(topic: str, minutes_ago: int, payload: dict[str, Any]) -> Webhook:
        return Webhook(topic, payload, now - timedelta(minutes=minutes_ago))

    yield hook("shop/update", 300, _shop(ago(300), _midday_zone(now)))
    yield hook("products/create", 240, _lamp(price="89.00", updated_at=ago(240)))
    yield hook("products/create", 240, _product(20, "Linen Shade", "linen-shade", SHADE, "29.00", 12, ago(240)))
    yield hook("products/create", 240, _product(30, "Brass Bulb", "brass-bulb", BULB, "9.00", 40, ago(240)))
    yield hook("products/create", 240, _product(40, "Rotary Dimmer", "rotary-dimmer", DIMMER, "19.00", 8, ago(240)))
    customers = (("Ada", "ada@example.com"), ("Grace", "grace@example.com"), ("Linus", "linus@example.com"),
                 ("Margaret", "margaret@example.com"))  # fmt: skip
    for number, (first, email) in enumerate(customers, start=1):
        yield hook("customers/create", 200, _customer(number, first, email, ago(200)))
    # Margaret's last order is 89 days and 12 hours old: she lapses half a day into the demo.
    old = (now - timedelta(days=89, hours=12)).isoformat()
    yield hook("orders/create", 190, _order(4999, None, 4, "margaret@example.com", BULB, "9.00", old))

    # Ada leaves a lamp and a shade.
    yield hook("checkouts/create", 150, _checkout("demo-ada", 1, "Ada", "ada@example.com", [LAMP, SHADE], ago(150)))
    # Grace leaves a bulb, then comes back and buys it; it is paid, then shipped.
    yield hook("checkouts/create", 140, _checkout("demo-grace", 2, "Grace", "grace@example.com", [BULB], ago(140)))
    # The lamp gets cheaper while Ada is away: her reminder must show the new price.
    yield hook("products/update", 120, _lamp(price="79.00", updated_at=ago(120)))
    grace = _order(5001, "demo-grace", 2, "grace@example.com", BULB, "9.00", ago(110))
    yield hook("orders/create", 110, grace)
    yield hook("orders/paid", 109, grace)
    shipped = [{"id": 1, "status": "success", "created_at": ago(60)}]
    yield hook(
        "orders/fulfilled",
        60,
        grace | {"fulfillment_status": "fulfilled", "updated_at": ago(60), "fulfillments": shipped},
    )
    # Hedy leaves a dimmer; she ticked only the SMS box, with her mobile number: the reminder goes by SMS.
    hedy = _checkout("demo-hedy", 5, "Hedy", "hedy@example.com", [DIMMER], ago(130))
    hedy |= {"buyer_accepts_marketing": False, "buyer_accepts_sms_marketing": True, "sms_marketing_phone": HEDY_PHONE}
    yield hook("checkouts/create", 130, hedy)
    # Linus leaves a shade, then unsubscribes from the shop's emails.
    yield hook("checkouts/create", 100, _checkout("demo-linus", 3, "Linus", "linus@example.com", [SHADE], ago(100)))
    yield hook(
        "customers_email_marketing_consent/update",
        90,
        {
            "customer_id": 3,
            "email_address": "linus@example.com",
            "email_marketing_consent": {
                "state": "unsubscribed",
                "opt_in_level": "single_opt_in",
                "consent_updated_at": ago(90),
            },
        },
    )


def post_all(base_url: str, secret: str, webhooks: Iterator[Webhook]) -> list[tuple[str, int]]:
    """Post each webhook, signed as Shopify signs them; returns (topic, HTTP status) pairs."""
    http = requests.Session()
    results = []
    for webhook in webhooks:
        body = json.dumps(webhook.payload).encode()
        response = http.post(
            f"{base_url}/webhooks",
            data=body,
            timeout=10,
            headers={
                "Content-Type": "application/json",
                "X-Shopify-Topic": webhook.topic,
                "X-Shopify-Hmac-Sha256": webhook_signature(secret, body),
                "X-Shopify-Shop-Domain": SHOP,
                "X-Shopify-API-Version": "2026-07",
                "X-Shopify-Webhook-Id": str(uuid.uuid4()),
                "X-Shopify-Event-Id": str(uuid.uuid4()),
                "X-Shopify-Triggered-At": webhook.triggered_at.isoformat(),
            },
        )
        results.append((webhook.topic, response.status_code))
    return results


ADA_BROWSER = "demo-browser-ada"


def browsing(now: datetime) -> dict[str, Any]:
    """What Ada's browser reports (the pixel's batch): the lamp's page, twice, the cart, the checkout she then
    leaves, and later the dimmer's page, twice. Her checkout's signed webhook proves the browser is hers."""

    def at(minutes: int) -> str:
        return (now - timedelta(minutes=minutes)).isoformat()

    lamp = {"id": f"gid://shopify/ProductVariant/{LAMP}", "product": {"id": "gid://shopify/Product/10"}}
    dimmer = {"id": f"gid://shopify/ProductVariant/{DIMMER}", "product": {"id": "gid://shopify/Product/40"}}
    seen = [
        ("page_viewed", 158, {"url": "/"}),
        ("product_viewed", 156, {"productVariant": lamp, "url": "/products/aurora-desk-lamp"}),
        ("product_viewed", 154, {"productVariant": lamp, "url": "/products/aurora-desk-lamp"}),
        ("product_added_to_cart", 153, {"cartLine": {"quantity": 1, "merchandise": lamp}, "url": "/cart"}),
        ("checkout_started", 151, {"checkout": {"token": "demo-ada"}, "url": "/checkouts/demo-ada"}),
        # Later she comes back and looks at the dimmer twice, without carting it: a browse abandonment.
        ("product_viewed", 60, {"productVariant": dimmer, "url": "/products/rotary-dimmer"}),
        ("product_viewed", 58, {"productVariant": dimmer, "url": "/products/rotary-dimmer"}),
    ]
    return {"events": [{"id": f"demo-pixel-{n}", "name": name, "timestamp": at(minutes), "clientId": ADA_BROWSER,
                        "data": data} for n, (name, minutes, data) in enumerate(seen)]}  # fmt: skip


def post_browsing(base_url: str, pixel_key: str, now: datetime) -> int:
    """Ada's browser's batch, as the web pixel sends it (text/plain); returns the HTTP status."""
    body = json.dumps(browsing(now))
    headers = {"Content-Type": "text/plain", "Origin": "null"}  # from Shopify's pixel sandbox
    return requests.Session().post(f"{base_url}/pixel/{pixel_key}", data=body, headers=headers, timeout=10).status_code


def sign_up(base_url: str) -> int:
    """Ida fills in the shop's sign-up form; returns the HTTP status."""
    form = {"email": IDA_EMAIL, "consent_email": "on"}
    return requests.Session().post(f"{base_url}/subscribe/{SHOP}", data=form, timeout=10).status_code


def confirm_sign_up(outbox: list[Path]) -> list[str]:
    """Ida opens the confirmation email, once it is there, follows its link (a page with a button) and
    confirms."""
    for path in outbox:
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        if message["To"] == IDA_EMAIL and str(message["Subject"]).startswith("Confirm"):
            body = message.get_body(preferencelist=("plain",))
            found = re.search(r"https?://\S+/confirm/[0-9a-f]{64}", body.get_content() if body else "")
            if found:
                http = requests.Session()
                http.get(found.group(0), timeout=10).raise_for_status()
                http.post(found.group(0), timeout=10).raise_for_status()
                return [f"{IDA_EMAIL} confirmed her sign-up through the emailed link (double opt-in)"]
    return []


def in_texting_hours(at: datetime) -> datetime:
    """`at`, if it is daytime where Hedy lives (well inside any US state's window for texts), else the next 13:00
    there: each day of the demo runs when her text may go out, whatever the hour the demo is started at."""
    local = at.astimezone(HEDY_ZONE)
    if 10 <= local.hour < 19:
        return at
    day = local.date() if local.hour < 10 else local.date() + timedelta(days=1)
    return datetime.combine(day, time(13), tzinfo=HEDY_ZONE).astimezone(UTC)


def _midday_zone(now: datetime) -> str:
    """A time zone where it is early afternoon now: marketing SMS go out in the shop's daytime, and the demo
    shop is always where they may (its worker runs move on a few hours at most)."""
    offset = (13 - now.astimezone(UTC).hour + 12) % 24 - 12  # hours ahead of UTC, from -12 to 11
    return f"Etc/GMT{-offset:+d}" if offset else "UTC"  # Etc/GMT-3 is three hours ahead of UTC


def _shop(updated_at: str, zone: str) -> dict[str, Any]:
    return {
        "name": "Lumen Demo Store",
        "email": "hello@lumen.example",
        "customer_email": "hello@lumen.example",
        "domain": "lumen.example",
        "currency": "USD",
        "money_format": "${{amount}}",
        "iana_timezone": zone,
        "address1": "12 Harbor Street",
        "city": "Portland",
        "province_code": "ME",
        "zip": "04101",
        "country_name": "United States",
        "updated_at": updated_at,
    }


def _lamp(*, price: str, updated_at: str) -> dict[str, Any]:
    return _product(10, "Aurora Desk Lamp", "aurora-desk-lamp", LAMP, price, 5, updated_at)


def _product(
    product_id: int, title: str, handle: str, variant_id: int, price: str, stock: int, updated_at: str
) -> dict[str, Any]:
    image = f"https://placehold.co/120x120?text={handle}"
    return {
        "id": product_id,
        "title": title,
        "handle": handle,
        "status": "active",
        "product_type": "Lamps" if product_id == 10 else "Lighting parts",
        "vendor": "Lumen Works",
        "updated_at": updated_at,
        "image": {"id": product_id * 10, "src": image},
        "images": [{"id": product_id * 10, "src": image}],
        "variants": [
            {
                "id": variant_id,
                "product_id": product_id,
                "title": "Default Title",
                "price": price,
                "inventory_quantity": stock,
                "inventory_policy": "deny",
                "updated_at": updated_at,
            }
        ],
    }


def _customer(customer_id: int, first_name: str, email: str, updated_at: str) -> dict[str, Any]:
    return {
        "id": customer_id,
        "email": email,
        "first_name": first_name,
        "last_name": "Demo",
        "state": "enabled",
        "created_at": updated_at,
        "updated_at": updated_at,
        "email_marketing_consent": {
            "state": "subscribed",
            "opt_in_level": "single_opt_in",
            "consent_updated_at": updated_at,
        },
    }


def _checkout(
    token: str, customer_id: int, first_name: str, email: str, variants: list[int], updated_at: str
) -> dict[str, Any]:
    titles = {LAMP: "Aurora Desk Lamp", SHADE: "Linen Shade", BULB: "Brass Bulb", DIMMER: "Rotary Dimmer"}
    prices = {LAMP: "89.00", SHADE: "29.00", BULB: "9.00", DIMMER: "19.00"}
    return {
        "token": token,
        "cart_token": f"cart-{token}",
        "email": email,
        "buyer_accepts_marketing": True,
        "currency": "USD",
        "presentment_currency": "USD",
        "created_at": updated_at,
        "updated_at": updated_at,
        "completed_at": None,
        "abandoned_checkout_url": f"https://lumen.example/checkouts/{token}/recover?key=demo",
        "line_items": [
            {"variant_id": v, "product_id": v // 100, "title": titles[v], "quantity": 1, "price": prices[v]}
            for v in variants
        ],
        "customer": {"id": customer_id, "email": email, "first_name": first_name, "last_name": "Demo"},
    }


def _order(
    order_id: int, checkout_token: str | None, customer_id: int, email: str, variant: int, price: str, created_at: str
) -> dict[str, Any]:
    return {
        "id": order_id,
        "name": f"#{order_id}",
        "checkout_token": checkout_token,
        "email": email,
        "buyer_accepts_marketing": True,
        "currency": "USD",
        "total_price": price,
        "financial_status": "paid",
        "source_name": "web",
        "created_at": created_at,
        "processed_at": created_at,
        "updated_at": created_at,
        "line_items": [
            {"variant_id": variant, "product_id": variant // 100, "title": "Brass Bulb", "quantity": 1, "price": price}
        ],
        "customer": {"id": customer_id, "email": email},
    }
