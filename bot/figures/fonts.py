"""A font that can draw Chinese, for images the bot makes (street signs, charts).

Debian and Ubuntu ship no CJK font by default, and Pillow's built-in font has no Chinese
glyphs: text drawn without one comes out as empty boxes ("tofu"). `find_cjk_font` looks for
one through fontconfig and at the usual Debian paths and checks that it really draws both
Chinese and Latin text; `require_cjk_font` fails with one line that says what to install.

The project installs none by itself: `apt-get install fonts-wqy-microhei` (1.6 MB, Apache-2.0
or GPL-3 with the font exception) is the smallest good one; `fonts-noto-cjk` is prettier and
larger (56 MB). Droid Sans Fallback (`fonts-droid-fallback`) has no Latin letters, so it fails
the check and is not used. The images do not depend on which one is found: their layout is
worked out from font sizes, not from a font's own line metrics (tests/test_signs.py and
tests/test_digest.py draw them with each of `FAMILIES`).
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from PIL import ImageFont

APT_PACKAGE = "fonts-wqy-microhei"


@dataclass(frozen=True)
class Family:
    """A font looked for at known places, and the Debian package that puts it there."""

    name: str
    package: str
    paths: tuple[str, ...]

    def installed(self) -> Path | None:
        """The first of `paths` that is there and draws Chinese and Latin text."""
        for path in map(Path, self.paths):
            if path.is_file() and draws(path, CJK_SAMPLE + LATIN_SAMPLE):
                return path
        return None


# Best first: faces that cover Simplified Chinese and Latin alike, sans-serif before serif.
FAMILIES: tuple[Family, ...] = (
    Family(
        "Noto Sans CJK",
        "fonts-noto-cjk",
        (
            "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
            "/usr/share/fonts/opentype/noto/NotoSansCJKsc-Regular.otf",
            "/usr/share/fonts/truetype/noto/NotoSansCJK-Regular.ttc",
            # Adobe's name for the same glyphs and metrics (not packaged by Debian).
            "/usr/share/fonts/opentype/source-han-sans/SourceHanSansSC-Regular.otf",
        ),
    ),
    Family(
        "WenQuanYi Micro Hei",
        "fonts-wqy-microhei",
        ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",),
    ),
    Family(
        "WenQuanYi Zen Hei", "fonts-wqy-zenhei", ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",)
    ),
    Family("AR PL UMing", "fonts-arphic-uming", ("/usr/share/fonts/truetype/arphic/uming.ttc",)),
)
KNOWN_PATHS: tuple[str, ...] = tuple(path for family in FAMILIES for path in family.paths)
# Order for fonts fontconfig reports that are not in KNOWN_PATHS: the first word a file name
# contains decides; names with none of them come last.
_PREFERENCE = ("notosanscjk", "sourcehansans", "microhei", "zenhei", "cjk", "han")

# Checked before a font is used: the characters a sign needs most, in both scripts.
CJK_SAMPLE = "街巷长公示牌扫码随手拍"
LATIN_SAMPLE = "Street Aa1"


class FontMissing(RuntimeError):
    """No font that can draw Chinese is installed."""

    def __init__(self) -> None:
        super().__init__(
            "No font that can draw Chinese was found: install one with "
            f"`apt-get install {APT_PACKAGE}` (or pass a .ttf/.ttc/.otf with Chinese glyphs)."
        )


def find_cjk_font() -> Path | None:
    """The path of an installed font that draws Chinese and Latin text, or None."""
    return _find()


def require_cjk_font() -> Path:
    """Like `find_cjk_font`, but raises `FontMissing` (naming the package) when none is found."""
    path = find_cjk_font()
    if path is None:
        raise FontMissing
    return path


def forget() -> None:
    """Look again on the next call (after a font was installed)."""
    _find.cache_clear()
    face_index.cache_clear()


@cache
def _find() -> Path | None:
    for candidate in _candidates():
        if candidate.is_file() and draws(candidate, CJK_SAMPLE + LATIN_SAMPLE):
            return candidate
    return None


def _candidates() -> list[Path]:
    known = [Path(p) for p in KNOWN_PATHS]
    reported = [p for p in _fontconfig_chinese() if p not in known]
    reported.sort(key=_rank)
    return known + reported


def _rank(path: Path) -> tuple[int, str]:
    name = path.name.lower().replace("-", "").replace("_", "")
    for i, word in enumerate(_PREFERENCE):
        if word in name:
            return i, str(path)
    return len(_PREFERENCE), str(path)


def _fontconfig_chinese() -> list[Path]:
    """Files fontconfig says cover Chinese; empty without fontconfig."""
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return []
    try:
        out = subprocess.run(
            [fc_list, ":lang=zh", "file"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    files = {line.strip().rstrip(":").strip() for line in out.splitlines()}
    return [Path(f) for f in sorted(files) if f]


@cache
def face_index(path: Path) -> int:
    """In a collection (.ttc), the Simplified Chinese face when there is one, else the first."""
    if path.suffix.lower() != ".ttc":
        return 0
    for index in range(32):
        try:
            family = ImageFont.truetype(str(path), 16, index=index).getname()[0] or ""
        except OSError:
            break
        if family.endswith(" SC") or " SC " in family:
            return index
    return 0


def load(path: Path, size: int) -> ImageFont.FreeTypeFont:
    """`path` at `size` pixels, the Simplified Chinese face of a collection."""
    return ImageFont.truetype(str(path), size, index=face_index(path))


def draws(path: Path, text: str) -> bool:
    """Whether the font at `path` has a glyph for every non-space character of `text`.

    A missing glyph is drawn as the font's .notdef (a box or nothing); a character is taken to
    be missing when it draws exactly like a character no font has.
    """
    try:
        font = load(path, 48)
    except OSError:
        return False
    notdef = _bitmap(font, "\U0010fffd")
    for ch in set(text):
        if ch.isspace():
            continue
        drawn = _bitmap(font, ch)
        if drawn == notdef or not drawn[1].strip(b"\x00"):
            return False
    return True


def _bitmap(font: ImageFont.FreeTypeFont, ch: str) -> tuple[tuple[int, int], bytes]:
    mask = font.getmask(ch)
    return mask.size, bytes(mask)
