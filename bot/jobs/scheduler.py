"""Time-driven work: short sweeps that claim due deadline rows and act on them.

APScheduler only calls `sweep` every few seconds and `digests` every minute; what is due lives
in the database, so any number of bot processes can run them side by side and each step (and
each person's daily digest) happens once.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import update

from bot.context import AppContext
from bot.domain import cases, handling, sla
from bot.domain.lifecycle import ACTIONABLE, NOT_TAKEN_ON, Action, Event, Side, startable
from bot.figures.names import local_time
from bot.jobs.digests import Digests
from bot.jobs.housekeeping import housekeep
from bot.telegram.keyboards import rating_keyboard
from bot.telegram.notify import assignees, refresh_cards, send_card, supervisors
from bot.telegram.outgoing import Outbox
from storage.db import connection_lost
from storage.models import Case, Deadline, Person

log = logging.getLogger(__name__)

SWEEP_SECONDS = 15
DIGEST_CHECK_SECONDS = 60
RETRY_FAILED_STEP = timedelta(minutes=5)
# The states in which each window's steps still fire: the response's until the case is taken
# on, the resolution's while someone has something to do on it (bot/domain/lifecycle.py).
WAITING_RESPONSE = NOT_TAKEN_ON
WAITING_RESOLUTION = ACTIONABLE


async def sweep(ctx: AppContext, *, limit: int = 100) -> int:
    """Fire every due step, one transaction per batch; returns how many were taken."""
    total = 0
    while True:
        async with ctx.sessionmaker() as session, session.begin():
            now = ctx.clock.now()
            due = await sla.claim_due(session, now, limit)
            out = Outbox(session, now)
            for deadline in due:
                await _fire_alone(ctx, out, deadline, now)
        total += len(due)
        if due:
            ctx.sender.wake()
        if len(due) < limit:
            return total


async def _fire_alone(ctx: AppContext, out: Outbox, deadline: Deadline, now: datetime) -> None:
    """One step in a savepoint of its own, so that a step that fails undoes only itself.

    The failure is logged and the step put back, due again after RETRY_FAILED_STEP: the rest of
    the batch is committed, and the step neither blocks the sweep nor is lost. (A lost
    connection has undone the whole batch: that is raised, and the sweep runs again later.)
    """
    session = out.session
    step = (deadline.id, deadline.kind, deadline.case_id)  # readable after a rollback
    try:
        async with session.begin_nested():
            case = await session.get(Case, deadline.case_id)
            if case is not None:
                await _fire(ctx, out, case, deadline, now)
    except Exception as exc:
        if connection_lost(exc):
            raise
        log.exception("deadline %s (%s, case %s) failed; tried again later", *step)
        await session.execute(
            update(Deadline)
            .where(Deadline.id == step[0])
            .values(done_at=None, due_at=now + RETRY_FAILED_STEP)
            .execution_options(synchronize_session=False)
        )


async def _fire(
    ctx: AppContext, out: Outbox, case: Case, deadline: Deadline, now: datetime
) -> None:
    kind = deadline.kind
    group, _, mark = kind.rpartition("_")
    if group == "respond" and case.state in WAITING_RESPONSE:
        await _deadline_step(ctx, out, case, "respond", mark, case.response_due_at, now)
    elif group == "resolve" and case.state in WAITING_RESOLUTION:
        await _deadline_step(ctx, out, case, "resolve", mark, case.resolve_due_at, now)
    elif kind == "rating_remind" and startable(case, Action.RATE):
        reporter = await out.session.get(Person, case.reporter_id) if case.reporter_id else None
        if reporter is not None and not reporter.unreachable:
            to = out.to(reporter)
            to.say("rate.reminder", rating_keyboard(to.language, case.id), number=case.number)
        cases.record(out.session, case, None, Event.REMINDED, now, data={"kind": kind})
    elif kind == "rating_close" and startable(case, Action.CLOSE):
        await handling.close_unrated(out.session, case, now)
        await refresh_cards(ctx, out, case)
        reporter = await out.session.get(Person, case.reporter_id) if case.reporter_id else None
        if reporter is not None and not reporter.unreachable:
            out.to(reporter).say("rate.closed_unrated", number=case.number)


async def _deadline_step(
    ctx: AppContext,
    out: Outbox,
    case: Case,
    window: str,
    mark: str,
    due: datetime | None,
    now: datetime,
) -> None:
    """A reminder to the assignees at 50% and 90%; past the limit, escalation to supervisors."""
    due_text = local_time(due, ctx.district.tz) if due else "—"
    if mark != "overdue":
        for to, _side in await assignees(out, ctx, case):
            to.say(f"sla.{window}_{mark}", number=case.number, due=due_text)
        kind = f"{window}_{mark}"
        cases.record(out.session, case, None, Event.REMINDED, now, data={"kind": kind})
        return
    case.priority = max(case.priority, 1)
    for to, _side in await assignees(out, ctx, case):
        to.say(f"sla.{window}_overdue", number=case.number, due=due_text)
    for to in await supervisors(out, ctx, case):
        to.say(f"sla.escalated_{window}", number=case.number, due=due_text)
        send_card(ctx, to, Side.SUPERVISOR, case)
    cases.record(out.session, case, None, Event.ESCALATED, now, data={"window": window})


async def digests(ctx: AppContext) -> int:
    """Once DIGEST_TIME has passed today, each supervisor's and admin's digest of yesterday."""
    sent = await Digests.of(ctx).run_due()
    if sent:
        ctx.sender.wake()
    return sent


async def housekeeping(ctx: AppContext) -> int:
    """The hourly retention job (bot/jobs/housekeeping.py): generated files, unused photos,
    abandoned drafts, sent messages and processed update ids past the district's periods."""
    return await housekeep(ctx)


def start_scheduler(ctx: AppContext) -> AsyncIOScheduler:
    """The sweeps, every few seconds, and the digest check, every minute (and at start, so a
    process started after the digest time catches up at once), in this process's event loop."""
    scheduler = AsyncIOScheduler(timezone=ctx.district.tz)
    scheduler.add_job(
        sweep,
        "interval",
        seconds=SWEEP_SECONDS,
        args=[ctx],
        id="deadlines",
        max_instances=1,
        coalesce=True,
    )
    scheduler.add_job(
        digests,
        "interval",
        seconds=DIGEST_CHECK_SECONDS,
        args=[ctx],
        id="digests",
        max_instances=1,
        coalesce=True,
        next_run_time=datetime.now(UTC),
    )
    scheduler.add_job(
        housekeeping,
        "interval",
        hours=1,
        args=[ctx],
        id="housekeeping",
        max_instances=1,
        coalesce=True,
    )
    scheduler.start()
    return scheduler
