"""Photo intake: every input is generated here with Pillow/pillow_heif, no binary fixtures."""

from __future__ import annotations

import io
import random
import struct
import threading
import warnings
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, cast

import pillow_heif
import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest
from aiogram.methods import GetFile
from aiogram.types import File
from PIL import ExifTags, Image, ImageCms, ImageDraw, ImageFile
from PIL.TiffImagePlugin import IFDRational

from bot.domain.photos import (
    ACCEPTED_FORMATS,
    MAX_NON_JPEG_PIXELS,
    MAX_SIDE,
    PhotoRejected,
    ProcessedPhoto,
    open_stored,
    phash_distance,
    process_image,
)
from bot.telegram.files import download

HEIF_CAN_ENCODE = bool(pillow_heif.libheif_info().get("HEIF"))
needs_heif_encoder = pytest.mark.skipif(
    not HEIF_CAN_ENCODE, reason="this libheif build has no HEVC encoder, so no HEIC can be made"
)


# --- helpers -----------------------------------------------------------------------------------


def _dms(value: float) -> tuple[IFDRational, IFDRational, IFDRational]:
    value = abs(value)
    degrees = int(value)
    minutes_full = (value - degrees) * 60
    minutes = int(minutes_full)
    seconds = round((minutes_full - minutes) * 60 * 10_000)
    return IFDRational(degrees, 1), IFDRational(minutes, 1), IFDRational(seconds, 10_000)


def _exif(
    *,
    gps: tuple[float, float] | None = None,
    orientation: int | None = None,
    gps_ifd: dict[int, Any] | None = None,
) -> bytes:
    """EXIF as a phone writes it: maker, model, serial, software, time and location."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "Xiaomi"
    exif[ExifTags.Base.Model] = "Redmi Note 13 Pro"
    exif[ExifTags.Base.Software] = "MIUI Camera"
    exif[ExifTags.Base.DateTime] = "2026:11:20 08:15:00"
    if orientation is not None:
        exif[ExifTags.Base.Orientation] = orientation
    sub = exif.get_ifd(ExifTags.IFD.Exif)
    sub[ExifTags.Base.BodySerialNumber] = "SN-0042-SECRET"
    sub[ExifTags.Base.LensMake] = "Xiaomi"
    if gps is not None:
        lat, lon = gps
        ifd = exif.get_ifd(ExifTags.IFD.GPSInfo)
        ifd[ExifTags.GPS.GPSLatitudeRef] = "N" if lat >= 0 else "S"
        ifd[ExifTags.GPS.GPSLatitude] = _dms(lat)
        ifd[ExifTags.GPS.GPSLongitudeRef] = "E" if lon >= 0 else "W"
        ifd[ExifTags.GPS.GPSLongitude] = _dms(lon)
    if gps_ifd is not None:
        exif.get_ifd(ExifTags.IFD.GPSInfo).update(gps_ifd)
    return exif.tobytes()


def _scene(seed: int, size: tuple[int, int] = (800, 600)) -> Image.Image:
    """A busy, photo-like picture: different seeds give unrelated pictures."""
    rng = random.Random(seed)
    img = Image.linear_gradient("L").resize(size).convert("RGB")
    draw = ImageDraw.Draw(img)
    w, h = size
    for _ in range(40):
        x0, y0 = rng.randrange(w), rng.randrange(h)
        x1, y1 = x0 + rng.randrange(4, max(5, w // 2)), y0 + rng.randrange(4, max(5, h // 2))
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape((x0, y0, x1, y1), fill=colour)
    return img


def _encode(img: Image.Image, fmt: str, **params: Any) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **params)
    return buf.getvalue()


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares a size but holds no real pixel data: a cheap decompression bomb."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def _s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def _xyz_tag(x: float, y: float, z: float) -> bytes:
    return b"XYZ \0\0\0\0" + _s15(x) + _s15(y) + _s15(z)


def _display_p3_icc() -> bytes:
    """A minimal ICC v2 matrix/TRC profile with Display P3 primaries, as iPhones tag photos."""
    curve = b"curv\0\0\0\0" + struct.pack(">IH", 1, round(2.2 * 256)) + b"\0\0"
    tags = [
        (b"wtpt", _xyz_tag(0.9642, 1.0, 0.8249)),
        (b"rXYZ", _xyz_tag(0.5151, 0.2412, -0.0011)),
        (b"gXYZ", _xyz_tag(0.2920, 0.6922, 0.0419)),
        (b"bXYZ", _xyz_tag(0.1571, 0.0666, 0.7841)),
        (b"rTRC", curve),
        (b"gTRC", curve),
        (b"bTRC", curve),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table = body = b""
    for sig, data in tags:
        table += sig + struct.pack(">II", offset + len(body), len(data))
        body += data
    header = (
        struct.pack(">I", offset + len(body))
        + b"\0" * 4
        + struct.pack(">I", 0x02100000)
        + b"mntrRGB XYZ "
        + b"\0" * 12
        + b"acsp"
        + b"\0" * 28
        + _xyz_tag(0.9642, 1.0, 0.8249)[8:]
        + b"\0" * 48
    )
    return header + struct.pack(">I", len(tags)) + table + body


def _jpeg_segments(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(marker, payload) of every segment before the scan data."""
    assert data[:2] == b"\xff\xd8"
    pos = 2
    while pos < len(data):
        assert data[pos] == 0xFF, f"lost sync at {pos}"
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        length = struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        yield marker, data[pos + 4 : pos + 2 + length]
        if marker == 0xDA:  # start of scan: entropy-coded data follows
            return
        pos += 2 + length


