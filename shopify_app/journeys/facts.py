"""Gathering what a flow decision needs from the mirror, for one shop, as plain facts."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import or_
from sqlmodel import Session, col, select

from flows import abandoned_checkout
from flows.facts import CheckoutFacts, CheckoutLine, EmailConsent, OrderFacts, ShopFacts, VariantNow
from shopify_app.models import Checkout, Customer, Order, Product, Shop, ShopFlow, Suppression, Variant


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
                price_at_checkout=None,
            )
            for line in checkout.line_items
        ),
        created_at=checkout.created_at,
        updated_at=checkout.updated_at,
        completed_at=checkout.completed_at,
    )


def customer_of(session: Session, checkout: Checkout) -> Customer | None:
    if checkout.customer_id is not None:
        found = session.exec(
            select(Customer).where(Customer.shop_id == checkout.shop_id, Customer.customer_id == checkout.customer_id)
        ).first()
        if found is not None:
            return found
    if checkout.email:
        return session.exec(
            select(Customer).where(Customer.shop_id == checkout.shop_id, Customer.email == checkout.email)
        ).first()
    return None


def email_consent(session: Session, shop_id: int, email: str | None, customer: Customer | None) -> EmailConsent:
    unsubscribed = email is not None and (
        session.exec(
            select(Suppression.id).where(
                Suppression.shop_id == shop_id, Suppression.channel == "email", Suppression.address == email
            )
        ).first()
        is not None
    )
    return EmailConsent(
        state=customer.email_consent_state if customer else None,
        changed_at=customer.email_consent_updated_at if customer else None,
        unsubscribed_here=unsubscribed,
    )


def orders_that_may_convert(session: Session, checkout: Checkout) -> list[OrderFacts]:
    """Orders tied to the checkout by token, or placed by the same customer (id or email)."""
    ties = [col(Order.checkout_token) == checkout.token]
    if checkout.cart_token:
        ties.append(col(Order.cart_token) == checkout.cart_token)
    if checkout.customer_id is not None:
        ties.append(col(Order.customer_id) == checkout.customer_id)
    if checkout.email:
        ties.append(col(Order.email) == checkout.email)
    rows = session.exec(select(Order).where(Order.shop_id == checkout.shop_id, or_(*ties)))
    return [
        OrderFacts(
            order_id=o.order_id,
            checkout_token=o.checkout_token,
            cart_token=o.cart_token,
            customer_id=o.customer_id,
            email=o.email,
            created_at=o.created_at,
            source_name=o.source_name,
        )
        for o in rows
    ]


def current_variants(session: Session, checkout: Checkout) -> dict[int, VariantNow]:
    ids = [line["variant_id"] for line in checkout.line_items if line.get("variant_id") is not None]
    if not ids:
        return {}
    rows = session.exec(
        select(Variant, Product)
        .join(
            Product,
            (col(Product.shop_id) == col(Variant.shop_id)) & (col(Product.product_id) == col(Variant.product_id)),
            isouter=True,
        )
        .where(Variant.shop_id == checkout.shop_id, col(Variant.variant_id).in_(ids))
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
        )
        for variant, product in rows
    }


def shop_facts(shop: Shop) -> ShopFacts:
    return ShopFacts(installed=shop.installed, name=shop.name, postal_address=shop.postal_address)


def policy(session: Session, shop_id: int) -> abandoned_checkout.Policy:
    row = session.exec(
        select(ShopFlow).where(ShopFlow.shop_id == shop_id, ShopFlow.flow == abandoned_checkout.NAME)
    ).first()
    default = abandoned_checkout.Policy()
    if row is None:
        return default
    delay = timedelta(seconds=row.delay_seconds) if row.delay_seconds is not None else default.delay
    return abandoned_checkout.Policy(enabled=row.enabled, delay=delay, cutoff=default.cutoff)
