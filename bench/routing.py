"""Benchmark 3, routing: lane lookup, classification and the dispatch decision, per case.

Each is timed over the same inputs as a bare baseline doing the least the job needs:
- lane lookup (`Locator.locate`) against a plain shapely STRtree `dwithin` query over the
  same projected lanes (what locate does beyond it: validation, projection, nearest with
  tie-break, the street office's area when no lane covers the point);
- classification (`Classifier.classify`, keyword rules as shipped) against a plain substring
  scan of the same keywords (what it adds: normalisation, word boundaries, negation,
  confidence and reasons);
- dispatch (`dispatch.decide`) against building the `Decision` it returns directly.
Best of three rounds, each over every input.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import shapely

from bench.report import Results, Row
from bench.synthetic_district import LAT0, LON0, M_PER_DEG_LAT, SPACING_M, write_district
from bot.domain.district import District, load_district

SECTION = "3 routing"
ROUNDS = 3
PREFIXES = ("", "我家楼下", "胡同口", "小区门口", "早上路过发现", "Near the gate, ", "路边")
SUFFIXES = ("", "，很久没人管了", "，请尽快处理", "，影响通行", " please fix", "！！")
NEGATED = ("没有{k}的问题", "不是{k}", "there is no {k} here")
OTHER = ("今天天气不错", "谢谢你们的工作", "How do I use this bot?", "请问办事大厅几点开门")


def _best(fn: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(ROUNDS):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def _points(district: District, count: int, seed: int = 8) -> list[tuple[float, float]]:
    """Random points over the lanes' grid: most on a lane, some between lanes."""
    rng = random.Random(seed)
    side = int(np.ceil(np.sqrt(len(district.lanes))))
    m_per_deg_lon = M_PER_DEG_LAT * np.cos(np.radians(LAT0))
    extent = side * SPACING_M
    return [
        (
            LAT0 + rng.uniform(-20, extent) / M_PER_DEG_LAT,
            LON0 + rng.uniform(-20, extent) / m_per_deg_lon,
        )
        for _ in range(count)
    ]


def lane_lookup(
    district: District, points: Sequence[tuple[float, float]]
) -> tuple[float, float, str]:
    """(µs per locate, µs per bare STRtree query, how the points fell)."""
    from bot.domain.routing.locate import LaneMatch, Locator, NoLane

    locator = Locator(district)
    lanes = sorted(district.lanes.values(), key=lambda lane: lane.id)
    projection = district.projection
    geoms = projection.forward(np.array([lane.geometry for lane in lanes], dtype=object))
    tree = shapely.STRtree(geoms)
    reach = max(lane.buffer_m for lane in lanes)
    xy = [projection.xy(lat, lon) for lat, lon in points]
    bare_points = [shapely.points(np.array(p)) for p in xy]

    def real() -> None:
        for lat, lon in points:
            locator.locate(lat, lon)

    def bare() -> None:
        for point in bare_points:
            tree.query(point, predicate="dwithin", distance=reach)

    found = Counter(type(locator.locate(lat, lon)).__name__ for lat, lon in points)
    kinds = {LaneMatch.__name__: "on a lane", NoLane.__name__: "on no lane"}
    spread = ", ".join(f"{n} {kinds.get(k, k)}" for k, n in sorted(found.items()))
    per = 1e6 / len(points)
    return _best(real) * per, _best(bare) * per, spread


def _texts(district: District, count: int, seed: int = 9) -> list[str]:
    rng = random.Random(seed)
    keywords = [(k, c.id) for c in district.categories.values() for k in c.keywords]
    out = []
    for i in range(count):
        kind = i % 10
        if kind == 8:
            k, _ = rng.choice(keywords)
            out.append(rng.choice(NEGATED).format(k=k))
        elif kind == 9:
            out.append(rng.choice(OTHER))
        else:
            k, _ = rng.choice(keywords)
            out.append(f"{rng.choice(PREFIXES)}{k}{rng.choice(SUFFIXES)}")
    return out


def classification(district: District, texts: Sequence[str]) -> tuple[float, float, str]:
    """(µs per classify, µs per bare keyword scan, share sent to triage)."""
    from bot.domain.routing.classify import Classifier

    classifier = Classifier(list(district.categories.values()), None, threshold=0.6)
    rules = [(c.id, [k.lower() for k in c.keywords]) for c in district.categories.values()]

    def real() -> None:
        for text in texts:
            classifier.classify(text)

    def bare() -> None:
        for text in texts:
            lowered = text.lower()
            scores = [(sum(k in lowered for k in kws), cid) for cid, kws in rules]
            max(scores)

    triage = sum(classifier.classify(t).category_id is None for t in texts) / len(texts)
    per = 1e6 / len(texts)
    return _best(real) * per, _best(bare) * per, f"{triage:.0%} to triage (no category)"


def dispatching(district: District, count: int, seed: int = 10) -> tuple[float, float]:
    """(µs per decide, µs per bare Decision)."""
    from bot.domain.routing.dispatch import Decision, decide

    rng = random.Random(seed)
    lanes = list(district.lanes.values())
    categories = [*district.categories, None]
    now = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
    cases: list[dict[str, Any]] = []
    for i in range(count):
        lane = rng.choice(lanes)
        cases.append(
            {
                "category_id": rng.choice(categories),
                "lane_id": lane.id,
                "street_id": lane.street_id,
                "chief_id": i if i % 4 else None,
                "reasons": (f"lane {lane.id} (buffer, 3 m)",),
            }
        )

    def real() -> None:
        for case in cases:
            decide(district, now=now, **case)

    def bare() -> None:
        for case in cases:
            Decision(
                "chief",
                case["street_id"],
                case["lane_id"],
                case["category_id"],
                chief_id=case["chief_id"],
                reasons=case["reasons"],
            )

    per = 1e6 / count
    return _best(real) * per, _best(bare) * per


def bench_routing(results: Results, workdir: Path, *, lanes: int, points: int) -> None:
    folder = workdir / f"routing-district-{lanes}"
    write_district(folder, lanes, streets=20)
    district = load_district(folder)
    subject = f"{lanes:,} lanes, {points:,} points"
    real, bare, spread = lane_lookup(district, _points(district, points))
    results.add(
        Row(SECTION, subject, "lane lookup", real, "µs", "bare STRtree dwithin query", bare, spread)
    )
    texts = _texts(district, points)
    real, bare, triage = classification(district, texts)
    results.add(
        Row(
            SECTION,
            f"{len(texts):,} descriptions",
            "classification",
            real,
            "µs",
            "bare keyword substring scan",
            bare,
            f"rules as shipped (no text model); {triage}",
        )
    )
    real, bare = dispatching(district, points)
    results.add(
        Row(
            SECTION,
            f"{points:,} cases",
            "dispatch decision",
            real,
            "µs",
            "building the Decision directly",
            bare,
        )
    )
    results.how[SECTION] = "python -m bench --only routing [--quick]"
