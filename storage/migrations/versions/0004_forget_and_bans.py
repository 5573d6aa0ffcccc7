"""forget and bans

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 03:00:00

Written by hand: `people.forgotten_at` (set by /forget) and `bans`, the record of every ban
and its lifting (who, when, why).
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.models

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        'people',
        sa.Column('forgotten_at', storage.models.UTCDateTime(timezone=True), nullable=True),
    )
    op.create_table(
        'bans',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('person_id', sa.Integer(), nullable=False),
        sa.Column('banned_by', sa.Integer(), nullable=True),
        sa.Column('reason', sa.Text(), nullable=True),
        sa.Column('created_at', storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('lifted_at', storage.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column('lifted_by', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['person_id'], ['people.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['banned_by'], ['people.id']),
        sa.ForeignKeyConstraint(['lifted_by'], ['people.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_bans_person', 'bans', ['person_id', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_bans_person', table_name='bans')
    op.drop_table('bans')
    with op.batch_alter_table('people') as batch:
        batch.drop_column('forgotten_at')
