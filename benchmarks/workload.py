"""Store activity for the benchmarks, built from Shopify's documented webhook samples (tests/fixtures) with
many distinct checkouts, orders, customers and products, deterministic for a given seed.

Everything happens before `NOW`, the instant the measured worker runs are frozen at.
"""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from benchmarks.support import NOW, Webhook, fixture, iso

# The events benchmark's mix, as shares of N (they add up to 1).
MIX = {
    "checkouts/create": 0.20,
    "checkouts/update": 0.20,
    "orders/create": 0.15,
    "orders/paid": 0.15,
    "products/update": 0.10,
    "customers/create": 0.10,
    "customers/update": 0.10,
}
ORDER_FROM_CHECKOUT = 0.5  # an order that completes one of the generated checkouts (a goal of its journey)
SUBSCRIBED = 0.8  # customers created subscribed to email marketing (the welcome flow enrols them)
ACCEPTS_MARKETING = 0.7  # checkouts whose buyer ticked the marketing box
KNOWN_BUYER = 0.5  # checkouts and orders by a customer the customers/create deliveries created
VARIANTS_PER_PRODUCT = 3

_CHECKOUT = fixture("checkouts_create.json")
_ORDER = fixture("orders_create.json")
_CUSTOMER = fixture("customers_create.json")
_SHOP = fixture("app_uninstalled.json")  # Shopify's shop object: name, address, currency


@dataclass(frozen=True)
class Person:
    customer_id: int
    email: str
    first_name: str
    last_name: str
    subscribed: bool  # email marketing consent as Shopify holds it
    since: datetime  # created, and consent given, then


@dataclass(frozen=True)
class Item:
    product_id: int
    variant_id: int
    title: str
    variant_title: str
    price: Decimal


def shop_profile(at: datetime) -> Webhook:
    """shop/update with a name and the postal address marketing email must carry."""
    return Webhook("shop/update", _SHOP | {"name": "Lumen Lamps", "updated_at": iso(at)}, at)


def catalogue(products: int) -> list[list[Item]]:
    """`products` products of three variants each; ids are stable across runs."""
    result = []
    for p in range(products):
        product_id = 7_000_000 + p
        result.append(
            [
                Item(
                    product_id,
                    8_000_000 + p * VARIANTS_PER_PRODUCT + v,
                    f"Lamp {p}",
                    f"Colour {v}",
                    Decimal(19 + (p * 7 + v * 3) % 180) + Decimal("0.99"),
                )
                for v in range(VARIANTS_PER_PRODUCT)
            ]
        )
    return result


def product_payload(
    variants: list[Item], at: datetime, *, price_cut: Decimal = Decimal(0), stock: int = 25
) -> dict[str, Any]:
    """products/create or products/update, in its documented shape (the sample set carries no product file)."""
    product_id = variants[0].product_id
    images = [
        {
            "id": product_id * 10 + n,
            "product_id": product_id,
            "position": n + 1,
            "src": f"https://cdn.shopify.com/s/files/lamp-{product_id}-{n}.png",
            "width": 1024,
            "height": 1024,
        }
        for n in range(2)
    ]
    return {
        "id": product_id,
        "title": variants[0].title,
        "body_html": "<p>A lamp that lights the room.</p>",
        "vendor": "Lumen",
        "product_type": "Lamps",
        "handle": f"lamp-{product_id}",
        "status": "active",
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": iso(at),
        "published_at": "2026-01-01T00:00:00Z",
        "tags": "lamp, light",
        "image": images[0],
        "images": images,
        "options": [{"name": "Colour", "position": 1, "values": [v.variant_title for v in variants]}],
        "variants": [
            {
                "id": v.variant_id,
                "product_id": product_id,
                "title": v.variant_title,
                "sku": f"SKU-{v.variant_id}",
                "price": str(v.price - price_cut),
                "compare_at_price": str(v.price) if price_cut else None,
                "position": n + 1,
                "inventory_quantity": stock,
                "inventory_policy": "deny",
                "inventory_management": "shopify",
                "image_id": images[n % 2]["id"],
                "requires_shipping": True,
                "taxable": True,
                "grams": 800,
                "weight": 0.8,
                "weight_unit": "kg",
                "option1": v.variant_title,
                "created_at": "2026-01-01T00:00:00Z",
                "updated_at": iso(at),
            }
            for n, v in enumerate(variants)
        ],
    }


