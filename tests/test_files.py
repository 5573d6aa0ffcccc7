"""Every file the bot writes is whole or absent, and on the disk once written (storage/files.py).

Each writer is checked the same way: the file now at the target was fsynced before it was
renamed there, its directory was fsynced after (the rename itself survives a power cut), and
no temporary file is left beside it. Before, only stored photos were fsynced; digest charts,
CSV exports, classifier models and labels were not, and street signs were not even renamed.
"""

from __future__ import annotations

import argparse
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.config import SAMPLE_DISTRICT_DIR, get_settings
from bot.domain.photos import process_image
from bot.domain.routing.classify import TextModel
from storage.files import AtomicFile, write_atomically
from tests.harness import Harness, grant, jpeg

pytestmark = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")


@dataclass(frozen=True)
class Synced:
    directory: bool
    path: Path
    inode: int


@pytest.fixture
def synced(monkeypatch: pytest.MonkeyPatch) -> list[Synced]:
    """Every os.fsync of the test, in order: directory or file, its path then, its inode."""
    calls: list[Synced] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        st = os.fstat(fd)
        path = Path(os.readlink(f"/proc/self/fd/{fd}"))
        calls.append(Synced(stat.S_ISDIR(st.st_mode), path, st.st_ino))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return calls


def assert_durable(target: Path, synced: list[Synced]) -> None:
    inode = target.stat().st_ino
    files = [i for i, s in enumerate(synced) if not s.directory and s.inode == inode]
    folders = [i for i, s in enumerate(synced) if s.directory and s.path == target.parent]
    assert files, f"{target} was not fsynced before it was put in place"
    assert folders and folders[-1] > files[-1], f"the rename to {target} was not fsynced"
    assert synced[files[-1]].path != target, "written in place, not renamed"
    assert not list(target.parent.glob(".*.tmp")), "a temporary file was left behind"


# --------------------------------------------------------------------------- the helper


def test_a_write_is_whole_and_durable(tmp_path: Path, synced: list[Synced]) -> None:
    target = tmp_path / "new" / "folder" / "file.bin"
    write_atomically(target, b"one")
    assert target.read_bytes() == b"one"
    assert_durable(target, synced)
    write_atomically(target, b"two, longer")
    assert target.read_bytes() == b"two, longer"
    assert_durable(target, synced)


def test_a_failed_write_keeps_the_old_file_and_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "file.csv"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), AtomicFile(target) as file:
        file.write(b"half of the ne")
        raise RuntimeError("the database went away")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["file.csv"]


def test_a_content_addressed_file_already_there_is_left_alone(
    tmp_path: Path, synced: list[Synced]
) -> None:
    target = tmp_path / "ab" / "abcdef.jpg"
    write_atomically(target, b"pixels", content_addressed=True)
    inode = target.stat().st_ino
    synced.clear()
    write_atomically(target, b"pixels", content_addressed=True)
    assert target.stat().st_ino == inode and synced == []


# --------------------------------------------------------------------------- each writer


def test_a_stored_photo_is_durable(tmp_path: Path, synced: list[Synced]) -> None:
    photo = process_image(jpeg(), tmp_path)
    assert_durable(tmp_path / photo.path, synced)


def test_a_saved_classifier_model_is_durable(tmp_path: Path, synced: list[Synced]) -> None:
    texts = ["井盖丢了", "井盖坏了", "路灯不亮", "路灯坏了", "垃圾满了", "垃圾没人收"] * 2
    labels = ["manhole", "manhole", "light", "light", "trash", "trash"] * 2
    model = TextModel.train(texts, labels, words=False)
    target = tmp_path / "models" / "model.json"
    model.save(target)
    assert_durable(target, synced)
    assert_durable(TextModel.arrays_path(target), synced)
    assert TextModel.load(target).labels == model.labels


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)  # away from any .env in the checkout
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("DISTRICT_DIR", str(SAMPLE_DISTRICT_DIR))
    for key in ("BOT_TOKEN", "TIMEZONE"):
        monkeypatch.setenv(key, "")
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


async def _cli(argv: list[str]) -> int:
    """`main` runs the command's coroutine with asyncio.run; inside a test, await it instead."""
    from bot.__main__ import build_parser

    args: argparse.Namespace = build_parser().parse_args(argv)
    return int(await args.func(args))


async def test_the_export_and_labels_commands_write_durable_files(
    cli_env: Path, synced: list[Synced]
) -> None:
    export = cli_env / "cases.csv"
    argv = ["export", "--from", "2026-11-01", "--to", "2026-11-30", "--out", str(export)]
    assert await _cli(argv) == 0
    assert export.read_bytes().startswith(b"\xef\xbb\xbf")
    assert_durable(export, synced)
    labels = cli_env / "labels.csv"
    assert await _cli(["classifier", "labels", "--out", str(labels)]) == 0
    assert_durable(labels, synced)


def test_street_signs_are_durable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, synced: list[Synced]
) -> None:
    from bot.__main__ import main
    from tests.cjk_fonts import any_font

    any_font()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'none.db'}")
    monkeypatch.setenv("DISTRICT_DIR", str(SAMPLE_DISTRICT_DIR))
    monkeypatch.setenv("BOT_TOKEN", "")
    get_settings.cache_clear()
    try:
        out = tmp_path / "signs"
        argv = ["signs", "--lane", "CW-013", "--out", str(out), "--bot-username", "a_bot1"]
        assert main(argv) == 0
    finally:
        get_settings.cache_clear()
    assert_durable(out / "CW-013.png", synced)


async def test_an_export_and_a_digest_chart_in_the_chat_are_durable(
    h: Harness, media_dir: Path, synced: list[Synced]
) -> None:
    await grant(h, 4001, "supervisor", "chaowai", "street")
    me = h.emulator.user(4001, first_name="陈静", language_code="zh-hans")
    await me.send_command("/export")
    await me.expect(predicate=lambda m: m.method == "sendDocument")
    [export] = (media_dir / "exports").iterdir()
    assert_durable(export, synced)
    await me.send_command("/digest")
    await me.expect(predicate=lambda m: m.method == "sendPhoto")
    [chart] = (media_dir / "digests").iterdir()
    assert_durable(chart, synced)
