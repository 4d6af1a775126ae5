"""Which webhook subscriptions a shop should have, and making it so.

Either Chorus creates them through the Admin API on install (`WEBHOOKS_MANAGED_BY=app`), or the
deployment declares them in shopify.app.toml (`toml`). Never both: two subscriptions to one topic
deliver every event twice.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from shopify_app.events.registry import HANDLED_TOPICS
from shopify_app.settings import Settings
from shopify_app.shopify.admin_api import AdminApi
from shopify_app.shopify.admin_queries import (
    WebhookSubscriptionInfo,
    create_webhook_subscription,
    delete_webhook_subscription,
    topic_name,
    webhook_subscriptions,
)
from shopify_app.shopify.topics import PRIVACY_TOPICS

# Privacy topics can only be declared as compliance topics (toml or Partner Dashboard), not subscribed.
SUBSCRIBED_TOPICS: tuple[str, ...] = tuple(sorted(t for t in HANDLED_TOPICS if t not in PRIVACY_TOPICS))


def webhook_uri(settings: Settings) -> str:
    return f"{settings.app_url}/webhooks"


def desired_topics(settings: Settings) -> tuple[str, ...]:
    """What Chorus itself should hold through the API: nothing when the toml declares subscriptions."""
    return SUBSCRIBED_TOPICS if settings.webhooks_managed_by == "app" else ()


@dataclass(frozen=True)
class SubscriptionCheck:
    kept: tuple[WebhookSubscriptionInfo, ...]
    missing: tuple[str, ...]  # topic names
    stale: tuple[WebhookSubscriptionInfo, ...]  # another address, a topic not handled, or a duplicate

    @property
    def healthy(self) -> bool:
        return not self.missing and not self.stale


def compare(existing: Sequence[WebhookSubscriptionInfo], topics: Collection[str], uri: str) -> SubscriptionCheck:
    kept: list[WebhookSubscriptionInfo] = []
    stale: list[WebhookSubscriptionInfo] = []
    covered: set[str] = set()
    for subscription in existing:
        name = topic_name(subscription.topic)
        if name in topics and subscription.uri == uri and name not in covered:
            covered.add(name)
            kept.append(subscription)
        else:
            stale.append(subscription)
    return SubscriptionCheck(tuple(kept), tuple(t for t in sorted(topics) if t not in covered), tuple(stale))


def ensure_subscriptions(api: AdminApi, topics: Collection[str], uri: str) -> SubscriptionCheck:
    """Create what is missing and delete what is stale; running it again changes nothing."""
    check = compare(webhook_subscriptions(api), topics, uri)
    for subscription in check.stale:
        delete_webhook_subscription(api, subscription.id)
    created = tuple(create_webhook_subscription(api, topic, uri) for topic in check.missing)
    return SubscriptionCheck(kept=check.kept + created, missing=(), stale=check.stale)
