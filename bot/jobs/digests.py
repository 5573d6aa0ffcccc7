"""Sending the daily digest: once a day to each supervisor and admin, or again on demand.

The scheduled send is claimed per person and reported day in `digest_runs`: the process whose
INSERT … ON CONFLICT DO NOTHING adds the row writes the digest to the outbox in that same
transaction, so however many bot processes run the job at once, each person gets one digest a
day. On demand (/digest, `python -m bot digest send --now`) nothing is claimed: it may resend.

A digest is built before that transaction, in a read-only one of its own
(`bot.figures.digest.DigestBuilder`), and written as messages by bot/telegram/digest.py.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path

from sqlalchemy import exists, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.context import AppContext
from bot.domain import access
from bot.domain.district import District
from bot.domain.scopes import street_scopes
from bot.figures.digest import DigestBuilder
from bot.i18n import normalise_language
from bot.telegram.digest import put
from bot.telegram.outgoing import Outbox
from storage.db import reading
from storage.models import DigestRun, Person, Role

log = logging.getLogger(__name__)

DIGEST_ROLES = (access.ADMIN, access.SUPERVISOR)


@dataclass(frozen=True)
class Reader:
    """Someone who gets the digest: where to send it, in which language, of which scopes."""

    person_id: int
    chat_id: int
    language: str
    scopes: tuple[str | None, ...]


def due_day(now: datetime, district: District, at: time) -> date | None:
    """The day whose digest is due at `now`: yesterday, once `at` has passed today (local)."""
    local = now.astimezone(district.tz)
    return local.date() - timedelta(days=1) if local.time() >= at else None


@dataclass
class Digests:
    """Builds digests and writes them to the outbox; what the scheduler and the CLI share."""

    sessionmaker: async_sessionmaker[AsyncSession]
    district: District
    media_dir: Path
    clock: Clock
    at: time
    _builder: DigestBuilder = field(init=False)

    def __post_init__(self) -> None:
        self._builder = DigestBuilder(self.sessionmaker, self.district)

    @classmethod
    def of(cls, ctx: AppContext) -> Digests:
        return cls(
            ctx.sessionmaker, ctx.district, ctx.media_dir, ctx.clock, ctx.settings.digest_time
        )

    async def run_due(self) -> int:
        """The scheduled job: once the digest time has passed, send whoever has not had it.

        Safe to run every minute in every process; returns how many digests this one sent.
        """
        now = self.clock.now()
        day = due_day(now, self.district, self.at)
        if day is None:
            return 0
        async with reading(self.sessionmaker) as session:
            waiting = await self.readers(session, day_without_run=day)
        sent = 0
        for reader in waiting:
            try:
                sent += await self._send_once(reader, day, now)
            except Exception:  # one reader's failure (rolled back, tried again next minute)
                log.exception("digest of %s for person %s failed", day, reader.person_id)
        return sent

    async def send_now(self, day: date, telegram_id: int | None = None) -> int:
        """Send `day`'s digest now to every reader (or one), whether or not they had it."""
        now = self.clock.now()
        async with reading(self.sessionmaker) as session:
            readers = await self.readers(session)
        chosen = [r for r in readers if telegram_id is None or r.chat_id == telegram_id]
        built = [await self._builder.build(r.scopes, day, r.language, now) for r in chosen]
        async with self.sessionmaker() as session, session.begin():
            out = Outbox(session, now)
            for reader, digests in zip(chosen, built, strict=True):
                put(out.chat(reader.chat_id, reader.language), digests, self.media_dir)
        return len(chosen)

    async def readers(
        self, session: AsyncSession, *, day_without_run: date | None = None
    ) -> list[Reader]:
        """Admins and supervisors who can be written to, with the scopes of their digest."""
        query = (
            select(Person)
            .join(Role, Role.person_id == Person.id)
            .where(Role.role.in_(DIGEST_ROLES), ~Person.unreachable, ~Person.banned)
            .order_by(Person.id)
            .distinct()
        )
        if day_without_run is not None:
            query = query.where(
                ~exists().where(DigestRun.person_id == Person.id, DigestRun.day == day_without_run)
            )
        readers = []
        for person in await session.scalars(query):
            scopes = street_scopes(person, access.Permission.DIGEST, self.district)
            if scopes:
                language = normalise_language(person.language)
                readers.append(Reader(person.id, person.telegram_id, language, tuple(scopes)))
        return readers

    async def _send_once(self, reader: Reader, day: date, now: datetime) -> int:
        """Build the digest, then claim (person, day) and write it in one short transaction;
        0 if already claimed (another process got there while this one was building)."""
        digests = await self._builder.build(reader.scopes, day, reader.language, now)
        async with self.sessionmaker() as session, session.begin():
            run_id = await _claim(session, reader.person_id, day, now)
            if run_id is None:
                return 0
            out = Outbox(session, now)
            put(out.chat(reader.chat_id, reader.language), digests, self.media_dir)
            await session.execute(
                update(DigestRun).where(DigestRun.id == run_id).values(sent_at=self.clock.now())
            )
        log.info("digest of %s sent to person %s", day, reader.person_id)
        return 1


async def _claim(session: AsyncSession, person_id: int, day: date, now: datetime) -> int | None:
    """The new run's id, or None when (person, day) has a run: another process sends that one.

    On PostgreSQL an insert racing another's uncommitted one waits for it, then does nothing.
    """
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = (
        insert(DigestRun)
        .values(person_id=person_id, day=day, created_at=now)
        .on_conflict_do_nothing(index_elements=["person_id", "day"])
        .returning(DigestRun.id)
    )
    return (await session.execute(statement)).scalar_one_or_none()
