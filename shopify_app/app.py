"""The Flask application factory. Nothing happens at import time; `create_app` wires one app."""

from __future__ import annotations

from flask import Flask
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.middleware.proxy_fix import ProxyFix

from shopify_app import health
from shopify_app.runtime import FLASK_EXTENSION, Runtime
from shopify_app.web import (
    access,
    admin,
    api,
    channels,
    content,
    demo,
    links,
    oauth,
    pixel,
    sendgrid,
    signup,
    twilio,
    unsubscribe,
    whatsapp,
)
from shopify_app.webhooks import views as webhook_views


def create_app(runtime: Runtime) -> Flask:
    settings = runtime.settings
    app = Flask(__name__)
    # No SECRET_KEY: Chorus keeps no cookie session (the embedded admin authenticates each request with
    # Shopify's session token), so Flask opens none, and no request pays for a signing serializer.
    app.config.update(
        # One byte over the limit, so that a chunked body (which Werkzeug silently cuts at this length)
        # can be told apart from one exactly at the limit; see `webhooks.views.read_body`.
        MAX_CONTENT_LENGTH=settings.webhook_max_body_bytes + 1,
    )
    app.extensions[FLASK_EXTENSION] = runtime
    health.init_app(app)
    webhook_views.init_app(app, runtime)
    unsubscribe.init_app(app)
    signup.init_app(app)
    pixel.init_app(app)
    demo.init_app(app)
    access.init_app(app, runtime)
    oauth.init_app(app)
    api.init_app(app)
    channels.init_app(app)
    content.init_app(app)
    twilio.init_app(app)
    sendgrid.init_app(app)
    whatsapp.init_app(app)
    links.init_app(app)
    admin.init_app(app)

    def too_large(_error: RequestEntityTooLarge) -> tuple[dict[str, str], int]:
        return {"error": f"request body larger than {settings.webhook_max_body_bytes} bytes"}, 413

    app.register_error_handler(RequestEntityTooLarge, too_large)
    if settings.trusted_proxy_count:
        # The client's address is the one the trusted proxies saw (each appends its peer to X-Forwarded-For):
        # what a client writes there itself, before them, is not believed.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxy_count)  # type: ignore[method-assign]
    return app
