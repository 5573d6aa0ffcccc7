"""The digest as messages: each scope's chart, captioned with its title, then its text in
pieces within Telegram's limit. What the daily send (bot/jobs/digests.py) and /digest
(bot/telegram/handlers/stats.py) share; the digest itself is bot/figures/digest.py's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from bot.figures.digest import Digest
from bot.telegram.outgoing import Recipient, split_text
from storage.files import write_atomically

CHART_DIR = "digests"  # under MEDIA_DIR; housekeeping deletes old charts


def put(to: Recipient, digests: Sequence[Digest], media_dir: Path) -> None:
    """Each digest: its chart (captioned with the title), then its text."""
    for digest in digests:
        title, _, _rest = digest.text.partition("\n\n")
        to.photos([_store_chart(media_dir, digest.chart_png)], caption=title)
        for piece in split_text(digest.text):
            to.text(piece)


def _store_chart(media_dir: Path, png: bytes) -> str:
    """The chart under MEDIA_DIR, named by its content; the path the sender uploads."""
    digest = hashlib.sha256(png).hexdigest()
    rel = f"{CHART_DIR}/{digest[:32]}.png"
    write_atomically(media_dir / rel, png, content_addressed=True)
    return rel
