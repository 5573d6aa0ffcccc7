"""Street signs: the PNG's size, its QR code decoded back to the lane's link, the CLI."""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from operator import attrgetter
from pathlib import Path

import numpy as np
import pytest
import zxingcpp
from babel.messages.pofile import read_po
from PIL import Image

from bot.__main__ import main
from bot.cli.signs import _Refused, bot_username
from bot.config import SAMPLE_DISTRICT_DIR, Settings, get_settings
from bot.domain.district import District, Lane, load_district
from bot.domain.people import grant
from bot.figures import fonts, signs
from bot.i18n import LOCALES_DIR
from storage.db import make_engine, make_sessionmaker
from storage.migrate import upgrade
from tests.cjk_fonts import EACH, any_font, font_of, found_as
from tgemu.emulator import TelegramEmulator

NOW = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(**EACH)
def cjk_font(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each font the bot knows how to find, in turn, as the one it finds."""
    return found_as(request.param, monkeypatch)


@pytest.fixture
def any_cjk_font() -> Path:
    return any_font()


@pytest.fixture(scope="module")
def district() -> District:
    return load_district(SAMPLE_DISTRICT_DIR)


@pytest.fixture
def clean_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """Settings from the environment only: no token, no username, a database in tmp_path."""
    monkeypatch.chdir(tmp_path)  # away from any .env in the checkout
    db = tmp_path / "suipai.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{db}")
    monkeypatch.setenv("DISTRICT_DIR", str(SAMPLE_DISTRICT_DIR))
    for key in ("BOT_TOKEN", "BOT_USERNAME"):
        monkeypatch.setenv(key, "")
    get_settings.cache_clear()
    yield db
    get_settings.cache_clear()


def decode(png: bytes) -> list[zxingcpp.Barcode]:
    image = Image.open(io.BytesIO(png))
    return list(zxingcpp.read_barcodes(image.convert("L")))


# --------------------------------------------------------------------------- the sign


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_sign_is_a4_with_a_large_qr_code_of_the_lanes_link(
    district: District, cjk_font: Path, lang: str
) -> None:
    lane = district.lanes["CW-009"]
    png = signs.render_sign(lane, district, bot_username="@SuipaiDemo_bot", lang=lang)

    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    assert image.size == (2480, 3508)  # A4 at 300 dpi
    assert image.info["dpi"] == pytest.approx((300, 300), abs=0.1)
    codes = decode(png)
    assert [c.text for c in codes] == ["https://t.me/SuipaiDemo_bot?start=lane_CW-009"]
    assert codes[0].format == zxingcpp.BarcodeFormat.QRCode
    assert codes[0].ec_level in {"M", "Q"}
    pos = codes[0].position
    side = pos.top_right.x - pos.top_left.x
    assert side > 0.3 * image.width, "the QR code is too small to scan from a step away"
    centre = (pos.top_left.x + pos.top_right.x) / 2
    assert abs(centre - image.width / 2) < image.width * 0.01


def test_the_qr_code_is_the_same_whatever_the_font_and_the_names(district: District) -> None:
    """Laid out before any text: the same size at the same place with every font, in both
    languages, and with names long enough to crowd the page (the text shrinks instead)."""
    paths = []
    for family in fonts.FAMILIES:
        try:
            paths.append(font_of(family))
        except pytest.skip.Exception:
            continue
    if len(paths) < 2:
        pytest.skip("fewer than two of the known CJK fonts could be installed")
    lanes = [district.lanes["CW-009"], _long_named(district.lanes["CW-009"])]
    where = {
        (path.name, lang, lane.name_en): _qr_corners(
            signs.render_sign(
                lane,
                district,
                bot_username="SuipaiDemo_bot",
                lang=lang,
                font_path=path,
                dpi=signs.MIN_DPI,
            )
        )
        for path in paths
        for lang in ("zh", "en")
        for lane in lanes
    }
    assert len(set(where.values())) == 1, where


def _qr_corners(png: bytes) -> tuple[tuple[int, int], ...]:
    [code] = decode(png)
    p = code.position
    return tuple((c.x, c.y) for c in (p.top_left, p.top_right, p.bottom_right, p.bottom_left))


def _long_named(lane: Lane) -> Lane:
    return replace(
        lane,
        name_zh="朝阳门外大街东大桥路口至神路街南口段辅路及周边胡同",
        name_en="Chaoyangmenwai Street service road from Dongdaqiao Road to Shenlu Street",
    )


def test_the_longest_lane_names_fit_the_page(district: District, cjk_font: Path) -> None:
    """Nothing is drawn in the side margins below the header band: no text overflows."""
    for lang, name in (("zh", attrgetter("name_zh")), ("en", attrgetter("name_en"))):
        longest = sorted(district.lanes.values(), key=lambda lane: -len(name(lane)))[:4]
        for lane in longest:
            png = signs.render_sign(
                lane, district, bot_username="a" * 32, lang=lang, dpi=signs.MIN_DPI
            )
            _assert_margins_clear(png, f"{lane.id} ({lang})")


def test_long_names_wrap_and_the_code_still_reads(district: District, cjk_font: Path) -> None:
    lane = _long_named(district.lanes["CW-009"])
    for lang in ("zh", "en"):
        png = signs.render_sign(
            lane,
            district,
            bot_username="chaoyang_street_reports_bot",
            chief_name="欧阳娜娜、阿卜杜热西提·买买提",
            chief_role_text="街巷长（朝外街道城市管理办公室副主任）",
            lang=lang,
        )
        _assert_margins_clear(png, lang)
        [code] = decode(png)
        assert code.text == "https://t.me/chaoyang_street_reports_bot?start=lane_CW-009"
        side = code.position.top_right.x - code.position.top_left.x
        assert side > 0.3 * 2480, "long names made the QR code smaller"


def test_the_chiefs_name_changes_the_sign_and_only_when_given(
    district: District, cjk_font: Path
) -> None:
    lane = district.lanes["CW-009"]
    role_only = signs.render_sign(lane, district, bot_username="SuipaiDemo_bot", dpi=150)
    named = signs.render_sign(
        lane, district, bot_username="SuipaiDemo_bot", chief_name="张三", dpi=150
    )
    blank = signs.render_sign(
        lane, district, bot_username="SuipaiDemo_bot", chief_name="  ", dpi=150
    )
    assert named != role_only
    assert blank == role_only


def _assert_margins_clear(png: bytes, what: str) -> None:
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("L"))
    height, width = pixels.shape
    margin = round(170 * width / 2480) - 2
    band_end = int(np.argmax(pixels[:, 2] > 250))  # the first white row under the band
    assert 0 < band_end < height // 4
    sides = np.hstack((pixels[band_end:, :margin], pixels[band_end:, width - margin :]))
    assert sides.min() > 250, f"{what}: something is drawn in the side margins"


def test_no_cjk_font_is_one_clear_line(district: District, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fonts, "find_cjk_font", lambda: None)
    with pytest.raises(fonts.FontMissing) as caught:
        signs.render_sign(district.lanes["CW-009"], district, bot_username="SuipaiDemo_bot")
    message = str(caught.value)
    assert "\n" not in message
    assert f"apt-get install {fonts.APT_PACKAGE}" in message


def test_the_found_font_draws_chinese_and_latin(cjk_font: Path) -> None:
    assert fonts.draws(cjk_font, "芳草地北巷 Fangcaodi North Lane 扫码随手拍")
    assert not fonts.draws(cjk_font, "\U0010fffd")


@pytest.mark.parametrize(
    "name", ["", "ab", "1abcde", "has space_bot", "a" * 33, "https://t.me/x_bot", "bot-name"]
)
def test_bad_bot_usernames_are_refused(name: str) -> None:
    with pytest.raises(signs.SignError):
        signs.deep_link(name, "CW-009")


def test_deep_link() -> None:
    assert signs.deep_link("@Suipai_bot", "SLT-003") == "https://t.me/Suipai_bot?start=lane_SLT-003"


# --------------------------------------------------------------------------- wrapping


def test_wrapping_keeps_words_whole_and_punctuation_off_line_starts() -> None:
    def measure(text: str) -> float:
        return float(len(text))

    lines = signs.wrap("Visits shops, offices and residents for their views", measure, 16)
    assert lines == ["Visits shops,", "offices and", "residents for", "their views"]
    lines = signs.wrap("常态化巡查，及时解决问题", measure, 5)
    assert all(len(line) <= 6 for line in lines)
    assert not any(line[0] in "，。、；：" for line in lines)
    assert "".join(lines) == "常态化巡查，及时解决问题"
    balanced = signs.balanced_wrap("朝阳门外大街东大桥路口", measure, 10)
    assert [len(line) for line in balanced] == [6, 5]


def test_sign_texts_are_in_both_catalogues() -> None:
    source = Path(signs.__file__).read_text(encoding="utf-8")
    keys = set(re.findall(r'plain\(\s*lang,\s*"(sign\.[a-z_.]+)"', source))
    keys |= {f"sign.duty.{d}" for d in signs.DUTIES} | {f"sign.duty.{d}_text" for d in signs.DUTIES}
    assert len(keys) > 15
    for locale in ("zh_CN", "en"):
        with (LOCALES_DIR / locale / "LC_MESSAGES" / "messages.po").open("rb") as fh:
            present = {m.id for m in read_po(fh) if m.id and m.string}
        assert sorted(keys - present) == [], locale


# --------------------------------------------------------------------------- the chiefs


async def test_lane_chiefs_come_from_the_roles(database_url: str) -> None:
    district = load_district(SAMPLE_DISTRICT_DIR)
    engine = make_engine(database_url)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            for tid, lane, name in [
                (1, "CW-009", "张三"),
                (2, "CW-009", "李四"),
                (3, "CW-010", None),
                (4, "CW-011", "王五"),
            ]:
                await grant(
                    session,
                    district,
                    telegram_id=tid,
                    role="chief",
                    scope=lane,
                    kind="lane",
                    name=name,
                    now=NOW,
                )
            await grant(
                session,
                district,
                telegram_id=5,
                role="supervisor",
                scope="chaowai",
                kind="street",
                name="赵六",
                now=NOW,
            )
        async with make_sessionmaker(engine)() as session:
            chiefs = await signs.lane_chiefs(session, ["CW-009", "CW-010", "CW-012"])
    finally:
        await engine.dispose()
    assert chiefs == {"CW-009": ["张三", "李四"]}
    assert signs.join_names(chiefs["CW-009"], "zh") == "张三、李四"
    assert signs.join_names(chiefs["CW-009"], "en") == "张三, 李四"
    assert signs.join_names([], "zh") is None


# --------------------------------------------------------------------------- the bot's username


async def test_username_is_asked_from_telegram_when_not_given() -> None:
    emulator = TelegramEmulator(bot_username="chaoyang_snap_bot")
    url = await emulator.start()
    try:
        settings = Settings(_env_file=None, bot_token="123456:TEST", telegram_api_url=url)
        assert await bot_username(None, settings) == "chaoyang_snap_bot"
        given = Settings(_env_file=None, bot_token="123456:TEST", bot_username="@from_env_bot")
        assert await bot_username(None, given) == "from_env_bot"
        assert await bot_username("@from_flag_bot", given) == "from_flag_bot"
    finally:
        await emulator.stop()


async def test_no_username_and_no_token_is_a_clear_error() -> None:
    with pytest.raises(_Refused) as caught:
        await bot_username(None, Settings(_env_file=None))
    assert caught.value.code == 2
    assert "--bot-username" in str(caught.value)
    assert "BOT_USERNAME" in str(caught.value)


# --------------------------------------------------------------------------- the command


def test_cli_all_writes_one_sign_per_lane(
    clean_settings: Path, any_cjk_font: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    district = load_district(SAMPLE_DISTRICT_DIR)
    asyncio.run(_chief_on_record(f"sqlite+aiosqlite:///{clean_settings}", district))
    out = tmp_path / "signs"

    code = main(
        ["signs", "--all", "--out", str(out), "--bot-username", "SuipaiDemo_bot", "--dpi", "150"]
    )

    assert code == 0
    written = sorted(p.name for p in out.iterdir())
    assert written == sorted(f"{lane_id}.png" for lane_id in district.lanes)
    err = capsys.readouterr().err
    assert f"{len(district.lanes)} sign(s)" in err
    assert "1 naming their chief" in err
    with Image.open(out / "SLT-001.png") as image:
        assert image.size == (1240, 1754)
    assert [c.text for c in decode((out / "SLT-001.png").read_bytes())] == [
        "https://t.me/SuipaiDemo_bot?start=lane_SLT-001"
    ]


async def _chief_on_record(url: str, district: District) -> None:
    await upgrade(url)
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            await grant(
                session,
                district,
                telegram_id=7,
                role="chief",
                scope="CW-001",
                kind="lane",
                name="张三",
                now=NOW,
            )
    finally:
        await engine.dispose()


def test_cli_one_lane_with_username_from_the_settings(
    clean_settings: Path,
    any_cjk_font: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("BOT_USERNAME", "chaoyang_snap_bot")
    out = tmp_path / "one"
    assert main(["signs", "--lane", "CW-013", "--out", str(out), "--lang", "en"]) == 0
    assert [p.name for p in out.iterdir()] == ["CW-013.png"]
    assert not clean_settings.exists(), "no database was created just to look for chiefs"
    assert "no database" in capsys.readouterr().err
    assert [c.text for c in decode((out / "CW-013.png").read_bytes())] == [
        "https://t.me/chaoyang_snap_bot?start=lane_CW-013"
    ]


def test_cli_unknown_lane_is_exit_code_2(
    clean_settings: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "none"
    code = main(["signs", "--lane", "XX-999", "--out", str(out), "--bot-username", "a_bot1"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: no lane 'XX-999'")
    assert len(err.splitlines()) == 1
    assert not out.exists()


def test_cli_without_username_or_token_is_exit_code_2(
    clean_settings: Path, any_cjk_font: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["signs", "--lane", "CW-001", "--out", str(tmp_path / "x")]) == 2
    assert "BOT_USERNAME" in capsys.readouterr().err


def test_cli_without_a_font_names_the_package(
    clean_settings: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(fonts, "find_cjk_font", lambda: None)
    args = ["signs", "--lane", "CW-001", "--out", str(tmp_path / "x"), "--bot-username", "a_bot1"]
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert fonts.APT_PACKAGE in err


def test_cli_lane_and_all_are_exclusive(clean_settings: Path, tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["signs", "--lane", "CW-001", "--all", "--out", str(tmp_path)])
    assert caught.value.code == 2
