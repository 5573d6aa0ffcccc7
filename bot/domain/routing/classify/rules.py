"""Keyword rules written by the district (``keywords_zh`` / ``keywords_en`` of a category).

Chinese keywords match as substrings, English ones on word boundaries (an optional plural
``s``/``es`` is allowed). A keyword closely preceded by a negation in the same clause ("没有",
"不是", "并非", "无", "不", "no", "not", "isn't", "without" …), or closely followed by an
all-clear ("没问题", "正常", "is fine" …), does not count. Each matched keyword scores by its
specificity (length, :func:`keyword_weight`); how the scores become a confidence is
:mod:`.combine`'s.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from bot.domain.routing.classify.text import has_text, normalize_text


class CategoryRule(Protocol):
    """What the classifier needs of a category (``bot.domain.district.Category`` satisfies it)."""

    @property
    def id(self) -> str: ...

    @property
    def keywords(self) -> tuple[str, ...]:
        """zh words and lower-cased English words/phrases."""
        ...


_CLAUSE_END = re.compile(
    r"[\n,.;:!?，。；：！？…]|但是|可是|不过|然而|而是|但|"
    r"(?<![a-z0-9'])(?:but|however|although|though|whereas)(?![a-z0-9'])"
)
# zh: a negation word right before the keyword, or a two-character one with a filler between.
_ZH_NEG_BEFORE = re.compile(
    r"(?:(?:没有|不是|并非|并不是|从来没有)"
    r"(?:是|个|一个|什么|任何|这个|那个|这|那|该|有|发现|看到|看见|存在)?|不|无)$"
)
_EN_NEG_BEFORE = re.compile(
    r"(?<![a-z0-9'])(?:no|not|isn't|aren't|wasn't|weren't|without|never)"
    r"(?:[^a-z0-9']+[a-z0-9']+){0,2}[^a-z0-9']*$"
)
# An all-clear right after the keyword: "井盖没有问题", "the manhole cover is fine".
_ZH_CLEAR_AFTER = re.compile(
    r"^(?:的|也|都|还|倒|是|现在|目前|已经)*"
    r"(?:没有问题|没问题|没什么问题|无问题|不是问题|没事|没有事|没毛病|正常|完好|好好的|是好的|没坏|没有坏)"
)
_EN_CLEAR_AFTER = re.compile(
    r"^[^a-z0-9']*(?:[a-z0-9']+[^a-z0-9']+){0,2}?(?<!not )(?<!n't )"
    r"(?:fine|ok|okay|intact|no problems?|no issues?"
    r"|not (?:broken|damaged|a problem|an issue|the problem|the issue))(?![a-z0-9])"
)
_NEG_WINDOW: Final = 40  # characters looked at on either side of a keyword


def keyword_weight(keyword: str) -> float:
    """Specificity of a (normalised) keyword: CJK characters count 1, Latin letters 1/3."""
    weight = 0.0
    for ch in keyword:
        if ch.isascii():
            weight += 1 / 3 if ch.isalnum() else 0.0
        elif ch.isalnum():
            weight += 1.0
    return max(weight, 1 / 3)


_LATIN_TOKEN: Final = re.compile("[0-9a-z\u00c0-\u024f]+")  # a Latin word (lower-cased)
_LATIN_GAP: Final = re.compile(r"[ \-]+")  # what may separate the words of a phrase


def _is_latin(keyword: str) -> bool:
    """A keyword without wide (CJK) characters is matched on word boundaries."""
    return not any(unicodedata.east_asian_width(ch) in "WF" for ch in keyword)


@dataclass(frozen=True)
class Hit:
    """A keyword found in a text, at ``start:end``, and whether a negation cancels it."""

    keyword: str
    categories: tuple[str, ...]
    start: int
    end: int
    negated: bool


@dataclass(frozen=True)
class Rules:
    """Compiled keyword rules of all categories.

    CJK keywords are looked up as substrings, indexed by first character and length; Latin
    keywords as sequences of whole words (phrase words separated by spaces or hyphens, the last
    word optionally with a plural ``s``/``es``), indexed by first word.
    """

    owners: Mapping[str, tuple[str, ...]]  # keyword → category ids
    cjk: Mapping[str, tuple[int, ...]]  # first character → keyword lengths, longest first
    latin: Mapping[str, tuple[tuple[str, ...], ...]]  # first word → phrases, longest first
    latin_keyword: Mapping[tuple[str, ...], str]  # phrase words → keyword

    @classmethod
    def build(cls, categories: Sequence[CategoryRule]) -> Rules:
        owners: dict[str, list[str]] = {}
        for category in categories:
            for raw in category.keywords:
                keyword = normalize_text(str(raw))
                if has_text(keyword) and category.id not in owners.setdefault(keyword, []):
                    owners[keyword].append(category.id)
        cjk: dict[str, set[int]] = {}
        latin: dict[str, set[tuple[str, ...]]] = {}
        latin_keyword: dict[tuple[str, ...], str] = {}
        for keyword in owners:
            words = tuple(_LATIN_TOKEN.findall(keyword)) if _is_latin(keyword) else ()
            if words:
                latin.setdefault(words[0], set()).add(words)
                latin_keyword.setdefault(words, keyword)
            else:
                cjk.setdefault(keyword[0], set()).add(len(keyword))
        return cls(
            owners={k: tuple(v) for k, v in owners.items()},
            cjk={c: tuple(sorted(ls, reverse=True)) for c, ls in cjk.items()},
            latin={w: tuple(sorted(ps, key=lambda p: (-len(p), p))) for w, ps in latin.items()},
            latin_keyword=latin_keyword,
        )

    def _cjk_spans(self, text: str) -> Iterable[tuple[int, int, str]]:
        for i, ch in enumerate(text):
            lengths = self.cjk.get(ch)
            if lengths is None:
                continue
            for length in lengths:
                piece = text[i : i + length]
                if len(piece) == length and piece in self.owners:
                    yield i, i + length, piece
                    break

    def _latin_spans(self, text: str) -> Iterable[tuple[int, int, str]]:
        tokens = [(m.start(), m.end(), m.group()) for m in _LATIN_TOKEN.finditer(text)]
        for k, (start, _, word) in enumerate(tokens):
            for phrase in self.latin.get(word, ()) + self._plural(word):
                end = self._phrase_end(text, tokens, k, phrase)
                if end is not None:
                    yield start, end, self.latin_keyword[phrase]
                    break

    def _plural(self, word: str) -> tuple[tuple[str, ...], ...]:
        """Single-word keywords that ``word`` is a plural of ("bins" → "bin")."""
        stems = [word[:-1]] if word.endswith("s") else []
        stems += [word[:-2]] if word.endswith("es") else []
        return tuple((s,) for s in stems if (s,) in self.latin_keyword)

    @staticmethod
    def _phrase_end(
        text: str, tokens: Sequence[tuple[int, int, str]], k: int, phrase: tuple[str, ...]
    ) -> int | None:
        if k + len(phrase) > len(tokens):
            return None
        end = tokens[k][1]
        for j, expected in enumerate(phrase[1:], start=k + 1):
            start, end, word = tokens[j]
            if not _LATIN_GAP.fullmatch(text, tokens[j - 1][1], start):
                return None
            last = j == k + len(phrase) - 1
            if word != expected and not (last and word in (expected + "s", expected + "es")):
                return None
        return end

    def match(self, text: str) -> list[Hit]:
        spans = [*self._cjk_spans(text), *self._latin_spans(text)]
        # leftmost-longest, non-overlapping: "垃圾桶" wins over "垃圾" inside it
        spans.sort(key=lambda s: (s[0], -(s[1] - s[0])))
        hits: list[Hit] = []
        last_end = -1
        for start, end, keyword in spans:
            if start < last_end:
                continue
            last_end = end
            hits.append(Hit(keyword, self.owners[keyword], start, end, _negated(text, start, end)))
        return hits


def _negated(text: str, start: int, end: int) -> bool:
    before = text[max(0, start - _NEG_WINDOW) : start]
    clause_starts = [m.end() for m in _CLAUSE_END.finditer(before)]
    if clause_starts:
        before = before[clause_starts[-1] :]
    if _ZH_NEG_BEFORE.search(before) or _EN_NEG_BEFORE.search(before):
        return True
    after = text[end : end + _NEG_WINDOW]
    stop = _CLAUSE_END.search(after)
    if stop is not None:
        after = after[: stop.start()]
    return bool(_ZH_CLEAR_AFTER.match(after) or _EN_CLEAR_AFTER.match(after))
