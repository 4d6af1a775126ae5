"""`chorus shops doctor`: are the shop's webhook subscriptions and granted scopes what Chorus needs?"""

from __future__ import annotations

from dataclasses import dataclass

from shopify_app.settings import Settings
from shopify_app.shopify.admin_api import AdminApi
from shopify_app.shopify.admin_queries import granted_scopes, webhook_subscriptions
from shopify_app.shopify.subscriptions import SubscriptionCheck, compare, desired_topics, webhook_uri


@dataclass(frozen=True)
class Diagnosis:
    subscriptions: SubscriptionCheck
    granted: tuple[str, ...]
    missing_scopes: tuple[str, ...]

    @property
    def healthy(self) -> bool:
        return self.subscriptions.healthy and not self.missing_scopes


def diagnose(api: AdminApi, settings: Settings) -> Diagnosis:
    check = compare(webhook_subscriptions(api), desired_topics(settings), webhook_uri(settings))
    granted = tuple(sorted(granted_scopes(api)))
    # write_x implies read_x in Shopify's scopes.
    implied = set(granted) | {s.replace("write_", "read_", 1) for s in granted if s.startswith("write_")}
    return Diagnosis(check, granted, tuple(s for s in settings.scopes if s not in implied))


def report(diagnosis: Diagnosis, settings: Settings) -> list[str]:
    lines = [f"Webhook subscriptions (managed by {settings.webhooks_managed_by}), to {webhook_uri(settings)}:"]
    lines += [f"  ok       {s.topic}" for s in diagnosis.subscriptions.kept]
    lines += [f"  missing  {topic}" for topic in diagnosis.subscriptions.missing]
    lines += [f"  stale    {s.topic} -> {s.uri} ({s.id})" for s in diagnosis.subscriptions.stale]
    lines.append(f"Scopes granted: {', '.join(diagnosis.granted) or 'none'}")
    if diagnosis.missing_scopes:
        lines.append(f"Scopes missing: {', '.join(diagnosis.missing_scopes)} (the merchant must approve them again)")
    lines.append("Healthy." if diagnosis.healthy else "Not healthy: see above.")
    return lines
