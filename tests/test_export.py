"""The CSV export: Excel-friendly, one row per case, local times, nobody's personal data."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator, Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

import bot.figures.export
from bot.__main__ import main
from bot.config import SAMPLE_DISTRICT_DIR, get_settings
from bot.domain.district import District, load_district
from bot.figures.export import BOM, HEADER, export_csv, stream_csv
from storage.db import make_engine, make_sessionmaker
from storage.models import Person
from tests.casebook import NOW, TZ, Casebook, chaowai_week
from tests.test_long_reads import HELD_S, Hold

FROM, TO = date(2026, 11, 20), date(2026, 11, 22)
PERSONAL = ("王小明", "wangxm", "9001", "李街长", "li_chief", "13800000000", "1 号院")


@pytest.fixture(scope="module")
def district() -> District:
    return load_district(SAMPLE_DISTRICT_DIR)


@pytest.fixture
async def week(database_url: str) -> AsyncIterator[tuple[AsyncSession, Casebook]]:
    engine = make_engine(database_url)
    async with make_sessionmaker(engine)() as session:
        book = await chaowai_week(session)
        await session.commit()
        yield session, book
    await engine.dispose()


def parse(data: bytes) -> dict[str, dict[str, str]]:
    """Rows by case number, each a dict by header."""
    assert data.startswith(BOM)
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    return {row["编号"]: row for row in rows}


async def test_one_row_per_case_with_local_times(
    week: tuple[AsyncSession, Casebook], district: District
) -> None:
    session, book = week
    data = await export_csv(session, district, start=FROM, end=TO, street_id="chaowai", tz=TZ)
    assert data.startswith(b"\xef\xbb\xbf")
    assert data.split(b"\r\n")[0].decode("utf-8-sig").split(",") == list(HEADER)
    rows = parse(data)
    # Reported 20–22 November on 朝外: all but D (18th), I (14th) and M (三里屯).
    assert set(rows) == {book.cases[k].number for k in "ABCEFGHJKLN"}
    n = {k: book.cases[k].number for k in book.cases}
    a = rows[n["A"]]
    assert (a["状态"], a["类别"], a["街道"], a["街巷"]) == (
        "已结案",
        "垃圾与环境卫生",
        "朝外街道",
        "朝阳门外大街",
    )
    assert (a["评价星级"], a["评价时间"], a["结案时间"]) == (
        "5",
        "2026-11-22 16:00:00",
        "2026-11-22 16:00:00",
    )
    # B: reported before midnight, accepted after, both in Beijing time.
    b = rows[n["B"]]
    assert (b["上报时间"], b["派单时间"], b["接单时间"]) == (
        "2026-11-21 23:50:00",
        "2026-11-21 23:50:00",
        "2026-11-22 00:10:00",
    )
    assert b["响应时限"] == "2026-11-22 23:50:00"
    # C: the fix that stands, the latest rating, one reopen.
    c = rows[n["C"]]
    assert (c["办结时间"], c["评价星级"], c["重开次数"], c["结案时间"]) == (
        "2026-11-22 18:00:00",
        "2",
        "1",
        "",
    )
    j, k = rows[n["J"]], rows[n["K"]]
    assert (j["部门"], j["派单时间"], j["接单时间"]) == (
        "环卫中心",
        "2026-11-22 08:00:00",
        "2026-11-22 09:00:00",
    )
    assert (k["吹哨时间"], k["报到时间"], k["部门"]) == (
        "2026-11-22 10:30:00",
        "2026-11-22 11:00:00",
        "城管执法队",
    )
    f = rows[n["F"]]
    assert (f["状态"], f["重复于"], f["派单时间"]) == ("重复报告", n["A"], "")


async def test_no_personal_data(week: tuple[AsyncSession, Casebook], district: District) -> None:
    session, _ = week
    data = await export_csv(session, district, start=FROM, end=TO, street_id=None, tz=TZ)
    text = data.decode("utf-8-sig")
    assert not [p for p in PERSONAL if p in text]
    for column in ("reporter", "name", "username", "telegram", "phone", "姓名", "电话", "上报人"):
        assert not [h for h in HEADER if column in h.lower()]


async def test_the_whole_district_in_small_chunks_is_the_same_file(
    week: tuple[AsyncSession, Casebook], district: District
) -> None:
    session, book = week
    whole = await export_csv(session, district, start=FROM, end=TO, street_id=None, tz=TZ)
    pieces = [
        p
        async for p in stream_csv(
            session, district, start=FROM, end=TO, street_id=None, tz=TZ, chunk=2
        )
    ]
    assert len(pieces) == 1 + 6  # header, then 12 cases two at a time
    assert b"".join(pieces) == whole
    assert book.cases["M"].number in parse(whole)
    empty = await export_csv(
        session, district, start=date(2026, 1, 1), end=date(2026, 1, 31), street_id=None, tz=TZ
    )
    assert parse(empty) == {}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)  # away from any .env in the checkout
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("DISTRICT_DIR", str(SAMPLE_DISTRICT_DIR))
    monkeypatch.setenv("TIMEZONE", "Asia/Shanghai")
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


async def test_the_export_command(
    env: Path, week: tuple[AsyncSession, Casebook], capsys: pytest.CaptureFixture[str]
) -> None:
    _, book = week
    out = env / "cases.csv"
    argv = ["export", "--from", "2026-11-20", "--to", "2026-11-22", "--street", "chaowai"]
    assert await _run([*argv, "--out", str(out)]) == 0
    assert len(parse(out.read_bytes())) == 11
    assert "wrote" in capsys.readouterr().err
    assert await _run([*argv[:-2], "--street", "nowhere", "--out", str(out)]) == 2
    assert "no street office 'nowhere'" in capsys.readouterr().err
    bad = ["export", "--from", "2026-11-22", "--to", "2026-11-20", "--out", str(env / "x.csv")]
    assert await _run(bad) == 2
    assert not (env / "x.csv").exists()
    assert book.cases["A"].number in parse(out.read_bytes())


async def test_the_export_command_lets_the_bot_write_meanwhile(
    env: Path,
    week: tuple[AsyncSession, Casebook],
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Held half-way through its reading, the export keeps no writer waiting (SQLite's lock)."""
    hold = Hold()
    monkeypatch.setattr(
        bot.figures.export, "stream_csv", hold.after_first_rows(bot.figures.export.stream_csv)
    )
    out = env / "cases.csv"
    argv = ["export", "--from", "2026-11-20", "--to", "2026-11-22", "--out", str(out)]
    export = asyncio.create_task(_run(argv))
    engine = make_engine(database_url)
    try:
        await asyncio.wait_for(hold.reached.wait(), HELD_S)
        async with make_sessionmaker(engine)() as session, session.begin():
            session.add(Person(telegram_id=777, created_at=NOW))
    finally:
        hold.released.set()
        await engine.dispose()
    assert await export == 0
    assert len(parse(out.read_bytes())) == 12


async def _run(argv: list[str]) -> int:
    """`main` runs the command's coroutine with asyncio.run; inside a test, await it instead."""
    from bot.__main__ import build_parser

    args = build_parser().parse_args(argv)
    return int(await args.func(args))


def test_a_bad_date_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["export", "--from", "22.11.2026", "--to", "2026-11-22", "--out", "x.csv"])
    assert "'22.11.2026' is not a date: write YYYY-MM-DD" in capsys.readouterr().err
