"""Benchmark 1, intake: N residents report at once; the real bot against a bare aiogram bot.

Both bots run in a process of their own against the same emulator (in this process), so the
CPU time read from /proc is the bot's alone. Each run starts with a few warm-up reports that
are not counted (first-use costs: imports, compiled statements, the first photo).

Two modes for the real bot:
- "lifted": Telegram's outgoing limits taken away (sender limiter and emulator), so the
  figures are what one process can take;
- "production": the sender's default limits, and an emulator that refuses (429) any send that
  breaks them, as Telegram does; confirm → card then includes the wait for the 30 msg/s budget.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select

from bench.databases import fresh_database
from bench.emulated import TimedEmulator
from bench.processes import polling_child
from bench.procstat import cpu_seconds
from bench.report import Results, Row
from bench.residents import UPDATES_PER_REPORT, Cards, Outcome, Plan, bare_report, report
from bench.sample_photos import photos
from bench.synthetic_district import write_district
from bot.domain.district import District, load_district
from storage.db import make_engine, make_sessionmaker
from storage.models import Case, OutboxMessage, Person, Role

SECTION = "1 intake"
LANES = 400
WARMUP = 5
CHIEF_BASE = 20_000_000
RESIDENT_BASE = 30_000_000
STEP_TIMEOUT_S = 300.0
# Descriptions of problems a lane chief handles (see district.toml: handler = "chief").
TEXTS = (
    "墙上贴满了小广告",
    "楼门口堆物堆料很多",
    "电线杆上飞线乱拉",
    "外墙墙皮脱落很危险",
    "门口有人无照经营",
)


@dataclass(frozen=True)
class Setup:
    workdir: Path
    district_dir: Path
    district: District
    photos: list[bytes]


@dataclass(frozen=True)
class Figures:
    """One run: how many reports completed, how fast, at what CPU cost to the bot process."""

    n: int
    ok: int
    wall_s: float
    latencies: list[float]
    cpu_s: float
    messages: int
    violations: int
    driver_load: float = 0.0  # CPU share of one core the emulator and residents used
    by_rule: tuple[tuple[str, int], ...] = ()  # refusals by Telegram rule (production)
    cases: int | None = None

    @property
    def per_s(self) -> float:
        return self.ok / self.wall_s if self.wall_s > 0 else float("nan")

    def quantile(self, q: float) -> float:
        if len(self.latencies) < 2:
            return self.latencies[0] if self.latencies else float("nan")
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[round(q * 100) - 1]

    @property
    def cpu_ms_per_update(self) -> float:
        return 1000 * self.cpu_s / (self.n * UPDATES_PER_REPORT)


def prepare_photos(workdir: Path, count: int) -> list[bytes]:
    return photos(count, workdir / "photos")


def prepare(workdir: Path, max_n: int) -> Setup:
    folder = workdir / "intake-district"
    write_district(folder, LANES, streets=4)
    return Setup(
        workdir=workdir,
        district_dir=folder,
        district=load_district(folder),
        photos=prepare_photos(workdir, max_n + WARMUP),
    )


def _plans(emu: TimedEmulator, setup: Setup, count: int) -> list[Plan]:
    lanes = sorted(setup.district.lanes.values(), key=lambda lane: lane.id)
    plans = []
    for j in range(count):
        lane = lanes[j % len(lanes)]
        stored = emu.files.add("photo", setup.photos[j], width=1280, height=960)
        sizes = [stored.photo_size()]
        stored.photo = sizes
        lat, lon = lane.representative_point
        text = f"{TEXTS[(j // len(lanes)) % len(TEXTS)]}（第{j}处）"
        plans.append(Plan(RESIDENT_BASE + j, sizes, text, lat, lon))
    return plans


async def _seed_chiefs(database_url: str, district: District) -> list[int]:
    """A chief for every lane; returns their Telegram ids."""
    engine = make_engine(database_url)
    now = datetime.now(UTC)
    ids = []
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            for k, lane_id in enumerate(sorted(district.lanes)):
                ids.append(CHIEF_BASE + k)
                role = Role(role="chief", scope=lane_id, created_at=now)
                session.add(
                    Person(
                        telegram_id=CHIEF_BASE + k,
                        name=f"街巷长{k}",
                        language="zh",
                        language_chosen=True,
                        unreachable=False,
                        banned=False,
                        created_at=now,
                        roles=[role],
                    )
                )
    finally:
        await engine.dispose()
    return ids


async def _count_cases(database_url: str) -> tuple[int, int]:
    engine = make_engine(database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            cases = await session.scalar(select(func.count()).select_from(Case))
            pending = await session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.status == "pending")
            )
            return int(cases or 0), int(pending or 0)
    finally:
        await engine.dispose()


async def _quiet(emu: TimedEmulator, seconds: float, limit_s: float = 120.0) -> None:
    """Wait until the bot has sent nothing for `seconds`."""
    deadline = time.perf_counter() + limit_s
    while time.perf_counter() < deadline:
        await asyncio.sleep(seconds / 2)
        if not emu.sent or emu.sent[-1][0] < time.perf_counter() - seconds:
            return


async def _measure(
    emu: TimedEmulator,
    pid: int,
    plans: Sequence[Plan],
    run: Callable[[Plan], Awaitable[Outcome]],
    quiet_s: float,
) -> Figures:
    await asyncio.gather(*(run(p) for p in plans[:WARMUP]))
    await _quiet(emu, quiet_s)
    sent0, violations0 = len(emu.sent), emu.violations.total
    rules0 = emu.violations.as_dict()
    cpu0, t0 = cpu_seconds(pid), time.perf_counter()
    driver0 = cpu_seconds(os.getpid())
    outcomes = await asyncio.gather(*(run(p) for p in plans[WARMUP:]))
    done = [o for o in outcomes if o.error is None and o.answered is not None]
    t1 = max((o.answered for o in done if o.answered is not None), default=time.perf_counter())
    await _quiet(emu, quiet_s)
    cpu = cpu_seconds(pid) - cpu0
    driver = (cpu_seconds(os.getpid()) - driver0) / (time.perf_counter() - t0)
    errors = [o.error for o in outcomes if o.error]
    if errors:
        print(f"    {len(errors)} reports failed, e.g. {errors[0]}", flush=True)
    return Figures(
        n=len(plans) - WARMUP,
        ok=len(done),
        wall_s=t1 - t0,
        latencies=[lat for o in done if (lat := o.latency) is not None],
        cpu_s=cpu,
        messages=len(emu.sent) - sent0,
        violations=emu.violations.total - violations0,
        driver_load=driver,
        by_rule=tuple(
            (rule, n - rules0.get(rule, 0))
            for rule, n in emu.violations.as_dict().items()
            if n - rules0.get(rule, 0)
        ),
    )


async def run_suipai(setup: Setup, n: int, backend: str, limits: str) -> Figures:
    async with fresh_database(backend, setup.workdir) as url:
        chiefs = await _seed_chiefs(url, setup.district)
        emu = TimedEmulator(enforce_limits=limits == "production")
        api = await emu.start()
        try:
            for chief in chiefs:
                emu.user(chief, first_name=f"街巷长{chief}").chat.started = True
            cards = Cards(chiefs)
            emu.on_sent = cards.hook
            plans = _plans(emu, setup, n + WARMUP)
            media = setup.workdir / f"media-{backend}-{limits}-{n}"
            config = {
                "api_url": api,
                "database_url": url,
                "district_dir": str(setup.district_dir),
                "media_dir": str(media),
                "limits": limits,
            }
            log = setup.workdir / "logs" / f"intake-{backend}-{limits}-{n}.log"
            args = ["bench.botproc", json.dumps(config)]
            async with polling_child(args, log, emu) as pid:
                figures = await _measure(
                    emu,
                    pid,
                    plans,
                    lambda plan: report(emu, plan, cards, STEP_TIMEOUT_S),
                    quiet_s=1.0 if limits == "lifted" else 3.0,
                )
        finally:
            await emu.stop()
        cases, pending = await _count_cases(url)
        if pending:
            print(f"    {pending} messages still pending in the outbox", flush=True)
    return Figures(**{**figures.__dict__, "cases": cases})


async def run_bare(setup: Setup, n: int) -> Figures:
    emu = TimedEmulator()
    api = await emu.start()
    try:
        plans = _plans(emu, setup, n + WARMUP)
        log = setup.workdir / "logs" / f"intake-bare-{n}.log"
        async with polling_child(["bench.bare", api], log, emu) as pid:
            return await _measure(
                emu, pid, plans, lambda plan: bare_report(emu, plan, STEP_TIMEOUT_S), quiet_s=0.5
            )
    finally:
        await emu.stop()


def _rows(n: int, backend: str, limits: str, real: Figures, bare: Figures) -> list[Row]:
    subject = f"N={n}, {backend}, limits {limits}"
    base = f"bare aiogram bot, N={n}"
    failed = real.n - real.ok
    note = f"emulator and residents used {real.driver_load:.0%} of a core"
    if failed:
        note += f"; {failed} of {real.n} failed"
    rows = [
        Row(SECTION, subject, "reports/s", real.per_s, "/s", base, bare.per_s, note),
        Row(
            SECTION,
            subject,
            "confirm → card p50",
            1000 * real.quantile(0.5),
            "ms",
            f"{base}: confirm → reply",
            1000 * bare.quantile(0.5),
        ),
        Row(
            SECTION,
            subject,
            "confirm → card p99",
            1000 * real.quantile(0.99),
            "ms",
            f"{base}: confirm → reply",
            1000 * bare.quantile(0.99),
        ),
        Row(
            SECTION,
            subject,
            "bot CPU per update",
            real.cpu_ms_per_update,
            "ms",
            base,
            bare.cpu_ms_per_update,
            f"{real.messages / max(real.n, 1):.1f} messages out per report",
        ),
    ]
    if limits == "production":
        rows.append(
            Row(
                SECTION,
                subject,
                "limit violations seen by the emulator",
                real.violations,
                "",
                "Telegram's limits",
                0,
                "; ".join(["must be 0", *(f"{rule} {n}" for rule, n in real.by_rule)]),
            )
        )
    return rows


async def bench_intake(
    results: Results,
    workdir: Path,
    *,
    sizes: Sequence[int],
    production_sizes: Sequence[int],
    backends: Sequence[str],
) -> None:
    setup = prepare(workdir, max([*sizes, *production_sizes]))
    bare: dict[int, Figures] = {}
    for n in sorted({*sizes, *production_sizes}):
        print(f"  intake: bare aiogram bot, N={n}", flush=True)
        bare[n] = await run_bare(setup, n)
    for backend in backends:
        for limits, ns in (("lifted", sizes), ("production", production_sizes)):
            for n in ns:
                print(f"  intake: N={n}, {backend}, limits {limits}", flush=True)
                figures = await run_suipai(setup, n, backend, limits)
                results.add(*_rows(n, backend, limits, figures, bare[n]))
    results.how[SECTION] = "python -m bench --only intake [--quick]"
