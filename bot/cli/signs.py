"""`python -m bot signs --lane L | --all --out DIR`: printable street signs (街巷长公示牌).

One A4 PNG per lane, `<lane id>.png`, with a QR code of `https://t.me/<bot>?start=lane_<id>`.
The bot's username comes from `--bot-username`, else the BOT_USERNAME setting, else Telegram
(getMe with BOT_TOKEN). Each chief's name comes from the database when one is on record;
otherwise the sign names the role only.

Exit codes: 0 written; 1 no font that can draw Chinese, or an invalid district; 2 a bad
argument (unknown lane, no bot username, dpi too small).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

import aiohttp
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from bot.config import Settings, get_settings
from bot.domain.district import DistrictError, load_district
from bot.figures import fonts
from bot.figures.signs import (
    DEFAULT_DPI,
    MIN_DPI,
    SignError,
    join_names,
    lane_chiefs,
    normalise_username,
    render_sign,
)
from bot.i18n import LANGUAGES
from storage.db import make_engine, make_sessionmaker
from storage.files import write_atomically


class _Refused(Exception):
    """Stop with this message on stderr and this exit code."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `signs` command to the bot's CLI."""
    parser = sub.add_parser(
        "signs",
        help="printable street signs (街巷长公示牌) with each lane's QR code",
        description="Render an A4 PNG sign per lane: its name, its chief's role and duties, "
        "and a QR code that opens a report on that lane in the bot.",
    )
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--lane", metavar="L", help="one lane, by id (e.g. CW-009)")
    which.add_argument("--all", action="store_true", help="every lane of the district")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    parser.add_argument("--lang", choices=LANGUAGES, default="zh", help="the sign's language")
    parser.add_argument(
        "--bot-username",
        metavar="NAME",
        help="the bot's @username (default: BOT_USERNAME, else asked from Telegram)",
    )
    parser.add_argument(
        "--chief-role", metavar="TEXT", help="the chief's role as printed (default: 街巷长)"
    )
    parser.add_argument(
        "--dpi", type=int, default=DEFAULT_DPI, help=f"resolution of the A4 page (≥ {MIN_DPI})"
    )
    parser.add_argument(
        "--font", type=Path, metavar="FILE", help="a .ttf/.ttc/.otf with Chinese glyphs"
    )
    parser.add_argument(
        "--dir", type=Path, help="the district folder (default: DISTRICT_DIR from the settings)"
    )
    parser.set_defaults(func=signs_command)


def signs_command(args: argparse.Namespace) -> int:
    """Write the signs; print each file's path and a summary."""
    try:
        return _signs(args)
    except _Refused as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.code


def _signs(args: argparse.Namespace) -> int:
    settings = get_settings()
    folder: Path = args.dir or settings.district_dir
    try:
        district = load_district(folder)
    except DistrictError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        raise _Refused(
            f"the district in {folder} is invalid (python -m bot district check)", 1
        ) from None
    if args.lane is not None and args.lane not in district.lanes:
        raise _Refused(
            f"no lane {args.lane!r} in the district (python -m bot district show lists them)"
        )
    lanes = list(district.lanes.values()) if args.all else [district.lanes[args.lane]]
    if args.dpi < MIN_DPI:
        raise _Refused(f"--dpi must be at least {MIN_DPI} for a printable sign")
    font = _font(args.font)
    username, chiefs = asyncio.run(_look_up(args, settings, [lane.id for lane in lanes]))

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    for lane in lanes:
        png = render_sign(
            lane,
            district,
            bot_username=username,
            chief_name=join_names(chiefs.get(lane.id, []), args.lang),
            chief_role_text=args.chief_role,
            lang=args.lang,
            dpi=args.dpi,
            font_path=font,
        )
        path = out / f"{lane.id}.png"
        write_atomically(path, png)  # after a crash: the old sign or the new, never half of one
        print(path)
    named = sum(1 for lane in lanes if chiefs.get(lane.id))
    print(
        f"{len(lanes)} sign(s) in {out} for @{username} "
        f"({named} naming their chief, {len(lanes) - named} the role only)",
        file=sys.stderr,
    )
    return 0


async def _look_up(
    args: argparse.Namespace, settings: Settings, lane_ids: list[str]
) -> tuple[str, dict[str, list[str]]]:
    """The bot's username and the lanes' chiefs."""
    username = await bot_username(args.bot_username, settings)
    return username, await _chiefs(settings.database_url, lane_ids)


def _font(given: Path | None) -> Path:
    if given is None:
        found = fonts.find_cjk_font()
        if found is None:
            raise _Refused(str(fonts.FontMissing()), 1)
        return found
    if not given.is_file():
        raise _Refused(f"--font {given}: no such file")
    if not fonts.draws(given, fonts.CJK_SAMPLE + fonts.LATIN_SAMPLE):
        raise _Refused(f"--font {given}: cannot draw both Chinese and Latin letters")
    return given


async def bot_username(given: str | None, settings: Settings) -> str:
    """`--bot-username`, else BOT_USERNAME, else getMe with BOT_TOKEN; `_Refused` otherwise."""
    name = (given or "").strip() or settings.bot_username.strip()
    source = "--bot-username" if (given or "").strip() else "BOT_USERNAME"
    if not name:
        if not settings.bot_token:
            raise _Refused(
                "the bot's username is unknown: pass --bot-username NAME, set BOT_USERNAME, "
                "or set BOT_TOKEN so that it can be asked from Telegram"
            )
        name, source = await _ask_telegram(settings), "Telegram (getMe)"
    try:
        return normalise_username(name)
    except SignError as exc:
        raise _Refused(f"{source}: {exc}") from None


async def _ask_telegram(settings: Settings) -> str:
    # aiogram takes seconds to import: only the commands that talk to Telegram load it.
    from aiogram.exceptions import AiogramError

    from bot.app import make_bot

    bot = make_bot(settings)
    try:
        me = await bot.get_me()
    except (AiogramError, aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise _Refused(
            f"could not ask Telegram for the bot's username ({exc}); "
            "pass --bot-username NAME or set BOT_USERNAME"
        ) from None
    finally:
        await bot.session.close()
    if not me.username:
        raise _Refused("Telegram gave the bot no username; pass --bot-username NAME")
    return me.username


async def _chiefs(database_url: str, lane_ids: list[str]) -> dict[str, list[str]]:
    """Each lane's chiefs' names; none (with a note) when the database cannot be read."""
    try:
        url = make_url(database_url)
    except ArgumentError:
        return {}
    if url.get_backend_name() == "sqlite":
        db = url.database or ""
        # Opening a SQLite file that is not there would create it.
        if db and db != ":memory:" and not os.path.exists(db):  # noqa: ASYNC240 (a stat)
            print(f"note: no database at {db}: the signs name the role only", file=sys.stderr)
            return {}
    # A database server that is down should not keep the signs waiting for long.
    quick = {"connect_args": {"timeout": 10}} if url.get_backend_name() == "postgresql" else {}
    engine = make_engine(database_url, **quick)
    try:
        async with make_sessionmaker(engine)() as session:
            return await lane_chiefs(session, lane_ids)
    except (SQLAlchemyError, OSError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(
            f"note: could not read the lane chiefs from the database ({reason}): "
            "the signs name the role only",
            file=sys.stderr,
        )
        return {}
    finally:
        await engine.dispose()
