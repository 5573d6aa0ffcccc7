"""What the benchmarks ran on: cores, memory, versions."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib.metadata import version
from pathlib import Path


def _meminfo_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024 / 1024
    return 0.0


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _code() -> str:
    """The commit measured: BENCH_COMMIT (a clean export of a commit), else git's view of this
    checkout, marked when files differ from the commit."""
    given = os.environ.get("BENCH_COMMIT")
    if given:
        return f"{given} (clean export of that commit)"
    root = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    changed = git("status", "--porcelain", "--untracked-files=no")
    return f"{commit} plus uncommitted changes" if changed else commit


def describe(postgres_version: str | None) -> list[tuple[str, str]]:
    """(what, value) pairs for RESULTS.md."""
    import sqlite3

    return [
        ("Code", _code()),
        ("CPU", f"{os.cpu_count()} cores, {_cpu_model()}"),
        ("Memory", f"{_meminfo_gib():.1f} GiB"),
        ("OS", f"{platform.system()} {platform.release()}"),
        ("Python", platform.python_version()),
        ("aiogram", version("aiogram")),
        ("aiohttp", version("aiohttp")),
        ("SQLAlchemy", version("SQLAlchemy")),
        ("asyncpg", version("asyncpg")),
        ("aiosqlite", version("aiosqlite")),
        ("SQLite", sqlite3.sqlite_version),
        ("shapely", version("shapely")),
        ("PostgreSQL", postgres_version or "not available"),
    ]
