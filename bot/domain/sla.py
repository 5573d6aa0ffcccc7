"""Deadlines of a case: reminders at 50% and 90% of each window, escalation when overdue,
and the rating window after resolution. Stored as rows; `bot/jobs/scheduler.py` fires them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Case, Deadline

RESPOND = ("respond_50", "respond_90", "respond_overdue")
RESOLVE = ("resolve_50", "resolve_90", "resolve_overdue")
RATING = ("rating_remind", "rating_close")
RATING_REMINDER = timedelta(hours=24)
RATING_WINDOW = timedelta(hours=72)
_SHARE = {"50": 0.5, "90": 0.9, "overdue": 1.0}


def _window(
    session: AsyncSession, case: Case, kinds: Sequence[str], start: datetime, due: datetime
) -> None:
    span = due - start
    for kind in kinds:
        share = _SHARE[kind.rsplit("_", 1)[1]]
        session.add(
            Deadline(case_id=case.id, kind=kind, due_at=start + span * share, cancelled=False)
        )


def on_dispatched(session: AsyncSession, case: Case, now: datetime) -> None:
    """Start the response and resolution clocks."""
    if case.response_due_at is not None:
        _window(session, case, RESPOND, now, case.response_due_at)
    if case.resolve_due_at is not None:
        _window(session, case, RESOLVE, now, case.resolve_due_at)


def on_resolved(session: AsyncSession, case: Case, now: datetime) -> None:
    session.add(
        Deadline(
            case_id=case.id, kind="rating_remind", due_at=now + RATING_REMINDER, cancelled=False
        )
    )
    session.add(
        Deadline(case_id=case.id, kind="rating_close", due_at=now + RATING_WINDOW, cancelled=False)
    )


def on_reopened(session: AsyncSession, case: Case, now: datetime, window: timedelta) -> None:
    """A reopened case gets a fresh resolution window of the category's length."""
    case.resolve_due_at = now + window
    _window(session, case, RESOLVE, now, case.resolve_due_at)


async def cancel(session: AsyncSession, case: Case, kinds: Sequence[str], now: datetime) -> None:
    """Steps that no longer apply (the case was answered, resolved, rated …)."""
    await session.execute(
        update(Deadline)
        .where(Deadline.case_id == case.id, Deadline.kind.in_(kinds), Deadline.done_at.is_(None))
        .values(done_at=now, cancelled=True)
        .execution_options(synchronize_session=False)
    )


async def claim_due(session: AsyncSession, now: datetime, limit: int = 100) -> list[Deadline]:
    """Take due steps for this transaction: nobody else can take them until it ends.

    On PostgreSQL a step is taken with its case locked, and skipped while another sweep holds
    the step or anyone holds the case (a transition in progress, `storage.cases.lock_case`):
    the sweep never waits for a case while holding steps that transition wants to cancel, so
    the two cannot deadlock, and it acts on the case as it stands. The UPDATE's condition on
    `done_at` makes the claim safe on SQLite too, where transactions are serialised.
    """
    pick = (
        select(Deadline.id)
        .join(Case, Case.id == Deadline.case_id)
        .where(Deadline.done_at.is_(None), Deadline.due_at <= now)
        .order_by(Deadline.due_at, Deadline.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        pick = pick.with_for_update(skip_locked=True, key_share=True)
    ids = list((await session.scalars(pick)).all())
    if not ids:
        return []
    claimed = await session.scalars(
        update(Deadline)
        .where(Deadline.id.in_(ids), Deadline.done_at.is_(None))
        .values(done_at=now)
        .returning(Deadline)
        .execution_options(synchronize_session=False)
    )
    return sorted(claimed.all(), key=lambda d: (d.due_at, d.id))
