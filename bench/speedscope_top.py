"""Read a py-spy speedscope profile (from BENCH_PROFILE=DIR) as text: where the samples are.

`python -m bench.speedscope_top FILE [--top 25] [--match TEXT ...]` prints the share of
samples per package (by the innermost frame), the functions with the most samples of their
own, the functions with the most samples under them (inclusive), and for each --match the
inclusive share of the functions whose file or name contains it.

py-spy's idle detection misses some waits (under `--nonblocking` it sampled the event loop in
epoll and aiosqlite's threads waiting on their queues), so samples whose innermost frame is one
of those waits are left out (`--keep-idle` keeps them); `--thread TEXT` keeps only threads
whose name contains TEXT (e.g. MainThread: the event loop).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any

# Innermost frames that are a thread waiting, not working: (function name, file end, line or 0).
IDLE = (
    ("EpollSelector.select", "selectors.py", 0),
    ("_connection_worker_thread", "aiosqlite/core.py", 59),  # tx.get(): waiting for work
    ("_worker", "concurrent/futures/thread.py", 81),  # work_queue.get(): waiting for work
    ("Condition.wait", "threading.py", 0),
)


def _idle(frame: dict[str, Any]) -> bool:
    file = frame.get("file", "").replace("\\", "/")
    for name, end, line in IDLE:
        if frame["name"] == name and file.endswith(end) and line in (0, frame.get("line")):
            return True
    return False


def _package(path: str) -> str:
    path = path.replace("\\", "/")
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0]
    for ours in ("/bot/", "/storage/", "/bench/"):
        if ours in path:
            return ours.strip("/") + "/" + path.split(ours, 1)[1].split("/", 1)[0]
    if "/lib/python3" in path:
        return "stdlib " + path.rsplit("/", 1)[-1]
    return path


def summarise(
    data: dict[str, Any],
    top: int,
    matches: list[str],
    *,
    thread: str | None = None,
    keep_idle: bool = False,
) -> list[str]:
    frames = data["shared"]["frames"]
    idle = {i for i, f in enumerate(frames) if _idle(f)} if not keep_idle else set()
    dropped = 0.0

    def label(i: int) -> str:
        f = frames[i]
        file = f.get("file", "?").replace("\\", "/")
        short = "/".join(file.split("/")[-2:])
        return f"{f['name']} ({short}:{f.get('line', '?')})"

    own: Counter[int] = Counter()
    under: Counter[int] = Counter()
    packages: Counter[str] = Counter()
    matched: Counter[str] = Counter()
    total = 0.0
    for profile in data["profiles"]:
        if thread is not None and thread not in profile.get("name", ""):
            continue
        weights = profile.get("weights") or [1] * len(profile["samples"])
        for stack, weight in zip(profile["samples"], weights, strict=True):
            if not stack:
                continue
            if stack[-1] in idle:
                dropped += weight
                continue
            total += weight
            leaf = stack[-1]
            own[leaf] += weight
            packages[_package(frames[leaf].get("file", "?"))] += weight
            for i in set(stack):
                under[i] += weight
            for text in matches:
                if any(
                    text in frames[i].get("file", "") or text in frames[i]["name"] for i in stack
                ):
                    matched[text] += weight
    if not total:
        return ["no samples"]
    lines = [
        f"{total:,.2f} s sampled busy ({dropped:,.2f} s idle left out)",
        "",
        "By package (innermost frame):",
    ]
    lines += [f"  {w / total:6.1%}  {p}" for p, w in packages.most_common(top)]
    lines += ["", "Own samples:"]
    lines += [f"  {w / total:6.1%}  {label(i)}" for i, w in own.most_common(top)]
    lines += ["", "Inclusive:"]
    lines += [f"  {w / total:6.1%}  {label(i)}" for i, w in under.most_common(top)]
    if matches:
        lines += ["", "Inclusive, by match:"]
        lines += [f"  {matched[m] / total:6.1%}  {m}" for m in matches]
    return lines


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.speedscope_top", description=__doc__)
    p.add_argument("file", type=Path)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--match", action="append", default=[])
    p.add_argument("--thread", help="only threads whose name contains this")
    p.add_argument("--keep-idle", action="store_true")
    args = p.parse_args()
    data = json.loads(args.file.read_text(encoding="utf-8"))
    lines = summarise(data, args.top, args.match, thread=args.thread, keep_idle=args.keep_idle)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
