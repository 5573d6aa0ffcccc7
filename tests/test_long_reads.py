"""Long reads do not hold up residents: while an export, a digest or /stats is half-way through
its reading, a resident's report still goes through and commits.

Each test stops the read in the middle (after its queries ran, its transaction still open) and
lets a resident report meanwhile; on SQLite a transaction that held the write lock would keep
the resident waiting (for the 30 s busy timeout), so the report would not be confirmed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

import bot.figures.digest
import bot.figures.kpi
import bot.telegram.handlers.exports
from bot.i18n import t
from bot.jobs.scheduler import digests
from tests.casebook import NOW, chaowai_week
from tests.harness import Harness, grant, jpeg
from tests.test_handling_loop import first_lane

SUPERVISOR, RESIDENT = 4001, 1001
HELD_S = 30.0  # only a bound for a failing test; the read is held until released


class Hold:
    """Stops a read half-way until released; `reached` is set once it is waiting there."""

    def __init__(self) -> None:
        self.reached = asyncio.Event()
        self.released = asyncio.Event()

    async def here(self) -> None:
        self.reached.set()
        await self.released.wait()

    def after(self, real: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        """`real`, held after it returns (its transaction is still open then)."""

        async def held(*args: Any, **kwargs: Any) -> Any:
            result = await real(*args, **kwargs)
            await self.here()
            return result

        return held

    def after_first_rows(self, real: Callable[..., AsyncIterator[bytes]]) -> Callable[..., Any]:
        """An async generator of CSV pieces, held after the first piece with rows."""

        async def held(*args: Any, **kwargs: Any) -> AsyncIterator[bytes]:
            pieces = 0
            async for piece in real(*args, **kwargs):
                yield piece
                pieces += 1
                if pieces == 2:  # the header, then the first chunk: its queries have run
                    await self.here()

        return held


@pytest.fixture
async def h(h: Harness) -> Harness:
    """The running bot (tests/conftest.py) with the casebook's week in its database."""
    h.clock.set(NOW)  # Monday 08:00 local: Sunday's digest is due
    async with h.session() as session:
        await chaowai_week(session)
        await session.commit()
    return h


@asynccontextmanager
async def held(hold: Hold) -> AsyncIterator[None]:
    """Wait until the read is held; release it whatever happens next."""
    try:
        await asyncio.wait_for(hold.reached.wait(), HELD_S)
        yield
    finally:
        hold.released.set()


async def a_resident_reports(h: Harness) -> None:
    """A whole report, from the photo to the case number; fails if any answer does not come."""
    resident = h.emulator.user(RESIDENT, first_name="王芳", language_code="zh-hans")
    _lane, lat, lon = first_lane(h)
    await resident.send_photo(jpeg(), caption="胡同口堆物堆料，旧家具堵住了通道")
    await resident.send_location(lat, lon)
    await resident.expect(contains="照片：1 张")
    await resident.press(t("zh", "button.confirm"))
    await resident.expect(contains="CY-")
    assert [c for c in await h.cases() if c.description.startswith("胡同口堆物堆料")]


async def supervisor(h: Harness) -> Any:
    await grant(h, SUPERVISOR, "supervisor", "chaowai", "street")
    person = h.emulator.user(SUPERVISOR, first_name="陈静", language_code="zh-hans")
    await person.send_command("/start")
    await person.expect(contains="随拍即办")
    return person


async def test_a_report_commits_while_an_export_is_being_read(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    me = await supervisor(h)
    on_chaowai = len([c for c in await h.cases() if c.street_id == "chaowai"])
    hold = Hold()
    stream = hold.after_first_rows(bot.telegram.handlers.exports.stream_csv)
    monkeypatch.setattr(bot.telegram.handlers.exports, "stream_csv", stream)
    await me.send_command("/export", "2026-11-01 2026-11-30")
    async with held(hold):
        await a_resident_reports(h)
    doc = await me.expect(predicate=lambda m: m.method == "sendDocument")
    assert f"共 {on_chaowai} 行" in (doc.caption or "")


@pytest.mark.parametrize("command", ["/digest", "/stats"])
async def test_a_report_commits_while_figures_are_being_read(
    h: Harness, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    me = await supervisor(h)
    hold = Hold()
    if command == "/digest":
        build = hold.after(bot.figures.digest.build_digest)
        monkeypatch.setattr(bot.figures.digest, "build_digest", build)
    else:
        monkeypatch.setattr(bot.figures.kpi, "rates", hold.after(bot.figures.kpi.rates))
    await me.send_command(command)
    async with held(hold):
        await a_resident_reports(h)
    await me.expect(contains="朝外街道")


async def test_a_report_commits_while_the_daily_digest_is_being_built(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    me = await supervisor(h)
    hold = Hold()
    monkeypatch.setattr(
        bot.figures.digest, "build_digest", hold.after(bot.figures.digest.build_digest)
    )
    job = asyncio.create_task(digests(h.ctx))
    async with held(hold):
        await a_resident_reports(h)
    assert await job == 1
    await me.expect(predicate=lambda m: m.method == "sendPhoto")
