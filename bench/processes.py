"""A bot under test in a process of its own, so that its CPU time and memory are its own."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import BinaryIO

from tgemu.emulator import TelegramEmulator

REPO_ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 120.0


def _open_log(path: Path) -> BinaryIO:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("wb")


@asynccontextmanager
async def polling_child(
    module_args: list[str], log_path: Path, emulator: TelegramEmulator
) -> AsyncIterator[int]:
    """Run `python -m <module_args>`; yields its pid once it polls the emulator."""
    with _open_log(log_path) as log:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            *module_args,
            cwd=REPO_ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
        )
        try:
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), START_TIMEOUT_S)
            if line.strip() != b"ready":
                raise RuntimeError(f"{module_args[0]} did not start; see {log_path}")

            def polling() -> bool:
                return any(call.method == "getUpdates" for call in emulator.calls)

            if not await emulator.wait_for(polling, START_TIMEOUT_S):
                raise RuntimeError(f"{module_args[0]} never polled; see {log_path}")
            async with _profiled(proc.pid, log_path):
                yield proc.pid
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(proc.wait(), 20)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()


def _py_spy() -> str | None:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    return found if Path(found).exists() else None


def _profile_path(folder: Path, stem: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{stem}.speedscope.json"


@asynccontextmanager
async def _profiled(pid: int, log_path: Path) -> AsyncIterator[None]:
    """With BENCH_PROFILE=DIR, py-spy samples the child into DIR/<run>.speedscope.json (a dev
    tool: `pip install py-spy`; it takes CPU of its own, so profiled figures run slower)."""
    folder = os.environ.get("BENCH_PROFILE")
    spy = _py_spy()
    if not folder or spy is None:
        yield
        return
    out = _profile_path(Path(folder), log_path.stem)
    args = [spy, "record", "--pid", str(pid), "--format", "speedscope", "-o", str(out)]
    profiler = await asyncio.create_subprocess_exec(
        *args,
        "--rate",
        "200",
        "--nonblocking",
        "--threads",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        profiler.send_signal(signal.SIGINT)
        await profiler.wait()
