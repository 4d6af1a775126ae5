"""journey engine: multi-step journeys, channel-neutral messages, the facts the new flows need

Existing shops keep abandoned_checkout as configured (its delay becomes the reminder step's) and get the
flows shipped with this release switched off. Waiting reminders keep waiting at the `reminder` step;
journeys that already sent or ended stay finished.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""
import json
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
import sqlmodel
from alembic import op

import shopify_app.db.types

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NEW_FLOWS = ("post_purchase", "welcome", "winback")  # off for the shops installed before them
# What the previous release subscribed shops to: the worker re-subscribes them to this release's topics.
PREVIOUS_TOPICS = (
    "app/uninstalled,checkouts/create,checkouts/update,customers/create,customers/update,"
    "customers_email_marketing_consent/update,customers_marketing_consent/update,orders/cancelled,orders/create,"
    "orders/paid,orders/updated,products/create,products/delete,products/update,shop/update,variants/in_stock,"
    "variants/out_of_stock"
)
OPEN = sa.text("state IN ('ineligible', 'waiting', 'sending')")
ACTIVE = sa.text("state IN ('waiting', 'sending') AND exclusive_key IS NOT NULL")
LIVE = sa.text("status IN ('sending', 'sent', 'deferred', 'unknown')")

# Old journey states, as (new state, new reason or None to keep it, what became of the reminder step).
JOURNEY_STATES = {
    "waiting": ("waiting", None, None),
    "sending": ("sending", None, None),
    "ineligible": ("ineligible", None, None),
    "sent": ("done", "sent", "sent"),
    "skipped": ("done", None, "skipped"),
    "unknown": ("done", "send_interrupted", "unknown"),
    "failed": ("done", "send_refused", "failed"),
}


def upgrade() -> None:
    bind = op.get_bind()
    now = datetime.now(UTC)

    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_order_at', shopify_app.db.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_customers_shop_last_order', ['shop_id', 'last_order_at'], unique=False)
    # The customers' latest uncancelled orders, as the mirror now keeps them.
    bind.execute(sa.text(
        "UPDATE customers SET last_order_at = (SELECT MAX(o.created_at) FROM orders o WHERE o.shop_id = customers.shop_id"
        " AND o.customer_id = customers.customer_id AND o.cancelled_at IS NULL)"
    ))

    with op.batch_alter_table('decisions', schema=None) as batch_op:
        batch_op.alter_column('step', existing_type=sa.VARCHAR(length=50), nullable=True)

    # Journeys: one open journey per subject (a partial index), a step, and who it is about.
    with op.batch_alter_table('journeys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True))
        batch_op.add_column(sa.Column('email', sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.add_column(sa.Column('exclusive_key', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True))
        batch_op.add_column(sa.Column('step', sqlmodel.sql.sqltypes.AutoString(length=50), nullable=True))
        batch_op.add_column(sa.Column('entered_at', shopify_app.db.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('arrived_at', shopify_app.db.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('previous_at', shopify_app.db.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('performed', sa.JSON(), nullable=True))
        batch_op.drop_constraint('uq_journeys_shop_id_flow_subject', type_='unique')
    journeys = sa.table(
        'journeys', sa.column('id'), sa.column('state'), sa.column('reason'), sa.column('step'),
        sa.column('performed', sa.JSON()),
    )
    for old, (state, reason, performed) in JOURNEY_STATES.items():
        values: dict[str, object] = {
            'state': state,
            'step': None if old == 'ineligible' else 'reminder',
            'performed': {'reminder': performed} if performed else {},
        }
        if reason is not None:
            values['reason'] = reason
        bind.execute(journeys.update().where(journeys.c.state == old).values(**values))
    bind.execute(sa.text(
        "UPDATE journeys SET entered_at = created_at, arrived_at = created_at, previous_at = created_at,"
        " reason = CASE WHEN reason = 'enrolled' THEN 'wait' ELSE reason END WHERE state IN ('waiting', 'sending')"
    ))
    for column in ('email', 'customer_id'):
        bind.execute(sa.text(
            f"UPDATE journeys SET {column} = (SELECT c.{column} FROM checkouts c"  # noqa: S608  fixed names
            " WHERE c.shop_id = journeys.shop_id AND c.token = journeys.subject)"
        ))
    # Journeys from before may overlap for one customer (they were allowed to): no exclusive key for them.
    with op.batch_alter_table('journeys', schema=None) as batch_op:
        batch_op.alter_column('performed', existing_type=sa.JSON(), nullable=False)
        batch_op.create_index('ix_journeys_shop_customer', ['shop_id', 'customer_id'], unique=False)
        batch_op.create_index('ix_journeys_shop_email', ['shop_id', 'email'], unique=False)
        batch_op.create_index('ix_journeys_shop_subject', ['shop_id', 'subject'], unique=False)
        batch_op.create_index('uq_journeys_active_customer', ['shop_id', 'flow', 'exclusive_key'], unique=True,
                              sqlite_where=ACTIVE, postgresql_where=ACTIVE)
        batch_op.create_index('uq_journeys_open_subject', ['shop_id', 'flow', 'subject'], unique=True,
                              sqlite_where=OPEN, postgresql_where=OPEN)

    # Messages: channel-neutral (an address and a per-channel payload), one live message per journey step.
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('address', sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.add_column(sa.Column('payload', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('provider', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True))
        batch_op.add_column(sa.Column('cost', shopify_app.db.types.Amount(precision=20, scale=4), nullable=True))
        batch_op.add_column(sa.Column('cost_currency', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=True))
        batch_op.drop_constraint('uq_messages_journey_id_step_channel', type_='unique')
    messages = sa.table(
        'messages', sa.column('id'), sa.column('address'), sa.column('payload', sa.JSON()), sa.column('provider'),
    )
    rows = bind.execute(sa.text("SELECT id, recipient, subject, body_html, body_text, provider_message_id FROM messages"))
    for message_id, recipient, subject, html, text, provider_id in rows.fetchall():
        bind.execute(
            messages.update().where(messages.c.id == message_id).values(
                address=recipient,
                payload={'subject': subject, 'html': html, 'text': text},
                provider='smtp' if provider_id else None,
            )
        )
    # A message retried later was recorded as failed while its journey waited: it is deferred.
    bind.execute(sa.text(
        "UPDATE messages SET status = 'deferred' WHERE status = 'failed' AND journey_id IN"
        " (SELECT id FROM journeys WHERE state = 'waiting' AND reason = 'send_deferred')"
    ))
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.alter_column('address', existing_type=sqlmodel.sql.sqltypes.AutoString(), nullable=False)
        batch_op.alter_column('payload', existing_type=sa.JSON(), nullable=False)
        batch_op.drop_column('subject')
        batch_op.drop_column('body_text')
        batch_op.drop_column('body_html')
        batch_op.drop_column('recipient')
        batch_op.create_index('ix_messages_shop_address', ['shop_id', 'address'], unique=False)
        batch_op.create_index('uq_messages_live_step', ['journey_id', 'step'], unique=True,
                              sqlite_where=LIVE, postgresql_where=LIVE)

    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('fulfillment_status', sqlmodel.sql.sqltypes.AutoString(length=30), nullable=True))
        batch_op.add_column(sa.Column('buyer_accepts_marketing', sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column('fulfilled_at', shopify_app.db.types.UTCDateTime(timezone=True), nullable=True))

    with op.batch_alter_table('products', schema=None) as batch_op:
        batch_op.add_column(sa.Column('product_type', sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.add_column(sa.Column('vendor', sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.create_index('ix_products_shop_type', ['shop_id', 'product_type'], unique=False)
        batch_op.create_index('ix_products_shop_vendor', ['shop_id', 'vendor'], unique=False)

    # Flow settings: per-step tuning; the old delay is the reminder's; new flows off for existing shops.
    with op.batch_alter_table('shop_flows', schema=None) as batch_op:
        batch_op.add_column(sa.Column('steps', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('swept_until', shopify_app.db.types.UTCDateTime(timezone=True), nullable=True))
    shop_flows = sa.table(
        'shop_flows', sa.column('id'), sa.column('shop_id'), sa.column('flow'), sa.column('enabled'),
        sa.column('steps', sa.JSON()), sa.column('updated_at', shopify_app.db.types.UTCDateTime(timezone=True)),
    )
    for row_id, delay in bind.execute(sa.text("SELECT id, delay_seconds FROM shop_flows")).fetchall():
        steps = {'reminder': {'delay_seconds': int(delay)}} if delay is not None else {}
        bind.execute(shop_flows.update().where(shop_flows.c.id == row_id).values(steps=steps))
    configured = {(shop, flow) for shop, flow in bind.execute(sa.text("SELECT shop_id, flow FROM shop_flows"))}
    for (shop_id,) in bind.execute(sa.text("SELECT id FROM shops")).fetchall():
        wanted = [('abandoned_checkout', True), *((flow, False) for flow in NEW_FLOWS)]
        for flow, enabled in wanted:
            if (shop_id, flow) not in configured:
                bind.execute(shop_flows.insert().values(
                    shop_id=shop_id, flow=flow, enabled=enabled, steps={}, updated_at=now,
                ))
    with op.batch_alter_table('shop_flows', schema=None) as batch_op:
        batch_op.alter_column('steps', existing_type=sa.JSON(), nullable=False)
        batch_op.drop_column('delay_seconds')

    with op.batch_alter_table('shops', schema=None) as batch_op:
        batch_op.add_column(sa.Column('webhook_topics', sqlmodel.sql.sqltypes.AutoString(), nullable=True))
    bind.execute(sa.text("UPDATE shops SET webhook_topics = :topics WHERE installed"), {"topics": PREVIOUS_TOPICS})

    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('customer_id', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('email', sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.create_index('ix_webhook_events_shop_customer', ['shop_id', 'customer_id'], unique=False)
        batch_op.create_index('ix_webhook_events_shop_email', ['shop_id', 'email'], unique=False)


def downgrade() -> None:
    """Back to the one-step schema: later steps, new flows and per-step tuning are dropped."""
    bind = op.get_bind()
    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.drop_index('ix_webhook_events_shop_email')
        batch_op.drop_index('ix_webhook_events_shop_customer')
        batch_op.drop_column('email')
        batch_op.drop_column('customer_id')

    with op.batch_alter_table('shops', schema=None) as batch_op:
        batch_op.drop_column('webhook_topics')

    with op.batch_alter_table('shop_flows', schema=None) as batch_op:
        batch_op.add_column(sa.Column('delay_seconds', sa.INTEGER(), nullable=True))
    for row_id, steps in bind.execute(sa.text("SELECT id, steps FROM shop_flows")).fetchall():
        stored = json.loads(steps) if isinstance(steps, str) else (steps or {})
        delay = (stored.get('reminder') or {}).get('delay_seconds')
        if delay is not None:
            bind.execute(sa.text("UPDATE shop_flows SET delay_seconds = :d WHERE id = :i"), {'d': delay, 'i': row_id})
    bind.execute(sa.text("DELETE FROM shop_flows WHERE flow <> 'abandoned_checkout'"))
    with op.batch_alter_table('shop_flows', schema=None) as batch_op:
        batch_op.drop_column('swept_until')
        batch_op.drop_column('steps')

    with op.batch_alter_table('products', schema=None) as batch_op:
        batch_op.drop_index('ix_products_shop_vendor')
        batch_op.drop_index('ix_products_shop_type')
        batch_op.drop_column('vendor')
        batch_op.drop_column('product_type')

    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_column('fulfilled_at')
        batch_op.drop_column('buyer_accepts_marketing')
        batch_op.drop_column('fulfillment_status')

    bind.execute(sa.text("DELETE FROM journeys WHERE flow <> 'abandoned_checkout'"))
    bind.execute(sa.text("DELETE FROM messages WHERE status NOT IN ('sending', 'sent', 'unknown', 'failed', 'deferred')"))
    bind.execute(sa.text("DELETE FROM messages WHERE step <> 'reminder'"))
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index('uq_messages_live_step', sqlite_where=LIVE, postgresql_where=LIVE)
        batch_op.drop_index('ix_messages_shop_address')
        batch_op.add_column(sa.Column('recipient', sa.VARCHAR(), nullable=True))
        batch_op.add_column(sa.Column('body_html', sa.VARCHAR(), nullable=True))
        batch_op.add_column(sa.Column('body_text', sa.VARCHAR(), nullable=True))
        batch_op.add_column(sa.Column('subject', sa.VARCHAR(), nullable=True))
    for message_id, address, payload in bind.execute(sa.text("SELECT id, address, payload FROM messages")).fetchall():
        data = json.loads(payload) if isinstance(payload, str) else (payload or {})
        bind.execute(
            sa.text("UPDATE messages SET recipient = :r, subject = :s, body_html = :h, body_text = :t WHERE id = :i"),
            {'r': address, 's': data.get('subject'), 'h': data.get('html'), 't': data.get('text') or '', 'i': message_id},
        )
    bind.execute(sa.text("UPDATE messages SET status = 'failed' WHERE status = 'deferred'"))
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.alter_column('recipient', existing_type=sa.VARCHAR(), nullable=False)
        batch_op.alter_column('body_text', existing_type=sa.VARCHAR(), nullable=False)
        batch_op.create_unique_constraint('uq_messages_journey_id_step_channel', ['journey_id', 'step', 'channel'])
        batch_op.drop_column('cost_currency')
        batch_op.drop_column('cost')
        batch_op.drop_column('provider')
        batch_op.drop_column('payload')
        batch_op.drop_column('address')

    bind.execute(sa.text("UPDATE journeys SET state = CASE WHEN reason IN ('sent', 'send_interrupted', 'send_refused')"
                         " THEN (CASE reason WHEN 'sent' THEN 'sent' WHEN 'send_interrupted' THEN 'unknown' ELSE 'failed'"
                         " END) ELSE 'skipped' END WHERE state = 'done'"))
    # Only one journey per checkout may remain.
    bind.execute(sa.text(
        "DELETE FROM journeys WHERE id NOT IN (SELECT MAX(id) FROM journeys GROUP BY shop_id, flow, subject)"
    ))
    with op.batch_alter_table('journeys', schema=None) as batch_op:
        batch_op.drop_index('uq_journeys_open_subject', sqlite_where=OPEN, postgresql_where=OPEN)
        batch_op.drop_index('uq_journeys_active_customer', sqlite_where=ACTIVE, postgresql_where=ACTIVE)
        batch_op.drop_index('ix_journeys_shop_subject')
        batch_op.drop_index('ix_journeys_shop_email')
        batch_op.drop_index('ix_journeys_shop_customer')
        batch_op.create_unique_constraint('uq_journeys_shop_id_flow_subject', ['shop_id', 'flow', 'subject'])
        batch_op.drop_column('performed')
        batch_op.drop_column('previous_at')
        batch_op.drop_column('arrived_at')
        batch_op.drop_column('entered_at')
        batch_op.drop_column('step')
        batch_op.drop_column('exclusive_key')
        batch_op.drop_column('email')
        batch_op.drop_column('customer_id')

    bind.execute(sa.text("UPDATE decisions SET step = 'enrol' WHERE step IS NULL"))
    with op.batch_alter_table('decisions', schema=None) as batch_op:
        batch_op.alter_column('step', existing_type=sa.VARCHAR(length=50), nullable=False)

    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_index('ix_customers_shop_last_order')
        batch_op.drop_column('last_order_at')
