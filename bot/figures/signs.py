"""Street signs (街巷长公示牌): a printable A4 PNG per lane with a QR code to report on it.

Beijing posts a sign in each lane naming its street-lane chief's role (and the chief, when
there is one), the four duties (知情、监督、处置、评价) and the lane's QR code. Ours links to
`https://t.me/<bot>?start=lane_<id>`, which opens a report already set to that lane (see
`bot.telegram.handlers.common.start`).

The sign is A4 portrait at `dpi` dots per inch (2480×3508 at 300), black and dark red on
white, everything centred; its text comes from the `sign.*` catalogue keys. The QR code is laid
out first, at `QR_SIDE` whatever the font and the names: the text fits around it, smaller when
it must be. Lines are measured in font sizes, not in the font's own metrics, so the sign looks
the same with any of the fonts `bot.figures.fonts` finds.
"""

from __future__ import annotations

import copy
import io
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import qrcode
import qrcode.constants
from PIL import Image, ImageDraw, ImageFont
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.access import CHIEF
from bot.domain.district import District, Lane
from bot.figures import fonts
from bot.figures.wrapping import Measure, balanced_wrap, ellipsize, join_lines, wrap
from bot.i18n import normalise_language, plain
from storage.models import Person, Role

A4_MM = (210.0, 297.0)
DEFAULT_DPI = 300
MIN_DPI = 150  # 1240×1754: below this the text gets hard to print sharply

INK = (17, 17, 17)
GREY = (68, 68, 68)
ACCENT = (164, 22, 26)  # dark red, 8:1 against white
WHITE = (255, 255, 255)

DUTIES = ("know", "supervise", "handle", "evaluate")  # 知情、监督、处置、评价

# The QR code with its quiet zone, at 300 dpi (9.3 cm, the code itself about 7.5): laid out
# before any text, so that no font and no long name can make it smaller than this.
QR_SIDE = 1100
# The lane, its chief and the duties shrink together to fit above it, at most to this factor.
MIN_SCALE = 0.3
# A line of text is LINE font sizes high, its baseline BASELINE font sizes below its top.
LINE, BASELINE = 1.3, 1.02

# Telegram bot usernames: 5–32 letters, digits and underscores, starting with a letter.
_USERNAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{4,31}$")


class SignError(ValueError):
    """A sign cannot be made from these inputs (a bad bot username, a too small dpi)."""


def normalise_username(username: str) -> str:
    """`@Name_bot` or `Name_bot` as `Name_bot`; `SignError` when it cannot be a bot's username."""
    name = username.strip().removeprefix("@")
    if not _USERNAME.fullmatch(name):
        raise SignError(
            f"{username!r} is not a Telegram bot username "
            "(5–32 letters, digits or _, starting with a letter)"
        )
    return name


def deep_link(bot_username: str, lane_id: str) -> str:
    """The link that opens a report on `lane_id` in the bot."""
    return f"https://t.me/{normalise_username(bot_username)}?start=lane_{lane_id}"


def page_size(dpi: int = DEFAULT_DPI) -> tuple[int, int]:
    """A4 portrait in pixels at `dpi`."""
    return round(A4_MM[0] / 25.4 * dpi), round(A4_MM[1] / 25.4 * dpi)


def render_sign(
    lane: Lane,
    district: District,
    *,
    bot_username: str,
    chief_name: str | None = None,
    chief_role_text: str | None = None,
    lang: str = "zh",
    dpi: int = DEFAULT_DPI,
    font_path: Path | None = None,
) -> bytes:
    """The sign for `lane` as PNG bytes.

    `chief_role_text` replaces the catalogue's role ("街巷长"); `chief_name` is printed only
    when given (a sign names a role and its duties, the person changes). Raises
    `fonts.FontMissing` when no font can draw Chinese and `SignError` for a bad username.
    """
    if dpi < MIN_DPI:
        raise SignError(f"dpi must be at least {MIN_DPI} for a printable sign")
    link = deep_link(bot_username, lane.id)
    lang = normalise_language(lang)
    page = _Page(font_path or fonts.require_cjk_font(), dpi)
    _draw(page, lane, district, link, lang, chief_name, chief_role_text)
    out = io.BytesIO()
    page.image.save(out, format="PNG", dpi=(dpi, dpi))
    return out.getvalue()


