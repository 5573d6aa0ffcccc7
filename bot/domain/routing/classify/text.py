"""Text as the classifier reads it: normalised (NFKC, invisible characters gone, lower-case,
tidy whitespace) before keyword rules or the model see it."""

from __future__ import annotations

import re
import unicodedata

# Zero-width characters, bidi embeddings/overrides/isolates/marks, word joiner and invisible
# operators, soft hyphen, Arabic letter mark, Mongolian vowel separator, BOM, interlinear
# annotation controls and Unicode tag characters.
_INVISIBLE = re.compile(
    "[\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f"
    "\ufeff\ufff9-\ufffb\U000e0000-\U000e007f]"
)
_QUOTES = re.compile("[\u2018\u2019\u201b\u2032]")  # curly apostrophes → '
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")
_HSPACE = re.compile(r"[^\S\n]+")
_NEWLINES = re.compile(r" ?\n[\s]*")


def normalize_text(text: str) -> str:
    """NFKC, drop zero-width/bidi/format characters, lower-case, tidy whitespace.

    Line breaks are kept (as single ``\\n``) because they end a clause; other whitespace runs
    become one space.  The function is idempotent.
    """
    text = _INVISIBLE.sub("", text)
    text = unicodedata.normalize("NFKC", text)
    text = _QUOTES.sub("'", text).lower()
    if not unicodedata.is_normalized("NFKC", text):  # lower() can un-normalise ("İ")
        text = unicodedata.normalize("NFKC", text)
    text = _INVISIBLE.sub("", text)
    text = _CONTROL.sub(" ", text)
    text = _HSPACE.sub(" ", text)
    return _NEWLINES.sub("\n", text).strip()


def has_text(normalized: str) -> bool:
    """True when the (normalised) text has at least one letter, digit or CJK character."""
    return any(ch.isalnum() for ch in normalized)
