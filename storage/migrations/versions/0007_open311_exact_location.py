"""open311 exact location

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 02:00:00

Written by hand: which Open311 clients may read cases' points as stored. Everyone else gets
them on the district's grid (district.toml [privacy] open311_location_precision_m); existing
keys start without the permission.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('open311_clients', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('exact_location', sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table('open311_clients', schema=None) as batch_op:
        batch_op.drop_column('exact_location')