async def lane_chiefs(session: AsyncSession, lane_ids: Collection[str]) -> dict[str, list[str]]:
    """The names of each lane's chiefs (role "chief", scope the lane id), earliest first;
    lanes whose chiefs have no name on record are left out."""
    rows = await session.execute(
        select(Role.scope, Person.name)
        .join(Person, Role.person_id == Person.id)
        .where(Role.role == CHIEF, Role.scope.in_(list(lane_ids)))
        .order_by(Role.scope, Role.created_at, Role.id)
    )
    names: dict[str, list[str]] = {}
    for scope, name in rows:
        if scope is not None and name and name.strip() and name.strip() not in names.get(scope, []):
            names.setdefault(scope, []).append(name.strip())
    return names


def join_names(names: Sequence[str], lang: str) -> str | None:
    """Several chiefs' names as one ("张三、李四" / "Zhang San, Li Si"); None for none."""
    if not names:
        return None
    return (", " if normalise_language(lang) == "en" else "、").join(names)


# --------------------------------------------------------------------------- layout


@dataclass(frozen=True)
class _Middle:
    """What the sign says between its header and its QR code: the lane, its chief, the duties."""

    lang: str
    first: str  # the lane's name in the sign's language
    second: str  # in the other language, when it differs
    facts: str
    heading: str

    @classmethod
    def of(cls, lane: Lane, lang: str, role: str, name: str) -> _Middle:
        first, second = (
            (lane.name_en, lane.name_zh) if lang == "en" else (lane.name_zh, lane.name_en)
        )
        first, second = first or second, second if first else ""
        facts = plain(lang, "sign.community", community=lane.community) if lane.community else ""
        code = plain(lang, "sign.lane_code", lane_id=lane.id)
        heading = (
            plain(lang, "sign.chief_named", role=role, name=name)
            if name
            else plain(lang, "sign.duties_heading", role=role)
        )
        return cls(
            lang=lang,
            first=first,
            second=second if second != first else "",
            facts=f"{facts} · {code}" if facts else code,
            heading=heading,
        )


def _draw(
    page: _Page,
    lane: Lane,
    district: District,
    link: str,
    lang: str,
    chief_name: str | None,
    chief_role_text: str | None,
) -> None:
    """The header and the foot (with the QR code) first, at places no font changes; the lane,
    its chief and the duties then fill the room between them, smaller if they must."""
    district_name = district.name(district, lang)
    band = _header(page, lane, district, lang)
    scan_top = _foot(page, link, lang, district_name)
    role = (chief_role_text or "").strip() or plain(lang, "sign.chief_role")
    middle = _Middle.of(lane, lang, role, (chief_name or "").strip())
    _fit_middle(page, middle, band + page.px(80), scan_top - page.px(60))


def _header(page: _Page, lane: Lane, district: District, lang: str) -> int:
    """The red band: the sign's title and who posts it; returns its bottom."""
    s = page.px
    office = district.street_offices.get(lane.street_id)
    district_name = district.name(district, lang)
    office_text = (
        plain(lang, "sign.office", district=district_name, street=district.name(office, lang))
        if office is not None
        else district_name
    )
    band = s(80) + page.line_of(140) + s(20) + page.line_of(72) + s(60)
    page.box((0, 0, page.width, band), ACCENT)
    title = page.fitted(plain(lang, "sign.title"), 140, page.content_width)
    y = page.in_line(title, 140, s(80), WHITE, bold=True)
    page.in_line(page.fitted(office_text, 72, page.content_width), 72, y + s(20), WHITE)
    return band


