"""Translations: gettext catalogues under bot/locales (zh_CN default, en), looked up by key.

Messages are rendered for their recipient, who is often not the person whose update caused
them (a chief's card, a resident's progress note), so the language is always passed explicitly.
"""

from __future__ import annotations

import gettext
import html
import io
from functools import cache
from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from bot.domain.text import isolated

LOCALES_DIR = Path(__file__).resolve().parent / "locales"
DOMAIN = "messages"
LANGUAGES = ("zh", "en")
DEFAULT_LANGUAGE = "zh"
_LOCALE_OF = {"zh": "zh_CN", "en": "en"}


class Safe(str):
    """Text already in Telegram HTML; passed into a message without escaping."""


def language_from_telegram(code: str | None) -> str:
    """The default language for a new person: Chinese for zh-*, English for other languages."""
    if not code:
        return DEFAULT_LANGUAGE
    return "zh" if code.lower().startswith("zh") else "en"


def normalise_language(lang: str | None) -> str:
    return lang if lang in LANGUAGES else DEFAULT_LANGUAGE


@cache
def _catalogue(lang: str) -> gettext.NullTranslations:
    folder = LOCALES_DIR / _LOCALE_OF[lang] / "LC_MESSAGES"
    mo = folder / f"{DOMAIN}.mo"
    po = folder / f"{DOMAIN}.po"
    if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
        with mo.open("rb") as fh:
            return gettext.GNUTranslations(fh)
    # A checkout that has not run `make catalogs` yet: compile the .po in memory.
    with po.open("rb") as fh:
        catalog = read_po(fh, locale=_LOCALE_OF[lang])
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return gettext.GNUTranslations(buf)


def has_key(lang: str, key: str) -> bool:
    return _catalogue(normalise_language(lang)).gettext(key) != key


def t(lang: str | None, key: str, /, **params: Any) -> str:
    """The text for `key` in `lang`, with `{name}` fields filled in, user values HTML-escaped."""
    text = _catalogue(normalise_language(lang)).gettext(key)
    if not params:
        return text
    return text.format_map({k: _escaped(v) for k, v in params.items()})


def plain(lang: str | None, key: str, /, **params: Any) -> str:
    """The text for `key` in `lang` with `{name}` fields filled in as they are, not escaped.

    For text that is not Telegram HTML: images (street signs), files, the console.
    """
    text = _catalogue(normalise_language(lang)).gettext(key)
    if not params:
        return text
    return text.format_map({k: str(v) for k, v in params.items()})


def _escaped(value: Any) -> str:
    """A value as Telegram HTML: escaped, and unable to reorder the text around it."""
    return value if isinstance(value, Safe) else isolated(html.escape(str(value), quote=False))
