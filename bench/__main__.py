"""`python -m bench [--quick] [--only SECTIONS] [--cases N] [--backends ...]`: run the
benchmarks, print one table, write bench/RESULTS.md (bench/out/RESULTS-quick.md with --quick).
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import sys
import time
import traceback
from pathlib import Path

from bench.databases import BACKENDS, drop_template, postgres_version
from bench.machine import describe
from bench.report import Results, plain_table, write_results

HERE = Path(__file__).resolve().parent
SECTIONS = ("intake", "delivery", "routing", "kpi", "memory")


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--quick", action="store_true", help="small sizes: a smoke run in ~2 minutes")
    p.add_argument(
        "--only", default=",".join(SECTIONS), help=f"comma-separated subset of {','.join(SECTIONS)}"
    )
    p.add_argument("--cases", type=int, help="synthetic cases for the KPI benchmark (1,000,000)")
    p.add_argument(
        "--backends", default=",".join(BACKENDS), help="comma-separated: sqlite,postgresql"
    )
    p.add_argument("--sizes", help="residents per intake run, e.g. 50,200,1000")
    p.add_argument(
        "--production-sizes",
        help="residents per intake run with production limits (default 50; quick: none)",
    )
    p.add_argument("--results", type=Path, help="where to write the results (Markdown)")
    p.add_argument("--workdir", type=Path, default=HERE / "out", help="scratch files")
    args = p.parse_args(argv)
    args.only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(args.only) - set(SECTIONS)
    if unknown:
        p.error(f"unknown section(s) {', '.join(sorted(unknown))}; choose from {SECTIONS}")
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if set(args.backends) - set(BACKENDS):
        p.error(f"backends are {BACKENDS}")
    if args.results is None:
        # Only a full run of everything replaces bench/RESULTS.md.
        if args.quick:
            args.results = args.workdir / "RESULTS-quick.md"
        elif args.only != list(SECTIONS) or args.cases or args.sizes or args.production_sizes:
            args.results = args.workdir / f"RESULTS-{'-'.join(args.only)}.md"
        else:
            args.results = HERE / "RESULTS.md"
    return args


async def run(args: argparse.Namespace) -> Results:
    results = Results()
    workdir: Path = args.workdir
    backends = list(args.backends)
    if "postgresql" in backends and await postgres_version() is None:
        print("PostgreSQL is not reachable: its lines are skipped", flush=True)
        backends.remove("postgresql")
        results.note("all", "PostgreSQL was not reachable; only SQLite was measured")
    try:
        for section in args.only:
            started = time.perf_counter()
            print(f"[{section}]", flush=True)
            before = len(results.rows)
            try:
                await _section(section, args, results, workdir, backends)
            except Exception as exc:  # one section's failure must not lose the others' figures
                traceback.print_exc()
                took = time.perf_counter() - started
                results.note(section, f"FAILED after {took:.0f} s: {exc!r}")
            if len(results.rows) > before:
                print(plain_table(results.rows[before:]), flush=True)
            print(f"[{section}] {time.perf_counter() - started:.0f} s", flush=True)
    finally:
        if "postgresql" in backends:
            await drop_template()
    return results


async def _section(
    section: str, args: argparse.Namespace, results: Results, workdir: Path, backends: list[str]
) -> None:
    quick = args.quick
    if section == "intake":
        from bench.intake import bench_intake

        def ints(text: str | None, default: list[int]) -> list[int]:
            return default if text is None else [int(s) for s in text.split(",") if s.strip()]

        await bench_intake(
            results,
            workdir,
            sizes=ints(args.sizes, [20] if quick else [50, 200, 1000]),
            production_sizes=ints(args.production_sizes, [] if quick else [50]),
            backends=backends,
        )
    elif section == "routing":
        from bench.routing import bench_routing

        bench_routing(results, workdir, lanes=10_000, points=2_000 if quick else 20_000)
    elif section == "kpi":
        from bench.kpis import bench_kpis

        cases = args.cases or (20_000 if quick else 1_000_000)
        await bench_kpis(results, workdir, backends=backends, cases=cases)
    elif section == "memory":
        from bench.memory import bench_memory

        await bench_memory(
            results,
            workdir,
            backend=backends[0],
            cases=10_000 if quick else 100_000,
            residents=100 if quick else 1_000,
        )
    elif section == "delivery":
        from bench.delivery import bench_delivery

        chats, messages = (30, 300) if quick else (300, 3000)
        await bench_delivery(
            results, workdir, backends=backends[:1], chats=chats, messages=messages
        )


def main() -> None:
    args = parse(sys.argv[1:])
    args.workdir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results = asyncio.run(run(args))
    print()
    print(plain_table(results.rows))
    pg = asyncio.run(postgres_version()) if "postgresql" in args.backends else None
    command = "python -m bench " + shlex.join(sys.argv[1:])
    write_results(args.results, results, describe(pg), command.strip())
    took = time.perf_counter() - started
    print(f"\n{len(results.rows)} figures in {took:.0f} s; see {args.results}")


if __name__ == "__main__":
    main()
