"""Photo intake: validate by content, strip metadata, store by hash.

Residents' photos may carry their home location, phone serial numbers or hostile payloads, so
nothing is kept as sent: the pixels are decoded, checked and re-encoded into a bare JPEG.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache, partial
from pathlib import Path, PurePosixPath
from typing import Any, Final, Literal, get_args

import pillow_heif
from PIL import ExifTags, Image, ImageCms, ImageFile

from storage.files import write_atomically

log = logging.getLogger(__name__)

# HEIC is what iPhones send when a photo goes as a file; the opener makes Pillow read it.
pillow_heif.register_heif_opener()

RejectReason = Literal[
    "empty", "too_large", "not_image", "unsupported_format", "corrupt", "too_many_pixels"
]
REJECT_REASONS: Final[frozenset[str]] = frozenset(get_args(RejectReason))

ACCEPTED_FORMATS: Final[frozenset[str]] = frozenset({"JPEG", "PNG", "WEBP", "HEIF"})

MAX_SIDE: Final = 2560  # longest side kept: enough to read a plate or a sign, bounded storage
# JPEG is decoded at 1/2, 1/4 or 1/8 scale when big (see _open_checked): a 50 Mpx JPEG peaks
# at about 100 MB. PNG, WebP and HEIC are decoded whole, into 4 bytes a pixel (Pillow keeps RGB
# as RGBX, like RGBA), and a decode holds more than that image at its peak. Measured at 25 Mpx,
# bytes a pixel over the process's size before: 6 for an RGB PNG, 7 for HEIC or a palette PNG,
# 10 for an RGBA or 16-bit PNG (the premultiplied or 32-bit copy), 16 to 19 for WebP (libwebp's
# canvas, its copy as bytes and Pillow's image at once). So 25 Mpx costs at most about 450 MB a
# decode, and still takes a 24 Mpx HEIC (5712 x 4284, what recent iPhones shoot by default)
# sent as a file; at 50 Mpx one WebP would cost 900 MB.
MAX_NON_JPEG_PIXELS: Final = 25_000_000
JPEG_QUALITY: Final = 88

_HEIF_BRANDS: Final = frozenset(
    {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"}
)
_HEIF_GENERIC_BRANDS: Final = frozenset({b"mif1", b"msf1"})
_UNSUPPORTED_ISOBMFF_BRANDS: Final = frozenset({b"avif", b"avis", b"crx "})
_TIFF_SIGNATURES: Final = (b"II*\x00", b"MM\x00*")
_UNSUPPORTED_SIGNATURES: Final = (
    b"GIF87a",
    b"GIF89a",
    *_TIFF_SIGNATURES,  # also DNG and most camera raw files
    b"8BPS",  # Photoshop
    b"\x00\x00\x01\x00",  # ICO
    b"\xff\x0a",  # JPEG XL codestream
    b"\x00\x00\x00\x0cJXL \r\n\x87\n",  # JPEG XL container
    b"\x00\x00\x00\x0cjP  \r\n\x87\n",  # JPEG 2000
    b"\xff\x4f\xff\x51",  # JPEG 2000 codestream
    b"qoif",
)
_BMP_HEADER_SIZES: Final = frozenset({12, 16, 40, 52, 56, 64, 108, 124})


class PhotoRejected(Exception):
    """The upload is not a photo we will store; `reason` picks the message shown to the user."""

    reason: RejectReason

    def __init__(self, reason: RejectReason, detail: str = "") -> None:
        if reason not in REJECT_REASONS:
            raise ValueError(f"unknown PhotoRejected reason {reason!r}")
        super().__init__(detail or reason)
        self.reason = reason
        self.detail = detail

    def __reduce__(self) -> tuple[type[PhotoRejected], tuple[RejectReason, str]]:
        # Keeps the reason when pickled (e.g. across a process pool).
        return (type(self), (self.reason, self.detail))


@dataclass(frozen=True)
class ProcessedPhoto:
    """What was stored and what the caller needs for deduplication and location."""

    sha256: str  # of the original bytes: the same file sent twice
    path: str  # relative to media_dir, named by the sha256 of the stored bytes
    size: int  # stored bytes
    width: int  # of the stored image, after EXIF rotation and downscaling
    height: int
    phash: str  # 64-bit difference hash, 16 lowercase hex chars
    gps: tuple[float, float] | None  # (lat, lon) WGS84 from EXIF
    format: str  # detected source format, one of ACCEPTED_FORMATS


def sniff_format(data: bytes) -> str:
    """Name the format from magic bytes alone, so Pillow only ever runs the matching parser.

    Returns an ACCEPTED_FORMATS name; raises PhotoRejected otherwise.
    """
    if not data:
        raise PhotoRejected("empty", "0 bytes")
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[4:8] == b"ftyp":
        return _sniff_isobmff(data)
    if data.startswith(_UNSUPPORTED_SIGNATURES) or _looks_like_bmp(data) or _looks_like_svg(data):
        raise PhotoRejected("unsupported_format", f"image format not accepted: {data[:12]!r}")
    raise PhotoRejected("not_image", f"unrecognised content: {data[:12]!r}")


def _sniff_isobmff(data: bytes) -> str:
    """HEIC shares its container with MP4 and AVIF: tell them apart by the ftyp brands."""
    box_size = int.from_bytes(data[:4], "big")
    major = data[8:12]
    end = min(box_size, len(data), 4096) if box_size >= 16 else 16
    compatible = {data[i : i + 4] for i in range(16, end - 3, 4)}
    brands = {major} | compatible
    if major in _HEIF_BRANDS or (major in _HEIF_GENERIC_BRANDS and brands & _HEIF_BRANDS):
        return "HEIF"
    if brands & _UNSUPPORTED_ISOBMFF_BRANDS:
        raise PhotoRejected("unsupported_format", f"ISO-BMFF image brand {major!r}")
    if major in _HEIF_GENERIC_BRANDS:
        # A HEIF whose codec is not declared: let libheif decide, it fails cleanly if foreign.
        return "HEIF"
    raise PhotoRejected("not_image", f"ISO-BMFF brand {major!r} (video or other media)")


def _looks_like_bmp(data: bytes) -> bool:
    return data[:2] == b"BM" and int.from_bytes(data[14:18], "little") in _BMP_HEADER_SIZES


def _looks_like_svg(data: bytes) -> bool:
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return head.startswith((b"<svg", b"<?xml")) and b"<svg" in head


def process_image(
    data: bytes,
    media_dir: Path,
    *,
    max_bytes: int = 20 * 1024 * 1024,
    max_pixels: int = 50_000_000,
    max_non_jpeg_pixels: int = MAX_NON_JPEG_PIXELS,
) -> ProcessedPhoto:
    """Validate, normalise and store one photo; CPU-bound and memory-hungry, so the bot calls
    it through `process_in_turn`.

    The effective pixel limit is also bounded by Pillow's global `Image.MAX_IMAGE_PIXELS` * 2.
    """
    if not data:
        raise PhotoRejected("empty", "0 bytes")
    if len(data) > max_bytes:
        raise PhotoRejected("too_large", f"{len(data)} bytes > {max_bytes}")
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        # Process-wide switch: with it on, half-received photos would be stored as grey smears.
        raise RuntimeError("PIL.ImageFile.LOAD_TRUNCATED_IMAGES is True; refusing to decode photos")
    fmt = sniff_format(data)
    original_sha = hashlib.sha256(data).hexdigest()

    limit = max_pixels if fmt == "JPEG" else min(max_pixels, max_non_jpeg_pixels)
    with _open_checked(data, fmt, limit) as img:
        gps = _read_gps(img)
        pixels = _normalise(img)

    stored = _encode_jpeg(pixels)
    stored_sha = hashlib.sha256(stored).hexdigest()
    rel_path = f"{stored_sha[:2]}/{stored_sha}.jpg"
    write_atomically(media_dir / rel_path, stored, content_addressed=True)
    return ProcessedPhoto(
        sha256=original_sha,
        path=rel_path,
        size=len(stored),
        width=pixels.width,
        height=pixels.height,
        phash=_dhash(pixels),
        gps=gps,
        format=fmt,
    )


async def process_in_turn(
    data: bytes, media_dir: Path, *, decoders: int, **limits: int
) -> ProcessedPhoto:
    """`process_image` on one of this process's `decoders` threads, after the photos before it.

    The memory a process can spend on photos is `decoders` decodes at their peak (see
    MAX_NON_JPEG_PIXELS), however many residents send one at once; the others wait here.
    """
    loop = asyncio.get_running_loop()
    work = partial(process_image, data, media_dir, **limits)
    return await loop.run_in_executor(_decoder_threads(decoders), work)


@cache
def _decoder_threads(decoders: int) -> ThreadPoolExecutor:
    # Threads rather than a semaphore in front of the default executor: also bounds how many
    # threads' malloc arenas ever hold a decode's freed memory, and binds to no event loop.
    return ThreadPoolExecutor(max_workers=decoders, thread_name_prefix="photo-decode")


def _open_checked(data: bytes, fmt: str, max_pixels: int) -> ImageFile.ImageFile:
    """Open with only the sniffed format's parser, check the pixel count, then decode."""
    try:
        img = Image.open(io.BytesIO(data), formats=[fmt])
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # The warning arrives as an exception only where warnings are errors (-W error).
        raise PhotoRejected("too_many_pixels", str(exc)) from exc
    except Exception as exc:  # any parser failure on untrusted input means unusable bytes
        raise PhotoRejected("corrupt", f"{fmt} header unreadable: {exc!r}") from exc
    try:
        if img.format != fmt:
            raise PhotoRejected("corrupt", f"sniffed {fmt}, Pillow read {img.format}")
        width, height = img.size
        if width <= 0 or height <= 0:
            raise PhotoRejected("corrupt", f"bad dimensions {width}x{height}")
        if width * height > max_pixels:
            raise PhotoRejected(
                "too_many_pixels", f"{width}x{height} = {width * height} px > {max_pixels}"
            )
        if fmt == "JPEG" and max(width, height) > MAX_SIDE:
            # Let libjpeg decode at 1/2, 1/4 or 1/8 scale: far less memory and time.
            scale = MAX_SIDE / max(width, height)
            img.draft(None, (math.ceil(width * scale), math.ceil(height * scale)))
        img.load()
    except PhotoRejected:
        img.close()
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        img.close()
        raise PhotoRejected("too_many_pixels", str(exc)) from exc
    except Exception as exc:  # truncated data, bad Huffman tables, libheif errors, ...
        img.close()
        raise PhotoRejected("corrupt", f"{fmt} did not decode: {exc!r}") from exc
    return img


