"""The command line, as an operator uses it: separate processes reading the same settings."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

from tests.harness import TOKEN, jpeg
from tgemu.emulator import TelegramEmulator

ROOT = Path(__file__).resolve().parent.parent


def env_for(database_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOT_", "DATABASE_"))}
    env |= {
        "DATABASE_URL": database_url,
        "MEDIA_DIR": str(tmp_path / "media"),
        "BOT_TOKEN": TOKEN,
        "LOG_LEVEL": "WARNING",
    }
    env |= extra
    return env


async def run_cli(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        cwd=tmp_cwd(env),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def tmp_cwd(env: dict[str, str]) -> str:
    """Run where a `.env` of the developer's cannot leak in: the media dir's parent."""
    return str(Path(env["MEDIA_DIR"]).parent)


async def test_a_malformed_setting_stops_with_one_clear_line(tmp_path: Path) -> None:
    env = env_for("mysql://nope", tmp_path)
    code, _out, err = await run_cli("migrate", env=env)
    assert code == 2
    assert err.strip().splitlines() == [
        "Setting DATABASE_URL is invalid: must start with sqlite+aiosqlite:// or "
        "postgresql+asyncpg:// (async drivers). Fix it in .env or the environment."
    ]
    env = env_for("sqlite+aiosqlite:///x.db", tmp_path, BOT_TOKEN="not-a-token")
    code, _out, err = await run_cli("migrate", env=env)
    assert code == 2 and "Setting BOT_TOKEN is invalid" in err
    assert "not-a-token" not in err  # a secret is never echoed back


async def test_migrate_then_people_then_case_show(database_url: str, tmp_path: Path) -> None:
    env = env_for(database_url, tmp_path)
    code, out, err = await run_cli("migrate", env=env)
    assert code == 0, err
    assert "database is up to date" in out
    code, out, err = await run_cli(
        "people", "add", "--telegram-id", "777", "--role", "chief", "--lane", "CW-001", env=env
    )
    assert code == 0, err
    code, out, err = await run_cli(
        "people", "add", "--telegram-id", "778", "--role", "chief", "--lane", "NOPE", env=env
    )
    assert code == 2 and "no lane 'NOPE'" in err
    code, out, _err = await run_cli("people", "list", "--json", env=env)
    assert json.loads(out) == [
        {"telegram_id": 777, "name": None, "roles": [{"role": "chief", "scope": "CW-001"}]}
    ]
    code, _out, err = await run_cli("case", "show", "CY-20261123-0001", "--json", env=env)
    assert code == 1 and "no case" in err


async def test_the_bot_process_runs_unmodified_against_the_emulator(
    database_url: str, tmp_path: Path
) -> None:
    """`python -m bot run` in its own process: a resident reports, `case show` sees the case."""
    emulator = TelegramEmulator()
    url = await emulator.start()
    env = env_for(database_url, tmp_path, TELEGRAM_API_URL=url)
    (tmp_path / "media").mkdir(exist_ok=True)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        cwd=tmp_cwd(env),
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        resident = emulator.user(4242, first_name="Lin", language_code="en")
        await resident.send_command("/start")
        await resident.expect(contains="Snap it, get it handled", timeout=60)
        lane = "CW-001"
        await resident.send_command("/start", f"lane_{lane}")
        await resident.expect(contains="lane sign", timeout=10)
        await resident.send_photo(jpeg(), caption="Flyers all over the wall")
        await resident.expect(contains="Please check your report", timeout=10)
        await resident.press("✅ Confirm")
        created = await resident.expect(contains="Your case number is", timeout=10)
        assert "CY-" in (created.text or "")
        assert emulator.violations.total == 0
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(proc.wait(), 20)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        await emulator.stop()
    number = (created.text or "").split("CY-", 1)[1].split(".", 1)[0]
    code, out, err = await run_cli("case", "show", f"CY-{number}", "--json", env=env)
    assert code == 0, err
    shown = json.loads(out)
    assert shown["number"] == f"CY-{number}"
    assert shown["lane"] == lane
    assert [e["action"] for e in shown["events"]][:1] == ["submitted"]
    assert "4242" not in out and "Lin" not in out  # no personal data
