"""Products and variants: title, current price, stock, image and storefront URL."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import col, select

from shopify_app.events.context import WebhookContext
from shopify_app.mirror import fields
from shopify_app.mirror.store import is_newer, locked_row
from shopify_app.models import Product, Variant


def on_product(ctx: WebhookContext) -> None:
    """products/create, products/update: the product with all its variants and images."""
    payload = ctx.payload
    product_id = fields.integer(fields.required(payload, "id"))
    product = locked_row(ctx.session, Product, {"shop_id": ctx.shop.id, "product_id": product_id})
    updated_at = fields.instant(payload.get("updated_at"))
    if not is_newer(updated_at, product.updated_at) or not _after_deletion(updated_at, product):
        return
    images = {img.get("id"): fields.text(img.get("src")) for img in fields.objects(payload, "images")}
    main_image = fields.text(fields.obj(payload, "image").get("src")) or next(iter(images.values()), None)
    handle = fields.text(payload.get("handle"))
    product.title = fields.text(payload.get("title"))
    product.handle = handle
    product.status = fields.text(payload.get("status"))
    product.image_url = main_image
    product.url = f"{ctx.shop.storefront_url}/products/{handle}" if handle else None
    product.updated_at = updated_at
    product.deleted_at = None

    listed: set[int] = set()
    for item in fields.objects(payload, "variants"):
        variant = _record_variant(ctx, item, product_id=product_id, fallback_updated_at=updated_at)
        if variant is None:
            continue
        listed.add(variant.variant_id)
        variant.image_url = images.get(item.get("image_id")) or main_image
        variant.url = f"{product.url}?variant={variant.variant_id}" if product.url else None
    # Variants the product no longer lists were deleted in the store.
    for gone in ctx.session.exec(
        select(Variant)
        .where(Variant.shop_id == ctx.shop.id, Variant.product_id == product_id)
        .where(col(Variant.deleted_at).is_(None), col(Variant.variant_id).not_in(listed))
    ):
        gone.deleted_at = updated_at or ctx.observed_at


def on_product_deleted(ctx: WebhookContext) -> None:
    """products/delete: {id} only."""
    product_id = fields.integer(fields.required(ctx.payload, "id"))
    product = locked_row(ctx.session, Product, {"shop_id": ctx.shop.id, "product_id": product_id})
    product.deleted_at = ctx.observed_at
    for variant in ctx.session.exec(
        select(Variant).where(Variant.shop_id == ctx.shop.id, Variant.product_id == product_id)
    ):
        variant.deleted_at = variant.deleted_at or ctx.observed_at


def on_variant_stock(ctx: WebhookContext) -> None:
    """variants/in_stock, variants/out_of_stock: a variant object with its new inventory."""
    _record_variant(ctx, ctx.payload, product_id=fields.integer(ctx.payload.get("product_id")))


def _record_variant(
    ctx: WebhookContext,
    payload: dict[str, Any],
    *,
    product_id: int | None,
    fallback_updated_at: datetime | None = None,
) -> Variant | None:
    variant_id = fields.integer(payload.get("id"))
    if variant_id is None:
        return None
    variant = locked_row(ctx.session, Variant, {"shop_id": ctx.shop.id, "variant_id": variant_id})
    updated_at = fields.instant(payload.get("updated_at")) or fallback_updated_at
    if not is_newer(updated_at, variant.updated_at):
        return variant
    variant.product_id = product_id or variant.product_id
    variant.title = fields.text(payload.get("title"))
    variant.sku = fields.text(payload.get("sku"))
    variant.price = fields.amount(payload.get("price"))
    variant.compare_at_price = fields.amount(payload.get("compare_at_price"))
    variant.currency = ctx.shop.currency
    if "inventory_quantity" in payload:
        variant.inventory_quantity = fields.integer(payload.get("inventory_quantity"))
    variant.inventory_policy = fields.text(payload.get("inventory_policy")) or variant.inventory_policy
    variant.updated_at = updated_at
    variant.deleted_at = None
    return variant


def _after_deletion(updated_at: datetime | None, product: Product) -> bool:
    """A late update must not bring back a product deleted after it was made."""
    return product.deleted_at is None or (updated_at is not None and updated_at > product.deleted_at)
