"""A reopened case's fresh window to be fixed in, decided in the domain, not in the handler."""

from __future__ import annotations

from datetime import timedelta

from bot.config import SAMPLE_DISTRICT_DIR
from bot.domain import handling, sla
from bot.domain.district import load_district
from storage.models import Case


def test_a_reopened_case_gets_its_categorys_time_or_else_the_rating_window() -> None:
    district = load_district(SAMPLE_DISTRICT_DIR)
    for category in district.categories.values():
        window = handling.reopen_window(district, Case(category_id=category.id))
        assert window == timedelta(hours=category.resolve_hours)
    assert handling.reopen_window(district, Case(category_id=None)) == sla.RATING_WINDOW
    assert timedelta(hours=72) == sla.RATING_WINDOW  # as rating.py wrote it out before
