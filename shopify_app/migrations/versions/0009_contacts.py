"""contacts: one person per shop, known by every identity they were seen with; journeys and messages refer to
theirs, and the mirror keeps each address's province

Every customer already mirrored becomes a contact, known by its customer id, its email and its phone
number (when Shopify gave it in international form); an email or number two customers share stays with
the first. Journeys and messages about those customers refer to their contact. A guest (a checkout with
no customer) becomes a contact the next time one of their records arrives. Existing journeys keep the
key they hold until they end; contacts are found for them all the same.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
import sqlmodel
from alembic import op

import shopify_app.db.types

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('contacts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('shop_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('customer_id', sa.BigInteger(), nullable=True),
    sa.Column('country', sqlmodel.sql.sqltypes.AutoString(length=2), nullable=True),
    sa.Column('province', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=True),
    sa.Column('timezone', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('language', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
    sa.Column('created_at', shopify_app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', shopify_app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['shop_id'], ['shops.id'], name=op.f('fk_contacts_shop_id_shops'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contacts')),
    sa.UniqueConstraint('shop_id', 'customer_id', name=op.f('uq_contacts_shop_id_customer_id'))
    )
    op.create_table('contact_identities',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('shop_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('contact_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('value', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
    sa.Column('seen_at', shopify_app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_contact_identities_contact_id_contacts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['shop_id'], ['shops.id'], name=op.f('fk_contact_identities_shop_id_shops'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contact_identities')),
    sa.UniqueConstraint('shop_id', 'kind', 'value', name=op.f('uq_contact_identities_shop_id_kind_value'))
    )
    with op.batch_alter_table('contact_identities', schema=None) as batch_op:
        batch_op.create_index('ix_contact_identities_contact', ['contact_id'], unique=False)

    with op.batch_alter_table('checkouts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('province_code', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=True))

    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('province_code', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=True))

    # Added in place, without a foreign key (merging and erasing contacts rewrite them): a reference would make
    # SQLite rebuild these large tables, with their partial indexes.
    for table in ('journeys', 'messages'):
        op.add_column(table, sa.Column('contact_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True))
    op.create_index('ix_journeys_contact', 'journeys', ['contact_id'], unique=False)
    op.create_index('ix_messages_contact_sent', 'messages', ['contact_id', 'sent_at'], unique=False)
    _contacts_of_customers()


def _contacts_of_customers() -> None:
    now = sa.bindparam('now', datetime.now(UTC), type_=shopify_app.db.types.UTCDateTime())
    statements = [
        """INSERT INTO contacts (shop_id, customer_id, country, language, created_at, updated_at)
           SELECT shop_id, customer_id, country_code, locale, :now, :now FROM customers""",
        """INSERT INTO contact_identities (shop_id, contact_id, kind, value, seen_at)
           SELECT shop_id, id, 'customer', CAST(customer_id AS VARCHAR(20)), :now FROM contacts""",
        # One contact per address: the first customer's (by mirror id) that has it.
        """INSERT INTO contact_identities (shop_id, contact_id, kind, value, seen_at)
           SELECT k.shop_id, k.id, 'email', c.email, :now FROM customers c
           JOIN contacts k ON k.shop_id = c.shop_id AND k.customer_id = c.customer_id
           WHERE c.email IS NOT NULL AND c.id = (
               SELECT MIN(o.id) FROM customers o WHERE o.shop_id = c.shop_id AND o.email = c.email)""",
        """INSERT INTO contact_identities (shop_id, contact_id, kind, value, seen_at)
           SELECT k.shop_id, k.id, 'phone', c.phone, :now FROM customers c
           JOIN contacts k ON k.shop_id = c.shop_id AND k.customer_id = c.customer_id
           WHERE c.phone LIKE '+%' AND c.id = (
               SELECT MIN(o.id) FROM customers o WHERE o.shop_id = c.shop_id AND o.phone = c.phone)""",
        """UPDATE journeys SET contact_id = (
               SELECT k.id FROM contacts k WHERE k.shop_id = journeys.shop_id AND k.customer_id = journeys.customer_id)
           WHERE customer_id IS NOT NULL""",
        """UPDATE journeys SET contact_id = (
               SELECT i.contact_id FROM contact_identities i
               WHERE i.shop_id = journeys.shop_id AND i.kind = 'email' AND i.value = journeys.email)
           WHERE contact_id IS NULL AND email IS NOT NULL""",
        """UPDATE messages SET contact_id = (SELECT j.contact_id FROM journeys j WHERE j.id = messages.journey_id)""",
    ]
    for statement in statements:
        op.execute(sa.text(statement).bindparams(now) if ':now' in statement else sa.text(statement))



def downgrade() -> None:
    op.drop_index('ix_messages_contact_sent', 'messages')
    op.drop_index('ix_journeys_contact', 'journeys')
    for table in ('messages', 'journeys'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column('contact_id')

    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_column('province_code')

    with op.batch_alter_table('checkouts', schema=None) as batch_op:
        batch_op.drop_column('province_code')

    with op.batch_alter_table('contact_identities', schema=None) as batch_op:
        batch_op.drop_index('ix_contact_identities_contact')

    op.drop_table('contact_identities')
    op.drop_table('contacts')
