"""Which handler a webhook topic is routed to. A topic missing here is stored as unhandled."""

from __future__ import annotations

from collections.abc import Mapping

from shopify_app.events.context import Handler, WebhookContext
from shopify_app.journeys.reactions import after_checkout, after_customer, after_order, after_product
from shopify_app.mirror.checkouts import on_checkout
from shopify_app.mirror.customers import on_customer, on_email_consent, on_sms_consent
from shopify_app.mirror.orders import on_order
from shopify_app.mirror.preload import preload
from shopify_app.mirror.products import on_product, on_product_deleted, on_variant_stock
from shopify_app.privacy.requests import on_customers_redact, on_data_request, on_shop_redact
from shopify_app.shops import on_app_uninstalled, on_shop_update


def in_order(*handlers: Handler) -> Handler:
    """Several handlers for one topic, run in order in the same transaction."""

    def run(ctx: WebhookContext) -> None:
        for handler in handlers:
            handler(ctx)

    return run


# Mirror first, so that the flows read the storefront as this delivery left it.
_checkout = in_order(on_checkout, after_checkout)
_order = in_order(on_order, after_order)
_customer = in_order(on_customer, after_customer)
_product = in_order(on_product, after_product)  # a price that fell starts the price drop flows

HANDLERS: Mapping[str, Handler] = {
    "app/uninstalled": on_app_uninstalled,
    "shop/update": on_shop_update,
    "checkouts/create": _checkout,
    "checkouts/update": _checkout,
    "orders/create": _order,
    "orders/updated": _order,
    "orders/paid": _order,
    "orders/cancelled": _order,
    "orders/fulfilled": _order,
    "products/create": _product,
    "products/update": _product,
    "products/delete": on_product_deleted,
    "variants/in_stock": on_variant_stock,
    "variants/out_of_stock": on_variant_stock,
    "customers/create": _customer,
    "customers/update": _customer,
    "customers_email_marketing_consent/update": in_order(on_email_consent, after_customer),
    "customers_marketing_consent/update": in_order(on_sms_consent, after_customer),
    "customers/data_request": on_data_request,
    "customers/redact": on_customers_redact,
    "shop/redact": on_shop_redact,
}

HANDLED_TOPICS = frozenset(HANDLERS)
PRELOAD = preload  # the mirror rows a batch of these topics writes, locked before its handlers run
