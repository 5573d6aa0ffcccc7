"""`python -m bot digest send [--now] [--day D] [--telegram-id N]`: the daily digest from the shell.

The digests are written to the outbox; the running bot's sender delivers them.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    digest = subparsers.add_parser("digest", help="the supervisors' daily digest")
    digest_sub = digest.add_subparsers(dest="digest_command", required=True)
    send = digest_sub.add_parser(
        "send",
        help="send what is due (as the scheduler does: once a day per person), or --now",
    )
    send.add_argument(
        "--now",
        action="store_true",
        help="send now, to everyone, even who has had it today (a resend)",
    )
    send.add_argument(
        "--day", type=_day, help="the local day reported on, YYYY-MM-DD (default: yesterday)"
    )
    send.add_argument("--telegram-id", type=int, help="only to this supervisor or admin")
    send.set_defaults(func=send_command)


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date: write YYYY-MM-DD") from None


async def send_command(args: argparse.Namespace) -> int:
    from bot.clock import SystemClock
    from bot.config import get_settings
    from bot.domain.district import DistrictError, load_district
    from bot.figures.digest import yesterday
    from bot.jobs.digests import Digests
    from storage.db import make_engine, make_sessionmaker

    if not args.now and (args.day is not None or args.telegram_id is not None):
        print("--day and --telegram-id go with --now (a send on demand)", file=sys.stderr)
        return 2
    settings = get_settings()
    try:
        district = load_district(settings.district_dir)
    except DistrictError:
        print("The district is invalid; see python -m bot district check.", file=sys.stderr)
        return 2
    engine = make_engine(settings.database_url)
    clock = SystemClock()
    media_dir = settings.media_dir.resolve()
    digests = Digests(make_sessionmaker(engine), district, media_dir, clock, settings.digest_time)
    try:
        if args.now:
            day = args.day or yesterday(clock.now(), district)
            sent = await digests.send_now(day, args.telegram_id)
            print(f"queued the digest of {day} for {sent} person(s); the running bot sends it")
            if args.telegram_id is not None and sent == 0:
                print(f"{args.telegram_id} is no supervisor or admin", file=sys.stderr)
                return 1
        else:
            sent = await digests.run_due()
            print(f"queued {sent} digest(s) due and not yet sent; the running bot sends them")
    finally:
        await engine.dispose()
    return 0
