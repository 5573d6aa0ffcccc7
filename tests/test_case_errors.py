"""One way from a refused step (`CaseError`) to the words its person reads."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.domain.cases import CaseError
from bot.i18n import t
from bot.telegram.errors import case_error_text

ROOT = Path(__file__).resolve().parent.parent


class Reader:
    def __init__(self, language: str) -> None:
        self.language = language

    def t(self, key: str, /, **params: object) -> str:
        return t(self.language, key, **params)


@pytest.mark.parametrize(("lang", "text"), [("en", "At most 5 photos."), ("zh", "最多 5 张照片。")])
def test_the_refusal_is_told_with_its_details(lang: str, text: str) -> None:
    assert case_error_text(CaseError("too_many_photos", limit=5), Reader(lang)) == text


def test_a_state_refusal_ignores_details_it_does_not_show() -> None:
    exc = CaseError("wrong_state", state="closed", action="accept")
    assert case_error_text(exc, Reader("en")) == t("en", "error.wrong_state")


def test_no_handler_words_a_refusal_itself() -> None:
    """The catalogue's `error.<code>` is looked up in bot/telegram/errors.py alone."""
    found = [
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "bot").rglob("*.py")
        if re.search(r"""["']error\.\{""", path.read_text(encoding="utf-8"))
    ]
    assert found == ["bot/telegram/errors.py"]