def _assert_bare_jpeg(data: bytes) -> None:
    """No metadata at all survives: only JFIF APP0 and the coding segments."""
    for marker, payload in _jpeg_segments(data):
        assert marker != 0xFE, "COM comment segment present"
        if 0xE0 <= marker <= 0xEF:
            assert marker == 0xE0 and payload.startswith(b"JFIF\x00"), (
                f"APP{marker - 0xE0} segment present: {payload[:30]!r}"
            )
    for needle in (b"Exif", b"Xiaomi", b"Redmi", b"SN-0042", b"http://ns.adobe.com", b"ICC_"):
        assert needle not in data, needle
    with Image.open(io.BytesIO(data)) as img:
        assert img.format == "JPEG"
        assert img.mode == "RGB"
        assert len(img.getexif()) == 0
        for key in ("exif", "icc_profile", "xmp", "comment", "photoshop", "adobe"):
            assert key not in img.info, key


def _stored(media: Path, photo: ProcessedPhoto) -> Image.Image:
    img = Image.open(media / photo.path)
    img.load()
    return img


def _close(a: tuple[int, ...], b: tuple[int, ...], tol: int = 12) -> bool:
    return all(abs(x - y) <= tol for x, y in zip(a, b, strict=True))


@pytest.fixture
def media(tmp_path: Path) -> Path:
    return tmp_path / "media"


# --- accepted formats, GPS, rotation, stripping -------------------------------------------------

GPS_CASES = [
    pytest.param((39.921_234, 116.443_210), id="beijing-NE"),
    pytest.param((-33.856_784, -151.215_297), id="SW"),
    pytest.param((40.0, -74.5), id="NW"),
]


@pytest.mark.parametrize("coords", GPS_CASES)
def test_jpeg_gps_read_with_refs(media: Path, coords: tuple[float, float]) -> None:
    data = _encode(_scene(1), "JPEG", exif=_exif(gps=coords))
    photo = process_image(data, media)
    assert photo.format == "JPEG"
    assert photo.gps is not None
    assert photo.gps[0] == pytest.approx(coords[0], abs=1e-5)
    assert photo.gps[1] == pytest.approx(coords[1], abs=1e-5)


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", pytest.param("HEIF", marks=needs_heif_encoder)])
def test_gps_read_from_other_formats(media: Path, fmt: str) -> None:
    coords = (39.9087, 116.3975)
    data = _encode(_scene(2, (320, 240)), fmt, exif=_exif(gps=coords))
    photo = process_image(data, media)
    assert photo.format == fmt
    assert photo.gps == pytest.approx(coords, abs=1e-5)


