"""Street signs (街巷长公示牌): a printable A4 PNG per lane with a QR code to report on it.

Beijing posts a sign in each lane naming its street-lane chief's role (and the chief, when
there is one), the four duties (知情、监督、处置、评价) and the lane's QR code. Ours links to
`https://t.me/<bot>?start=lane_<id>`, which opens a report already set to that lane (see
`bot.handlers.common.start`).

The sign is A4 portrait at `dpi` dots per inch (2480×3508 at 300), black and dark red on
white, everything centred; its text comes from the `sign.*` catalogue keys.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import qrcode
import qrcode.constants
from PIL import Image, ImageDraw, ImageFont
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import fonts
from bot.access import CHIEF
from bot.district import District, Lane
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

# Telegram bot usernames: 5–32 letters, digits and underscores, starting with a letter.
_USERNAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{4,31}$")
# A line may not start with these (Chinese line-breaking rules); they stay on the line before.
_NO_LINE_START = set("，。、；：？！）》」』】〕,.;:?!)%")
# The width of a string in pixels (a font's `getlength`).
Measure = Callable[[str], float]
_TOKEN = re.compile(r"[A-Za-z0-9'’@#&_/\-.,;:!?()%]+ *| +|.")


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


def _draw(
    page: _Page,
    lane: Lane,
    district: District,
    link: str,
    lang: str,
    chief_name: str | None,
    chief_role_text: str | None,
) -> None:
    s = page.px
    office = district.street_offices.get(lane.street_id)
    district_name = district.name(district, lang)
    role = (chief_role_text or "").strip() or plain(lang, "sign.chief_role")
    name = (chief_name or "").strip()

    # Header band: the sign's title and who posts it.
    title = page.fitted(plain(lang, "sign.title"), 140, page.content_width)
    office_text = (
        plain(lang, "sign.office", district=district_name, street=district.name(office, lang))
        if office is not None
        else district_name
    )
    office_font = page.fitted(office_text, 72, page.content_width)
    band = s(80) + page.line_height(title) + s(20) + page.line_height(office_font) + s(60)
    page.draw.rectangle((0, 0, page.width, band), fill=ACCENT)
    y = s(80)
    y = page.centred(title.text, title.font, y, WHITE, bold=True)
    y = page.centred(office_text, office_font.font, y + s(20), WHITE)

    # The lane: its name in the sign's language, big, the other language under it.
    first, second = (lane.name_en, lane.name_zh) if lang == "en" else (lane.name_zh, lane.name_en)
    first, second = first or second, second if first else ""
    y = band + s(80)
    big = 220 if lang == "zh" else 170
    y = page.paragraph(first, big, y, INK, bold=True, max_lines=3, minimum=100)
    if second and second != first:
        y = page.paragraph(second, 96, y + s(16), INK)
    facts = plain(lang, "sign.community", community=lane.community) if lane.community else ""
    code = plain(lang, "sign.lane_code", lane_id=lane.id)
    y = page.paragraph(f"{facts} · {code}" if facts else code, 60, y + s(24), GREY)

    y += s(50)
    page.draw.rectangle((page.margin, y, page.width - page.margin, y + s(8)), fill=ACCENT)
    y += s(8) + s(50)

    # The chief's role (and name, when given) and the four duties.
    heading = (
        plain(lang, "sign.chief_named", role=role, name=name)
        if name
        else plain(lang, "sign.duties_heading", role=role)
    )
    y = page.paragraph(heading, 96, y, INK, bold=True) + s(30)
    y = _duties(page, lang, y)

    # How to report, the QR code and the link under it; the footer at the bottom.
    footer = page.fitted(plain(lang, "sign.footer", district=district_name), 46, page.content_width)
    link_font = page.fitted(link.removeprefix("https://"), 50, page.content_width)
    how_font, how_lines = page.fit_lines(plain(lang, "sign.how"), 54, 2, minimum=40)
    scan = page.fitted(plain(lang, "sign.scan"), 104, page.content_width, minimum=70)
    bottom = page.height - s(110) - page.line_height(footer)
    below_qr = len(how_lines) * page.line_height(how_font) + page.line_height(link_font) + s(20)
    y += s(60)
    y = page.centred(scan.text, scan.font, y, ACCENT, bold=True)
    qr_side = min(s(1350), bottom - s(50) - below_qr - y, page.content_width)
    qr = _qr_image(link, qr_side)
    page.image.paste(qr, ((page.width - qr.width) // 2, y))
    y += qr.height
    for line in how_lines:
        y = page.centred(line, how_font, y, INK)
    page.centred(link_font.text, link_font.font, y + s(20), GREY)

    page.draw.rectangle(
        (page.margin, bottom - s(40), page.width - page.margin, bottom - s(36)), fill=ACCENT
    )
    page.centred(footer.text, footer.font, bottom, GREY)


def _duties(page: _Page, lang: str, y: int) -> int:
    """The four duties as rows, the table centred: the duty's name in a red box, what it
    means beside it."""
    s = page.px
    term_font = page.font(66 if lang == "zh" else 50)
    text_font = page.font(58 if lang == "zh" else 50)
    terms = [plain(lang, f"sign.duty.{d}") for d in DUTIES]
    box_w = max(round(term_font.getlength(t)) for t in terms) + s(56)
    box_h = page.line_height(term_font) + s(20)
    gap = s(40)
    rows = [
        page.wrapped(
            plain(lang, f"sign.duty.{d}_text"), text_font, page.content_width - box_w - gap
        )
        for d in DUTIES
    ]
    text_w = max(round(text_font.getlength(line)) for lines in rows for line in lines)
    x = (page.width - (box_w + gap + text_w)) // 2
    for term, lines in zip(terms, rows, strict=True):
        lines = lines[:3]
        text_h = len(lines) * page.line_height(text_font)
        row_h = max(text_h, box_h)
        box_top = y + (row_h - box_h) // 2
        page.draw.rounded_rectangle(
            (x, box_top, x + box_w, box_top + box_h), radius=s(14), fill=ACCENT
        )
        page.centred(term, term_font, box_top + s(10), WHITE, bold=True, centre=x + box_w / 2)
        ty = y + (row_h - text_h) // 2
        for line in lines:
            ty = page.left(line, text_font, x + box_w + gap, ty, INK)
        y += row_h + s(26)
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
    """A white A4 page with text helpers; sizes are given at 300 dpi and scaled."""

    def __init__(self, font_path: Path, dpi: int) -> None:
        self.font_path = font_path
        self.scale = dpi / DEFAULT_DPI
        self.width, self.height = page_size(dpi)
        self.margin = self.px(170)
        self.content_width = self.width - 2 * self.margin
        self.image = Image.new("RGB", (self.width, self.height), WHITE)
        self.draw = ImageDraw.Draw(self.image)
        self._fonts: dict[int, ImageFont.FreeTypeFont] = {}

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
        while size > minimum and self.font(size).getlength(text) > width:
            size = max(minimum, int(size * 0.92))
        return _Fitted(text, self.font(size))

    def line_height(self, font: ImageFont.FreeTypeFont | _Fitted) -> int:
        f = font.font if isinstance(font, _Fitted) else font
        ascent, descent = f.getmetrics()
        return ascent + descent

    def wrapped(self, text: str, font: ImageFont.FreeTypeFont, width: int) -> list[str]:
        return wrap(text, font.getlength, width)

    def fit_lines(
        self, text: str, size: int, max_lines: int, *, minimum: int
    ) -> tuple[ImageFont.FreeTypeFont, list[str]]:
        """The largest font from `size` down to `minimum` that sets `text` in at most
        `max_lines` balanced lines of the content width; at `minimum` the last line is cut
        short with "…"."""
        while True:
            font = self.font(size)
            lines = balanced_wrap(text, font.getlength, self.content_width)
            if len(lines) <= max_lines:
                return font, lines
            if size <= minimum:
                kept = lines[: max_lines - 1]
                rest = _join(lines[max_lines - 1 :])
                return font, [*kept, ellipsize(rest, font.getlength, self.content_width)]
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
        self._text((x, y + font.getmetrics()[0]), text, font, fill, bold, "ms")
        return y + self.line_height(font)

    def left(
        self, text: str, font: ImageFont.FreeTypeFont, x: int, y: int, fill: tuple[int, int, int]
    ) -> int:
        self._text((x, y + font.getmetrics()[0]), text, font, fill, False, "ls")
        return y + self.line_height(font)

    def _text(
        self,
        xy: tuple[float, float],
        text: str,
        font: ImageFont.FreeTypeFont,
        fill: tuple[int, int, int],
        bold: bool,
        anchor: str,
    ) -> None:
        # The CJK fonts Debian ships have one weight: bold is drawn with a thin outline.
        stroke = max(1, round(font.size / 56)) if bold else 0
        self.draw.text(
            xy, text, font=font, fill=fill, anchor=anchor, stroke_width=stroke, stroke_fill=fill
        )


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


def _join(lines: Sequence[str]) -> str:
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
