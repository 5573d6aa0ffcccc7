"""Telegram adapters, one router per area; order matters: catch-alls go last."""

from aiogram import Router

from bot.handlers import common, fallback, followup, resident, supervisor


def root_router() -> Router:
    root = Router(name="root")
    root.include_routers(
        common.router, supervisor.router, followup.router, resident.router, fallback.router
    )
    return root
