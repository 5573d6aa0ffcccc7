"""The table: one row per figure, each with its same-run baseline and the ratio of the two."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

BEGIN = "<!-- bench:begin (written by `python -m bench`; edit outside these markers) -->"
END = "<!-- bench:end -->"


@dataclass(frozen=True)
class Row:
    """`value` of `figure` for `subject`, against `base_value` of `baseline` in the same run."""

    section: str
    subject: str
    figure: str
    value: float
    unit: str
    baseline: str
    base_value: float | None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.base_value is None or self.base_value == 0 or math.isnan(self.value):
            return None
        return self.value / self.base_value

    def cells(self) -> list[str]:
        ratio = "—" if self.ratio is None else f"×{number(self.ratio)}"
        base = "—" if self.base_value is None else f"{number(self.base_value)} {self.unit}"
        return [
            self.section,
            self.subject,
            self.figure,
            f"{number(self.value)} {self.unit}".strip(),
            self.baseline,
            base.strip(),
            ratio,
            self.note,
        ]


HEADERS = ["#", "Benchmark", "Figure", "Value", "Baseline (same run)", "Baseline", "Ratio", "Note"]


def number(x: float) -> str:
    if math.isnan(x):
        return "n/a"
    if x == 0:
        return "0"
    magnitude = abs(x)
    if magnitude >= 1000:
        return f"{x:,.0f}"
    if magnitude >= 100:
        return f"{x:.0f}"
    if magnitude >= 10:
        return f"{x:.1f}"
    if magnitude >= 1:
        return f"{x:.2f}"
    return f"{x:.3g}"


def plain_table(rows: list[Row]) -> str:
    cells = [HEADERS] + [row.cells() for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(HEADERS))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def markdown_table(rows: list[Row]) -> str:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    out = [line(HEADERS), line(["---"] * len(HEADERS))]
    out += [line(row.cells()) for row in rows]
    return "\n".join(out)


@dataclass
class Results:
    """Everything a run found: rows, and per section how to reproduce it and what to know."""

    rows: list[Row] = field(default_factory=list)
    how: dict[str, str] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)

    def add(self, *rows: Row) -> None:
        self.rows.extend(rows)

    def note(self, section: str, text: str) -> None:
        self.notes.setdefault(section, []).append(text)


def write_results(
    path: Path, results: Results, machine: list[tuple[str, str]], command: str
) -> None:
    """Replace the generated block of RESULTS.md, keeping whatever is written around it."""
    block = [
        BEGIN,
        "",
        f"Run: `{command}`",
        "",
        markdown_table(results.rows),
        "",
        "**Machine**",
        "",
        *(f"- {what}: {value}" for what, value in machine),
        "",
        "**How to reproduce each line** (from the repository root, after `make bench` once set"
        " up the venv)",
        "",
        *(f"- {section}: `{how}`" for section, how in results.how.items()),
        "",
    ]
    if results.notes:
        block += ["**Notes from this run**", ""]
        for section, texts in results.notes.items():
            block += [f"- {section}: {text}" for text in texts]
        block.append("")
    block.append(END)
    generated = "\n".join(block)
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    if BEGIN in old and END in old:
        head, rest = old.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        text = head + generated + tail
    else:
        text = "# Suipai benchmarks\n\n" + generated + "\n" + old
    path.write_text(text, encoding="utf-8")