def customer_object(person: Person, at: datetime, *, with_consent: bool = True) -> dict[str, Any]:
    """A customer as customers/create and /update carry it (and, nested, checkouts and orders)."""
    payload = copy.deepcopy(_CUSTOMER)
    address = payload["default_address"] | {
        "id": person.customer_id + 1,
        "customer_id": person.customer_id,
        "first_name": person.first_name,
        "last_name": person.last_name,
        "name": f"{person.first_name} {person.last_name}",
    }
    payload.update(
        id=person.customer_id,
        email=person.email,
        first_name=person.first_name,
        last_name=person.last_name,
        note=None,
        created_at=iso(person.since),
        updated_at=iso(at),
        default_address=address,
        addresses=[address],
        admin_graphql_api_id=f"gid://shopify/Customer/{person.customer_id}",
    )
    if with_consent:
        payload["email_marketing_consent"] = {
            "state": "subscribed" if person.subscribed else "not_subscribed",
            "opt_in_level": "single_opt_in" if person.subscribed else None,
            "consent_updated_at": iso(person.since) if person.subscribed else None,
        }
    return payload


def _line(template: dict[str, Any], item: Item, quantity: int) -> dict[str, Any]:
    line = copy.deepcopy(template)
    line.update(
        product_id=item.product_id,
        variant_id=item.variant_id,
        title=item.title,
        variant_title=item.variant_title,
        quantity=quantity,
        price=str(item.price),
        sku=f"SKU-{item.variant_id}",
    )
    for key in ("presentment_title", "name"):
        if key in line:
            line[key] = item.title
    if "presentment_variant_title" in line:
        line["presentment_variant_title"] = item.variant_title
    if "variant_price" in line:
        line["variant_price"] = str(item.price)
    return line


def checkout_payload(
    token: str,
    number: int,
    person: Person,
    items: list[tuple[Item, int]],
    created: datetime,
    at: datetime,
    *,
    accepts_marketing: bool,
    with_consent: bool = True,
) -> dict[str, Any]:
    payload = copy.deepcopy(_CHECKOUT)
    template = payload["line_items"][0]
    lines = [_line(template, item, quantity) for item, quantity in items]
    total = sum((item.price * quantity for item, quantity in items), Decimal(0))
    payload.update(
        id=30_000_000 + number,
        token=token,
        cart_token=f"cart-{token}",
        email=person.email,
        buyer_accepts_marketing=accepts_marketing,
        created_at=iso(created),
        updated_at=iso(at),
        line_items=lines,
        subtotal_price=str(total),
        total_line_items_price=str(total),
        total_price=str(total),
        abandoned_checkout_url=f"https://lumen.example/checkouts/{token}/recover?key=k{number}",
        customer=customer_object(person, at, with_consent=with_consent) | {"updated_at": iso(person.since)},
    )
    return payload


