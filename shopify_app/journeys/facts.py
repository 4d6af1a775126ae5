"""Gathering what a journey decision needs from the mirror, for one shop and one subject, as plain facts."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import or_
from sqlmodel import Session, col, select

from flows.contents import CONTENTS
from flows.definition import FlowDefinition, SendStep
from flows.facts import (
    CheckoutFacts,
    CheckoutLine,
    CustomerFacts,
    EmailConsent,
    Facts,
    OrderFacts,
    OrderLine,
    ProductNow,
    ShopFacts,
    VariantNow,
)
from shopify_app.models import Checkout, Customer, Order, Product, Shop, Suppression, Variant

UNSUBSCRIBED = "unsubscribed"  # the suppression reason of an unsubscribe through Chorus's link
CUSTOMER_ORDERS = 50  # the most recent orders of a customer a decision looks at
RELATED_CANDIDATES = 40  # products read as candidates for a recommendation


def gather(
    session: Session,
    shop: Shop,
    definition: FlowDefinition,
    subject: str,
    *,
    configured: frozenset[str],
    step: str | None = None,
) -> Facts:
    """The facts of one subject of `definition`; the subject's own field is None when it is gone."""
    base = Facts(shop=shop_facts(shop), configured_channels=configured)
    assert shop.id is not None
    if definition.subject == "checkout":
        return _checkout_facts(session, shop.id, subject, base)
    if definition.subject == "order":
        facts = _order_facts(session, shop.id, subject, base)
        if facts.order is not None and _needs_related(definition, step):
            facts = _with_related(session, shop.id, facts)
        return facts
    return _customer_facts(session, shop.id, subject, base)


def shop_facts(shop: Shop) -> ShopFacts:
    return ShopFacts(
        installed=shop.installed, name=shop.name, postal_address=shop.postal_address, url=shop.storefront_url
    )


def _checkout_facts(session: Session, shop_id: int, token: str, base: Facts) -> Facts:
    checkout = session.exec(select(Checkout).where(Checkout.shop_id == shop_id, Checkout.token == token)).first()
    if checkout is None:
        return base
    customer = customer_of(session, shop_id, checkout.customer_id, checkout.email)
    ties = [col(Order.checkout_token) == checkout.token]
    if checkout.cart_token:
        ties.append(col(Order.cart_token) == checkout.cart_token)
    orders = _orders(session, shop_id, checkout.customer_id, checkout.email, also=ties)
    return Facts(
        shop=base.shop,
        configured_channels=base.configured_channels,
        checkout=checkout_facts(checkout, customer),
        customer=_customer(customer),
        orders=orders,
        email_consent=email_consent(session, shop_id, checkout.email, customer),
        refused_addresses=refused(session, shop_id, checkout.email),
        variants=current_variants(session, shop_id, [line.get("variant_id") for line in checkout.line_items]),
    )


def _order_facts(session: Session, shop_id: int, subject: str, base: Facts) -> Facts:
    order = session.exec(select(Order).where(Order.shop_id == shop_id, Order.order_id == _int(subject))).first()
    if order is None:
        return base
    customer = customer_of(session, shop_id, order.customer_id, order.email)
    address = order.email or (customer.email if customer else None)
    return Facts(
        shop=base.shop,
        configured_channels=base.configured_channels,
        order=order_facts(order),
        customer=_customer(customer),
        orders=_orders(session, shop_id, order.customer_id, order.email),
        email_consent=email_consent(session, shop_id, address, customer),
        refused_addresses=refused(session, shop_id, address),
        variants=current_variants(session, shop_id, [line.get("variant_id") for line in order.line_items]),
    )


def _customer_facts(session: Session, shop_id: int, subject: str, base: Facts) -> Facts:
    customer = session.exec(
        select(Customer).where(Customer.shop_id == shop_id, Customer.customer_id == _int(subject))
    ).first()
    if customer is None:
        return base
    return Facts(
        shop=base.shop,
        configured_channels=base.configured_channels,
        customer=_customer(customer),
        orders=_orders(session, shop_id, customer.customer_id, customer.email),
        email_consent=email_consent(session, shop_id, customer.email, customer),
        refused_addresses=refused(session, shop_id, customer.email),
    )


