"""The catalogues: every key the code uses exists in both languages with the same placeholders."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from bot.domain.lifecycle import Event, State
from bot.i18n import LOCALES_DIR, Safe, language_from_telegram, t

ROOT = Path(__file__).resolve().parent.parent
KEY_CALL = re.compile(r"""(?:\bt|\.t|\.say|\bt)\(\s*(?:[\w.]+,\s*)?["']([a-z_]+\.[a-z_.]+)["']""")


def catalogue(locale: str) -> dict[str, str]:
    with (LOCALES_DIR / locale / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        return {m.id: m.string for m in read_po(fh) if m.id}


def fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def used_keys() -> set[str]:
    keys: set[str] = set()
    for path in (ROOT / "bot").rglob("*.py"):
        keys |= set(KEY_CALL.findall(path.read_text(encoding="utf-8")))
    return keys


def test_both_catalogues_have_the_same_keys_and_placeholders() -> None:
    zh, en = catalogue("zh_CN"), catalogue("en")
    assert set(zh) == set(en)
    for key in zh:
        assert zh[key] and en[key], f"{key} is untranslated"
        assert fields(zh[key]) == fields(en[key]), key


def test_every_key_the_code_uses_is_translated() -> None:
    zh = catalogue("zh_CN")
    keys = used_keys()
    assert len(keys) > 50  # the scan found the code's calls
    missing = sorted(k for k in keys if k not in zh)
    assert missing == []


@pytest.mark.parametrize("state", sorted(State), ids=str)
def test_every_state_has_a_name(state: str) -> None:
    assert f"state.{state}" in catalogue("en")


def test_user_text_is_escaped_unless_marked_safe() -> None:
    text = t("en", "case.not_found", number="<b>x</b> & y")
    assert "&lt;b&gt;x&lt;/b&gt; &amp; y" in text
    assert "<b>x</b>" in t("en", "case.event_note", note=Safe("<b>x</b>"))


@pytest.mark.parametrize(
    ("code", "lang"),
    [(None, "zh"), ("zh-hans", "zh"), ("zh-TW", "zh"), ("en", "en"), ("en-GB", "en"), ("ru", "en")],
)
def test_default_language_follows_telegram(code: str | None, lang: str) -> None:
    assert language_from_telegram(code) == lang


def test_every_timeline_event_has_a_name() -> None:
    """The timeline holds the lifecycle's events only: `record` takes an `Event`, and no call
    passes a bare string; each of them is named."""
    source = "".join(p.read_text(encoding="utf-8") for p in (ROOT / "bot").rglob("*.py"))
    calls = re.findall(r"\brecord\(\s*[\w.]+,\s*[\w.]+,\s*[\w.]+,\s*([^,]+),", source)
    assert len(calls) > 10  # the scan found the calls
    assert [c for c in calls if c.startswith(('"', "'"))] == []
    en = catalogue("en")
    assert sorted(e for e in Event if f"event.{e}" not in en) == []
