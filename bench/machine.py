"""What the benchmarks ran on: cores, memory, versions."""

from __future__ import annotations

import os
import platform
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


def describe(postgres_version: str | None) -> list[tuple[str, str]]:
    """(what, value) pairs for RESULTS.md."""
    import sqlite3

    return [
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