def _read_gps(img: Image.Image) -> tuple[float, float] | None:
    """(lat, lon) from the EXIF GPS IFD; malformed metadata is ignored, never fatal."""
    try:
        gps_ifd = img.getexif().get_ifd(ExifTags.IFD.GPSInfo)
        if not gps_ifd:
            return None
        lat = _gps_coordinate(
            gps_ifd.get(ExifTags.GPS.GPSLatitude), gps_ifd.get(ExifTags.GPS.GPSLatitudeRef), "NS"
        )
        lon = _gps_coordinate(
            gps_ifd.get(ExifTags.GPS.GPSLongitude), gps_ifd.get(ExifTags.GPS.GPSLongitudeRef), "EW"
        )
    except Exception as exc:  # hostile or broken EXIF must not cost the resident their report
        log.debug("unreadable EXIF GPS: %r", exc)
        return None
    if lat is None or lon is None:
        return None
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0) or (lat == 0.0 and lon == 0.0):
        return None  # (0, 0) is what broken phones write when they had no fix
    return (lat, lon)


def _gps_coordinate(value: object, ref: object, refs: str) -> float | None:
    """Degrees from EXIF (deg, min, sec) rationals; the ref letter gives the sign."""
    if isinstance(ref, bytes):
        ref = ref.decode("ascii", "replace")
    if not isinstance(ref, str):
        return None
    ref = ref.strip("\x00 ").upper()
    if ref not in refs:
        return None
    parts: Sequence[Any] = value if isinstance(value, tuple | list) else (value,)
    if not 1 <= len(parts) <= 3:
        return None
    numbers = [float(p) for p in parts]
    if any(not math.isfinite(n) or n < 0 for n in numbers):
        return None
    degrees = sum(n / 60.0**i for i, n in enumerate(numbers))
    return -degrees if ref == refs[1] else degrees


