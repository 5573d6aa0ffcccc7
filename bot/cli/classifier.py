"""`python -m bot classifier train|eval`: build and measure the trainable text model.

The heavy imports (numpy, scikit-learn, jieba) happen only when a sub-command runs, so that
other commands of `python -m bot` start quickly.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.domain.routing.classify import Evaluation


class CliError(Exception):
    """A user error, reported as one line on stderr."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "classifier",
        help="train and evaluate the report classifier's text model",
        description="Train and evaluate the text model that sorts reports into categories.",
    )
    commands = parser.add_subparsers(dest="classifier_command", required=True)

    def data_arguments(p: argparse.ArgumentParser) -> None:
        p.add_argument("--csv", required=True, type=Path, help="labelled CSV (UTF-8, BOM ok)")
        p.add_argument("--text-col", required=True, help="column with the message text")
        p.add_argument("--label-col", required=True, help="column with the label")
        p.add_argument("--title-col", help="optional column with a title, joined before the text")

    train = commands.add_parser("train", help="train on all rows and write the model")
    data_arguments(train)
    train.add_argument("--out", required=True, type=Path, help="model file (JSON; + .npz)")
    train.set_defaults(func=train_command)

    ev = commands.add_parser(
        "eval",
        help="evaluate a saved model, or cross-validate",
        description="With --model: evaluate that model on the CSV. Otherwise: stratified "
        "K-fold cross-validation (--folds, default 5), training within each fold.",
    )
    data_arguments(ev)
    ev.add_argument("--model", type=Path, help="a saved model to evaluate")
    ev.add_argument("--folds", type=int, help="K for stratified K-fold CV (default 5)")
    ev.add_argument("--seed", type=int, default=0, help="shuffling seed of the CV folds")
    ev.add_argument("--threshold", type=float, default=0.6, help="dispatch when confidence ≥ this")
    ev.set_defaults(func=eval_command)

    labels = commands.add_parser(
        "labels",
        help="write the categories people chose in triage as a training CSV",
        description="Each case's latest category chosen or corrected by a person; train the "
        "next model on it with --text-col text --label-col label.",
    )
    labels.add_argument("--out", required=True, type=Path, help="CSV file to write")
    labels.set_defaults(func=labels_command)


@dataclass(frozen=True)
class Dataset:
    texts: list[str]
    labels: list[str]
    skipped: int


def read_dataset(path: Path, text_col: str, label_col: str, title_col: str | None) -> Dataset:
    """Rows of a UTF-8 (optionally BOM-prefixed) CSV; rows without text or label are skipped."""
    if not path.is_file():
        raise CliError(f"CSV file not found: {path}")
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            columns = list(reader.fieldnames or [])
            wanted = [c for c in (text_col, label_col, title_col) if c is not None]
            missing = [c for c in wanted if c not in columns]
            if missing:
                raise CliError(
                    f"column {', '.join(repr(c) for c in missing)} not in {path}"
                    f" (columns: {', '.join(columns) or 'none'})"
                )
            texts, labels, skipped = [], [], 0
            for row in reader:
                text = (row.get(text_col) or "").strip()
                title = (row.get(title_col) or "").strip() if title_col else ""
                label = (row.get(label_col) or "").strip()
                body = f"{title}\n{text}" if title and text else title or text
                if not body or not label:
                    skipped += 1
                    continue
                texts.append(body)
                labels.append(label)
    except UnicodeDecodeError as exc:
        raise CliError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except csv.Error as exc:
        raise CliError(f"{path}: malformed CSV ({exc})") from exc
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from exc
    if not texts:
        raise CliError(f"no labelled rows in {path}")
    return Dataset(texts, labels, skipped)


