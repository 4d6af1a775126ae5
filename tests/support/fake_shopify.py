"""A small stateful fake of the Admin API's webhook subscriptions and the app's web pixel, behind `responses`.

It answers the documents Chorus sends with the shapes Shopify documents, keeps the subscriptions it was
told to create or delete and the web pixel it was told to create or update (refusing both, ACCESS_DENIED,
when `scopes` lack the pixel's), and records the access token of every call and every pixel request.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import Any

import responses

from shopify_app.settings import DEFAULT_SCOPES
from shopify_app.shopify.admin_api import admin_endpoint

COST = {
    "requestedQueryCost": 10,
    "actualQueryCost": 10,
    "throttleStatus": {"maximumAvailable": 2000.0, "currentlyAvailable": 1990, "restoreRate": 100.0},
}


@dataclass
class FakeSubscriptions:
    subscriptions: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> (TOPIC_ENUM, uri)
    scopes: tuple[str, ...] = DEFAULT_SCOPES
    pixel: tuple[str, str] | None = None  # (id, settings as the JSON text it was given)
    tokens_seen: list[str] = field(default_factory=list)
    operations: list[str] = field(default_factory=list)
    pixel_requests: list[dict[str, Any]] = field(default_factory=list)  # {"query": ..., "variables": ...}
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
        if "webPixel" in query:
            self.pixel_requests.append(body)
            return self._answer_pixel(query, variables)
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

    def _answer_pixel(self, query: str, variables: dict[str, Any]) -> tuple[int, dict[str, str], str]:
        field_name = next(f for f in ("webPixelCreate", "webPixelUpdate", "webPixel") if f in query)
        wanted = ("read_pixels",) if field_name == "webPixel" else ("write_pixels", "read_customer_events")
        granted = set(self.scopes) | {s.replace("write_", "read_", 1) for s in self.scopes}
        if not set(wanted) <= granted:
            self.operations.append(f"{field_name} denied")
            required = ". Also: ".join(f"`{s}` access scope" for s in wanted)
            error = {
                "message": f"Access denied for {field_name} field. Required access: {required}.",
                "extensions": {"code": "ACCESS_DENIED", "documentation": "https://shopify.dev/api/usage/access-scopes"},
            }
            return self._json({"errors": [error], "data": {field_name: None}})
        if field_name == "webPixel":
            self.operations.append("pixel")
            if self.pixel is None:
                error = {"message": "No web pixel was found for this app.", "path": ["webPixel"],
                         "extensions": {"code": "RESOURCE_NOT_FOUND"}}  # fmt: skip
                return self._json({"errors": [error], "data": {"webPixel": None}})
            return self._json({"data": {"webPixel": self._pixel_node()}})
        settings = variables["webPixel"]["settings"]
        assert isinstance(settings, str), "Shopify takes the settings as a JSON-encoded string"
        if field_name == "webPixelCreate":
            self.operations.append("pixel create")
            if self.pixel is not None:
                taken = {"field": ["webPixel"], "message": "Web pixel is taken.", "code": "TAKEN"}
                return self._json({"data": {field_name: {"webPixel": None, "userErrors": [taken]}}})
            self.pixel = (f"gid://shopify/WebPixel/{next(self._ids)}", settings)
        else:
            self.operations.append(f"pixel update {variables['id']}")
            if self.pixel is None or self.pixel[0] != variables["id"]:
                missing = {"field": ["id"], "message": "Web pixel not found.", "code": "NOT_FOUND"}
                return self._json({"data": {field_name: {"webPixel": None, "userErrors": [missing]}}})
            self.pixel = (self.pixel[0], settings)
        return self._json({"data": {field_name: {"webPixel": self._pixel_node(), "userErrors": []}}})

    def _pixel_node(self) -> dict[str, str]:
        assert self.pixel is not None
        return {"id": self.pixel[0], "settings": self.pixel[1]}  # the JSON scalar comes back as a string

    def _json(self, payload: dict[str, Any]) -> tuple[int, dict[str, str], str]:
        return 200, {"Content-Type": "application/json"}, json.dumps({**payload, "extensions": {"cost": COST}})

    def _node(self, subscription_id: str) -> dict[str, str]:
        topic, uri = self.subscriptions[subscription_id]
        return {"id": subscription_id, "topic": topic, "uri": uri}
