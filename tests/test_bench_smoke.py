"""The benchmarks must not rot: a quick routing run through `python -m bench`, as `make bench`
runs it, writing its table to a scratch file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_quick_routing_benchmark_prints_and_writes_its_table(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--quick",
            "--only",
            "routing",
            "--workdir",
            str(tmp_path),
            "--results",
            str(results),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for figure in ("lane lookup", "classification", "dispatch decision"):
        assert figure in done.stdout
        assert figure in results.read_text(encoding="utf-8")
    assert "bare STRtree" in done.stdout  # every figure has its same-run baseline
