"""`GET /healthz`: whether this process can reach its database."""

from __future__ import annotations

import logging

from flask import Blueprint, Flask
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from shopify_app.db.engine import read_only
from shopify_app.runtime import current_runtime

log = logging.getLogger(__name__)

blueprint = Blueprint("health", __name__)


def init_app(app: Flask) -> None:
    app.register_blueprint(blueprint)


@blueprint.get("/healthz")
def healthz() -> tuple[dict[str, str], int]:
    try:
        with read_only(current_runtime().engine).connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        log.error("health check: database unreachable: %s", type(exc).__name__)
        return {"status": "unavailable", "database": "unreachable"}, 503
    return {"status": "ok", "database": "ok"}, 200