@pytest.mark.parametrize(
    ("gps_ifd", "why"),
    [
        ({}, "no GPS at all"),
        (
            {1: "N", 2: (0.0, 0.0, 0.0), 3: "E", 4: (0.0, 0.0, 0.0)},
            "0,0 is a phone without a fix",
        ),
        ({1: "N", 2: (95.0, 0.0, 0.0), 3: "E", 4: (116.0, 0.0, 0.0)}, "latitude out of range"),
        ({1: "N", 2: (39.0, 0.0, 0.0), 3: "E", 4: (190.0, 0.0, 0.0)}, "longitude out of range"),
        ({2: (39.0, 54.0, 0.0), 3: "E", 4: (116.0, 0.0, 0.0)}, "no latitude ref"),
        ({1: "Q", 2: (39.0, 54.0, 0.0), 3: "E", 4: (116.0, 0.0, 0.0)}, "bad ref"),
        ({1: "N", 3: "E", 4: (116.0, 0.0, 0.0)}, "no latitude"),
        (
            {1: "N", 2: (IFDRational(39, 0), 0.0, 0.0), 3: "E", 4: (116.0, 0.0, 0.0)},
            "zero denominator",
        ),
    ],
)
def test_gps_absent_or_invalid_is_none(media: Path, gps_ifd: dict[int, Any], why: str) -> None:
    data = _encode(_scene(3, (200, 150)), "JPEG", exif=_exif(gps_ifd=gps_ifd))
    assert process_image(data, media).gps is None, why


def test_orientation_6_is_applied(media: Path) -> None:
    # Stored sideways, as a phone held upright writes it: left half red, right half blue.
    img = Image.new("RGB", (400, 200), (255, 0, 0))
    img.paste((0, 0, 255), (200, 0, 400, 200))
    data = _encode(img, "JPEG", quality=95, exif=_exif(orientation=6))
    photo = process_image(data, media)
    assert (photo.width, photo.height) == (200, 400)
    stored = _stored(media, photo)
    assert stored.size == (200, 400)
    # Rotated 90° clockwise for display: the left (red) edge is now the top.
    assert _close(stored.getpixel((100, 50)), (255, 0, 0))  # type: ignore[arg-type]
    assert _close(stored.getpixel((100, 350)), (0, 0, 255))  # type: ignore[arg-type]
    assert len(stored.getexif()) == 0


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_orientation_applied_to_a_photo_downscaled_first(media: Path, fmt: str) -> None:
    # Turned once small (the full-size pixels are never copied to be turned): same result.
    img = Image.new("RGB", (5200, 1000), (255, 0, 0))
    img.paste((0, 0, 255), (2600, 0, 5200, 1000))
    photo = process_image(_encode(img, fmt, exif=_exif(orientation=6)), media)
    assert (photo.width, photo.height) == (492, MAX_SIDE)
    stored = _stored(media, photo)
    assert _close(stored.getpixel((246, 200)), (255, 0, 0), tol=30)  # type: ignore[arg-type]
    assert _close(stored.getpixel((246, 2360)), (0, 0, 255), tol=30)  # type: ignore[arg-type]


def test_stored_jpeg_has_no_metadata(media: Path) -> None:
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    xmp = (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://ns.adobe.com/x"/>'
        b"<tiff:Make>Xiaomi</tiff:Make></x:xmpmeta>"
    )
    data = _encode(
        _scene(4),
        "JPEG",
        exif=_exif(gps=(39.9, 116.4), orientation=1),
        icc_profile=icc,
        xmp=xmp,
        comment=b"shot by SN-0042-SECRET",
    )
    # The source really carried it all, so the test below proves the stripping.
    with Image.open(io.BytesIO(data)) as src:
        assert {"exif", "icc_profile", "xmp", "comment"} <= src.info.keys()
    photo = process_image(data, media)
    assert photo.gps == pytest.approx((39.9, 116.4), abs=1e-5)
    stored_bytes = (media / photo.path).read_bytes()
    _assert_bare_jpeg(stored_bytes)
    assert photo.size == len(stored_bytes)


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", pytest.param("HEIF", marks=needs_heif_encoder)])
def test_other_formats_stored_bare(media: Path, fmt: str) -> None:
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = _encode(_scene(5, (300, 200)), fmt, exif=_exif(gps=(39.9, 116.4)), icc_profile=icc)
    photo = process_image(data, media)
    _assert_bare_jpeg((media / photo.path).read_bytes())


