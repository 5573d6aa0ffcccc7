"""`/healthz`: is the database reachable, and how far behind is the outbox?"""

from __future__ import annotations

from datetime import datetime

from aiohttp import web
from sqlalchemy import func, select, text

from bot.context import AppContext
from storage.models import OutboxMessage
from storage.outbox import PENDING

CTX = web.AppKey("ctx", AppContext)


async def health(ctx: AppContext) -> tuple[bool, dict[str, object]]:
    """(healthy, details): the database answers; pending messages and the oldest one's age."""
    try:
        async with ctx.sessionmaker() as session:
            await session.execute(text("SELECT 1"))
            pending, oldest = (
                await session.execute(
                    select(func.count(), func.min(OutboxMessage.created_at)).where(
                        OutboxMessage.status == PENDING
                    )
                )
            ).one()
    except Exception as exc:  # any failure to reach the database is "unhealthy"
        return False, {"database": "unreachable", "error": type(exc).__name__}
    lag = _seconds_since(oldest, ctx.clock.now()) if oldest is not None else 0.0
    return True, {"database": "ok", "outbox_pending": int(pending), "outbox_lag_s": lag}


def _seconds_since(when: datetime, now: datetime) -> float:
    return round(max(0.0, (now - when).total_seconds()), 1)


async def healthz(request: web.Request) -> web.Response:
    ok, details = await health(request.app[CTX])
    return web.json_response({"ok": ok, **details}, status=200 if ok else 503)
