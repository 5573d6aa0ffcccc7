"""Distinct phone-sized photos for simulated residents, cached under bench/out/photos.

Each is 1280×960 (the largest size Telegram's client compression leaves) of smooth random
colour fields, so every photo has its own content hash and perceptual hash and no report is
taken for a repeat of another.
"""

from __future__ import annotations

import io
import random
from pathlib import Path

from PIL import Image

SIZE = (1280, 960)


def _make(index: int) -> bytes:
    rng = random.Random(index)
    small = Image.new("RGB", (8, 6))
    small.putdata([(rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(48)])
    image = small.resize(SIZE, Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def photos(count: int, cache: Path) -> list[bytes]:
    """`count` distinct JPEGs, made once and then read from `cache`."""
    cache.mkdir(parents=True, exist_ok=True)
    out = []
    for index in range(count):
        path = cache / f"p{index:05d}.jpg"
        if not path.exists():
            path.write_bytes(_make(index))
        out.append(path.read_bytes())
    return out