def checkout_facts(checkout: Checkout, customer: Customer | None) -> CheckoutFacts:
    return CheckoutFacts(
        token=checkout.token,
        cart_token=checkout.cart_token,
        email=checkout.email,
        customer_id=checkout.customer_id,
        first_name=customer.first_name if customer else None,
        accepts_marketing=checkout.buyer_accepts_marketing,
        currency=checkout.currency,
        recovery_url=checkout.abandoned_checkout_url,
        lines=tuple(
            CheckoutLine(
                variant_id=line.get("variant_id"),
                product_id=line.get("product_id"),
                title=line.get("title"),
                variant_title=line.get("variant_title"),
                quantity=int(line.get("quantity") or 0),
                price_at_checkout=_decimal(line.get("price")),
            )
            for line in checkout.line_items
        ),
        created_at=checkout.created_at,
        updated_at=checkout.updated_at,
        completed_at=checkout.completed_at,
    )


def order_facts(order: Order) -> OrderFacts:
    return OrderFacts(
        order_id=order.order_id,
        checkout_token=order.checkout_token,
        cart_token=order.cart_token,
        customer_id=order.customer_id,
        email=order.email,
        created_at=order.created_at,
        source_name=order.source_name,
        name=order.name,
        financial_status=order.financial_status,
        cancelled_at=order.cancelled_at,
        fulfilled_at=order.fulfilled_at,
        accepts_marketing=order.buyer_accepts_marketing,
        currency=order.currency,
        total_price=order.total_price,
        lines=tuple(
            OrderLine(
                variant_id=line.get("variant_id"),
                product_id=line.get("product_id"),
                title=line.get("title"),
                quantity=int(line.get("quantity") or 0),
                price=_decimal(line.get("price")),
            )
            for line in order.line_items
        ),
    )


def customer_of(session: Session, shop_id: int, customer_id: int | None, email: str | None) -> Customer | None:
    if customer_id is not None:
        found = session.exec(
            select(Customer).where(Customer.shop_id == shop_id, Customer.customer_id == customer_id)
        ).first()
        if found is not None:
            return found
    if email:
        return session.exec(select(Customer).where(Customer.shop_id == shop_id, Customer.email == email)).first()
    return None


def email_consent(session: Session, shop_id: int, email: str | None, customer: Customer | None) -> EmailConsent:
    return EmailConsent(
        state=customer.email_consent_state if customer else None,
        changed_at=customer.email_consent_updated_at if customer else None,
        unsubscribed_here=UNSUBSCRIBED in _suppressions(session, shop_id, email),
    )


def refused(session: Session, shop_id: int, email: str | None) -> frozenset[str]:
    """The address, if a provider refused it for good (anything but an unsubscribe suppresses it so)."""
    reasons = _suppressions(session, shop_id, email)
    return frozenset({email}) if email and reasons - {UNSUBSCRIBED} else frozenset()


def _suppressions(session: Session, shop_id: int, email: str | None) -> set[str]:
    if not email:
        return set()
    return set(
        session.exec(
            select(Suppression.reason).where(
                Suppression.shop_id == shop_id, Suppression.channel == "email", Suppression.address == email
            )
        )
    )


def current_variants(session: Session, shop_id: int, variant_ids: Iterable[Any]) -> dict[int, VariantNow]:
    ids = [int(v) for v in variant_ids if isinstance(v, int)]
    if not ids:
        return {}
    rows = session.exec(
        select(Variant, Product)
        .join(
            Product,
            (col(Product.shop_id) == col(Variant.shop_id)) & (col(Product.product_id) == col(Variant.product_id)),
            isouter=True,
        )
        .where(Variant.shop_id == shop_id, col(Variant.variant_id).in_(ids))
    )
    return {
        variant.variant_id: VariantNow(
            variant_id=variant.variant_id,
            product_title=product.title if product else None,
            variant_title=variant.title,
            price=variant.price,
            currency=variant.currency,
            in_stock=variant.in_stock,
            deleted=variant.deleted_at is not None or (product is not None and product.deleted_at is not None),
            image_url=variant.image_url,
            url=variant.url,
            product_id=variant.product_id,
        )
        for variant, product in rows
    }


