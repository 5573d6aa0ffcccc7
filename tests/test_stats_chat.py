"""/stats and /export in the chat: a supervisor's figures and spreadsheet, refused to others.

The week of tests/casebook.py is in the database and the clock stands at Sunday 22 November,
23:59 local, so "today" is the day whose figures tests/test_kpi.py works out by hand.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from pathlib import Path

import pytest

from bot.figures.export import HEADER
from bot.i18n import t
from bot.telegram.handlers.exports import BadRange, parse_range
from tests.casebook import TZ, Casebook, chaowai_week
from tests.harness import Harness, grant, plain_text
from tgemu.emulator import Persona

SUPERVISOR, ADMIN, RESIDENT = 4001, 4002, 1001
LATE_SUNDAY = datetime(2026, 11, 22, 23, 59, tzinfo=TZ)


@pytest.fixture
async def h(h: Harness) -> Harness:
    """The running bot (tests/conftest.py), its clock at LATE_SUNDAY."""
    h.clock.set(LATE_SUNDAY)
    return h


async def week(h: Harness) -> Casebook:
    async with h.session() as session:
        book = await chaowai_week(session)
        await session.commit()
    return book


async def supervisor(h: Harness, lang: str = "zh-hans") -> Persona:
    await grant(h, SUPERVISOR, "supervisor", "chaowai", "street")
    person = h.emulator.user(SUPERVISOR, first_name="陈静", language_code=lang)
    await person.send_command("/start")
    await person.expect(contains="随拍即办")
    return person


async def test_stats_today_are_the_days_figures(h: Harness) -> None:
    await week(h)
    me = await supervisor(h)
    await me.send_command("/stats")
    answer = await me.expect(contains="朝外街道 · 今天")
    text = answer.text or ""
    assert "11月22日\n（箭头：与昨天相比）" in text
    assert "受理 5 件，重复报告 1 件；派单 5 件（自动 4，经分拣 1）" in text
    assert "响应率 83%（5/6）↑83个百分点" in text
    assert "解决率 75%（3/4）↑75个百分点" in text
    assert "满意率 67%（2/3）" in text
    assert "当前超期 2 件（其中未响应 1 件）" in text

    await me.send_command("/stats", "本月")
    month = await me.expect(contains="朝外街道 · 本月累计")
    assert "11月1日–11月22日" in (month.text or "")
    assert "受理 12 件" in (month.text or "")

    await me.send_command("/stats", "year")
    await me.expect(contains=plain_text("zh", "stats.usage"))


async def test_an_admin_sees_the_district_and_a_resident_is_refused(h: Harness) -> None:
    await week(h)
    await grant(h, ADMIN, "admin")
    admin = h.emulator.user(ADMIN, first_name="Admin", language_code="en")
    await admin.send_command("/stats", "week")
    answer = await admin.expect(contains="Chaoyang District, Beijing · Last 7 days")
    assert "16 Nov–22 Nov" in (answer.text or "")
    assert "(arrows: against the 7 days before)" in (answer.text or "")

    resident = h.emulator.user(RESIDENT, first_name="王芳", language_code="zh-hans")
    for command in ("/stats", "/export"):
        await resident.send_command(command)
    await resident.expect(contains=plain_text("zh", "stats.not_allowed"))
    await resident.expect(contains=plain_text("zh", "export.not_allowed"))


async def test_export_sends_a_csv_without_personal_data(h: Harness, media_dir: Path) -> None:
    book = await week(h)
    me = await supervisor(h)
    await me.send_command("/export", "2026-11-01 2026-11-30")
    doc = await me.expect(predicate=lambda m: m.method == "sendDocument")
    assert doc.document is not None and doc.document["file_name"].endswith(".csv")
    data = doc.document_bytes or b""
    assert data.startswith(b"\xef\xbb\xbf")  # UTF-8 with BOM: Excel reads the Chinese names
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert tuple(rows[0]) == HEADER
    on_chaowai = {c.number for c in book.cases.values() if c.street_id == "chaowai"}
    assert {row[0] for row in rows[1:]} == on_chaowai
    assert f"共 {len(on_chaowai)} 行" in (doc.caption or "")
    text = data.decode("utf-8-sig")
    for personal in ("13800000000", "朝外大街 1 号院", "王小明", "wangxm", "9001", "垃圾满溢"):
        assert personal not in text
    files = list((media_dir / "exports").iterdir())
    assert len(files) == 1 and files[0].suffix == ".csv"  # no partial file left behind

    # Without dates: this month so far, the same cases.
    await me.send_command("/export")
    again = await me.expect(predicate=lambda m: m.method == "sendDocument")
    assert "2026-11-01" in (again.caption or "") and "2026-11-22" in (again.caption or "")


async def test_export_explains_bad_dates(h: Harness) -> None:
    me = await supervisor(h, "en")
    reversed_ = plain_text("en", "export.reversed", start="2026-11-30", end="2026-11-01")
    cases = [
        ("22.11.2026", plain_text("en", "export.bad_date", value="22.11.2026")),
        ("2026-11-30 2026-11-01", reversed_),
        ("2025-01-01 2026-01-01", plain_text("en", "export.too_long")),
        ("a b c", plain_text("en", "export.usage")),
    ]  # fmt: skip
    for args, answer in cases:
        await me.send_command("/export", args)
        await me.expect(contains=answer)


def test_export_dates() -> None:
    today = date(2026, 11, 22)
    assert parse_range(None, today) == (date(2026, 11, 1), today)
    assert parse_range("2026-10-05", today) == (date(2026, 10, 5), today)
    assert parse_range("2025-11-23 2026-11-22", today) == (date(2025, 11, 23), today)  # a year
    with pytest.raises(BadRange) as refused:
        parse_range("2025-11-22 2026-11-22", today)  # a year and a day
    assert refused.value.key == "export.too_long"
    assert parse_range("2024-02-29 2025-02-28", today)[1] == date(2025, 2, 28)
    assert t("en", "export.too_long").startswith("At most one year")
