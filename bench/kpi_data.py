"""A district's history in bulk: N cases over the last months, each with a realistic timeline.

Vectorised with numpy: every case gets the same fixed set of possible steps (submitted,
duplicate, triaged, categorised, dispatched, reminded, escalated, rejected, withdrawn,
whistled, reported for duty, accepted, resolved, rated, reopened, resolved again, rated
again, closed), each with a time or none, drawn from plausible delays; what has not happened
by `now` is cut off and the case row gets the state of its last step. Event ids follow time,
as they do when the bot writes them.

Shares: 4 % repeat reports, 12 % via triage, 3 % rejected, 2 % withdrawn, 8 % whistled to a
department, 70 % of fixes rated (7 % of them 1–2 stars, which reopens), the rest closed
unrated after 72 h. Reports follow the day: few at night, most in the morning and evening.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from numpy.typing import NDArray

from bot.domain.district import District

H = 3600.0
Floats = NDArray[np.float64]
Ints = NDArray[np.int64]

# The steps, in timeline order within a case (ties in time keep this order).
STEPS = (
    "submitted",
    "duplicate",
    "triaged",
    "categorised",
    "dispatched",
    "reminded",
    "escalated",
    "rejected",
    "withdrawn",
    "whistled",
    "reported_for_duty",
    "accepted",
    "resolved",
    "rated",
    "reopened",
    "resolved",
    "rated",
    "closed",
)
# The case's state once a step has happened (None: unchanged).
STATE_AFTER = {
    "submitted": "submitted",
    "duplicate": "duplicate",
    "triaged": "triage",
    "dispatched": "dispatched",
    "rejected": "rejected",
    "withdrawn": "withdrawn",
    "whistled": "whistled",
    "reported_for_duty": "accepted",
    "accepted": "accepted",
    "resolved": "resolved",
    "reopened": "accepted",
    "closed": "closed",
}
# Reports per local hour of the day (relative).
HOURLY = np.array(
    [1, 0.5, 0.3, 0.3, 0.4, 0.8, 2, 4, 6, 7, 7, 6, 5, 5, 5, 5, 6, 7, 8, 8, 6, 4, 3, 2], float
)


@dataclass(frozen=True)
class History:
    """Column arrays ready for bulk loading; times are UTC seconds since 1970."""

    people: dict[str, np.ndarray]
    roles: dict[str, np.ndarray]
    cases: dict[str, np.ndarray]
    events: dict[str, np.ndarray]
    now: datetime


def _exp(rng: np.random.Generator, mean_h: Floats | float, n: int) -> Floats:
    return rng.exponential(1.0, n) * np.asarray(mean_h, dtype=float) * H


def generate(
    district: District,
    n: int,
    now: datetime,
    *,
    days: int | None = None,
    supervisors: bool = True,
    seed: int = 20261123,
) -> History:
    """`n` cases reported over `days` days up to `now` (default: ~8,300 a day, at least 30)."""
    rng = np.random.default_rng(seed)
    now_s = now.timestamp()
    days = days or max(30, int(np.ceil(n / 8300)))
    lanes = sorted(district.lanes.values(), key=lambda lane: lane.id)
    streets = sorted(district.street_offices) if supervisors else []
    categories = sorted(district.categories.values(), key=lambda c: c.id)

    # People: a chief per lane, a supervisor per street office, and the residents.
    chiefs = len(lanes)
    residents = max(1, n // 4)
    n_people = chiefs + len(streets) + residents
    people_id = np.arange(1, n_people + 1)
    people = {
        "id": people_id,
        "telegram_id": 50_000_000 + people_id,
        "language": np.where(people_id % 9 == 0, "en", "zh"),
        "created_at": np.full(n_people, now_s - (days + 30) * 86400.0),
    }
    role_person = np.arange(1, chiefs + len(streets) + 1)
    roles = {
        "id": role_person,
        "person_id": role_person,
        "role": np.array(["chief"] * chiefs + ["supervisor"] * len(streets)),
        "scope": np.array([lane.id for lane in lanes] + streets),
        "created_at": people["created_at"][: len(role_person)],
    }

    # When reported: a day, then an hour by the local daily rhythm (UTC+8).
    day = rng.integers(0, days, n)
    hour = rng.choice(24, n, p=HOURLY / HOURLY.sum())
    local_midnight = np.floor((now_s + 8 * H) / 86400.0) * 86400.0 - 8 * H
    t0 = local_midnight - day * 86400.0 + hour * H + rng.uniform(0, H, n)
    t0 = np.minimum(t0, now_s - rng.uniform(0, 600, n))
    order = np.argsort(t0, kind="stable")
    t0 = t0[order]
    case_id = np.arange(1, n + 1)

    lane_ix = rng.integers(0, len(lanes), n)
    cat_ix = rng.integers(0, len(categories), n)
    street_of_lane = np.array([lane.street_id for lane in lanes])
    n_staff = chiefs + len(streets)
    lane_ids = np.array([lane.id for lane in lanes])
    cat_ids = np.array([c.id for c in categories])
    cat_dept = np.array([c.department_id or "" for c in categories])
    response_h = np.array([c.response_hours for c in categories])[cat_ix]
    resolve_h = np.array([c.resolve_hours for c in categories])[cat_ix]
    lat = np.array([lane.representative_point[0] for lane in lanes])[lane_ix]
    lon = np.array([lane.representative_point[1] for lane in lanes])[lane_ix]
    lat = lat + rng.normal(0, 0.0002, n)
    lon = lon + rng.normal(0, 0.0002, n)
    department = cat_dept[cat_ix]
    to_chief = department == ""
    chief_person = lane_ix + 1

    nan = np.full(n, np.nan)
    t = {step: nan.copy() for step in range(len(STEPS))}
    u = rng.random((8, n))
    t[0] = t0
    duplicate = u[0] < 0.04
    t[1] = np.where(duplicate, t0 + 1, np.nan)
    live = ~duplicate
    triaged = live & (u[1] < 0.12)
    t[2] = np.where(triaged, t0 + 1, np.nan)
    dispatch_at = np.where(triaged, t0 + 60 + _exp(rng, 2.0, n), t0 + 1)
    t[3] = np.where(triaged, dispatch_at - 1, np.nan)
    t[4] = np.where(live, dispatch_at, np.nan)
    response_due = dispatch_at + response_h * H
    resolve_due = dispatch_at + resolve_h * H

    fate = u[2]
    rejected = live & (fate < 0.03)
    withdrawn = live & (fate >= 0.03) & (fate < 0.05)
    whistled = live & (fate >= 0.05) & (fate < 0.13) & to_chief
    accepted = live & ~rejected & ~withdrawn & ~whistled
    answer_at = dispatch_at + _exp(rng, response_h * 0.45, n)
    t[7] = np.where(rejected, answer_at, np.nan)
    t[8] = np.where(withdrawn, dispatch_at + _exp(rng, 5.0, n), np.nan)
    t[9] = np.where(whistled, answer_at, np.nan)
    t[10] = np.where(whistled, answer_at + _exp(rng, 2.0, n), np.nan)
    t[11] = np.where(accepted, answer_at, np.nan)
    slow = live & (answer_at > dispatch_at + 0.5 * response_h * H) & ~withdrawn
    t[5] = np.where(slow, dispatch_at + 0.5 * response_h * H, np.nan)
    late = live & (answer_at > response_due) & ~withdrawn
    t[6] = np.where(late, response_due, np.nan)
    within_accept = answer_at <= response_due

    took_on = np.where(whistled, t[10], answer_at)
    fixed = (accepted | whistled) & (u[3] < 0.97)
    resolved_at = took_on + _exp(rng, resolve_h * 0.35, n)
    t[12] = np.where(fixed, resolved_at, np.nan)
    within_fix = resolved_at <= resolve_due
    rated = fixed & (u[4] < 0.70)
    rated_at = resolved_at + _exp(rng, 6.0, n)
    stars = rng.choice([1, 2, 3, 4, 5], n, p=[0.03, 0.04, 0.08, 0.15, 0.70])
    t[13] = np.where(rated, rated_at, np.nan)
    reopened = rated & (stars <= 2)
    t[14] = np.where(reopened, rated_at, np.nan)
    refixed_at = rated_at + _exp(rng, 24.0, n)
    t[15] = np.where(reopened, refixed_at, np.nan)
    rerated_at = refixed_at + _exp(rng, 6.0, n)
    stars2 = rng.choice([3, 4, 5], n, p=[0.2, 0.3, 0.5])
    t[16] = np.where(reopened, rerated_at, np.nan)
    closed_at = np.where(reopened, rerated_at, np.where(rated, rated_at, resolved_at + 72 * H))
    t[17] = np.where(fixed, closed_at, np.nan)

    times = np.stack([t[s] for s in range(len(STEPS))])  # steps × cases
    happened = ~np.isnan(times) & (times <= now_s)

    # The case row: the state after its last step by `now`.
    state_of_step = np.array([STATE_AFTER.get(s, "") for s in STEPS])
    changing = happened & (state_of_step[:, None] != "")
    last = np.where(changing, times, -np.inf)
    last_step = np.argmax(last + np.arange(len(STEPS))[:, None] * 1e-6, axis=0)
    state = state_of_step[last_step]
    finished = np.isin(state, ("closed", "rejected", "withdrawn", "duplicate"))
    final_at = np.where(finished, np.nanmax(np.where(changing, times, np.nan), axis=0), np.nan)
    rating = np.where(happened[16], stars2, np.where(happened[13] & ~happened[14], stars, -1))
    local_day = (t0 + 8 * H) // 86400
    serial = _serials(local_day)
    number = np.char.add(
        np.char.add("BM-", _yyyymmdd(t0 + 8 * H)),
        np.char.add("-", np.char.zfill(serial.astype(str), 4)),
    )
    dispatched = happened[4]
    cases = {
        "id": case_id,
        "number": number,
        "state": state,
        "category_id": np.where(triaged & ~happened[4], "", cat_ids[cat_ix]),
        "lane_id": lane_ids[lane_ix],
        "street_id": street_of_lane[lane_ix],
        "department_id": np.where(
            dispatched & ~to_chief, department, np.where(happened[9], "chengguan", "")
        ),
        "assignee_id": np.where(dispatched & to_chief, chief_person, -1),
        "lat": lat,
        "lon": lon,
        "reporter_id": n_staff + 1 + rng.integers(0, residents, n),
        "priority": happened[14].astype(np.int64),
        "rating": rating,
        "created_at": t0,
        "updated_at": np.nanmax(np.where(happened, times, np.nan), axis=0),
        "response_due_at": np.where(dispatched, response_due, np.nan),
        "resolve_due_at": np.where(dispatched, resolve_due, np.nan),
        "closed_at": final_at,
    }

    # The events: every step that happened, ids in time order.
    step_ix, case_ix = np.nonzero(happened)
    when = times[step_ix, case_ix]
    by_time = np.lexsort((step_ix, case_ix, when))
    step_ix, case_ix, when = step_ix[by_time], case_ix[by_time], when[by_time]
    action = np.array(STEPS)[step_ix]
    data = _event_data(step_ix, case_ix, within_accept, within_fix, stars, stars2, to_chief)
    actor = np.where(
        np.isin(action, ("accepted", "resolved", "whistled", "rejected")),
        chief_person[case_ix],
        np.where(np.isin(action, ("submitted", "rated", "withdrawn")), -1, -2),
    )
    actor = np.where(actor == -1, cases["reporter_id"][case_ix], actor)
    events = {
        "id": np.arange(1, len(when) + 1),
        "case_id": case_ids_for(case_ix),
        "actor_id": actor,
        "action": action,
        "data": data,
        "created_at": when,
    }
    return History(people, roles, cases, events, now)


def case_ids_for(case_ix: Ints) -> Ints:
    return case_ix + 1


def _serials(local_day: Floats) -> Ints:
    """1, 2, 3 … within each local day, in time order (cases are sorted by time)."""
    starts = np.r_[0, np.flatnonzero(np.diff(local_day)) + 1]
    run = np.zeros(len(local_day), dtype=np.int64)
    run[starts] = 1
    group = np.cumsum(run) - 1
    return np.arange(len(local_day)) - starts[group] + 1


def _yyyymmdd(local_s: Floats) -> NDArray[np.str_]:
    days = (local_s // 86400).astype("int64").astype("datetime64[D]")
    return np.char.replace(np.datetime_as_string(days, unit="D"), "-", "")


def _event_data(
    step_ix: Ints,
    case_ix: Ints,
    within_accept: NDArray[np.bool_],
    within_fix: NDArray[np.bool_],
    stars: Ints,
    stars2: Ints,
    to_chief: NDArray[np.bool_],
) -> NDArray[np.object_]:
    """The JSON each event carries, as text (None: no data)."""
    out = np.full(len(step_ix), None, dtype=object)

    def put(step: int, values: NDArray[np.object_] | str) -> None:
        mask = step_ix == step
        out[mask] = values if isinstance(values, str) else values[case_ix[mask]]

    yes_no = np.array(['{"within_limit": false}', '{"within_limit": true}'], dtype=object)
    star_json = np.array([f'{{"stars": {s}}}' for s in range(6)], dtype=object)
    put(0, '{"photos": 1, "source": "chat"}')
    put(1, '{"how": "same category within 20 m"}')
    put(2, '{"target": "triage"}')
    target = np.where(to_chief, '{"target": "chief"}', '{"target": "department"}')
    put(4, target.astype(object))
    put(5, '{"kind": "respond_50"}')
    put(6, '{"window": "respond"}')
    put(9, '{"department": "chengguan"}')
    put(10, '{"department": "chengguan"}')
    put(11, yes_no[within_accept.astype(int)])
    put(12, yes_no[within_fix.astype(int)])
    put(13, star_json[stars])
    put(15, np.array(['{"within_limit": true}'] * len(to_chief), dtype=object))
    put(16, star_json[stars2])
    closed_rated = np.array(['{"rated": false}'] * len(to_chief), dtype=object)
    mask = step_ix == 17
    rated_cases = np.isin(np.arange(len(to_chief)), case_ix[step_ix == 13])
    out[mask] = np.where(rated_cases[case_ix[mask]], '{"rated": true}', closed_rated[0])
    return out


def utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)
