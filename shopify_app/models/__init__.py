"""The tables. Importing this package registers every model on `SQLModel.metadata`."""

from sqlmodel import SQLModel

# Deterministic constraint names, so that migrations can name what they alter or drop.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# The models register themselves on import, so these imports stay below the convention.
from shopify_app.models.browsing import PixelEvent  # noqa: E402
from shopify_app.models.channels import ChannelAccount, ChannelRate, WhatsAppTemplate, WhatsAppWindow  # noqa: E402
from shopify_app.models.contacts import ConsentConfirmation, Contact, ContactIdentity  # noqa: E402
from shopify_app.models.content import ContentOverride  # noqa: E402
from shopify_app.models.events import EventAttempt, EventStatus, WebhookEvent  # noqa: E402
from shopify_app.models.jobs import Job, JobStatus  # noqa: E402
from shopify_app.models.journeys import Decision, Journey, ShopFlow  # noqa: E402
from shopify_app.models.messages import (  # noqa: E402
    DELIVERY_ORDER,
    LIVE_STATUSES,
    SENT_STATUSES,
    Click,
    DeliveryReceipt,
    Link,
    Message,
    MessageStatus,
    Suppression,
)
from shopify_app.models.mirror import (  # noqa: E402
    Checkout,
    ConsentRecord,
    Customer,
    Order,
    Product,
    Variant,
)
from shopify_app.models.privacy import PrivacyRequest  # noqa: E402
from shopify_app.models.shop import Shop  # noqa: E402
from shopify_app.models.sync import SyncProgress  # noqa: E402

__all__ = [
    "DELIVERY_ORDER",
    "LIVE_STATUSES",
    "SENT_STATUSES",
    "ChannelAccount",
    "ChannelRate",
    "Checkout",
    "Click",
    "ConsentConfirmation",
    "ConsentRecord",
    "Contact",
    "ContactIdentity",
    "ContentOverride",
    "Customer",
    "Decision",
    "DeliveryReceipt",
    "EventAttempt",
    "EventStatus",
    "Job",
    "JobStatus",
    "Journey",
    "Link",
    "Message",
    "MessageStatus",
    "Order",
    "PixelEvent",
    "PrivacyRequest",
    "Product",
    "Shop",
    "ShopFlow",
    "Suppression",
    "SyncProgress",
    "Variant",
    "WebhookEvent",
    "WhatsAppTemplate",
    "WhatsAppWindow",
]
