"""One time zone: the district file's. Settings and the loaded district cannot disagree."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from bot.config import SAMPLE_DISTRICT_DIR, Settings, describe_error
from bot.domain.district import load_district
from bot.domain.localtime import district_timezone
from bot.figures.kpi import Period
from bot.i18n import t
from tests.harness import jpeg, plain_text, running_bot

URUMQI = ZoneInfo("Asia/Urumqi")  # UTC+6, two hours behind Beijing


@pytest.fixture
def urumqi(tmp_path: Path) -> Path:
    """The sample district, its clocks set to Urumqi time."""
    folder = tmp_path / "district"
    shutil.copytree(SAMPLE_DISTRICT_DIR, folder)
    toml = folder / "district.toml"
    text = toml.read_text(encoding="utf-8")
    assert 'timezone = "Asia/Shanghai"' in text
    toml.write_text(text.replace('"Asia/Shanghai"', '"Asia/Urumqi"'), encoding="utf-8")
    return folder


def test_the_file_and_the_loaded_district_agree(urumqi: Path) -> None:
    district = load_district(urumqi)
    assert district_timezone(urumqi) == district.tz == URUMQI
    assert district_timezone(SAMPLE_DISTRICT_DIR) == load_district(SAMPLE_DISTRICT_DIR).tz
    # 23:30 in Urumqi is 01:30 the next day in Beijing: numbers, cards and KPI days agree.
    late = datetime(2026, 11, 22, 17, 30, tzinfo=UTC)
    assert late.astimezone(district.tz).strftime("%Y%m%d") == "20261122"
    lo, hi = Period.day(date(2026, 11, 22), district.tz).bounds()
    assert lo <= late < hi


async def test_the_running_bot_keeps_to_the_zone_of_the_district_it_loaded(
    urumqi: Path, database_url: str, media_dir: Path
) -> None:
    """Like its lanes and categories, the district's zone changes when the bot restarts. With
    the file edited while it ran, a case's times in the chat and on cards followed the new zone
    (settings.tz read the file again) while its number, deadlines and figures kept the loaded
    one."""
    async with running_bot(database_url, media_dir, district_dir=urumqi) as h:
        h.clock.set(datetime(2026, 11, 22, 17, 30, tzinfo=UTC))  # 23:30 in Urumqi
        toml = urumqi / "district.toml"
        text = toml.read_text(encoding="utf-8")
        toml.write_text(text.replace('"Asia/Urumqi"', '"Asia/Shanghai"'), encoding="utf-8")
        assert h.district.tz == URUMQI and district_timezone(urumqi).key == "Asia/Shanghai"

        resident = h.emulator.user(1001, first_name="王芳", language_code="zh-hans")
        await resident.send_photo(jpeg(), caption="雅宝路井盖缺失，很危险")
        await resident.expect(contains=plain_text("zh", "report.ask_location"))
        lane = sorted(h.district.lanes.values(), key=lambda lane: lane.id)[0]
        await resident.press(t("zh", "button.send_location"), location=lane.representative_point)
        await resident.expect(contains="雅宝路井盖缺失")
        await resident.press(t("zh", "button.confirm"))
        await resident.expect(contains="CY-20261122-0001")  # the 22nd in Urumqi, not Beijing's 23rd
        await resident.send_command("/case", "CY-20261122-0001")
        detail = await resident.expect(contains="案件 CY-20261122-0001\n状态")
        assert "2026-11-22 23:30" in (detail.text or "")


def test_a_timezone_setting_must_agree_with_the_district(urumqi: Path) -> None:
    settings = Settings(_env_file=None, district_dir=urumqi, timezone="Asia/Urumqi")
    assert settings.timezone == "Asia/Urumqi"
    with pytest.raises(ValidationError) as refused:
        Settings(_env_file=None, district_dir=urumqi, timezone="Asia/Shanghai")
    line = describe_error(refused.value)
    assert line.startswith("Setting TIMEZONE is invalid: the district's time zone is Asia/Urumqi")


def test_digest_time() -> None:
    assert Settings(_env_file=None).digest_time == time(8, 0)
    assert Settings(_env_file=None, digest_time="7:30").digest_time == time(7, 30)
    for wrong in ("24:00", "8", "08:00:00"):
        with pytest.raises(ValidationError) as refused:
            Settings(_env_file=None, digest_time=wrong)
        assert "Setting DIGEST_TIME is invalid" in describe_error(refused.value)
