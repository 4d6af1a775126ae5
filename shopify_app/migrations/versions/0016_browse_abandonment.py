"""browse abandonment: a product a known contact viewed with interest and did not add to the cart

Existing shops get the new flow switched off (they opt in); shops installed after the upgrade get it on, as
its definition says.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04
"""
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import shopify_app.db.types


revision: str = '0016'
down_revision: str | None = '0015'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NEW_FLOWS = ("browse_abandonment",)  # off for the shops installed before them


def upgrade() -> None:
    bind = op.get_bind()
    now = datetime.now(UTC)
    shop_flows = sa.table(
        'shop_flows', sa.column('shop_id'), sa.column('flow'), sa.column('enabled'), sa.column('steps', sa.JSON()),
        sa.column('updated_at', shopify_app.db.types.UTCDateTime(timezone=True)),
    )
    configured = {(shop, flow) for shop, flow in bind.execute(sa.text("SELECT shop_id, flow FROM shop_flows"))}
    for (shop_id,) in bind.execute(sa.text("SELECT id FROM shops")).fetchall():
        for flow in NEW_FLOWS:
            if (shop_id, flow) not in configured:
                bind.execute(shop_flows.insert().values(shop_id=shop_id, flow=flow, enabled=False, steps={},
                                                        updated_at=now))


def downgrade() -> None:
    bind = op.get_bind()
    bind.execute(sa.text("DELETE FROM shop_flows WHERE flow IN ('browse_abandonment')"))
