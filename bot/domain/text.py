"""User text: when it is empty, and how it is shown without harm.

Text is stored as the person wrote it. Two things are done when it is judged or shown:
- Invisible characters (zero-width spaces and joiners, direction marks, the BOM: Unicode's
  "format" characters) do not make text non-empty: a description of only those is empty.
- Bidirectional controls (embeddings, overrides, isolates) are dropped when the text is put
  into a message, and text that has them or right-to-left letters is wrapped in an isolate
  (FSI … PDI), so that it cannot reverse or reorder the bot's own words around it.
"""

from __future__ import annotations

import unicodedata

# The longest address a report may carry, typed in the chat or sent to Open311 (characters).
MAX_ADDRESS = 300

FSI, PDI = "\u2068", "\u2069"
# Embeddings and overrides (LRE RLE PDF LRO RLO) and isolates (LRI RLI FSI PDI).
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def visible(text: str) -> str:
    """`text` without whitespace and invisible format characters: what a reader can see."""
    return "".join(ch for ch in text if not ch.isspace() and unicodedata.category(ch) != "Cf")


def is_blank(text: str) -> bool:
    return not visible(text)


def isolated(text: str) -> str:
    """`text` safe to place inside the bot's sentences (see the module's text)."""
    if not any(ch in BIDI_CONTROLS or unicodedata.bidirectional(ch) in ("R", "AL") for ch in text):
        return text
    return FSI + "".join(ch for ch in text if ch not in BIDI_CONTROLS) + PDI
