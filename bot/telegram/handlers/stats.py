"""Supervisors and admins in chat: /stats [today|week|month] and /digest, for their scope.

Both read their figures in a read-only transaction of their own (`storage.db.reading`), not in
the update's: on SQLite that one holds the write lock, and residents' reports would wait.
"""

from __future__ import annotations

from datetime import date

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message

from bot.context import AppContext
from bot.domain import access
from bot.domain.scopes import scope_name, street_scopes
from bot.figures import kpi
from bot.figures.digest import DigestBuilder, kpi_lines, local_date, yesterday
from bot.figures.kpi import Kpis, Period, Rates, Scope
from bot.telegram.digest import put
from bot.telegram.outgoing import Outbox, Recipient, split_text
from storage.db import reading
from storage.models import Person

# What a supervisor may type after /stats (English or Chinese); today when nothing.
PERIOD_WORDS = {
    "today": "today",
    "day": "today",
    "今天": "today",
    "今日": "today",
    "week": "week",
    "本周": "week",
    "周": "week",
    "month": "month",
    "本月": "month",
    "月": "month",
}


def period_of(word: str, today: date, ctx: AppContext) -> tuple[Period, Period]:
    """The period `word` names, and the one it is compared against."""
    tz = ctx.district.tz
    if word == "week":  # the last seven days, against the seven before
        week = Period.last_days(today, 7, tz)
        return week, week.previous()
    if word == "month":  # month to date, against the same days of last month
        month = Period.month_to_date(today, tz)
        return month, month.month_before()
    day = Period.day(today, tz)
    return day, day.previous()


async def stats_command(
    message: Message, command: CommandObject, ctx: AppContext, out: Outbox, person: Person
) -> None:
    me = out.to(person)
    scopes = street_scopes(person, access.Permission.DIGEST, ctx.district)
    if not scopes:
        me.say("stats.not_allowed")
        return
    word = PERIOD_WORDS.get((command.args or "today").strip().lower())
    if word is None:
        me.say("stats.usage")
        return
    today = out.now.astimezone(ctx.district.tz).date()
    period, before = period_of(word, today, ctx)
    blocks = []
    async with reading(ctx.sessionmaker) as session:
        for street in scopes:
            scope = Scope.street(street) if street else Scope.district()
            figures = await kpi.compute(session, scope, period, now=out.now)
            earlier = await kpi.rates(session, scope, before, now=out.now)
            blocks.append(render(ctx, me, street, word, figures, earlier))
    for piece in split_text("\n\n".join(blocks)):
        me.text(piece)


def render(
    ctx: AppContext, me: Recipient, street: str | None, word: str, k: Kpis, before: Rates
) -> str:
    lang = me.language
    start, end = k.period.start, k.period.end
    dates = local_date(lang, start)
    if end != start:
        dates += f"–{local_date(lang, end)}"
    lines = [
        me.t(
            "stats.title",
            scope=scope_name(ctx.district, street, lang),
            period=me.t(f"stats.period_{word}"),
            dates=dates,
            arrows=me.t(f"stats.arrows_{word}"),
        ),
        *kpi_lines(ctx.district, lang, k, before),
        me.t("stats.overdue", overdue=k.overdue, unanswered=k.overdue_unanswered),
    ]
    return "\n".join(lines)


async def digest_command(message: Message, ctx: AppContext, out: Outbox, person: Person) -> None:
    """This morning's digest (yesterday's figures) again, as of now; the daily one is unchanged."""
    me = out.to(person)
    scopes = street_scopes(person, access.Permission.DIGEST, ctx.district)
    if not scopes:
        me.say("stats.not_allowed")
        return
    builder = DigestBuilder(ctx.sessionmaker, ctx.district)
    digests = await builder.build(scopes, yesterday(out.now, ctx.district), me.language, out.now)
    put(me, digests, ctx.media_dir)


def make_router() -> Router:
    """A fresh router with this area's handlers (one per dispatcher)."""
    router = Router(name="stats")
    router.message.filter(F.chat.type == "private")
    router.message.register(stats_command, Command("stats"))
    router.message.register(digest_command, Command("digest"))
    return router
