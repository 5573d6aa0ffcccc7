"""/export [from] [to]: supervisors and admins get their scope's cases as a CSV document.

The file (bot/figures/export.py: UTF-8 with BOM, no personal data) is written under
MEDIA_DIR/exports/ and sent through the outbox like any photo, so it leaves with the update's
transaction. The
cases are read in a read-only transaction of their own (`storage.db.reading`): a year of them
takes a while, and on SQLite the update's own transaction would keep every writer waiting.
"""

from __future__ import annotations

import asyncio
import secrets
from datetime import date

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message
from sqlalchemy.ext.asyncio import AsyncSession

from bot.context import AppContext
from bot.domain import access
from bot.domain.scopes import scope_name, street_scopes
from bot.figures.export import EXPORT_DIR, stream_csv
from bot.telegram.outgoing import Outbox
from storage.db import reading
from storage.files import AtomicFile
from storage.models import Person

MAX_BYTES = 50 * 1024 * 1024  # the largest file a bot may send


class BadRange(Exception):
    """Dates /export cannot take; `key` is the catalogue text that says why."""

    def __init__(self, key: str, **params: object) -> None:
        super().__init__(key)
        self.key, self.params = key, params


def parse_range(args: str | None, today: date) -> tuple[date, date]:
    """`[from] [to]` as YYYY-MM-DD; from defaults to the 1st of this month, to to today."""
    words = (args or "").split()
    if len(words) > 2:
        raise BadRange("export.usage")
    days = []
    for word in words:
        try:
            days.append(date.fromisoformat(word))
        except ValueError:
            raise BadRange("export.bad_date", value=word) from None
    start = days[0] if days else today.replace(day=1)
    end = days[1] if len(days) > 1 else max(today, start)
    if end < start:
        raise BadRange("export.reversed", start=start.isoformat(), end=end.isoformat())
    if end >= a_year_after(start):
        raise BadRange("export.too_long")
    return start, end


def a_year_after(day: date) -> date:
    """The same date a year later (29 February: 1 March), the first day a range may not reach."""
    try:
        return day.replace(year=day.year + 1)
    except ValueError:
        return date(day.year + 1, 3, 1)


async def export_command(
    message: Message, command: CommandObject, ctx: AppContext, out: Outbox, person: Person
) -> None:
    me = out.to(person)
    scopes = street_scopes(person, access.Permission.EXPORT, ctx.district)
    if not scopes:
        me.say("export.not_allowed")
        return
    try:
        start, end = parse_range(command.args, out.now.astimezone(ctx.district.tz).date())
    except BadRange as exc:
        me.text(me.t(exc.key, **exc.params))
        return
    async with reading(ctx.sessionmaker) as session:
        files = [await write_export(ctx, session, out, s, start, end) for s in scopes]
    for street, (rel, rows, size) in zip(scopes, files, strict=True):
        scope = scope_name(ctx.district, street, me.language)
        if size > MAX_BYTES:
            (ctx.media_dir / rel).unlink(missing_ok=True)
            me.say("export.too_big", scope=scope)
            continue
        name = f"suipai-{street or 'district'}-{start:%Y%m%d}-{end:%Y%m%d}.csv"
        caption = me.t(
            "export.caption", scope=scope, start=start.isoformat(), end=end.isoformat(), rows=rows
        )
        me.document(rel, name, caption)


async def write_export(
    ctx: AppContext,
    session: AsyncSession,
    out: Outbox,
    street: str | None,
    start: date,
    end: date,
) -> tuple[str, int, int]:
    """The CSV, read through `session`, under MEDIA_DIR/exports/ (a random name: nobody
    guesses another's file); returns its path relative to MEDIA_DIR, its rows and its size."""
    rel = f"{EXPORT_DIR}/{out.now:%Y%m%d-%H%M%S}-{secrets.token_hex(8)}.csv"
    sink = AtomicFile(ctx.media_dir / rel)  # nobody sends half a file
    rows = 0
    try:
        pieces = stream_csv(
            session, ctx.district, start=start, end=end, street_id=street, tz=ctx.district.tz
        )
        async for piece in pieces:
            sink.write(piece)  # a chunk of a thousand rows: a short local write
            rows += piece.count(b"\r\n")  # no field holds a line break: no free text
        await asyncio.to_thread(sink.commit)  # up to 50 MB to the disk: not on the event loop
    finally:
        sink.discard()
    return rel, rows - 1, sink.size  # less the header


def make_router() -> Router:
    """A fresh router with this area's handlers (one per dispatcher)."""
    router = Router(name="exports")
    router.message.filter(F.chat.type == "private")
    router.message.register(export_command, Command("export"))
    return router
