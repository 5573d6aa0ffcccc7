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
from bot.figures.kpi import Period

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


def test_settings_follow_the_district_file(urumqi: Path) -> None:
    settings = Settings(_env_file=None, district_dir=urumqi)
    district = load_district(urumqi)
    assert settings.tz == district.tz == URUMQI
    assert Settings(_env_file=None).tz == load_district(SAMPLE_DISTRICT_DIR).tz
    # 23:30 in Urumqi is 01:30 the next day in Beijing: numbers, cards and KPI days agree.
    late = datetime(2026, 11, 22, 17, 30, tzinfo=UTC)
    assert late.astimezone(settings.tz).strftime("%Y%m%d") == "20261122"
    lo, hi = Period.day(date(2026, 11, 22), district.tz).bounds()
    assert lo <= late < hi


def test_a_timezone_setting_must_agree_with_the_district(urumqi: Path) -> None:
    assert Settings(_env_file=None, district_dir=urumqi, timezone="Asia/Urumqi").tz == URUMQI
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
