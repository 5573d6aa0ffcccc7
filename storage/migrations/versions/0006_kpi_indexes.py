"""kpi indexes

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 04:00:00

Written by hand: the indexes the KPI queries and the daily digest need on a district's history
(measured over 1,000,000 synthetic cases, bench/RESULTS.md):

- `case_events (created_at, action)`: every figure counts events in a window of days; led by
  the time so that SQLite still starts a street office's figures from its cases;
- `case_events (case_id, action, created_at)`: "the case's first accept", "a duplicate event by
  the deadline", "a reopen after this fix" look up one case's events of a kind;
- `cases (street_id, created_at)`: a street office's cases (digest, hotspots of the last days).

Without them PostgreSQL joined the month's events to the cases in a nested loop (the median
time to accept alone took 283 s over 100,000 cases).
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('case_events', schema=None) as batch_op:
        batch_op.create_index('ix_case_events_created_action', ['created_at', 'action'])
        batch_op.create_index('ix_case_events_case_action', ['case_id', 'action', 'created_at'])
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.create_index('ix_cases_street_created', ['street_id', 'created_at'])


def downgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_index('ix_cases_street_created')
    with op.batch_alter_table('case_events', schema=None) as batch_op:
        batch_op.drop_index('ix_case_events_case_action')
        batch_op.drop_index('ix_case_events_created_action')