def order_payload(
    order_id: int,
    number: int,
    person: Person,
    items: list[tuple[Item, int]],
    created: datetime,
    at: datetime,
    *,
    paid: bool,
    checkout_token: str | None,
) -> dict[str, Any]:
    payload = copy.deepcopy(_ORDER)
    template = payload["line_items"][0]
    total = sum((item.price * quantity for item, quantity in items), Decimal(0))
    payload.update(
        id=order_id,
        admin_graphql_api_id=f"gid://shopify/Order/{order_id}",
        name=f"#{1000 + number}",
        number=number,
        order_number=1000 + number,
        email=person.email,
        contact_email=person.email,
        buyer_accepts_marketing=person.subscribed,
        checkout_token=checkout_token,
        cart_token=f"cart-{checkout_token}" if checkout_token else None,
        token=f"order-token-{order_id}",
        created_at=iso(created),
        processed_at=iso(created),
        updated_at=iso(at),
        financial_status="paid" if paid else "pending",
        fulfillment_status=None,
        fulfillments=[],
        refunds=[],
        cancelled_at=None,
        cancel_reason=None,
        closed_at=None,
        currency="USD",
        presentment_currency="USD",
        line_items=[
            _line(template, item, quantity) | {"id": order_id * 10 + n} for n, (item, quantity) in enumerate(items)
        ],
        subtotal_price=str(total),
        total_line_items_price=str(total),
        total_price=str(total),
        current_total_price=str(total),
        customer=customer_object(person, at) | {"updated_at": iso(person.since)},
    )
    return payload


@dataclass
class _Checkout:
    number: int
    token: str
    person: Person
    basket: list[tuple[Item, int]]
    created: datetime
    last: datetime  # its latest change
    accepts_marketing: bool

    def payload(self) -> dict[str, Any]:
        return checkout_payload(
            self.token,
            self.number,
            self.person,
            self.basket,
            self.created,
            self.last,
            accepts_marketing=self.accepts_marketing,
        )


def _person(rng: random.Random, number: int, since: datetime, subscribed: bool) -> Person:
    first = rng.choice(["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia"])
    last = rng.choice(["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson"])
    return Person(9_000_000 + number, f"shopper{number}@example.com", first, last, subscribed, since)


def _basket(rng: random.Random, products: list[list[Item]]) -> list[tuple[Item, int]]:
    chosen = rng.sample(products, k=min(len(products), rng.choice([1, 1, 2, 3])))
    return [(rng.choice(variants), rng.choice([1, 1, 2])) for variants in chosen]


