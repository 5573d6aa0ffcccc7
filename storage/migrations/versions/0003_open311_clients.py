"""open311 clients

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 02:30:00

Written by hand: the systems that may use the Open311 API, each with a salted key hash.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.models

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'open311_clients',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('key_id', sa.String(length=16), nullable=False),
        sa.Column('key_salt', sa.String(length=64), nullable=False),
        sa.Column('key_hash', sa.String(length=200), nullable=False),
        sa.Column('can_write', sa.Boolean(), nullable=False),
        sa.Column('created_at', storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('revoked_at', storage.models.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('key_id'),
    )


def downgrade() -> None:
    op.drop_table('open311_clients')
