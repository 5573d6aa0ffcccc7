"""`python -m bot open311`: API keys from the command line, and the API served on its own."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

import aiohttp

from bot.config import SAMPLE_DISTRICT_DIR
from bot.domain.district import load_district
from tests.test_cli import env_for, run_cli, tmp_cwd
from tgemu.emulator import TelegramEmulator

CHIEF = 3201
LANE = "CW-001"


async def test_keys_add_list_revoke(database_url: str, tmp_path: Path) -> None:
    env = env_for(database_url, tmp_path)
    code, out, err = await run_cli("open311", "keys", "add", "--name", "12345 hotline", env=env)
    assert code == 0, err
    key = out.split("API key (shown only now; keep it secret): ", 1)[1].strip()
    key_id = key.split(".")[0]
    code, out, err = await run_cli(
        "open311", "keys", "add", "--name", "dashboard", "--read-only", env=env
    )
    assert code == 0 and "read only" in out, err
    code, out, err = await run_cli("open311", "keys", "list", "--json", env=env)
    assert code == 0, err
    rows = json.loads(out)
    assert [(r["name"], r["can_write"], r["revoked_at"]) for r in rows] == [
        ("12345 hotline", True, None),
        ("dashboard", False, None),
    ]
    assert key.split(".")[1] not in out  # the secret is never shown again
    code, out, err = await run_cli("open311", "keys", "revoke", key_id, env=env)
    assert code == 0 and "revoked" in out, err
    code, out, _err = await run_cli("open311", "keys", "list", env=env)
    assert f"{key_id}  read+write  revoked" in out
    code, _out, err = await run_cli("open311", "keys", "revoke", "nope", env=env)
    assert code == 1 and "no key nope" in err
    code, _out, err = await run_cli("open311", "keys", "add", "--name", " ", env=env)
    assert code == 2 and "name" in err


async def test_a_key_is_allowed_exact_locations_and_loses_them_again(
    database_url: str, tmp_path: Path
) -> None:
    env = env_for(database_url, tmp_path)
    code, out, err = await run_cli("open311", "keys", "add", "--name", "city GIS", env=env)
    assert code == 0, err
    key_id = out.split("key id ", 1)[1].split()[0]

    async def exact() -> dict[str, bool]:
        code, out, err = await run_cli("open311", "keys", "list", "--json", env=env)
        assert code == 0, err
        return {r["name"]: r["exact_location"] for r in json.loads(out)}

    assert await exact() == {"city GIS": False}  # keyless readers' grid, by default
    code, out, err = await run_cli("open311", "keys", "exact-location", key_id, env=env)
    assert code == 0 and "exactly" in out, err
    assert await exact() == {"city GIS": True}
    code, out, _err = await run_cli("open311", "keys", "list", env=env)
    assert f"{key_id}  read+write  active" in out and "exact" in out
    code, out, err = await run_cli("open311", "keys", "exact-location", key_id, "--off", env=env)
    assert code == 0 and "grid" in out, err
    assert await exact() == {"city GIS": False}
    code, out, err = await run_cli(
        "open311", "keys", "add", "--name", "12345", "--exact-location", env=env
    )
    assert code == 0 and "exact locations" in out, err
    assert await exact() == {"city GIS": False, "12345": True}
    code, _out, err = await run_cli("open311", "keys", "exact-location", "nope", env=env)
    assert code == 1 and "no key nope" in err


async def test_the_api_on_its_own_dispatches_a_case_to_the_chief(
    database_url: str, tmp_path: Path
) -> None:
    """The standalone server takes a report, and its own sender brings the chief the card."""
    emulator = TelegramEmulator()
    api_url = await emulator.start()
    env = env_for(database_url, tmp_path, TELEGRAM_API_URL=api_url)
    (tmp_path / "media").mkdir(exist_ok=True)
    code, out, err = await run_cli("open311", "keys", "add", "--name", "hotline", env=env)
    assert code == 0, err
    key = out.split("keep it secret): ", 1)[1].strip()
    code, _out, err = await run_cli(
        "people", "add", "--telegram-id", str(CHIEF), "--role", "chief", "--lane", LANE, env=env
    )
    assert code == 0, err
    chief = emulator.user(CHIEF, first_name="李街巷长", language_code="zh-hans")
    await chief.send_command("/start")  # the bot may write to them now
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "open311",
        "--port",
        "0",
        cwd=tmp_cwd(env),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
        assert "Open311 GeoReport v2 API: http://127.0.0.1:" in line, line
        base = line.split(": ", 1)[1].split("/discovery.json", 1)[0]
        lat, lon = load_district(SAMPLE_DISTRICT_DIR).lanes[LANE].representative_point
        form = {
            "api_key": key,
            "service_code": "xiaoguanggao",
            "lat": str(lat),
            "long": str(lon),
            "description": "墙上贴满了小广告",
        }
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/discovery.json") as response:
                assert response.status == 200
                assert (await response.json())["endpoints"][0]["url"] == base
            async with http.post(f"{base}/requests.xml", data=form) as response:
                assert response.status == 201
                text = await response.text()
        number = text.split("<service_request_id>", 1)[1].split("<", 1)[0]
        card = await chief.expect(contains=f"案件 {number}", timeout=20)
        assert "墙上贴满了小广告" in (card.text or "")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(proc.wait(), 20)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        await emulator.stop()


async def test_the_sandbox_serves_the_api_and_its_chief_gets_the_card(
    database_url: str, media_dir: Path
) -> None:
    """Mounted at /open311/v2/ of the sandbox page; the sandbox's bot sends the card."""
    from bot.clock import SystemClock
    from bot.open311.keys import add_client
    from bot.sandbox.run import running_sandbox
    from storage.db import make_engine, make_sessionmaker
    from tests.harness import settings_for

    settings = settings_for(database_url, media_dir, "http://127.0.0.1:9").model_copy(
        update={"bot_token": ""}
    )
    async with running_sandbox(settings, port=0) as running:
        engine = make_engine(database_url)
        try:
            async with make_sessionmaker(engine)() as session, session.begin():
                _client, key = await add_client(
                    session, "sandbox", can_write=True, now=SystemClock().now()
                )
        finally:
            await engine.dispose()
        lane = running.sandbox.district.lanes[running.sandbox.cast.lane_id]
        lat, lon = lane.representative_point
        form = {
            "api_key": key,
            "service_code": "xiaoguanggao",
            "lat": str(lat),
            "long": str(lon),
            "description": "电线杆上贴满小广告",
        }
        base = f"{running.url}open311/v2"
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{base}/requests.json", data=form) as response:
                assert response.status == 201, await response.text()
                [created] = await response.json()
            async with http.get(f"{base}/services.xml") as response:
                assert response.status == 200
                assert "<services><service>" in await response.text()
        chief = running.sandbox.personas["chief"]
        await chief.expect(contains=f"案件 {created['service_request_id']}", timeout=20)