def _normalise(img: Image.Image) -> Image.Image:
    """Upright, at most MAX_SIDE, sRGB, alpha flattened onto white: the pixels we keep.

    Turned upright only once downscaled: ImageOps.exif_transpose on the decoded image would copy
    it whole (even when nothing needs turning), a second full-size image at the decode's peak.
    """
    icc = img.info.get("icc_profile")
    turn = _upright_turn(img)
    upright: Image.Image = img

    if upright.mode in ("I", "F") or upright.mode.startswith("I;16"):
        # 16-bit greyscale: Pillow's plain convert() would clip everything above 255 to white.
        upright = upright.convert("I").point(lambda v: v / 256).convert("L")
    elif upright.mode in ("P", "PA", "1", "La", "RGBa") or "transparency" in upright.info:
        has_alpha = upright.mode in ("PA", "La", "RGBa") or "transparency" in upright.info
        upright = upright.convert("RGBA" if has_alpha else "RGB")

    longest = max(upright.size)
    if longest > MAX_SIDE:
        scale = MAX_SIDE / longest
        new_size = (
            max(1, round(upright.width * scale)),
            max(1, round(upright.height * scale)),
        )
        upright = upright.resize(new_size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    if turn is not None:
        upright = upright.transpose(turn)

    if isinstance(icc, bytes) and icc and upright.mode in ("RGB", "RGBA", "CMYK", "L"):
        upright = _to_srgb(upright, icc)

    if upright.mode in ("RGBA", "LA"):
        rgba = upright.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        flat = Image.alpha_composite(white, rgba).convert("RGB")
    else:
        flat = upright.convert("RGB")
    # A brand-new image: nothing from the source's info (EXIF, XMP, ICC, comments) can follow.
    clean = Image.new("RGB", flat.size)
    clean.paste(flat)
    return clean


_TURNS: Final = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _upright_turn(img: Image.Image) -> Image.Transpose | None:
    """The turn the EXIF (or XMP) orientation asks for, as ImageOps.exif_transpose reads it."""
    try:
        return _TURNS.get(img.getexif().get(ExifTags.Base.Orientation, 1))
    except Exception as exc:  # a bad orientation tag should not lose the photo
        log.debug("EXIF orientation ignored: %r", exc)
        return None


def _to_srgb(img: Image.Image, icc: bytes) -> Image.Image:
    """Convert through the embedded profile, since the profile itself is about to be dropped.

    iPhones shoot in Display P3; without this their photos would look washed out.
    """
    out_mode = "RGBA" if img.mode == "RGBA" else "RGB"
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        converted = ImageCms.profileToProfile(
            img, source, ImageCms.createProfile("sRGB"), outputMode=out_mode
        )
    except Exception as exc:  # a broken or mismatched profile: keep the raw values
        log.debug("ICC profile ignored: %r", exc)
        return img
    return converted if converted is not None else img


def _encode_jpeg(img: Image.Image) -> bytes:
    """Bare baseline JPEG: no EXIF, ICC, XMP or comment is passed, and the image carries none."""
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=JPEG_QUALITY, optimize=True)
    return buf.getvalue()