def test_png_alpha_flattened_on_white(media: Path) -> None:
    img = Image.new("RGBA", (64, 32), (0, 0, 0, 0))
    img.paste((200, 30, 30, 255), (32, 0, 64, 32))
    photo = process_image(_encode(img, "PNG"), media)
    assert photo.format == "PNG"
    assert (photo.width, photo.height) == (64, 32)
    stored = _stored(media, photo)
    assert _close(stored.getpixel((8, 16)), (255, 255, 255))  # type: ignore[arg-type]
    assert _close(stored.getpixel((56, 16)), (200, 30, 30))  # type: ignore[arg-type]


def test_palette_png_with_transparency(media: Path) -> None:
    img = Image.new("P", (32, 32), 0)
    img.putpalette([0, 0, 0, 0, 128, 0] + [0] * 762)
    img.paste(1, (16, 0, 32, 32))
    photo = process_image(_encode(img, "PNG", transparency=0), media)
    stored = _stored(media, photo)
    assert _close(stored.getpixel((4, 16)), (255, 255, 255))  # type: ignore[arg-type]
    assert _close(stored.getpixel((28, 16)), (0, 128, 0))  # type: ignore[arg-type]


def test_16bit_greyscale_png_is_scaled_not_clipped(media: Path) -> None:
    img = Image.new("I;16", (16, 16), 40_000)
    photo = process_image(_encode(img, "PNG"), media)
    value = _stored(media, photo).getpixel((8, 8))
    assert _close(value, (156, 156, 156), tol=3)  # type: ignore[arg-type]


def test_cmyk_jpeg_becomes_rgb(media: Path) -> None:
    img = Image.new("CMYK", (32, 32), (0, 255, 255, 0))  # red ink-wise
    photo = process_image(_encode(img, "JPEG"), media)
    stored = _stored(media, photo)
    assert stored.mode == "RGB"
    assert _close(stored.getpixel((16, 16)), (255, 0, 0), tol=20)  # type: ignore[arg-type]


@pytest.mark.parametrize("lossless", [False, True])
def test_webp(media: Path, lossless: bool) -> None:
    img = _scene(6, (320, 200)).convert("RGBA")
    img.putpixel((0, 0), (0, 0, 0, 0))
    photo = process_image(_encode(img, "WEBP", lossless=lossless), media)
    assert photo.format == "WEBP"
    assert (photo.width, photo.height) == (320, 200)


@needs_heif_encoder
def test_heic_with_orientation_is_turned_once(media: Path) -> None:
    img = Image.new("RGB", (400, 200), (255, 0, 0))
    img.paste((0, 0, 255), (200, 0, 400, 200))
    data = _encode(img, "HEIF", quality=90, exif=_exif(orientation=6, gps=(39.95, 116.3)))
    assert data[4:12] == b"ftypheic"
    photo = process_image(data, media)
    assert photo.format == "HEIF"
    assert photo.gps == pytest.approx((39.95, 116.3), abs=1e-5)
    assert (photo.width, photo.height) == (200, 400)
    stored = _stored(media, photo)
    assert _close(stored.getpixel((100, 50)), (255, 0, 0), tol=30)  # type: ignore[arg-type]
    assert _close(stored.getpixel((100, 350)), (0, 0, 255), tol=30)  # type: ignore[arg-type]


def test_accepted_formats_constant() -> None:
    assert {"JPEG", "PNG", "WEBP", "HEIF"} == ACCEPTED_FORMATS


