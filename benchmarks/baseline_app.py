"""The bare baseline for the intake benchmark: verify the HMAC, insert the body, answer. Nothing else.

It uses the same driver and connection pool as Chorus, so the difference measured is Chorus's own work.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from flask import Flask, request
from sqlalchemy import create_engine, text

SCHEMA = """
CREATE TABLE IF NOT EXISTS baseline_events (
    id BIGSERIAL PRIMARY KEY,
    webhook_id TEXT NOT NULL UNIQUE,
    body BYTEA NOT NULL
)
"""
INSERT = text("INSERT INTO baseline_events (webhook_id, body) VALUES (:webhook_id, :body) ON CONFLICT DO NOTHING")


def create_app() -> Flask:
    secret = os.environ["SHOPIFY_API_SECRET"].encode()
    engine = create_engine(os.environ["DATABASE_URL"], pool_pre_ping=True, pool_size=5, max_overflow=5)
    with engine.begin() as connection:
        connection.execute(text(SCHEMA))
    app = Flask(__name__)

    @app.post("/webhooks")
    def receive() -> tuple[str, int]:
        body = request.get_data(cache=False)
        expected = base64.b64encode(hmac.new(secret, body, hashlib.sha256).digest())
        if not hmac.compare_digest(expected, request.headers.get("X-Shopify-Hmac-Sha256", "").encode()):
            return "", 401
        with engine.begin() as connection:
            connection.execute(INSERT, {"webhook_id": request.headers.get("X-Shopify-Webhook-Id"), "body": body})
        return "", 200

    return app