def _foot(page: _Page, link: str, lang: str, district_name: str) -> int:
    """From the bottom of the page up: the footer, the link, how to report, the QR code at
    `QR_SIDE` and the call to scan it above. Returns the top of that call."""
    s = page.px
    footer_top = page.height - s(110) - page.line_of(46)
    page.box(
        (page.margin, footer_top - s(40), page.width - page.margin, footer_top - s(36)), ACCENT
    )
    footer = page.fitted(plain(lang, "sign.footer", district=district_name), 46, page.content_width)
    page.in_line(footer, 46, footer_top, GREY)

    link_top = footer_top - s(50) - page.line_of(50)
    link_text = page.fitted(link.removeprefix("https://"), 50, page.content_width)
    page.in_line(link_text, 50, link_top, GREY)

    how_room = 2 * page.line_of(54)  # two lines, whether it takes one or two
    how_top = link_top - s(20) - how_room
    how_font, how_lines = page.fit_lines(plain(lang, "sign.how"), 54, 2, minimum=40)
    y = how_top + (how_room - len(how_lines) * page.line_height(how_font)) // 2
    for line in how_lines:
        y = page.centred(line, how_font, y, INK)

    qr = _qr_image(link, s(QR_SIDE))
    qr_top = how_top - qr.height
    page.image.paste(qr, ((page.width - qr.width) // 2, qr_top))

    scan_top = qr_top - page.line_of(104)
    scan = page.fitted(plain(lang, "sign.scan"), 104, page.content_width, minimum=70)
    page.in_line(scan, 104, scan_top, ACCENT, bold=True)
    return scan_top


def _fit_middle(page: _Page, middle: _Middle, top: int, bottom: int) -> None:
    """`middle` between `top` and `bottom`: at its full size when it fits, else all of it
    smaller by the same factor until it does; centred in the room it leaves."""
    room = bottom - top
    sketch = page.sketch()
    scale, height = 1.0, _draw_middle(sketch, middle, 0, 1.0)
    if height > room:  # the largest scale that fits, to within 2 %
        low, high = MIN_SCALE, 1.0
        while high - low > 0.02:
            mid = (low + high) / 2
            low, high = (mid, high) if _draw_middle(sketch, middle, 0, mid) <= room else (low, mid)
        scale, height = low, _draw_middle(sketch, middle, 0, low)
    _draw_middle(page, middle, top + max(0, room - height) // 2, scale)


def _draw_middle(page: _Page, m: _Middle, y: int, scale: float) -> int:
    """The lane's names and facts, a rule, the chief's heading and the duties from `y`, at
    `scale` times their full size; returns the y under them."""

    def size(value: int) -> int:
        return round(value * scale)

    def gap(value: int) -> int:
        return page.px(value * scale)

    big = 220 if m.lang == "zh" else 170
    y = page.paragraph(m.first, size(big), y, INK, bold=True, max_lines=3, minimum=size(100))
    if m.second:
        y = page.paragraph(m.second, size(96), y + gap(16), INK)
    y = page.paragraph(m.facts, size(60), y + gap(24), GREY)
    y += gap(50)
    page.box((page.margin, y, page.width - page.margin, y + page.px(8)), ACCENT)
    y += page.px(8) + gap(50)
    y = page.paragraph(m.heading, size(96), y, INK, bold=True) + gap(30)
    return _duties(page, m.lang, y, scale)


def _duties(page: _Page, lang: str, y: int, scale: float) -> int:
    """The four duties as rows, the table centred: the duty's name in a red box, what it
    means beside it."""

    def gap(value: int) -> int:
        return page.px(value * scale)

    term_font = page.font(round((66 if lang == "zh" else 50) * scale))
    text_font = page.font(round((58 if lang == "zh" else 50) * scale))
    terms = [plain(lang, f"sign.duty.{d}") for d in DUTIES]
    box_w = max(round(page.measure(term_font)(t)) for t in terms) + gap(56)
    box_h = page.line_height(term_font) + gap(20)
    rows = [
        page.wrapped(
            plain(lang, f"sign.duty.{d}_text"), text_font, page.content_width - box_w - gap(40)
        )[:3]
        for d in DUTIES
    ]
    text_w = max(round(page.measure(text_font)(line)) for lines in rows for line in lines)
    x = (page.width - (box_w + gap(40) + text_w)) // 2
    for term, lines in zip(terms, rows, strict=True):
        text_h = len(lines) * page.line_height(text_font)
        row_h = max(text_h, box_h)
        box_top = y + (row_h - box_h) // 2
        page.box((x, box_top, x + box_w, box_top + box_h), ACCENT, radius=gap(14))
        page.centred(term, term_font, box_top + gap(10), WHITE, bold=True, centre=x + box_w / 2)
        ty = y + (row_h - text_h) // 2
        for line in lines:
            ty = page.left(line, text_font, x + box_w + gap(40), ty, INK)
        y += row_h + gap(26)
    return y


def _qr_image(data: str, side: int) -> Image.Image:
    """The QR code of `data` (error correction Q, 4-module quiet zone), at most `side` square.

    Modules are whole pixels, so the printed code stays sharp.
    """
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_Q, border=4)
    code.add_data(data)
    code.make(fit=True)
    matrix: list[list[bool]] = code.get_matrix()
    n = len(matrix)
    module = max(1, side // n)
    small = Image.new("1", (n, n), 1)
    small.putdata([0 if dark else 1 for row in matrix for dark in row])
    return small.resize((n * module, n * module), Image.Resampling.NEAREST).convert("RGB")


# --------------------------------------------------------------------------- drawing


@dataclass(frozen=True)
class _Fitted:
    text: str
    font: ImageFont.FreeTypeFont


class _Page:
    """A white A4 page with text helpers; sizes are given at 300 dpi and scaled.

    Lines are `LINE` font sizes high with the baseline `BASELINE` below their top, whatever
    the font: fonts' own ascents and line gaps differ by a third (Noto Sans CJK's are larger
    than WenQuanYi's), and a layout built on them changed with the machine's fonts.
    """

    def __init__(self, font_path: Path, dpi: int) -> None:
        self.font_path = font_path
        self.scale = dpi / DEFAULT_DPI
        self.width, self.height = page_size(dpi)
        self.margin = self.px(170)
        self.content_width = self.width - 2 * self.margin
        self.image = Image.new("RGB", (self.width, self.height), WHITE)
        self.draw = ImageDraw.Draw(self.image)
        self.ink = True
        self._fonts: dict[int, ImageFont.FreeTypeFont] = {}
        self._lengths: dict[tuple[float, str], float] = {}

    def sketch(self) -> _Page:
        """The same page for measuring: the helpers return where things go, drawing nothing."""
        dry = copy.copy(self)
        dry.ink = False
        return dry

    def px(self, value: float) -> int:
        return round(value * self.scale)

    def font(self, size: int) -> ImageFont.FreeTypeFont:
        """The font at `size` (at 300 dpi)."""
        pixels = max(8, self.px(size))
        if pixels not in self._fonts:
            self._fonts[pixels] = fonts.load(self.font_path, pixels)
        return self._fonts[pixels]

    def fitted(self, text: str, size: int, width: int, *, minimum: int = 40) -> _Fitted:
        """`text` at `size`, or smaller (down to `minimum`) until it fits on one line."""
        while size > minimum and self.measure(self.font(size))(text) > width:
            size = max(minimum, int(size * 0.92))
        return _Fitted(text, self.font(size))

    def measure(self, font: ImageFont.FreeTypeFont) -> Measure:
        """`font`'s width of a string, remembered: fitting the text measures the same words
        at the same sizes many times over."""

        def length(text: str) -> float:
            key = (font.size, text)
            if key not in self._lengths:
                self._lengths[key] = font.getlength(text)
            return self._lengths[key]

        return length

    def line_height(self, font: ImageFont.FreeTypeFont | _Fitted) -> int:
        f = font.font if isinstance(font, _Fitted) else font
        return round(f.size * LINE)

    def line_of(self, size: int) -> int:
        """The height of a line of text at `size` (at 300 dpi)."""
        return self.line_height(self.font(size))

    def wrapped(self, text: str, font: ImageFont.FreeTypeFont, width: int) -> list[str]:
        return wrap(text, self.measure(font), width)

    def fit_lines(
        self, text: str, size: int, max_lines: int, *, minimum: int
    ) -> tuple[ImageFont.FreeTypeFont, list[str]]:
        """The largest font from `size` down to `minimum` that sets `text` in at most
        `max_lines` balanced lines of the content width; at `minimum` the last line is cut
        short with "…"."""
        while True:
            font = self.font(size)
            measure = self.measure(font)
            lines = balanced_wrap(text, measure, self.content_width)
            if len(lines) <= max_lines:
                return font, lines
            if size <= minimum:
                kept = lines[: max_lines - 1]
                rest = join_lines(lines[max_lines - 1 :])
                return font, [*kept, ellipsize(rest, measure, self.content_width)]
            size = max(minimum, int(size * 0.92))

    def paragraph(
        self,
        text: str,
        size: int,
        y: int,
        fill: tuple[int, int, int],
        *,
        bold: bool = False,
        max_lines: int = 2,
        minimum: int | None = None,
    ) -> int:
        """`text` centred in at most `max_lines` lines, smaller when it must be (down to
        `minimum`, 60 % of `size` by default); returns the y under it."""
        floor = minimum if minimum is not None else round(size * 0.6)
        font, lines = self.fit_lines(text, size, max_lines, minimum=floor)
        for line in lines:
            y = self.centred(line, font, y, fill, bold=bold)
        return y

    def in_line(
        self, fitted: _Fitted, size: int, y: int, fill: tuple[int, int, int], *, bold: bool = False
    ) -> int:
        """`fitted` centred in a line of `size` from `y` (it may have been set smaller to fit
        the width); returns the y under that line."""
        room = self.line_of(size)
        self.centred(
            fitted.text, fitted.font, y + (room - self.line_height(fitted)) // 2, fill, bold=bold
        )
        return y + room

    def centred(
        self,
        text: str,
        font: ImageFont.FreeTypeFont,
        y: int,
        fill: tuple[int, int, int],
        *,
        bold: bool = False,
        centre: float | None = None,
    ) -> int:
        """One line centred on `centre` (the page's middle) with its top at `y`."""
        x = self.width / 2 if centre is None else centre
        self._text((x, y + round(font.size * BASELINE)), text, font, fill, bold, "ms")
        return y + self.line_height(font)

    def left(
        self, text: str, font: ImageFont.FreeTypeFont, x: int, y: int, fill: tuple[int, int, int]
    ) -> int:
        self._text((x, y + round(font.size * BASELINE)), text, font, fill, False, "ls")
        return y + self.line_height(font)

    def box(
        self, xy: tuple[float, float, float, float], fill: tuple[int, int, int], *, radius: int = 0
    ) -> None:
        if self.ink:
            self.draw.rounded_rectangle(xy, radius=radius, fill=fill)

    def _text(
        self,
        xy: tuple[float, float],
        text: str,
        font: ImageFont.FreeTypeFont,
        fill: tuple[int, int, int],
        bold: bool,
        anchor: str,
    ) -> None:
        if not self.ink:
            return
        # The CJK fonts Debian ships have one weight: bold is drawn with a thin outline.
        stroke = max(1, round(font.size / 56)) if bold else 0
        self.draw.text(
            xy, text, font=font, fill=fill, anchor=anchor, stroke_width=stroke, stroke_fill=fill
        )
