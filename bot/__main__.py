"""Command line: `python -m bot <command>`; each area registers its own sub-commands."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import sys
from collections.abc import Sequence

# Each module exposes `register(subparsers)` and sets `func` on its parsers.
COMMAND_MODULES = (
    "bot.cli.core",
    "bot.cli.district",
    "bot.cli.people",
    "bot.cli.classifier",
    "bot.cli.sandbox",
    "bot.cli.signs",
    "bot.cli.export",
    "bot.cli.digest",
    "bot.cli.open311",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Suipai (随拍即办)")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result = args.func(args)
        if inspect.iscoroutine(result):
            result = asyncio.run(result)
    except KeyboardInterrupt:
        return 130  # Ctrl+C is how an operator stops the bot: no traceback
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
