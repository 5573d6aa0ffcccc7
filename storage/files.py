"""Files written whole or not at all, and kept across a power cut once written.

Every file the bot writes (stored photos, digest charts, CSV exports, street signs, classifier
models) goes through here: written to a hidden temporary file beside its target, flushed to
the disk, renamed over the target, and the rename itself flushed (the directory synced). A
reader never sees half a file, a failure leaves nothing behind, and a file that was there when
the write returned is there after a crash.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from types import TracebackType


class AtomicFile:
    """A file being written to `target`: `write` what it holds, then `commit` (or `discard`).

    As a context manager it commits when the block ends normally and discards on an exception.
    """

    def __init__(self, target: Path) -> None:
        self.target = Path(target)
        self.target.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self.target.parent, prefix=".", suffix=".tmp")
        self._tmp = Path(name)
        self._fh = os.fdopen(fd, "wb")
        self.size = 0
        self.committed = False

    def write(self, data: bytes) -> None:
        self._fh.write(data)
        self.size += len(data)

    def commit(self) -> None:
        """Flush the file to the disk and put it in place of `target`, durably."""
        try:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
            os.replace(self._tmp, self.target)
        except BaseException:
            self.discard()
            raise
        self.committed = True
        fsync_directory(self.target.parent)

    def discard(self) -> None:
        """Forget what was written: nothing is left behind (a no-op once committed)."""
        self._fh.close()
        if not self.committed:
            self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> AtomicFile:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if kind is None:
            self.commit()
        else:
            self.discard()


def write_atomically(target: Path, data: bytes, *, content_addressed: bool = False) -> None:
    """Write `data` to `target` whole and durably (see the module's text).

    `content_addressed`: the name says what the bytes are (a hash of them), so a file already
    there of the same size holds them and is left as it is.
    """
    target = Path(target)
    if content_addressed:
        try:
            if target.stat().st_size == len(data):
                return
        except FileNotFoundError:
            pass
    with AtomicFile(target) as file:
        file.write(data)


def fsync_directory(directory: Path) -> None:
    """Make a rename in `directory` durable across a power cut (POSIX; elsewhere a no-op)."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