def test_large_image_downscaled_to_max_side(media: Path) -> None:
    photo = process_image(_encode(_scene(7, (3200, 1200)), "JPEG", quality=80), media)
    assert (photo.width, photo.height) == (MAX_SIDE, 960)
    assert _stored(media, photo).size == (MAX_SIDE, 960)
    tall = process_image(_encode(_scene(8, (900, 2700)), "PNG"), media)
    assert (tall.width, tall.height) == (853, MAX_SIDE)
    # Big enough for libjpeg to decode at half scale first (draft), then resized exactly.
    wide = process_image(_encode(_scene(9, (5200, 1300)), "JPEG", quality=80), media)
    assert (wide.width, wide.height) == (MAX_SIDE, 640)


def test_broken_icc_profile_is_ignored(media: Path) -> None:
    img = Image.new("RGB", (40, 30), (10, 120, 200))
    photo = process_image(_encode(img, "JPEG", icc_profile=b"not a profile" * 10), media)
    stored = _stored(media, photo)
    assert "icc_profile" not in stored.info
    assert _close(stored.getpixel((20, 15)), (10, 120, 200))  # type: ignore[arg-type]


def test_display_p3_converted_to_srgb_before_profile_dropped(media: Path) -> None:
    img = Image.new("RGB", (40, 30), (200, 100, 50))
    photo = process_image(_encode(img, "PNG", icc_profile=_display_p3_icc()), media)
    stored = _stored(media, photo)
    assert "icc_profile" not in stored.info
    # Same numbers in the wider P3 space are a more saturated orange in sRGB terms.
    assert _close(stored.getpixel((20, 15)), (216, 93, 24), tol=6)  # type: ignore[arg-type]


def test_srgb_icc_profile_keeps_colours(media: Path) -> None:
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    img = Image.new("RGB", (40, 30), (10, 120, 200))
    photo = process_image(_encode(img, "PNG", icc_profile=icc), media)
    assert _close(_stored(media, photo).getpixel((20, 15)), (10, 120, 200))  # type: ignore[arg-type]


# --- refusals ----------------------------------------------------------------------------------


def _reject(data: bytes, media: Path, **limits: int) -> str:
    with pytest.raises(PhotoRejected) as info:
        process_image(data, media, **limits)
    assert str(info.value)  # a detail for the log
    return info.value.reason


def test_empty(media: Path) -> None:
    assert _reject(b"", media) == "empty"


def test_over_max_bytes(media: Path) -> None:
    data = _encode(_scene(9), "JPEG")
    assert _reject(data, media, max_bytes=len(data) - 1) == "too_large"
    assert process_image(data, media, max_bytes=len(data)).size > 0


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(random.Random(42).randbytes(4096), id="random-bytes"),
        pytest.param(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\n", id="pdf"),
        pytest.param("城管请看：路灯坏了\n".encode(), id="text"),
        pytest.param(
            b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41" + b"\x00" * 64,
            id="mp4-video",
        ),
        pytest.param(b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00qt  " + b"\x00" * 64, id="mov"),
        pytest.param(b"PK\x03\x04" + b"\x00" * 64, id="zip"),
    ],
)
def test_not_image(media: Path, data: bytes) -> None:
    assert _reject(data, media) == "not_image"


def test_unsupported_image_formats(media: Path) -> None:
    small = _scene(10, (40, 30))
    for fmt in ("GIF", "BMP", "TIFF"):
        assert _reject(_encode(small, fmt), media) == "unsupported_format", fmt
    avif_header = b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf" + b"\x00" * 64
    assert _reject(avif_header, media) == "unsupported_format"
    svg = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>'
    assert _reject(svg, media) == "unsupported_format"
    assert not list(media.rglob("*")) if media.exists() else True


def test_judged_by_content_not_by_name(media: Path) -> None:
    # There is no file name in the API at all: a PNG sent as "photo.jpg" is a PNG,
    # a GIF sent as "photo.jpg" is refused as a GIF.
    assert process_image(_encode(_scene(11, (60, 40)), "PNG"), media).format == "PNG"
    assert _reject(_encode(_scene(11, (60, 40)), "GIF"), media) == "unsupported_format"
    # JPEG magic glued onto PNG content: Pillow's JPEG reader alone is given it.
    png = _encode(_scene(11, (60, 40)), "PNG")
    assert _reject(b"\xff\xd8\xff\xe0" + png, media) == "corrupt"


