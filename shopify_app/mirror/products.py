"""Products and variants: title, current price, stock, image and storefront URL.

Webhooks and the store sync both arrive here as `ProductRecord`s and `VariantRecord`s.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import col, select

from shopify_app.events.context import MirrorWrite, WebhookContext
from shopify_app.mirror import fields
from shopify_app.mirror.store import RowCache, is_newer, locked_row
from shopify_app.models import Product, Variant
from shopify_app.shopify.sync_queries import ProductRecord, VariantRecord


def on_product(ctx: WebhookContext) -> None:
    """products/create, products/update: the product with all its variants and images."""
    write_product(ctx.mirror, product_from_webhook(ctx.payload))


def on_product_deleted(ctx: WebhookContext) -> None:
    """products/delete: {id} only."""
    product_id = fields.integer(fields.required(ctx.payload, "id"))
    product = locked_row(ctx.session, Product, {"shop_id": ctx.shop.id, "product_id": product_id})
    product.deleted_at = ctx.observed_at
    for variant in _variants_of(ctx.mirror, product_id):
        variant.deleted_at = variant.deleted_at or ctx.observed_at


def on_variant_stock(ctx: WebhookContext) -> None:
    """variants/in_stock, variants/out_of_stock: a variant object with its new inventory."""
    record = variant_from_webhook(ctx.payload, fields.integer(ctx.payload.get("product_id")), images={})
    if record is not None:
        write_variant(ctx.mirror, record)


def product_from_webhook(payload: dict[str, Any]) -> ProductRecord:
    product_id = fields.integer(fields.required(payload, "id"))
    assert product_id is not None
    images = {img.get("id"): fields.text(img.get("src")) for img in fields.objects(payload, "images")}
    main_image = fields.text(fields.obj(payload, "image").get("src")) or next(iter(images.values()), None)
    variants = (variant_from_webhook(v, product_id, images) for v in fields.objects(payload, "variants"))
    return ProductRecord(
        product_id=product_id,
        title=fields.text(payload.get("title")),
        handle=fields.text(payload.get("handle")),
        status=fields.text(payload.get("status")),
        image_url=main_image,
        product_type=fields.text(payload.get("product_type")),
        vendor=fields.text(payload.get("vendor")),
        updated_at=fields.instant(payload.get("updated_at")),
        variants=tuple(v for v in variants if v is not None),
    )


def variant_from_webhook(
    payload: dict[str, Any], product_id: int | None, images: dict[Any, str | None]
) -> VariantRecord | None:
    variant_id = fields.integer(payload.get("id"))
    if variant_id is None or product_id is None:
        return None
    return VariantRecord(
        variant_id=variant_id,
        product_id=product_id,
        title=fields.text(payload.get("title")),
        sku=fields.text(payload.get("sku")),
        price=fields.amount(payload.get("price")),
        compare_at_price=fields.amount(payload.get("compare_at_price")),
        inventory_quantity=fields.integer(payload.get("inventory_quantity")),
        inventory_policy=fields.text(payload.get("inventory_policy")),
        image_url=images.get(payload.get("image_id")),
        updated_at=fields.instant(payload.get("updated_at")),
    )


def write_product(write: MirrorWrite, record: ProductRecord) -> None:
    product = locked_row(write.session, Product, {"shop_id": write.shop_id, "product_id": record.product_id})
    if not is_newer(record.updated_at, product.updated_at) or not _after_deletion(record.updated_at, product):
        return
    product.title = record.title
    product.handle = record.handle
    product.status = record.status
    product.product_type = record.product_type
    product.vendor = record.vendor
    product.image_url = record.image_url
    product.url = f"{write.shop.storefront_url}/products/{record.handle}" if record.handle else None
    product.updated_at = record.updated_at
    product.deleted_at = None
    listed: set[int] = set()
    # Locked in id order, not the payload's (which changes when the merchant reorders them).
    for item in sorted(record.variants, key=lambda v: v.variant_id):
        variant = write_variant(write, item, fallback_updated_at=record.updated_at)
        listed.add(variant.variant_id)
        variant.image_url = item.image_url or record.image_url
        variant.url = f"{product.url}?variant={variant.variant_id}" if product.url else None
    # Variants the product no longer lists were deleted in the store.
    for gone in _variants_of(write, record.product_id):
        if gone.deleted_at is None and gone.variant_id not in listed:
            gone.deleted_at = record.updated_at or write.observed_at


def write_variant(write: MirrorWrite, record: VariantRecord, fallback_updated_at: datetime | None = None) -> Variant:
    variant = locked_row(write.session, Variant, {"shop_id": write.shop_id, "variant_id": record.variant_id})
    updated_at = record.updated_at or fallback_updated_at
    if not is_newer(updated_at, variant.updated_at):
        return variant
    variant.product_id = record.product_id
    variant.title = record.title
    variant.sku = record.sku
    variant.price = record.price
    variant.compare_at_price = record.compare_at_price
    variant.currency = write.shop.currency
    if record.inventory_quantity is not None:
        variant.inventory_quantity = record.inventory_quantity
    variant.inventory_policy = record.inventory_policy or variant.inventory_policy
    variant.image_url = record.image_url or variant.image_url
    variant.updated_at = updated_at
    variant.deleted_at = None
    return variant


def _variants_of(write: MirrorWrite, product_id: int | None) -> list[Variant]:
    """The product's variants, locked: from the batch's cache when it holds them all."""
    cache = RowCache.of(write.session)
    if cache is not None and ("variants_of", (write.shop_id, product_id)) in cache.complete:
        return [v for v in cache.rows(Variant) if v.shop_id == write.shop_id and v.product_id == product_id]
    return list(
        write.session.exec(
            select(Variant)
            .where(Variant.shop_id == write.shop_id, Variant.product_id == product_id)
            .order_by(col(Variant.id))
            .with_for_update()
        )
    )


def _after_deletion(updated_at: datetime | None, product: Product) -> bool:
    """A late update must not bring back a product deleted after it was made."""
    return product.deleted_at is None or (updated_at is not None and updated_at > product.deleted_at)
