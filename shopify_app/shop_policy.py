"""A shop's channel policy as stored (`shops.policy`): read with its defaults, changed with every problem
reported at once (`chorus shops set`, `PATCH /api/shop/policy`)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flows.policy import InvalidPolicy, ShopPolicy, change_policy, policy_from_json, stored_form
from shopify_app.models import Shop

log = logging.getLogger(__name__)


def policy_of(shop: Shop) -> ShopPolicy:
    """The shop's policy; one stored by a release whose forms this one no longer reads falls back to the
    defaults (logged), rather than stopping the shop's messages."""
    try:
        return policy_from_json(shop.policy)
    except InvalidPolicy as exc:
        log.error("shop %s: its stored policy is unreadable, the defaults apply (%s)", shop.id, exc)
        return ShopPolicy()


def set_policy(shop: Shop, changes: Mapping[str, Any]) -> ShopPolicy:
    """Change the settings `changes` names; raises InvalidPolicy (nothing changed). The caller holds the shop's
    row locked and commits."""
    changed = change_policy(policy_of(shop), changes)
    shop.policy = stored_form(changed, set(shop.policy or {}) | set(changes))
    return changed
