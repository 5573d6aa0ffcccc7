"""The digest's chart: 14 days of reports received and resolved (bars) and the three rates (lines).

Drawn with Pillow at 1080 × 1350 (a phone's portrait screen) with large type. Chinese labels
need a CJK font (see `bot.figures.fonts`); without one the chart falls back to the Latin labels
it is given, so it never draws empty boxes, and it never fails for want of a font. Text is placed by
its baseline at distances measured in font sizes (`TOP`, `MIDDLE`), not by the font's own
ascent, so labels sit where they belong with any font.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import astuple, dataclass
from functools import cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from bot.figures.kpi import Rate, TrendPoint

SIZE = (1080, 1350)
MARGIN = 64
INK, MUTED, GRID, PAPER = "#1f2328", "#59636e", "#d8dee4", "#ffffff"
RECEIVED, RESOLVED = "#4c78a8", "#54a24b"
RESPONSE, RESOLUTION, SATISFACTION = "#f58518", "#2e8b57", "#b279a2"
LATIN_FONTS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
)

# From a line's baseline, in font sizes: its top, and its visual middle (that of the digits
# and the ideographs). Fonts' own ascents differ by a fifth (Noto Sans CJK's are the tallest).
TOP, MIDDLE = 0.9, 0.38

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont
FontMaker = Callable[[int], Font]


@dataclass(frozen=True)
class ChartText:
    """Every word on the chart, in one language."""

    title: str
    counts: str
    rates: str
    received: str
    resolved: str
    response: str
    resolution: str
    satisfaction: str

    def needs_cjk(self) -> bool:
        return any(_wide(s) for s in astuple(self))


def trend_png(points: Sequence[TrendPoint], text: ChartText, latin: ChartText) -> bytes:
    """The PNG; `text` when it can be drawn here, else `latin` (which must be Latin script)."""
    cjk = _cjk_font()
    words = text if cjk is not None or not text.needs_cjk() else latin
    font = _font_maker(cjk if cjk is not None else _latin_font())
    image = Image.new("RGB", SIZE, PAPER)
    draw = ImageDraw.Draw(image)
    _write(draw, MARGIN, 40, words.title, _fitting(draw, font, words.title, 54), INK)
    if points:  # the dates in numbers: readable in any language
        span = f"{points[0].day:%Y-%m-%d} – {points[-1].day:%Y-%m-%d}"
        _write(draw, MARGIN, 110, span, font(32), MUTED)
    _counts_panel(draw, font, points, words, top=190, bottom=700)
    _rates_panel(draw, font, points, words, top=790, bottom=1290)
    out = io.BytesIO()
    image.save(out, "PNG")  # optimize=True takes 4× as long for 5 % less
    return out.getvalue()


# --------------------------------------------------------------------------- panels

Box = tuple[int, int, int, int]  # left, top, right, bottom of the plotting area


def _counts_panel(
    draw: ImageDraw.ImageDraw,
    font: FontMaker,
    points: Sequence[TrendPoint],
    words: ChartText,
    *,
    top: int,
    bottom: int,
) -> None:
    _write(draw, MARGIN, top, words.counts, font(36), INK)
    _legend(draw, font, top + 52, [(RECEIVED, words.received), (RESOLVED, words.resolved)])
    box = (MARGIN + 70, top + 120, SIZE[0] - MARGIN, bottom - 50)
    highest = max([1, *(max(p.received, p.resolved) for p in points)])
    step = _nice_step(highest)
    scale_max = step * -(-highest // step)
    _grid(draw, font, box, [(v, str(v)) for v in range(0, scale_max + 1, step)], scale_max)
    slot = (box[2] - box[0]) / max(len(points), 1)
    bar = max(4.0, slot * 0.34)
    for i, p in enumerate(points):
        x = box[0] + slot * i + slot / 2
        for offset, value, colour in ((-bar, p.received, RECEIVED), (0.0, p.resolved, RESOLVED)):
            y = box[3] - (box[3] - box[1]) * value / scale_max
            draw.rectangle((x + offset, y, x + offset + bar - 2, box[3]), fill=colour)
    _days(draw, font, box, points)


def _rates_panel(
    draw: ImageDraw.ImageDraw,
    font: FontMaker,
    points: Sequence[TrendPoint],
    words: ChartText,
    *,
    top: int,
    bottom: int,
) -> None:
    _write(draw, MARGIN, top, words.rates, font(36), INK)
    series = [
        (RESPONSE, words.response, [p.response for p in points]),
        (RESOLUTION, words.resolution, [p.resolution for p in points]),
        (SATISFACTION, words.satisfaction, [p.satisfaction for p in points]),
    ]
    # The legend carries the last day's value: the number a reader looks for first.
    _legend(
        draw,
        font,
        top + 52,
        [(colour, f"{label} {_last(rates)}") for colour, label, rates in series],
    )
    box = (MARGIN + 70, top + 170, SIZE[0] - MARGIN, bottom - 50)
    _grid(draw, font, box, [(v, f"{v}%") for v in (0, 25, 50, 75, 100)], 100)
    slot = (box[2] - box[0]) / max(len(points), 1)
    for colour, _, rates in series:
        line: list[tuple[float, float]] = []
        for i, rate in enumerate(rates):
            if rate.value is None:  # no case judged that day: a gap, not a zero
                _polyline(draw, line, colour)
                line = []
                continue
            line.append((box[0] + slot * i + slot / 2, box[3] - (box[3] - box[1]) * rate.value))
        _polyline(draw, line, colour)
    _days(draw, font, box, points)


def _polyline(draw: ImageDraw.ImageDraw, line: list[tuple[float, float]], colour: str) -> None:
    if len(line) > 1:
        draw.line(line, fill=colour, width=6, joint="curve")
    for x, y in line:
        draw.ellipse((x - 8, y - 8, x + 8, y + 8), fill=colour, outline=PAPER, width=2)


def _legend(
    draw: ImageDraw.ImageDraw, font: FontMaker, y: int, items: list[tuple[str, str]]
) -> None:
    x = MARGIN
    label_font = font(32)
    for colour, label in items:
        draw.rounded_rectangle((x, y + 4, x + 30, y + 34), radius=6, fill=colour)
        _write(draw, x + 42, y + 19, label, label_font, INK, middle=True)  # level with it
        x += 42 + int(draw.textlength(label, font=label_font)) + 40
        if x > SIZE[0] - MARGIN - 200:  # the next item on a line of its own
            x, y = MARGIN, y + 48


def _grid(
    draw: ImageDraw.ImageDraw,
    font: FontMaker,
    box: Box,
    ticks: list[tuple[int, str]],
    scale_max: int,
) -> None:
    left, top, right, bottom = box
    tick_font = font(26)
    for value, label in ticks:
        y = bottom - (bottom - top) * value / scale_max
        draw.line((left, y, right, y), fill=GRID if value else MUTED, width=2)
        width = draw.textlength(label, font=tick_font)
        _write(draw, left - 12 - width, y, label, tick_font, MUTED, middle=True)


def _days(
    draw: ImageDraw.ImageDraw, font: FontMaker, box: Box, points: Sequence[TrendPoint]
) -> None:
    """Day of the month under each slot; the full dates are in the subtitle."""
    left, _, right, bottom = box
    slot = (right - left) / max(len(points), 1)
    day_font = font(26)
    for i, p in enumerate(points):
        label = str(p.day.day)
        width = draw.textlength(label, font=day_font)
        colour = INK if i == len(points) - 1 else MUTED
        _write(draw, left + slot * i + (slot - width) / 2, bottom + 10, label, day_font, colour)


def _write(
    draw: ImageDraw.ImageDraw,
    x: float,
    y: float,
    text: str,
    font: Font,
    fill: str,
    *,
    middle: bool = False,
) -> None:
    """`text` from `x` with its top at `y`, or (`middle`) its visual middle."""
    if not isinstance(font, ImageFont.FreeTypeFont):  # Pillow's bitmap font: from the top only
        draw.text((x, y), text, font=font, fill=fill)
        return
    baseline = y + font.size * (MIDDLE if middle else TOP)
    draw.text((x, baseline), text, font=font, fill=fill, anchor="ls")


def _fitting(draw: ImageDraw.ImageDraw, font: FontMaker, text: str, size: int) -> Font:
    """The font at `size`, or smaller until `text` fits between the margins."""
    while size > 24 and draw.textlength(text, font=font(size)) > SIZE[0] - 2 * MARGIN:
        size -= 4
    return font(size)


def _nice_step(highest: int) -> int:
    """A round tick step giving 2–5 gridlines up to `highest`."""
    magnitude = 1
    while True:
        for multiple in (1, 2, 5):
            if highest <= multiple * magnitude * 4:
                return multiple * magnitude
        magnitude *= 10


def _last(rates: Sequence[Rate]) -> str:
    value = rates[-1].value if rates else None
    return "–" if value is None else f"{value:.0%}"


# --------------------------------------------------------------------------- fonts


def _wide(text: str) -> bool:
    """Whether `text` has East Asian wide characters (which a Latin font cannot draw)."""
    return any(unicodedata.east_asian_width(ch) in ("W", "F") for ch in text)


def _cjk_font() -> Path | None:
    try:
        from bot.figures.fonts import find_cjk_font
    except ImportError:  # pragma: no cover — fonts are optional for charts
        return None
    return find_cjk_font()


def _load(path: Path, size: int) -> Font:
    try:
        from bot.figures.fonts import load  # the Simplified Chinese face of a collection
    except ImportError:  # pragma: no cover
        return ImageFont.truetype(str(path), size)
    return load(path, size)


@cache
def _latin_font() -> Path | None:
    for candidate in LATIN_FONTS:
        if Path(candidate).is_file():
            return Path(candidate)
    fc_match = shutil.which("fc-match")
    if fc_match is None:
        return None
    try:
        found = subprocess.run(
            [fc_match, "-f", "%{file}", "sans"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return Path(found) if found and Path(found).is_file() else None


def _font_maker(path: Path | None) -> FontMaker:
    @cache
    def make(size: int) -> Font:
        if path is not None:
            try:
                return _load(path, size)
            except OSError:
                pass
        return ImageFont.load_default(size)

    return make