def events_mix(
    total: int, *, seed: int = 1, window: timedelta = timedelta(minutes=50)
) -> tuple[list[Webhook], list[list[Item]]]:
    """`total` deliveries in `MIX`'s shares, in the order they happened during `window` before `NOW` (ending
    ten seconds before it), and the catalogue they refer to (to be in the mirror beforehand).

    Checkouts are updated zero to several times after they are created; half the orders complete one of the
    checkouts; every order is created, then paid; products are updated several times each (price and stock);
    customers are created (mostly subscribed), then some updated again. Buyers are customers the
    customers/create deliveries created, or others known only from their checkouts and orders.
    """
    rng = random.Random(seed)
    counts = {topic: int(total * share) for topic, share in MIX.items()}
    counts["checkouts/create"] += total - sum(counts.values())
    end = NOW - timedelta(seconds=10)
    start = end - window

    def moment(after: datetime | None = None) -> datetime:
        low = after or start
        return low + timedelta(seconds=rng.uniform(1, max(2.0, (end - low).total_seconds() - 1)))

    products = catalogue(max(10, counts["products/update"] // 5))
    webhooks: list[Webhook] = []

    registered = []  # people created by customers/create
    for n in range(counts["customers/create"]):
        at = moment()
        person = _person(rng, n, at, rng.random() < SUBSCRIBED)
        registered.append(person)
        webhooks.append(Webhook("customers/create", customer_object(person, at), at))
    customer_updates: dict[int, datetime] = {}
    for _ in range(counts["customers/update"]):
        person = rng.choice(registered)
        at = moment(max(person.since, customer_updates.get(person.customer_id, person.since)))
        customer_updates[person.customer_id] = at
        body = customer_object(person, at) | {"phone": f"+1613555{person.customer_id % 10000:04d}"}
        webhooks.append(Webhook("customers/update", body, at))

    guests = 0

    def buyer(after: datetime) -> Person:
        nonlocal guests
        if registered and rng.random() < KNOWN_BUYER:
            return rng.choice(registered)
        guests += 1
        return _person(rng, 500_000 + guests, after, rng.random() < SUBSCRIBED)

    checkouts: list[_Checkout] = []
    for n in range(counts["checkouts/create"]):
        created = moment()
        checkout = _Checkout(
            number=n,
            token=f"{seed:02d}{n:08d}{rng.getrandbits(64):016x}",
            person=buyer(created),
            basket=_basket(rng, products),
            created=created,
            last=created,
            accepts_marketing=rng.random() < ACCEPTS_MARKETING,
        )
        checkouts.append(checkout)
        webhooks.append(Webhook("checkouts/create", checkout.payload(), created))
    for _ in range(counts["checkouts/update"]):
        checkout = rng.choice(checkouts)
        checkout.last = moment(checkout.last)
        if rng.random() < 0.5:  # a quantity changed, or a line was added
            if rng.random() < 0.5:
                checkout.basket = [(item, quantity + 1) for item, quantity in checkout.basket]
            else:
                checkout.basket = checkout.basket + _basket(rng, products)[:1]
        webhooks.append(Webhook("checkouts/update", checkout.payload(), checkout.last))

    completed = rng.sample(checkouts, k=min(len(checkouts), int(counts["orders/create"] * ORDER_FROM_CHECKOUT)))
    for n in range(counts["orders/create"]):
        order_id = 5_000_000_000 + n
        checkout_token: str | None = None
        if n < len(completed):
            source = completed[n]
            created, checkout_token, person, basket = moment(source.last), source.token, source.person, source.basket
        else:
            created = moment()
            person, basket = buyer(created), _basket(rng, products)
        body = order_payload(order_id, n, person, basket, created, created, paid=False, checkout_token=checkout_token)
        webhooks.append(Webhook("orders/create", body, created))
        if n < counts["orders/paid"]:
            paid = moment(created)
            body = order_payload(order_id, n, person, basket, created, paid, paid=True, checkout_token=checkout_token)
            webhooks.append(Webhook("orders/paid", body, paid))

    for _ in range(counts["products/update"]):
        variants = rng.choice(products)
        at = moment()
        cut = Decimal(rng.choice([0, 0, 5, 10]))
        body = product_payload(variants, at, price_cut=cut, stock=rng.randint(0, 40))
        webhooks.append(Webhook("products/update", body, at))

    webhooks.sort(key=lambda w: w.at)  # delivered as they happened (stable: a create before its update)
    return webhooks, products


def abandoned_checkouts(count: int, *, seed: int = 2) -> tuple[list[Webhook], list[Webhook], list[str]]:
    """`count` checkouts left between 110 and 70 minutes before `NOW` by distinct guests who ticked the
    marketing box: each one's first reminder (an hour after its last change) is due at `NOW`.

    Returns the catalogue (products/create, before the checkouts), the checkouts followed by a price cut on
    some products (so that reminders are rendered from current prices, not the checkout's), and the
    addresses each of which should receive exactly one message.
    """
    rng = random.Random(seed)
    products = catalogue(max(10, count // 20))
    first = NOW - timedelta(minutes=110)
    catalogue_hooks = [
        Webhook("products/create", product_payload(variants, first - timedelta(days=1)), first - timedelta(days=1))
        for variants in products
    ]
    checkouts = []
    addresses = []
    for n in range(count):
        at = first + timedelta(seconds=rng.uniform(0, 40 * 60))
        person = _person(rng, 700_000 + n, at, subscribed=False)
        token = f"ab{n:08d}{rng.getrandbits(64):016x}"
        body = checkout_payload(
            token, n, person, _basket(rng, products), at, at, accepts_marketing=True, with_consent=False
        )
        checkouts.append(Webhook("checkouts/create", body, at))
        addresses.append(person.email)
    checkouts.sort(key=lambda w: w.at)
    cut_at = first + timedelta(minutes=45)
    for variants in products[::3]:
        checkouts.append(Webhook("products/update", product_payload(variants, cut_at, price_cut=Decimal(5)), cut_at))
    return catalogue_hooks, checkouts, addresses
