"""digest runs and role changes

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 04:00:00

Written by hand: `digest_runs`, one row per person and reported day, whose unique key makes
the scheduled digest go out once however many processes run; `role_changes`, the record of
every grant and removal of a role (who, which, by whom, how, when).
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.models

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'digest_runs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('person_id', sa.Integer(), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('created_at', storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('sent_at', storage.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['person_id'], ['people.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('person_id', 'day', name='uq_digest_runs_person_day'),
    )
    op.create_table(
        'role_changes',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('person_id', sa.Integer(), nullable=False),
        sa.Column('change', sa.String(length=10), nullable=False),
        sa.Column('role', sa.String(length=20), nullable=False),
        sa.Column('scope', sa.String(length=64), nullable=True),
        sa.Column('changed_by', sa.Integer(), nullable=True),
        sa.Column('via', sa.String(length=80), nullable=False),
        sa.Column('created_at', storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['person_id'], ['people.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['changed_by'], ['people.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index(
        'ix_role_changes_person', 'role_changes', ['person_id', 'id'], unique=False
    )


def downgrade() -> None:
    op.drop_index('ix_role_changes_person', table_name='role_changes')
    op.drop_table('role_changes')
    op.drop_table('digest_runs')
