"""`sandbox`: the bot against the built-in Telegram emulator, played from a browser page."""

from __future__ import annotations

import argparse

from bot.config import get_settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sandbox = sub.add_parser(
        "sandbox",
        help="try the bot in a browser: every role, no Telegram account, no internet",
    )
    sandbox.add_argument(
        "--port", type=int, default=None, help="port of the page (default: SANDBOX_PORT, 8080)"
    )
    sandbox.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: 127.0.0.1; 0.0.0.0 lets anyone on your network "
        "play too, and the page has no login)",
    )
    sandbox.add_argument(
        "--reset",
        action="store_true",
        help="forget what was played before: the sandbox's own database and media "
        "(data/sandbox/; DATABASE_URL is never used)",
    )
    sandbox.set_defaults(func=_sandbox)


async def _sandbox(args: argparse.Namespace) -> int:
    from bot.cli.core import setup_logging
    from bot.sandbox.run import serve_forever

    settings = get_settings()
    setup_logging(settings)
    port = settings.sandbox_port if args.port is None else args.port
    await serve_forever(settings, host=args.host, port=port, fresh=args.reset)
    return 0
