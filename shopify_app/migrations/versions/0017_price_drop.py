"""price drop: a variant a known contact viewed or carted lately is cheaper now; storefront events by variant

Existing shops get the new flow switched off (they opt in); shops installed after the upgrade get it on, as
its definition says. The index finds who looked at a variant whose price fell.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04
"""
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import shopify_app.db.types


revision: str = '0017'
down_revision: str | None = '0016'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NEW_FLOWS = ("price_drop",)  # off for the shops installed before them


def upgrade() -> None:
    with op.batch_alter_table('pixel_events', schema=None) as batch_op:
        batch_op.create_index('ix_pixel_events_shop_variant', ['shop_id', 'variant_id'], unique=False)

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
    bind.execute(sa.text("DELETE FROM shop_flows WHERE flow IN ('price_drop')"))
    with op.batch_alter_table('pixel_events', schema=None) as batch_op:
        batch_op.drop_index('ix_pixel_events_shop_variant')
