"""Read a py-spy speedscope profile (from BENCH_PROFILE=DIR) as text: where the samples are.

`python -m bench.speedscope_top FILE [--top 25] [--match TEXT ...]` prints the share of
samples per package (by the innermost frame), the functions with the most samples of their
own, the functions with the most samples under them (inclusive), and for each --match the
inclusive share of the functions whose file or name contains it. py-spy records only samples
where the thread was not idle, so shares are of the process's busy (CPU) time.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any


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


def summarise(data: dict[str, Any], top: int, matches: list[str]) -> list[str]:
    frames = data["shared"]["frames"]

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
        weights = profile.get("weights") or [1] * len(profile["samples"])
        for stack, weight in zip(profile["samples"], weights, strict=True):
            if not stack:
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
    lines = [f"{total:,.0f} busy samples", "", "By package (innermost frame):"]
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
    args = p.parse_args()
    data = json.loads(args.file.read_text(encoding="utf-8"))
    print("\n".join(summarise(data, args.top, args.match)))


if __name__ == "__main__":
    main()