@pytest.mark.parametrize("fraction", [0.5, 0.9])
def test_truncated_jpeg(media: Path, fraction: float) -> None:
    data = _encode(_scene(12), "JPEG", quality=90)
    assert _reject(data[: int(len(data) * fraction)], media) == "corrupt"


def test_truncated_png_and_webp(media: Path) -> None:
    for fmt in ("PNG", "WEBP"):
        data = _encode(_scene(13), fmt)
        assert _reject(data[: len(data) // 2], media) == "corrupt", fmt


@needs_heif_encoder
def test_truncated_heic(media: Path) -> None:
    data = _encode(_scene(14), "HEIF")
    assert _reject(data[: len(data) // 2], media) == "corrupt"


def test_magic_only_is_corrupt(media: Path) -> None:
    assert _reject(b"\xff\xd8\xff", media) == "corrupt"
    assert _reject(b"\x89PNG\r\n\x1a\n", media) == "corrupt"
    assert _reject(b"RIFF\x00\x00\x00\x00WEBP", media) == "corrupt"


def test_load_truncated_images_switch_is_refused(
    media: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(RuntimeError, match="LOAD_TRUNCATED_IMAGES"):
        process_image(_encode(_scene(15, (40, 30)), "JPEG"), media)


def test_decompression_bomb_beyond_pillows_own_limit(media: Path) -> None:
    bomb = _png_header_only(30_000, 30_000)
    assert len(bomb) < 200
    assert _reject(bomb, media) == "too_many_pixels"


def test_decompression_bomb_under_pillows_limit_over_ours(media: Path) -> None:
    # 64 Mpx: below Pillow's warning threshold, above the 50 Mpx default here. Had the pixels
    # been decoded, the empty IDAT would have made this "corrupt" instead.
    assert _reject(_png_header_only(8000, 8000), media) == "too_many_pixels"


def test_pillow_bomb_warning_still_rejected(media: Path) -> None:
    # 100 Mpx: Pillow warns (over its 89 Mpx), our 50 Mpx limit refuses.
    with pytest.warns(Image.DecompressionBombWarning):
        assert _reject(_png_header_only(10_000, 10_000), media) == "too_many_pixels"


def test_pillow_bomb_warning_as_error_is_too_many_pixels(media: Path) -> None:
    # Where warnings are errors (python -W error), the warning must not read as "corrupt".
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        bomb = _png_header_only(10_000, 10_000)
        assert _reject(bomb, media, max_pixels=200_000_000) == "too_many_pixels"


def test_max_pixels_parameter(media: Path) -> None:
    data = _encode(_scene(16, (100, 100)), "JPEG")
    assert _reject(data, media, max_pixels=9_999) == "too_many_pixels"
    assert process_image(data, media, max_pixels=10_000).width == 100


NON_JPEG = ["PNG", "WEBP", pytest.param("HEIF", marks=needs_heif_encoder)]


@pytest.mark.parametrize("fmt", NON_JPEG)
def test_formats_decoded_whole_have_a_lower_pixel_limit(media: Path, fmt: str) -> None:
    data = _encode(_scene(17, (100, 100)), fmt)
    assert _reject(data, media, max_non_jpeg_pixels=9_999) == "too_many_pixels"
    assert process_image(data, media, max_non_jpeg_pixels=10_000).width == 100
    # The general limit still applies when it is the lower one.
    assert _reject(data, media, max_pixels=9_999, max_non_jpeg_pixels=10**8) == "too_many_pixels"


def test_jpeg_is_held_to_the_general_limit_only(media: Path) -> None:
    # libjpeg decodes a big JPEG at a fraction of its size, so it may have more pixels.
    data = _encode(_scene(18, (100, 100)), "JPEG")
    assert process_image(data, media, max_non_jpeg_pixels=9_999).width == 100


def test_default_limits_refuse_a_30_mpx_png_and_take_a_30_mpx_jpeg(media: Path) -> None:
    assert MAX_NON_JPEG_PIXELS < 30_000_000 < 50_000_000
    # Refused from its header: had it been decoded, its empty IDAT would make it "corrupt".
    assert _reject(_png_header_only(6000, 5000), media) == "too_many_pixels"
    jpeg = _encode(Image.new("RGB", (6000, 5000), (30, 140, 60)), "JPEG", quality=70)
    assert process_image(jpeg, media).width == MAX_SIDE


def test_reject_reason_is_validated() -> None:
    with pytest.raises(ValueError):
        PhotoRejected("nope")  # type: ignore[arg-type]
    exc = PhotoRejected("corrupt", "detail for the log")
    assert exc.reason == "corrupt"
    assert str(exc) == "detail for the log"


# --- storage -----------------------------------------------------------------------------------


def test_same_content_twice_same_path(media: Path) -> None:
    data = _encode(_scene(17), "JPEG", exif=_exif(gps=(39.9, 116.4)))
    first = process_image(data, media)
    mtime = (media / first.path).stat().st_mtime_ns
    second = process_image(data, media)
    assert first == second
    assert (media / second.path).stat().st_mtime_ns == mtime  # not rewritten
    assert [p.relative_to(media).as_posix() for p in media.rglob("*") if p.is_file()] == [
        first.path
    ]


def test_path_layout_and_hashes(media: Path) -> None:
    import hashlib

    data = _encode(_scene(18), "PNG")
    photo = process_image(data, media)
    stored = (media / photo.path).read_bytes()
    assert photo.sha256 == hashlib.sha256(data).hexdigest()
    digest = hashlib.sha256(stored).hexdigest()
    assert photo.path == f"{digest[:2]}/{digest}.jpg"
    assert photo.size == len(stored)


def test_concurrent_stores_of_same_photo(media: Path) -> None:
    data = _encode(_scene(19), "JPEG")
    results: list[ProcessedPhoto] = []
    threads = [
        threading.Thread(target=lambda: results.append(process_image(data, media)))
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({r.path for r in results}) == 1
    assert len(results) == 4
    files = [p for p in media.rglob("*") if p.is_file()]
    assert len(files) == 1  # no temp files left behind


def test_open_stored_reads_back(media: Path) -> None:
    photo = process_image(_encode(_scene(20), "JPEG"), media)
    assert open_stored(media, photo.path) == (media / photo.path).read_bytes()


@pytest.mark.parametrize(
    "path",
    [
        "../secret.txt",
        "ab/../../secret.txt",
        "/etc/passwd",
        "",
        ".",
        "ab/",
        "ab//x.jpg",
        "ab\\..\\..\\secret.txt",
        "ab/x.jpg\x00.png",
    ],
)
def test_open_stored_refuses_traversal(media: Path, path: str) -> None:
    media.mkdir(parents=True)
    (media.parent / "secret.txt").write_text("nope")
    with pytest.raises(ValueError):
        open_stored(media, path)


def test_open_stored_refuses_symlink_out(media: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "x.jpg").write_bytes(b"secret")
    media.mkdir()
    (media / "ab").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ValueError):
        open_stored(media, "ab/x.jpg")


def test_open_stored_missing(media: Path) -> None:
    media.mkdir()
    with pytest.raises(FileNotFoundError):
        open_stored(media, "ab/" + "ab" * 32 + ".jpg")


# --- perceptual hash ---------------------------------------------------------------------------


def test_phash_format_and_distance() -> None:
    assert phash_distance("0" * 16, "f" * 16) == 64
    assert phash_distance("0123456789abcdef", "0123456789abcdef") == 0
    assert phash_distance("0000000000000000", "0000000000000003") == 2
    with pytest.raises(ValueError):
        phash_distance("abc", "0" * 16)


def test_near_identical_photos_have_close_phash(media: Path) -> None:
    original = _scene(21, (1600, 1200))
    a = process_image(_encode(original, "JPEG", quality=95), media)
    assert len(a.phash) == 16
    int(a.phash, 16)
    resized = original.resize((1000, 750), Image.Resampling.BILINEAR)
    b = process_image(_encode(resized, "JPEG", quality=60), media)
    c = process_image(_encode(original, "PNG"), media)
    d = process_image(_encode(original, "WEBP", quality=70), media)
    assert a.sha256 != b.sha256
    for other in (b, c, d):
        assert phash_distance(a.phash, other.phash) <= 6, other.format


def test_different_photos_have_distant_phash(media: Path) -> None:
    hashes = [process_image(_encode(_scene(s), "JPEG"), media).phash for s in range(30, 36)]
    for i, first in enumerate(hashes):
        for second in hashes[i + 1 :]:
            assert phash_distance(first, second) >= 16


# --- download ----------------------------------------------------------------------------------


class FakeBot:
    """Records calls; stands in for aiogram.Bot's get_file/download_file only."""

    def __init__(
        self,
        *,
        file_size: int | None = None,
        chunks: list[bytes] | None = None,
        get_file_error: Exception | None = None,
    ) -> None:
        self.file_size = file_size
        self.chunks = chunks or []
        self.get_file_error = get_file_error
        self.calls: list[str] = []
        self.chunks_sent = 0

    async def get_file(self, file_id: str) -> File:
        self.calls.append(f"get_file:{file_id}")
        if self.get_file_error is not None:
            raise self.get_file_error
        return File(
            file_id=file_id,
            file_unique_id="u1",
            file_size=self.file_size,
            file_path="photos/file_7.jpg",
        )

    async def download_file(
        self,
        file_path: str,
        destination: BinaryIO | None = None,
        **options: Any,  # timeout, chunk_size, seek: nothing to do for a fake
    ) -> BinaryIO | None:
        self.calls.append(f"download_file:{file_path}")
        assert destination is not None
        for chunk in self.chunks:
            destination.write(chunk)
            self.chunks_sent += 1
        return destination


def _as_bot(fake: FakeBot) -> Bot:
    return cast(Bot, fake)


async def test_download_refuses_declared_size_before_any_call() -> None:
    fake = FakeBot(chunks=[b"x"])
    with pytest.raises(PhotoRejected) as info:
        await download(_as_bot(fake), "F1", declared_size=21 * 2**20, max_bytes=20 * 2**20)
    assert info.value.reason == "too_large"
    assert fake.calls == []


async def test_download_maps_file_is_too_big() -> None:
    error = TelegramBadRequest(method=GetFile(file_id="F2"), message="Bad Request: file is too big")
    fake = FakeBot(get_file_error=error)
    with pytest.raises(PhotoRejected) as info:
        await download(_as_bot(fake), "F2", declared_size=None, max_bytes=1000)
    assert info.value.reason == "too_large"
    assert fake.calls == ["get_file:F2"]


async def test_download_other_bad_request_propagates() -> None:
    error = TelegramBadRequest(method=GetFile(file_id="F3"), message="Bad Request: wrong file_id")
    fake = FakeBot(get_file_error=error)
    with pytest.raises(TelegramBadRequest):
        await download(_as_bot(fake), "F3", declared_size=None, max_bytes=1000)


async def test_download_refuses_size_from_get_file() -> None:
    fake = FakeBot(file_size=5000, chunks=[b"x" * 5000])
    with pytest.raises(PhotoRejected) as info:
        await download(_as_bot(fake), "F4", declared_size=None, max_bytes=1000)
    assert info.value.reason == "too_large"
    assert fake.calls == ["get_file:F4"]


async def test_download_caps_undeclared_stream() -> None:
    fake = FakeBot(file_size=None, chunks=[b"x" * 65536] * 100)
    with pytest.raises(PhotoRejected) as info:
        await download(_as_bot(fake), "F5", declared_size=None, max_bytes=100_000)
    assert info.value.reason == "too_large"
    assert fake.chunks_sent == 1  # stopped at the chunk that would cross the cap


async def test_download_returns_bytes() -> None:
    payload = _encode(_scene(40, (64, 48)), "JPEG")
    chunks = [payload[i : i + 1000] for i in range(0, len(payload), 1000)]
    fake = FakeBot(file_size=len(payload), chunks=chunks)
    got = await download(_as_bot(fake), "F6", declared_size=len(payload), max_bytes=len(payload))
    assert got == payload
    assert fake.calls == ["get_file:F6", "download_file:photos/file_7.jpg"]
