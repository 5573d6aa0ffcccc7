"""The operator's log shows events, not heartbeats: a scheduled sweep adds no INFO line."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, JobExecutionEvent

from bot.cli.core import setup_logging
from bot.config import Settings
from bot.jobs.scheduler import start_scheduler
from bot.redaction import TokenRedactor
from tests.harness import TOKEN, running_bot


@pytest.fixture
def app_logging(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Logging set up as `python -m bot run` does, captured at INFO; undone afterwards."""
    quiet = logging.getLogger("apscheduler")
    level = quiet.level
    setup_logging(Settings(_env_file=None, bot_token=TOKEN))
    try:
        with caplog.at_level(logging.INFO):
            yield caplog
    finally:
        quiet.setLevel(level)
        for handler in logging.getLogger().handlers:
            for f in [f for f in handler.filters if isinstance(f, TokenRedactor)]:
                handler.removeFilter(f)


async def test_a_scheduled_sweep_logs_no_info_line_from_apscheduler(
    app_logging: pytest.LogCaptureFixture, database_url: str, media_dir: Path
) -> None:
    async with running_bot(database_url, media_dir) as h:
        scheduler = start_scheduler(h.ctx)
        swept = asyncio.Event()

        def done(event: JobExecutionEvent) -> None:
            if event.job_id == "deadlines":
                swept.set()

        try:
            scheduler.add_listener(done, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
            scheduler.modify_job("deadlines", next_run_time=datetime.now(UTC))  # now, not in 15 s
            await asyncio.wait_for(swept.wait(), timeout=30)
        finally:
            scheduler.shutdown(wait=False)
    chatter = [
        r.getMessage()
        for r in app_logging.records
        if r.name.startswith("apscheduler") and r.levelno < logging.WARNING
    ]
    assert chatter == []
    # Still there for what matters: a failing job is logged at ERROR.
    assert logging.getLogger("apscheduler.executors.default").isEnabledFor(logging.ERROR)
