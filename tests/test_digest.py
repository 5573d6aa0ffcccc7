"""The daily digest of 朝外 for Sunday 22 November: its words in both languages and its chart."""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import SAMPLE_DISTRICT_DIR
from bot.domain.district import District, load_district
from bot.figures import charts
from bot.figures.digest import build_digest
from bot.figures.kpi import Rate, TrendPoint
from storage.db import make_engine, make_sessionmaker
from tests.casebook import DAY, NOW, Casebook, at, chaowai_week
from tests.cjk_fonts import EACH, found_as


@pytest.fixture(**EACH)
def cjk_font(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each font the bot knows how to find, in turn, as the one the chart is drawn with."""
    return found_as(request.param, monkeypatch)


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


async def test_the_digest_in_chinese(
    week: tuple[AsyncSession, Casebook], district: District
) -> None:
    session, book = week
    digest = await build_digest(session, district, "chaowai", day=DAY, now=NOW, lang="zh")
    text = digest.text
    assert text.startswith("<b>朝外街道 · 随拍即办日报</b>\n2026年11月22日")
    day, month = text.split("<b>本月累计</b>")[0], text.split("<b>本月累计</b>")[1]
    assert "受理 5 件，重复报告 1 件；派单 5 件（自动 4，经分拣 1）" in day
    # Saturday answered 0 of 1 and fixed 0 of 1 in time; nobody rated on Saturday.
    assert "响应率 83%（5/6）↑83个百分点" in day
    assert "解决率 75%（3/4）↑75个百分点" in day
    assert "满意率 67%（2/3）\n" in day
    assert "办结 4 件，重开 1 件，退回 1 件，超时未评价结案 1 件" in day
    assert "接单用时中位数 1小时0分，办结用时中位数 13小时5分" in day
    assert "11月1日–11月22日" in month
    assert "受理 12 件" in month
    assert "<b>当前超期 2 件</b>" in text
    g, i = book.cases["G"].number, book.cases["I"].number
    assert f"1. {g} · 东大桥路 · 超过接单时限 2天0小时" in text
    assert f"2. {i} · 雅宝路 · 超过办结时限 1天21小时" in text
    assert "街巷：案件太少，暂不排名" in text
    hotspot = re.search(r"· 朝阳门外大街附近：3 次，垃圾与环境卫生（(.+)）", text)
    assert hotspot is not None
    assert set(hotspot.group(1).split(", ")) == {book.cases[k].number for k in "ABF"}
    assert set(re.findall(r"</?(\w+)", text)) == {"b"}  # only tags Telegram's HTML knows


async def test_the_digest_in_english(
    week: tuple[AsyncSession, Casebook], district: District
) -> None:
    session, book = week
    digest = await build_digest(session, district, "chaowai", day=DAY, now=NOW, lang="en")
    text = digest.text
    assert text.startswith("<b>Chaowai Subdistrict · Suipai daily digest</b>\n22 Nov 2026")
    assert "Received 5, repeat reports 1; dispatched 5 (4 automatically, 1 via triage)" in text
    assert "Response rate 83% (5/6) ↑83 pts" in text
    assert "Resolution rate 75% (3/4) ↑75 pts" in text
    assert "Satisfaction rate 67% (2/3)\n" in text
    assert "Median time to accept 1 h 0 min, to resolve 13 h 5 min" in text
    assert f"{book.cases['G'].number} · Dongdaqiao Road · 2 d 0 h past the response" in text
    assert "near Chaoyangmenwai Street: 3 reports, Litter and sanitation" in text
    assert (digest.the_day.received, digest.month.received) == (5, 12)


async def test_the_district_digest_covers_every_street(
    week: tuple[AsyncSession, Casebook], district: District
) -> None:
    session, _ = week
    digest = await build_digest(session, district, None, day=DAY, now=NOW, lang="zh")
    assert digest.text.startswith("<b>北京市朝阳区 · 随拍即办日报</b>")
    assert "受理 6 件" in digest.text
    assert "响应率 86%（6/7）" in digest.text


async def test_best_and_worst_lanes(
    week: tuple[AsyncSession, Casebook], district: District
) -> None:
    session, book = week
    for day in (18, 19, 20):  # CW-006 answers in time; CW-007 never answers
        await book.case(
            f"good{day}",
            at(day, 9),
            state="accepted",
            lane="CW-006",
            steps=[("accepted", at(day, 10), {"within_limit": True})],
        )
        await book.case(f"bad{day}", at(day, 9), state="dispatched", lane="CW-007")
    await session.commit()
    digest = await build_digest(session, district, "chaowai", day=DAY, now=NOW, lang="zh")
    good, bad = district.lanes["CW-006"].name_zh, district.lanes["CW-007"].name_zh
    assert f"街巷 最好：{good}（100分）；最差：{bad}（0分）" in digest.text
    assert [r.key for r in digest.lanes.best] == ["CW-006"]


async def test_the_chart_is_a_phone_sized_png(
    week: tuple[AsyncSession, Casebook], district: District, cjk_font: Path
) -> None:
    session, _ = week
    digest = await build_digest(session, district, "chaowai", day=DAY, now=NOW, lang="zh")
    image = Image.open(io.BytesIO(digest.chart_png))
    assert (image.format, image.size) == ("PNG", (1080, 1350))
    assert [p.day for p in digest.trend] == [DAY - timedelta(days=13 - i) for i in range(14)]
    # Not blank: the bars of the last day are drawn in the received colour.
    assert (0x4C, 0x78, 0xA8) in {c for _, c in image.convert("RGB").getcolors(1 << 16) or []}


def test_the_charts_words_sit_level_with_what_they_name(cjk_font: Path) -> None:
    """The legend's words level with their colour swatches, the scale's numbers with their
    gridlines, whatever the font (fonts' own ascents differ by a fifth)."""
    points = [
        TrendPoint(
            DAY - timedelta(days=13 - i), i % 5, i % 3, Rate(i % 4, 4), Rate(1, 2), Rate(2, 3)
        )
        for i in range(14)
    ]
    words = charts.ChartText(
        title="朝外街道 · 近14天",
        counts="每日受理与办结（件）",
        rates="三率（%）",
        received="受理",
        resolved="办结",
        response="响应率",
        resolution="解决率",
        satisfaction="满意率",
    )
    rgb = np.asarray(Image.open(io.BytesIO(charts.trend_png(points, words, words)))).astype(int)
    ink = rgb.sum(axis=2) < 3 * 160  # text, dark on white

    swatch = np.flatnonzero((rgb[190:330, 64:94] == (0x4C, 0x78, 0xA8)).all(axis=2).any(axis=1))
    level = 190 + (swatch.min() + swatch.max()) / 2
    assert abs(_middle(ink[:, 106:170], level) - level) <= 3, "legend"

    # The gridlines, in a column clear of bars and lines, and each one's number left of it.
    grid = np.flatnonzero(
        (rgb[:, 1010] == (0xD8, 0xDE, 0xE4)).all(axis=1)
        | (rgb[:, 1010] == (0x59, 0x63, 0x6E)).all(axis=1)
    )
    lines = [
        (run[0] + run[-1]) / 2 for run in np.split(grid, np.flatnonzero(np.diff(grid) > 1) + 1)
    ]
    assert len(lines) >= 8  # both panels
    for line in lines:
        assert abs(_middle(ink[:, 40:122], line) - line) <= 3, f"the number of the line at {line}"


def _middle(ink: np.ndarray, near: float) -> float:
    """The middle of the ink within 25 rows of `near`."""
    top = round(near) - 25
    rows = np.flatnonzero(ink[top : top + 51].any(axis=1))
    assert rows.size, f"no text near row {near}"
    return float(top + (rows.min() + rows.max()) / 2)


async def test_without_a_chinese_font_the_chart_speaks_latin(
    week: tuple[AsyncSession, Casebook], district: District, monkeypatch: pytest.MonkeyPatch
) -> None:
    session, _ = week
    drawn: list[str] = []
    original = ImageDraw.ImageDraw.text

    def spy(self: ImageDraw.ImageDraw, xy: object, text: str, *args: object, **kw: object) -> None:
        drawn.append(text)
        original(self, xy, text, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(charts, "_cjk_font", lambda: None)
    monkeypatch.setattr(ImageDraw.ImageDraw, "text", spy)
    digest = await build_digest(session, district, "chaowai", day=DAY, now=NOW, lang="zh")
    assert Image.open(io.BytesIO(digest.chart_png)).size == (1080, 1350)
    assert "Chaowai Subdistrict · last 14 days" in drawn
    assert "Received" in drawn
    assert not [s for s in drawn if re.search(r"[\u3000-\u9fff\uff00-\uffef]", s)]
    assert "响应率" in digest.text  # the message itself stays Chinese


async def test_many_hotspots_are_cut_short(
    week: tuple[AsyncSession, Casebook], district: District
) -> None:
    session, book = week
    for place in range(6):  # six more places, 300 m apart, three reports each
        for n in range(3):
            await book.case(
                f"spot{place}-{n}",
                at(21, 10 + n),
                state="submitted",
                lane=None,
                routed=False,
                lat=39.9150 + place * 0.003,
                lon=116.4500 + n * 0.0001,
            )
    await session.commit()
    digest = await build_digest(session, district, "chaowai", day=DAY, now=NOW, lang="zh")
    assert len(digest.hotspots) == 7
    assert digest.text.count("\n· ") == 5
    assert digest.text.endswith("……另有 2 处热点")
    assert "39.91500, 116.45010：3 次" in digest.text  # no lane: the place's coordinates
    assert len(digest.text) < 4096  # one Telegram message
