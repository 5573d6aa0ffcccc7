"""Benchmark 5, memory: the resident set size of one bot process holding 100,000 open cases
(in its database) and 1,000 residents in the middle of a report (photo and description
given, location asked for), against the same process idle after start.

RSS is read from /proc/<pid>/status (VmRSS now, VmHWM the peak) of the bot's own process.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import Counter
from pathlib import Path

from bench.databases import fresh_database
from bench.emulated import TimedEmulator
from bench.intake import prepare_photos
from bench.kpi_data import generate
from bench.kpi_load import load_postgres, load_sqlite
from bench.kpis import NOW, district
from bench.processes import polling_child
from bench.procstat import memory_kib
from bench.report import Results, Row
from bench.residents import Plan, mid_report

SECTION = "5 memory"
RESIDENT_BASE = 60_000_000
OPEN = ("submitted", "triage", "dispatched", "accepted", "whistled", "resolved")


async def bench_memory(
    results: Results, workdir: Path, *, backend: str, cases: int, residents: int
) -> None:
    place = district(workdir)
    # `cases` open ones: a 3-day history where about three in four are still open, generated
    # again larger until the open ones reach the target.
    total = cases
    for _ in range(4):
        history = generate(place, total, NOW, days=3, supervisors=False)
        states = Counter(history.cases["state"].tolist())
        open_cases = sum(states[s] for s in OPEN)
        if open_cases >= cases:
            break
        total = math.ceil(total * cases / max(open_cases, 1) * 1.005)
    photos = prepare_photos(workdir, residents)
    lanes = sorted(place.lanes.values(), key=lambda lane: lane.id)
    async with fresh_database(backend, workdir) as url:
        if backend == "sqlite":
            load_sqlite(url.split("///", 1)[1], history)
        else:
            await load_postgres(url, history)
        emu = TimedEmulator()
        api = await emu.start()
        try:
            config = {
                "api_url": api,
                "database_url": url,
                "district_dir": str(workdir / "kpi-district"),
                "media_dir": str(workdir / f"media-memory-{backend}"),
                "limits": "lifted",
            }
            log = workdir / "logs" / f"memory-{backend}.log"
            async with polling_child(["bench.botproc", json.dumps(config)], log, emu) as pid:
                await asyncio.sleep(3)  # the scheduler's first sweep and digest check
                idle = memory_kib(pid)
                plans = []
                for j in range(residents):
                    stored = emu.files.add("photo", photos[j], width=1280, height=960)
                    sizes = [stored.photo_size()]
                    stored.photo = sizes
                    lat, lon = lanes[j % len(lanes)].representative_point
                    plans.append(Plan(RESIDENT_BASE + j, sizes, "楼门口堆物堆料很多", lat, lon))
                started = time.perf_counter()
                outcomes = await asyncio.gather(*(mid_report(emu, p, 600) for p in plans))
                took = time.perf_counter() - started
                await asyncio.sleep(2)
                loaded = memory_kib(pid)
        finally:
            await emu.stop()
    failed = sum(1 for o in outcomes if o.error)
    subject = (
        f"{open_cases:,} open cases (of {total:,}), {residents:,} residents mid-report, {backend}"
    )
    mib = 1024.0
    results.add(
        Row(
            SECTION,
            subject,
            "RSS",
            loaded["VmRSS"] / mib,
            "MiB",
            "the same process idle after start",
            idle["VmRSS"] / mib,
            f"peak {loaded['VmHWM'] / mib:.0f} MiB;"
            f" {(loaded['VmRSS'] - idle['VmRSS']) / residents:.0f} KiB per resident"
            + (f"; {failed} failed" if failed else ""),
        )
    )
    print(f"    {residents} residents mid-report in {took:.0f} s", flush=True)
    results.how[SECTION] = "python -m bench --only memory [--quick]"
