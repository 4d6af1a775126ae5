"""The embedded admin page, served inside the Shopify admin with App Bridge.

The page itself holds no data: its script asks `/api/*`, and App Bridge adds a fresh session token to
each of those requests. It may only be framed by the shop's own admin.
"""

from __future__ import annotations

from flask import Blueprint, Flask, make_response, redirect, render_template, request
from werkzeug.wrappers import Response

from shopify_app.runtime import current_runtime
from shopify_app.shopify.library import canonical_shop_domain
from shopify_app.web.demo import is_local_demo

blueprint = Blueprint("admin", __name__, template_folder="templates")

APP_BRIDGE_SCRIPT = "https://cdn.shopify.com/shopifycloud/app-bridge.js"


def init_app(app: Flask) -> None:
    app.register_blueprint(blueprint)


@blueprint.get("/")
def home() -> Response:
    if is_local_demo():
        return redirect("/demo")
    settings = current_runtime().settings
    shop = canonical_shop_domain(request.args.get("shop"))
    response = make_response(
        render_template("admin.html", api_key=settings.shopify_api_key, app_bridge=APP_BRIDGE_SCRIPT, shop=shop)
    )
    # Only this shop's admin may frame the page; without a valid shop, nobody may.
    ancestors = f"https://{shop} https://admin.shopify.com" if shop else "'none'"
    response.headers["Content-Security-Policy"] = f"frame-ancestors {ancestors};"
    return response