def _dhash(img: Image.Image) -> str:
    """Difference hash: survives re-encoding and resizing, so re-sent photos can be spotted."""
    small = img.convert("L").resize((9, 8), Image.Resampling.LANCZOS, reducing_gap=2.0)
    px = small.tobytes()
    bits = 0
    for row in range(8):
        for col in range(8):
            left, right = px[row * 9 + col], px[row * 9 + col + 1]
            bits = (bits << 1) | (left > right)
    return f"{bits:016x}"


def phash_distance(a: str, b: str) -> int:
    """Hamming distance of two phash strings: 0 identical, ~32 unrelated."""
    if len(a) != 16 or len(b) != 16:
        raise ValueError(f"phash must be 16 hex chars, got {a!r} and {b!r}")
    return (int(a, 16) ^ int(b, 16)).bit_count()


def open_stored(media_dir: Path, path: str) -> bytes:
    """Read a stored photo; `path` comes from the database, so refuse anything leaving media_dir.

    Raises ValueError for a refused path and FileNotFoundError for a missing file.
    """
    parts = path.split("/")
    if (
        not path
        or "\x00" in path
        or "\\" in path
        or PurePosixPath(path).is_absolute()
        or any(part in ("", ".", "..") for part in parts)
    ):
        raise ValueError(f"refused stored path {path!r}")
    base = media_dir.resolve()
    target = (base / path).resolve()
    if not target.is_relative_to(base) or target == base:
        raise ValueError(f"stored path {path!r} escapes media_dir")
    return target.read_bytes()


__all__ = [
    "ACCEPTED_FORMATS",
    "MAX_NON_JPEG_PIXELS",
    "REJECT_REASONS",
    "PhotoRejected",
    "ProcessedPhoto",
    "RejectReason",
    "open_stored",
    "phash_distance",
    "process_image",
    "process_in_turn",
    "sniff_format",
]
