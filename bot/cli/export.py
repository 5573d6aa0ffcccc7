"""`python -m bot export --from D --to D [--street S] --out F`: cases as CSV for Excel."""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "export",
        help="cases reported between two local dates as CSV (UTF-8 with BOM, for Excel)",
    )
    parser.add_argument("--from", dest="start", type=_day, required=True, help="YYYY-MM-DD")
    parser.add_argument("--to", dest="end", type=_day, required=True, help="YYYY-MM-DD, included")
    parser.add_argument("--street", help="one street office's id (default: the whole district)")
    parser.add_argument("--out", required=True, help="the CSV file to write ('-': standard output)")
    parser.set_defaults(func=export_command)


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date: write YYYY-MM-DD") from None


async def export_command(args: argparse.Namespace) -> int:
    from bot.config import get_settings
    from bot.domain.district import DistrictError, load_district
    from bot.figures.export import stream_csv
    from storage.db import make_engine, make_sessionmaker, reading
    from storage.files import AtomicFile

    if args.end < args.start:
        print(f"--to ({args.end}) is before --from ({args.start})", file=sys.stderr)
        return 2
    settings = get_settings()
    try:
        district = load_district(settings.district_dir)
    except DistrictError:
        print("The district is invalid; see python -m bot district check.", file=sys.stderr)
        return 2
    if args.street is not None and args.street not in district.street_offices:
        known = ", ".join(sorted(district.street_offices))
        print(f"no street office {args.street!r}; the district has: {known}", file=sys.stderr)
        return 2
    engine = make_engine(settings.database_url)
    # Written beside the target and renamed at the end: a failed export leaves no half file.
    out = None if args.out == "-" else Path(args.out)
    file = None if out is None else AtomicFile(out)
    write = sys.stdout.buffer.write if file is None else file.write
    try:
        # A read-only transaction: the running bot's writers go on while a year is written out.
        async with reading(make_sessionmaker(engine)) as session:
            pieces = stream_csv(
                session,
                district,
                start=args.start,
                end=args.end,
                street_id=args.street,
                tz=district.tz,  # the district's, as case numbers and cards
            )
            async for piece in pieces:
                write(piece)
        if file is None:
            sys.stdout.buffer.flush()
        else:
            file.commit()
            print(f"wrote {out}", file=sys.stderr)
    finally:
        if file is not None:
            file.discard()
        await engine.dispose()
    return 0
