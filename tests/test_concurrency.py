"""A burst of updates is handled at most UPDATE_CONCURRENCY at a time, and none is lost.

Without a bound, a thousand residents at once each held a database connection while the event
loop served the others, and updates failed waiting 30 s for one (the intake benchmark at
N=1000). The real `python -m bot run` runs here with UPDATE_CONCURRENCY=2; every photo
download is held by the test until released, so how many updates are in hand at once is seen
directly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.app import make_bot, run_webhook
from tests.harness import noise_jpeg, settings_for
from tests.test_cli import env_for
from tests.test_crash import bot_process
from tests.test_webhook import SECRET, free_port
from tgemu.emulator import TelegramEmulator

LIMIT = 2
RESIDENTS = 6


async def test_updates_in_hand_never_exceed_the_limit_and_all_are_answered(
    database_url: str, tmp_path: Path
) -> None:
    emulator = TelegramEmulator()
    api = await emulator.start()
    (tmp_path / "media").mkdir()
    in_hand, most = _hold_downloads(emulator)
    env = env_for(database_url, tmp_path, TELEGRAM_API_URL=api, UPDATE_CONCURRENCY=str(LIMIT))
    residents = [
        emulator.user(8800 + i, first_name=f"R{i}", language_code="en") for i in range(RESIDENTS)
    ]
    # The photos wait at Telegram before the bot starts: its first getUpdates takes them all.
    for i, p in enumerate(residents):
        await p.send_photo(noise_jpeg(i), caption=f"Broken bench number {i}")
    try:
        async with bot_process(env, tmp_path):
            await emulator.wait_until(lambda: len(in_hand) >= LIMIT, 60)
            # The rest wait their turn unconfirmed at Telegram, not in the bot's hands.
            assert len(in_hand) == LIMIT
            assert len(emulator.updates) == RESIDENTS
            await _release_one_at_a_time(emulator, in_hand)
            await asyncio.gather(
                *(p.expect(contains="Where is it?", timeout=60) for p in residents)
            )
    finally:
        await emulator.stop()
    assert most() == LIMIT
    for p in residents:
        assert sum("Where is it?" in (m.text or "") for m in p.inbox()) == 1


async def test_webhook_updates_in_hand_never_exceed_the_limit(
    database_url: str, media_dir: Path
) -> None:
    """Telegram posts updates of different chats side by side; the bot works on at most
    LIMIT of them at once and answers all. (Whether more would have come in hand without the
    bound depends on timing here; the polling test above shows that deterministically.)"""
    emulator = TelegramEmulator()
    api = await emulator.start()
    port = free_port()
    settings = settings_for(
        database_url,
        media_dir,
        api,
        webhook_url=f"http://127.0.0.1:{port}/tg/hook",
        webhook_secret=SECRET,
        web_port=port,
        update_concurrency=LIMIT,
    )
    in_hand, most = _hold_downloads(emulator)
    server = asyncio.create_task(run_webhook(settings, make_bot(settings)))
    residents = [
        emulator.user(8900 + i, first_name=f"W{i}", language_code="en") for i in range(RESIDENTS)
    ]
    try:
        await emulator.wait_until(lambda: emulator.webhook is not None, 30)
        for i, p in enumerate(residents):
            await p.send_photo(noise_jpeg(i), caption=f"Broken bench number {i}")
        # Every update has been posted to the bot; it works on LIMIT of them.
        await emulator.wait_until(lambda: not emulator.updates and len(in_hand) >= LIMIT, 60)
        assert len(in_hand) == LIMIT
        await _release_one_at_a_time(emulator, in_hand)
        await asyncio.gather(*(p.expect(contains="Where is it?", timeout=60) for p in residents))
    finally:
        server.cancel()
        await asyncio.gather(server, return_exceptions=True)
        await emulator.stop()
    assert most() == LIMIT


def _hold_downloads(
    emulator: TelegramEmulator,
) -> tuple[list[asyncio.Event], Callable[[], int]]:
    """Hold every getFile until the test releases it (pops and sets its event); returns the
    events in hand and a function giving the most ever in hand at once."""
    name, get_file = emulator.api.methods["getfile"]
    in_hand: list[asyncio.Event] = []
    most = 0

    async def held(params: Any) -> Any:
        nonlocal most
        release = asyncio.Event()
        in_hand.append(release)
        most = max(most, len(in_hand))
        emulator.touch()  # wake the test's wait_until: the call is not over yet
        await release.wait()  # the test took it out of `in_hand` when it released it
        return await get_file(params)

    emulator.api.methods["getfile"] = (name, held)
    return in_hand, lambda: most


async def _release_one_at_a_time(emulator: TelegramEmulator, in_hand: list[asyncio.Event]) -> None:
    """Release the downloads in turn, each once the bot has as many in hand as it may."""
    for released in range(RESIDENTS):
        waiting = min(LIMIT, RESIDENTS - released)
        await emulator.wait_until(lambda n=waiting: len(in_hand) >= n, 60)  # type: ignore[misc]
        in_hand.pop(0).set()
