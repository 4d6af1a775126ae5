"""A small stateful fake of the Admin API's webhook subscriptions, behind `responses`.

It answers the documents Chorus sends with the shapes Shopify documents, keeps the subscriptions it was
told to create or delete, and records the access token of every call.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import Any

import responses

from shopify_app.shopify.admin_api import admin_endpoint

COST = {
    "requestedQueryCost": 10,
    "actualQueryCost": 10,
    "throttleStatus": {"maximumAvailable": 2000.0, "currentlyAvailable": 1990, "restoreRate": 100.0},
}


@dataclass
class FakeSubscriptions:
    subscriptions: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> (TOPIC_ENUM, uri)
    scopes: tuple[str, ...] = ("read_customers", "write_customers", "read_orders", "read_products", "read_inventory")
    tokens_seen: list[str] = field(default_factory=list)
    operations: list[str] = field(default_factory=list)
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    def add(self, topic_enum: str, uri: str) -> str:
        subscription_id = f"gid://shopify/WebhookSubscription/{next(self._ids)}"
        self.subscriptions[subscription_id] = (topic_enum, uri)
        return subscription_id

    def install(self, mock: responses.RequestsMock, base_url: str, version: str = "2026-10") -> None:
        mock.add_callback(responses.POST, admin_endpoint(base_url, version), callback=self._answer)

    def _answer(self, request: Any) -> tuple[int, dict[str, str], str]:
        self.tokens_seen.append(request.headers["X-Shopify-Access-Token"])
        body = json.loads(request.body)
        query, variables = body["query"], body.get("variables") or {}
        if "webhookSubscriptionCreate" in query:
            self.operations.append(f"create {variables['topic']}")
            new_id = self.add(variables["topic"], variables["subscription"]["uri"])
            data: dict[str, Any] = {
                "webhookSubscriptionCreate": {"webhookSubscription": self._node(new_id), "userErrors": []}
            }
        elif "webhookSubscriptionDelete" in query:
            self.operations.append(f"delete {variables['id']}")
            self.subscriptions.pop(variables["id"])
            data = {"webhookSubscriptionDelete": {"deletedWebhookSubscriptionId": variables["id"], "userErrors": []}}
        elif "webhookSubscriptions" in query:
            self.operations.append("list")
            data = {
                "webhookSubscriptions": {
                    "nodes": [self._node(i) for i in self.subscriptions],
                    "pageInfo": {"hasNextPage": False, "endCursor": None},
                }
            }
        elif "currentAppInstallation" in query:
            data = {"currentAppInstallation": {"accessScopes": [{"handle": s} for s in self.scopes]}}
        else:
            raise AssertionError(f"unexpected document: {query}")
        return 200, {"Content-Type": "application/json"}, json.dumps({"data": data, "extensions": {"cost": COST}})

    def _node(self, subscription_id: str) -> dict[str, str]:
        topic, uri = self.subscriptions[subscription_id]
        return {"id": subscription_id, "topic": topic, "uri": uri}
