"""Telegram adapters, one router per area; order matters: catch-alls go last."""

from aiogram import Router

from bot.handlers import common, fallback, followup, resident


def root_router() -> Router:
    root = Router(name="root")
    root.include_routers(common.router, followup.router, resident.router, fallback.router)
    return root
