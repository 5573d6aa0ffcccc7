"""Telegram adapters, one router per area; order matters: catch-alls go last."""

from aiogram import Router

from bot.handlers import chief, common, fallback, followup, rating, resident, supervisor


def root_router() -> Router:
    root = Router(name="root")
    root.include_routers(
        common.router,
        supervisor.router,
        chief.router,
        rating.router,
        followup.router,
        resident.router,
        fallback.router,
    )
    return root