def _run(func: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    try:
        return func(args)
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def train_command(args: argparse.Namespace) -> int:
    return _run(_train, args)


def eval_command(args: argparse.Namespace) -> int:
    return _run(_eval, args)


def _train(args: argparse.Namespace) -> int:
    from bot.domain.routing.classify import TextModel

    data = read_dataset(args.csv, args.text_col, args.label_col, args.title_col)
    counts = Counter(data.labels)
    if len(counts) < 2:
        raise CliError(f"need at least two different labels in {args.csv}, found {len(counts)}")
    try:
        model = TextModel.train(data.texts, data.labels)
        model.save(args.out)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    except OSError as exc:
        raise CliError(f"cannot write {args.out}: {exc.strerror}") from exc
    print(f"trained on {len(data.texts)} rows" + _skipped(data))
    width = max(_width(label) for label in counts)
    for label, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"  {_pad(label, width)}  {n:5d}")
    print(f"wrote {args.out} and {TextModel.arrays_path(args.out)}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from bot.domain.routing.classify import (
        ModelFormatError,
        TextModel,
        cross_validate_proba,
        evaluate,
    )

    if not 0.0 <= args.threshold <= 1.0:
        raise CliError("--threshold must be between 0 and 1")
    if args.model is not None and args.folds is not None:
        raise CliError("use either --model (evaluate a saved model) or --folds (cross-validate)")
    model = None
    if args.model is not None:
        try:
            model = TextModel.load(args.model)
        except ModelFormatError as exc:
            raise CliError(str(exc)) from exc
    data = read_dataset(args.csv, args.text_col, args.label_col, args.title_col)
    if model is not None:
        probas = model.predict_proba(data.texts)
        unknown = sorted(set(data.labels) - set(model.labels))
        print(f"model {args.model} on {len(data.texts)} rows of {args.csv}" + _skipped(data))
        if unknown:
            print(f"note: labels the model does not know (always wrong): {', '.join(unknown)}")
    else:
        folds = 5 if args.folds is None else args.folds
        counts = Counter(data.labels)
        if folds < 2 or folds > max(counts.values()):
            raise CliError(f"--folds must be between 2 and {max(counts.values())}")
        rare = sorted(label for label, n in counts.items() if n < folds)
        print(
            f"{folds}-fold stratified cross-validation (seed {args.seed}) on {len(data.texts)}"
            f" rows of {args.csv}" + _skipped(data)
        )
        if rare:
            print(f"note: fewer rows than folds for: {', '.join(rare)}")
        try:
            probas = cross_validate_proba(data.texts, data.labels, folds, seed=args.seed)
        except ValueError as exc:
            raise CliError(str(exc)) from exc
    print(format_evaluation(evaluate(data.labels, probas, args.threshold)))
    return 0


def _skipped(data: Dataset) -> str:
    return f" ({data.skipped} rows without text or label skipped)" if data.skipped else ""


def _pct(x: float) -> str:
    return "   -" if math.isnan(x) else f"{100 * x:5.1f}%"


def _width(text: str) -> int:
    """Display width in a terminal: CJK characters take two columns."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * max(0, width - _width(text))


def format_evaluation(ev: Evaluation) -> str:
    width = max([_width(s.label) for s in ev.per_label] + [5])
    lines = [
        f"accuracy  {ev.accuracy:.3f}    macro-F1  {ev.macro_f1:.3f}"
        f"    (majority baseline: accuracy {ev.majority_accuracy:.3f},"
        f" macro-F1 {ev.majority_macro_f1:.3f})",
        "",
        f"{_pad('label', width)}  precision  recall     F1  support",
    ]
    for s in ev.per_label:
        lines.append(
            f"{_pad(s.label, width)}  {s.precision:9.3f}  {s.recall:6.3f}"
            f"  {s.f1:5.3f}  {s.support:7d}"
        )
    lines += [
        "",
        f"at threshold {ev.threshold:.2f}: coverage {_pct(ev.coverage)} dispatched automatically,"
        f" accuracy on those {_pct(ev.covered_accuracy)}",
        "",
        "threshold  coverage  accuracy",
    ]
    for threshold, coverage, accuracy in ev.sweep:
        lines.append(f"     {threshold:.1f}    {_pct(coverage)}    {_pct(accuracy)}")
    return "\n".join(lines)


async def labels_command(args: argparse.Namespace) -> int:
    from bot.config import get_settings
    from bot.domain.labels import labels_csv
    from storage.db import make_engine, make_sessionmaker
    from storage.files import write_atomically

    engine = make_engine(get_settings().database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            text, n = await labels_csv(session)
    finally:
        await engine.dispose()
    write_atomically(args.out, text.encode("utf-8"))
    print(f"{n} labelled case(s) written to {args.out}")
    return 0
