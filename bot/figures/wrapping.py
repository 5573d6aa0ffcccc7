"""Text broken into lines that fit a width: Latin between words, Chinese between characters,
no line starting with closing punctuation (Chinese line-breaking rules). Widths come from a
`Measure`, so the rules hold for any font (street signs, bot/figures/signs.py)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

# A line may not start with these (Chinese line-breaking rules); they stay on the line before.
_NO_LINE_START = set("，。、；：？！）》」』】〕,.;:?!)%")
# The width of a string in pixels (a font's `getlength`).
Measure = Callable[[str], float]
_TOKEN = re.compile(r"[A-Za-z0-9'’@#&_/\-.,;:!?()%]+ *| +|.")


def wrap(text: str, measure: Measure, width: float) -> list[str]:
    """`text` in lines no wider than `width`: Latin text breaks between words, Chinese between
    characters, and no line starts with closing punctuation. A word wider than `width` is
    broken between letters."""
    lines: list[str] = []
    line = ""
    for token in _tokens(text, measure, width):
        candidate = line + token
        if not line or measure(candidate.rstrip()) <= width:
            line = candidate
        elif token[0] in _NO_LINE_START and len(line.rstrip()) > 1:
            # Keep punctuation with the character before it: take that one down with it.
            lines.append(line[:-1].rstrip())
            line = line[-1] + token
        else:
            lines.append(line.rstrip())
            line = token.lstrip()
    if line.strip():
        lines.append(line.rstrip())
    return lines


def balanced_wrap(text: str, measure: Measure, width: float) -> list[str]:
    """`text` wrapped as by `wrap` into as few lines, but with their lengths evened out: no
    line of one word under a full one."""
    lines = wrap(text, measure, width)
    if len(lines) < 2:
        return lines
    low, high = width / len(lines), width
    while high - low > 1:
        middle = (low + high) / 2
        if len(wrap(text, measure, middle)) == len(lines):
            high = middle
        else:
            low = middle
    return wrap(text, measure, high)


def ellipsize(text: str, measure: Measure, width: float) -> str:
    """`text`, cut short with "…" to fit `width`."""
    if measure(text) <= width:
        return text
    while text and measure(text.rstrip() + "…") > width:
        text = text[:-1]
    return text.rstrip() + "…"


def join_lines(lines: Sequence[str]) -> str:
    """Wrapped lines back into one: a space between two words, none between Chinese."""
    out = ""
    for line in lines:
        space = out and out[-1].isascii() and line[:1].isascii()
        out += (" " if space else "") + line
    return out


def _tokens(text: str, measure: Measure, width: float) -> Sequence[str]:
    out: list[str] = []
    for token in _TOKEN.findall(" ".join(text.split())):
        if measure(token.rstrip()) <= width:
            out.append(token)
        else:
            out.extend(token)
    return out
