"""Telegram adapters, one router per area; order matters: catch-alls go last."""

from aiogram import Router

from bot.telegram.handlers import (
    admin,
    cards,
    common,
    exports,
    fallback,
    followup,
    people,
    privacy,
    rating,
    resident,
    stats,
    supervisor,
)


def root_router() -> Router:
    """A new tree of routers: a router can belong to one dispatcher only."""
    root = Router(name="root")
    root.include_routers(
        common.make_router(),
        privacy.make_router(),
        supervisor.make_router(),
        stats.make_router(),
        exports.make_router(),
        people.make_router(),
        cards.make_router(),
        rating.make_router(),
        followup.make_router(),
        resident.make_router(),
        admin.make_router(),
        fallback.make_router(),
    )
    return root
