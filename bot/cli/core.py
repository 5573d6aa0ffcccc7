"""`run`, `migrate` and `case show`: the commands every deployment needs."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

from bot.config import Settings, get_settings

log = logging.getLogger("bot")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = sub.add_parser("run", help="run the bot (long polling, or --webhook)")
    run.add_argument(
        "--webhook",
        action="store_true",
        help="serve Telegram's webhook at WEBHOOK_URL (with WEBHOOK_SECRET) and /healthz",
    )
    run.set_defaults(func=_run)
    migrate = sub.add_parser("migrate", help="bring the database to the newest schema")
    migrate.set_defaults(func=_migrate)
    case = sub.add_parser("case", help="look at cases")
    case_sub = case.add_subparsers(dest="case_command", required=True)
    show = case_sub.add_parser("show", help="one case with its timeline")
    show.add_argument("number")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(func=_case_show)


def setup_logging(settings: Settings) -> None:
    """Log to stderr, with the bot token blanked out of every line (bot/redaction.py)."""
    from bot.redaction import install

    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # APScheduler logs every run of every job at INFO, two lines per sweep every 15 s: an
    # operator's log should show what happened, not that the clock ticked.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    install(settings.bot_token)


async def _migrate(args: argparse.Namespace) -> int:
    from storage.migrate import upgrade

    settings = get_settings()
    setup_logging(settings)
    await upgrade(settings.database_url)
    print(f"database is up to date ({_redacted(settings.database_url)})")
    return 0


async def _run(args: argparse.Namespace) -> int:
    webhook = bool(getattr(args, "webhook", False))
    from bot.app import make_bot, run_polling, run_webhook
    from bot.domain.district import DistrictError, load_district
    from storage.migrate import upgrade

    settings = get_settings()
    setup_logging(settings)
    try:
        load_district(settings.district_dir)
    except DistrictError as exc:
        for problem in exc.problems:
            print(f"{problem.file}: {problem.where}: {problem.message}", file=sys.stderr)
        print("The district is invalid; fix it (python -m bot district check).", file=sys.stderr)
        return 2
    if webhook:
        try:
            settings.require_webhook_secret()
        except ValueError as exc:
            print(exc, file=sys.stderr)
            return 2
        if settings.uses_emulator:
            print("Setting BOT_TOKEN is missing: webhook mode needs a real bot.", file=sys.stderr)
            return 2
    if settings.uses_emulator:
        from bot.sandbox.run import serve_forever

        # The sandbox has its own data: DATABASE_URL, a district's, is not even migrated.
        await serve_forever(settings, host="127.0.0.1", port=settings.sandbox_port)
        return 0
    await upgrade(settings.database_url)
    if webhook:
        await run_webhook(settings, make_bot(settings))
    else:
        await run_polling(settings, make_bot(settings))
    return 0


async def _case_show(args: argparse.Namespace) -> int:
    from bot.domain.localtime import district_timezone
    from bot.domain.reports import case_as_dict
    from storage.cases import case_by_number
    from storage.db import make_engine, make_sessionmaker

    settings = get_settings()
    engine = make_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            case = await case_by_number(session, args.number)
            if case is None:
                print(f"no case {args.number}", file=sys.stderr)
                return 1
            # The district's zone from its file: a case can be shown whatever else is in it.
            data = await case_as_dict(session, case, district_timezone(settings.district_dir))
    finally:
        await engine.dispose()
    if args.json:
        print(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        _print_case(data)
    return 0


def _print_case(data: dict[str, Any]) -> None:
    for key in ("number", "state", "category", "lane", "assignee", "rating"):
        print(f"{key:10} {data.get(key)}")
    for event in data["events"]:
        print(f"  {event['at']}  {event['action']:12} {event.get('note') or ''}")


def _redacted(url: str) -> str:
    """The URL without its password, for logs."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in creds else f"{scheme}://{user}@{host}"