def _orders(
    session: Session, shop_id: int, customer_id: int | None, email: str | None, also: Sequence[Any] = ()
) -> tuple[OrderFacts, ...]:
    """The customer's latest orders (by id or email), and any tied to the subject by `also`."""
    ties = list(also)
    if customer_id is not None:
        ties.append(col(Order.customer_id) == customer_id)
    if email:
        ties.append(col(Order.email) == email)
    if not ties:
        return ()
    rows = session.exec(
        select(Order)
        .where(Order.shop_id == shop_id, or_(*ties))
        .order_by(col(Order.created_at).desc(), col(Order.id).desc())
        .limit(CUSTOMER_ORDERS)
    )
    return tuple(order_facts(o) for o in rows)


def _with_related(session: Session, shop_id: int, facts: Facts) -> Facts:
    """The products bought, and in-stock candidates of the same type or vendor, as the storefront shows them."""
    assert facts.order is not None
    bought = {line.product_id for o in (facts.order, *facts.orders) for line in o.lines if line.product_id}
    own = list(session.exec(select(Product).where(Product.shop_id == shop_id, col(Product.product_id).in_(bought))))
    types = {p.product_type for p in own if p.product_type}
    vendors = {p.vendor for p in own if p.vendor}
    kin = [col(Product.product_type).in_(types)] if types else []
    kin += [col(Product.vendor).in_(vendors)] if vendors else []
    candidates: list[Product] = []
    if kin:
        candidates = list(
            session.exec(
                select(Product)
                .where(Product.shop_id == shop_id, or_(*kin), col(Product.deleted_at).is_(None))
                .where(col(Product.product_id).not_in(bought))
                .order_by(col(Product.updated_at).desc(), col(Product.id))
                .limit(RELATED_CANDIDATES)
            )
        )
    products = own + candidates
    variants: dict[int, list[Variant]] = {}
    for variant in session.exec(
        select(Variant).where(
            Variant.shop_id == shop_id,
            col(Variant.product_id).in_([p.product_id for p in products]),
            col(Variant.deleted_at).is_(None),
        )
    ):
        variants.setdefault(variant.product_id or 0, []).append(variant)
    return replace(facts, related=tuple(_product_now(p, variants.get(p.product_id, [])) for p in products))


def _product_now(product: Product, variants: list[Variant]) -> ProductNow:
    buyable = [v for v in variants if v.in_stock and v.price is not None]
    cheapest = min(buyable, key=lambda v: v.price or Decimal(0)) if buyable else None
    return ProductNow(
        product_id=product.product_id,
        title=product.title,
        product_type=product.product_type,
        vendor=product.vendor,
        url=product.url,
        image_url=product.image_url,
        price=cheapest.price if cheapest else None,
        currency=cheapest.currency if cheapest else None,
        in_stock=cheapest is not None,
        active=product.deleted_at is None and product.status in (None, "active"),
    )


def _needs_related(definition: FlowDefinition, step: str | None) -> bool:
    if step is None:
        return False
    current = definition.step(step)
    return isinstance(current, SendStep) and CONTENTS[current.content].needs_related


def _customer(customer: Customer | None) -> CustomerFacts | None:
    if customer is None:
        return None
    return CustomerFacts(
        customer_id=customer.customer_id,
        email=customer.email,
        phone=customer.phone,
        first_name=customer.first_name,
        created_at=customer.created_at,
        last_order_at=customer.last_order_at,
    )


def _decimal(value: Any) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return -1  # matches nothing
