"""The sandbox never touches a real district's data, whatever DATABASE_URL says.

A district's database (a case past its deadline, a role, a message waiting to be sent) is
DATABASE_URL while `python -m bot sandbox`, `python -m bot run` without a token and what `make
run` runs are each started as a user would, played through the page's API until the bot has
answered, and stopped with Ctrl+C. Afterwards the district's database is the same row for row;
the cast's roles are in the sandbox's own database.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import signal
import sqlite3
import subprocess
import sys
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from bot.config import SAMPLE_DISTRICT_DIR
from bot.domain.access import CHIEF
from bot.domain.district import load_district
from bot.domain.people import grant
from bot.sandbox.web import PAGE_HEADER
from storage.db import make_engine, make_sessionmaker
from storage.migrate import upgrade
from storage.outbox import enqueue
from tests.casebook import Casebook

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 90.0
ANSWER_TIMEOUT_S = 30.0

Rows = dict[str, list[tuple[Any, ...]]]


async def a_district_database(path: Path) -> None:
    """Migrated, with a case whose response deadline has passed, a chief and a pending message."""
    url = f"sqlite+aiosqlite:///{path}"
    await upgrade(url)
    district = load_district(SAMPLE_DISTRICT_DIR)
    now = datetime.now(UTC)
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            book = Casebook(session)
            resident = await book.person(9001, "王小明", "wangxm")
            chief, _ = await grant(
                session,
                district,
                telegram_id=9002,
                role=CHIEF,
                scope="CW-001",
                kind="lane",
                name="李街长",
                now=now,
            )
            case = await book.case(
                "A",
                now - timedelta(days=3),
                state="dispatched",
                lane="CW-001",
                reporter=resident.id,
                assignee=chief.id,
            )
            enqueue(
                session,
                9001,
                "sendMessage",
                {"chat_id": 9001, "text": "waiting to be sent"},
                now=now,
                case_id=case.id,
            )
    finally:
        await engine.dispose()


def rows(path: Path) -> Rows:
    """Every table's rows (in a stable order), the schema version included."""
    with closing(sqlite3.connect(path)) as db:
        tables = [
            name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")
        ]
        return {t: sorted(db.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr) for t in tables}


def make_run() -> list[list[str]]:
    """The bot commands `make run` runs, in order, as `make --dry-run` lists them."""
    listed = subprocess.run(
        ["make", "--dry-run", "--no-print-directory", "run"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    commands = [shlex.split(line) for line in listed if re.search(r"\s-m bot\b", line)]
    assert commands and commands[-1][-1] == "run", listed
    return [[str(ROOT / argv[0]), *argv[1:]] for argv in commands]


async def announced(process: asyncio.subprocess.Process) -> str:
    """The start-up line naming the page's address (fails if the process ends first)."""
    assert process.stdout is not None
    while line := (await process.stdout.readline()).decode():
        if re.search(r"open (http://\S+)", line):
            return line
    raise AssertionError(f"exited with {await process.wait()} before serving the page")


async def play(url: str) -> None:
    """Load the page's cast, then have 王芳 send /start and wait for the bot's answer."""
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{url}api/personas") as response:
            assert next(p["key"] for p in await response.json()) == "resident_zh"
        async with http.ws_connect(f"{url}api/live") as socket:
            sent = await http.post(
                f"{url}api/personas/resident_zh/text",
                json={"text": "/start"},
                headers={PAGE_HEADER: "1"},
            )
            assert sent.status == 200, await sent.text()
            while True:
                item = await socket.receive_json(timeout=ANSWER_TIMEOUT_S)
                if (item.get("message") or {}).get("from") == "bot":
                    return


async def run_for_a_while(argv: list[str], cwd: Path, env: dict[str, str]) -> str:
    """Start, play once the page answers, stop with Ctrl+C; returns the start-up line."""
    with (cwd / "stderr.log").open("a") as errors:
        process = await asyncio.create_subprocess_exec(
            *argv, cwd=cwd, env=env, stdout=asyncio.subprocess.PIPE, stderr=errors
        )
        try:
            line = await asyncio.wait_for(announced(process), START_TIMEOUT_S)
            url = re.search(r"open (http://\S+)", line)
            assert url is not None
            try:
                await play(url.group(1))
            except TimeoutError:
                raise AssertionError(f"{shlex.join(argv)}: the bot did not answer") from None
            return line
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGINT)
                try:
                    await asyncio.wait_for(process.wait(), 20)
                except TimeoutError:
                    process.kill()
                    await process.wait()


async def test_sandbox_run_and_make_run_leave_the_district_database_as_it_was(
    tmp_path: Path,
) -> None:
    district_db = tmp_path / "district" / "suipai.db"
    await a_district_database(district_db)
    before = rows(district_db)
    assert before["cases"] and before["roles"] and before["outbox"]
    env = os.environ | {
        "BOT_TOKEN": "",
        "DATABASE_URL": f"sqlite+aiosqlite:///{district_db}",
        "MEDIA_DIR": str(tmp_path / "district" / "media"),
        "REDIS_URL": "",
        "DISTRICT_DIR": str(SAMPLE_DISTRICT_DIR),
        "SANDBOX_PORT": "0",
        "PYTHONUNBUFFERED": "1",
    }
    python = [sys.executable, "-m", "bot"]
    *steps, make_run_bot = make_run()
    for argv in steps:  # whatever `make run` does first (nothing that may touch the data)
        step = await asyncio.create_subprocess_exec(*argv, cwd=tmp_path, env=env)
        assert await step.wait() == 0, shlex.join(argv)
    commands = [[*python, "sandbox"], [*python, "run"]]
    commands += [make_run_bot] if make_run_bot not in commands else []  # once is enough
    for argv in commands:
        line = await run_for_a_while(argv, tmp_path, env)
        assert rows(district_db) == before, f"{shlex.join(argv)} changed the district's data"
        # One line says what this is, where its data is and how to connect a real bot.
        assert "sandbox" in line and "data/sandbox" in line and "BOT_TOKEN" in line, line

    sandbox_db = tmp_path / "data" / "sandbox" / "suipai.db"
    assert len(rows(sandbox_db)["roles"]) == 3  # the cast's, loaded there (once)
    assert not (tmp_path / "district" / "media").exists()
