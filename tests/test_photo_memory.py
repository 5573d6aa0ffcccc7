"""Photos cannot exhaust memory.

A plain-colour PNG of tens of megapixels is a few hundred KB to upload and hundreds of MB to
decode. The real `python -m bot run`, in its own process, gets one from each of 20 residents at
once, as files (how full-size images arrive): first 50 Mpx ones, then ones just under the
non-JPEG limit, which are decoded. Its peak resident size (VmHWM, read from /proc) stays under
a bound stated below, and every resident gets an answer.
"""

from __future__ import annotations

import asyncio
import io
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from PIL import Image

from bench.procstat import memory_kib
from bot.config import Settings
from bot.domain.photos import MAX_NON_JPEG_PIXELS
from tests.harness import plain_text
from tests.test_cli import env_for
from tests.test_crash import bot_process
from tgemu.emulator import Persona, TelegramEmulator

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/status").exists(), reason="reads peak memory from /proc (Linux)"
)

RESIDENTS = 20
# 49.99 Mpx: under MAX_PHOTO_PIXELS, so decoded (at 450 MB each) before PNG had a lower limit.
HUGE = (8660, 5773)
LARGEST = (6000, 4160)  # 24.96 Mpx: just under MAX_NON_JPEG_PIXELS, so decoded whole
MB = 1024 * 1024

# One decode of a plain RGB PNG at its peak, per pixel: the decoded image (4 bytes a pixel) and
# the resize's intermediate rows. Measured: about 6.5 at 25 Mpx; 10.5 when the image was also
# copied whole to be turned upright.
DECODE_BYTES_PER_PIXEL = 8
# Everything else a burst of 20 photo updates holds at once: their downloads (~100 KB each),
# the updates and sessions in hand, the outbox's messages, the Python heap's growth.
BURST_OVERHEAD = 150 * MB


def plain_png(size: tuple[int, int], colour: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    return buf.getvalue()


def distinct(png: bytes, tag: str) -> bytes:
    """The same pixels with a text chunk of its own: every resident's file is a different file."""
    body = b"Comment\x00" + tag.encode()
    chunk = (
        struct.pack(">I", len(body))
        + b"tEXt"
        + body
        + struct.pack(">I", zlib.crc32(b"tEXt" + body))
    )
    end_of_header = 8 + 8 + 13 + 4  # signature, IHDR length and type, IHDR body, CRC
    return png[:end_of_header] + chunk + png[end_of_header:]


def answered(person: Persona, text: str) -> bool:
    return any(m.content == text for m in person.inbox())


def test_one_decode_of_a_plain_png_peaks_under_the_stated_bytes_a_pixel(tmp_path: Path) -> None:
    """What the bound below counts per decode, measured in a process of its own."""
    assert LARGEST[0] * LARGEST[1] <= MAX_NON_JPEG_PIXELS
    source = tmp_path / "largest.png"
    source.write_bytes(plain_png(LARGEST, (90, 160, 200)))
    script = (
        "import os, sys; from pathlib import Path\n"
        "from bench.procstat import memory_kib\n"
        "from bot.domain.photos import process_image\n"
        "data = Path(sys.argv[1]).read_bytes()\n"
        "before = memory_kib(os.getpid())['VmRSS']\n"
        "photo = process_image(data, Path(sys.argv[2]))\n"
        "print(before, memory_kib(os.getpid())['VmHWM'], photo.width, photo.height)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(source), str(tmp_path / "media")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert done.returncode == 0, done.stderr
    before_kib, peak_kib, width, height = map(int, done.stdout.split())
    assert (width, height) == (2560, 1775)
    per_pixel = (peak_kib - before_kib) * 1024 / (LARGEST[0] * LARGEST[1])
    assert per_pixel < DECODE_BYTES_PER_PIXEL, f"{per_pixel:.1f} bytes a pixel"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_twenty_residents_send_huge_pngs_at_once_memory_stays_bounded(
    database_url: str, tmp_path: Path
) -> None:
    decoders = Settings(_env_file=None).photo_decoders  # the default, as shipped
    huge = plain_png(HUGE, (200, 60, 40))
    largest = plain_png(LARGEST, (40, 120, 200))
    assert len(huge) < 400_000 and len(largest) < 400_000  # a few hundred KB to upload

    emulator = TelegramEmulator()
    api = await emulator.start()
    (tmp_path / "media").mkdir(exist_ok=True)
    log = tmp_path / "bot.log"
    env = env_for(database_url, tmp_path, TELEGRAM_API_URL=api)
    residents = [
        emulator.user(9100 + i, first_name=f"R{i}", language_code="en") for i in range(RESIDENTS)
    ]
    refused = plain_text("en", "photo.rejected.too_many_pixels")
    taken = plain_text("en", "report.ask_description", n=1, limit=5)
    try:
        async with bot_process(env, tmp_path, log=log) as bot:
            # Warm: every resident known, every handler's code and models loaded.
            await asyncio.gather(*(p.send_command("/start") for p in residents))
            await emulator.wait_until(lambda: all(p.inbox() for p in residents), 90)
            idle = memory_kib(bot.pid)["VmRSS"] * 1024

            # 50 Mpx each: refused from the header, before any pixel is decoded.
            await asyncio.gather(
                *(
                    p.send_document(distinct(huge, f"huge {i}"), "IMG_50MP.png", "image/png")
                    for i, p in enumerate(residents)
                )
            )
            await emulator.wait_until(lambda: all(answered(p, refused) for p in residents), 120)

            # Just under the limit: all decoded, `decoders` at a time, and all taken.
            await asyncio.gather(
                *(
                    p.send_document(distinct(largest, f"largest {i}"), "IMG_25MP.png", "image/png")
                    for i, p in enumerate(residents)
                )
            )
            await emulator.wait_until(lambda: all(answered(p, taken) for p in residents), 180)
            peak = memory_kib(bot.pid)["VmHWM"] * 1024
    finally:
        await emulator.stop()

    # The stated bound: the warm process, `decoders` decodes of the largest image at their peak,
    # and what the burst holds besides. Measured with 2 decoders: idle 250 MB, bound 785 MB,
    # peak 560 MB.
    # Unbounded, every thread of the default executor (min(32, cores + 4)) decoded at once: on
    # 2 cores, 820 MB over idle for these, and 2.7 GB for the 50 Mpx ones, then decoded too.
    per_decode = DECODE_BYTES_PER_PIXEL * LARGEST[0] * LARGEST[1]
    bound = idle + decoders * per_decode + BURST_OVERHEAD
    assert peak <= bound, (
        f"peak {peak // MB} MB > bound {bound // MB} MB (idle {idle // MB} MB, "
        f"{decoders} decoders x {per_decode // MB} MB + {BURST_OVERHEAD // MB} MB)"
    )
    written = log.read_text(errors="replace")
    assert "Traceback" not in written and "ERROR" not in written, written[-3000:]
    assert os.listdir(tmp_path / "media")  # the taken ones were stored
