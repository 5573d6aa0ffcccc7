"""The report classifier: normalisation, keyword rules with negation, the text model, pooling,
persistence, cross-validated quality on the real labelled messages, speed, and the CLI."""

from __future__ import annotations

import argparse
import csv
import json
import os
import pickle
import random
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.cli import classifier as cli
from bot.domain.routing.classify import (
    Classification,
    Classifier,
    ModelFormatError,
    TextModel,
    cross_validate_proba,
    evaluate,
    has_text,
    normalize_text,
)

DATA_CSV = Path(
    os.environ.get("SUIPAI_CLASSIFIER_CSV", "/work/shared/data/citizen-messages-labelled-495.csv")
)
needs_data = pytest.mark.skipif(not DATA_CSV.is_file(), reason=f"{DATA_CSV} not available")


@dataclass(frozen=True)
class Cat:
    """A minimal CategoryRule (bot.domain.district.Category is not imported on purpose)."""

    id: str
    keywords: tuple[str, ...]


CATEGORIES = (
    Cat("manhole", ("井盖", "窨井", "manhole", "manhole cover", "drain cover")),
    Cat("street_light", ("路灯", "路灯不亮", "照明", "street light", "streetlight", "lamp post")),
    Cat("trash", ("垃圾", "垃圾桶", "garbage", "bin", "litter")),
    Cat("noise", ("噪音", "扰民", "ktv", "loud music", "noise")),
)


class FixedModel:
    """A stand-in TextModel with fixed probabilities; counts its calls."""

    def __init__(self, probs: Mapping[str, float]) -> None:
        self.labels = tuple(probs)
        self.probs = dict(probs)
        self.calls = 0

    def predict_proba(self, texts: Sequence[str]) -> list[dict[str, float]]:
        self.calls += 1
        return [dict(self.probs) for _ in texts]


def fixed(probs: Mapping[str, float]) -> TextModel:
    return cast(TextModel, FixedModel(probs))


def rules(threshold: float = 0.6) -> Classifier:
    return Classifier(CATEGORIES, threshold=threshold)


# -- normalisation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "\n\t \u3000",
        "😀👍🏽🔥",
        "😀\u200d😀",
        "，。！？…",
        "?!...",
        "\u200b\u200f\u202e",
        "🙂 ！",
    ],
)
def test_no_text_is_triaged_without_calling_the_model(text: str) -> None:
    model = FixedModel({"manhole": 0.9, "trash": 0.1})
    result = Classifier(CATEGORIES, cast(TextModel, model)).classify(text)
    assert result == Classification(None, 0.0, "none", ("no text",))
    assert model.calls == 0
    assert not has_text(normalize_text(text))


def test_normalisation_folds_width_case_invisible_and_bidi_characters() -> None:
    assert normalize_text("ＫＴＶ　太吵") == "ktv 太吵"
    assert normalize_text("井\u200b盖\u200d丢\ufeff了") == "井盖丢了"
    assert normalize_text("\u202estreet\u200f light\u202c") == "street light"
    assert normalize_text("\u2067路灯\u2069 isn\u2019t  on") == "路灯 isn't on"
    assert normalize_text(" a \r\n\n  b ") == "a\nb"


def test_invisible_characters_cannot_hide_a_keyword() -> None:
    assert rules().classify("井\u200b盖\u200c丢了").category_id == "manhole"
    assert rules().classify("\u202eＭＡＮＨＯＬＥ\u202c is open").category_id == "manhole"


def test_keyword_rules_alone_load_no_model_library() -> None:
    """A bot without CLASSIFIER_MODEL never pays for scikit-learn, scipy or jieba (memory)."""
    code = (
        "import sys\n"
        "from bot.domain.routing.classify import Classifier\n"
        "from bot.domain.district import load_district\n"
        "from bot.config import SAMPLE_DISTRICT_DIR\n"
        "categories = list(load_district(SAMPLE_DISTRICT_DIR).categories.values())\n"
        "assert Classifier(categories).classify('井盖丢了').category_id\n"
        "print(sorted(m for m in ('sklearn', 'scipy', 'jieba') if m in sys.modules))\n"
    )
    ran = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert ran.stdout.strip() == "[]"


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_normalisation_is_idempotent(text: str) -> None:
    once = normalize_text(text)
    assert normalize_text(once) == once


@settings(max_examples=200, deadline=None)
@given(
    st.text(
        alphabet=st.sampled_from(list("井盖路灯垃圾桶没有不是无并非 ,.，。但是notnobin😀\u200b"))
    )
)
def test_classify_never_fails_and_stays_in_range(text: str) -> None:
    result = rules().classify(text)
    assert 0.0 <= result.confidence <= 1.0
    assert result.category_id in {None, *(c.id for c in CATEGORIES)}
    assert result.method in {"rule", "none"}
    assert result.reasons


# -- keyword rules ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("路边井盖丢了，很危险", "manhole"),
        ("小区门口垃圾桶满了没人清理", "trash"),
        ("楼下KTV太吵", "noise"),
        ("The manhole cover on Main St is missing", "manhole"),
        ("street lights out all night", "street_light"),  # plural on a phrase's last word
        ("overflowing bins everywhere", "trash"),  # plural of a one-word keyword
        ("the street-light is broken", "street_light"),  # hyphen between the phrase's words
        ("路灯light坏了", "street_light"),
    ],
)
def test_rules_match_zh_by_substring_and_en_on_word_boundaries(text: str, category: str) -> None:
    result = rules(threshold=0.5).classify(text)
    assert (result.category_id, result.method) == (category, "rule")
    assert any(r.startswith('keyword "') for r in result.reasons)


@pytest.mark.parametrize("text", ["the cabinet is open", "binary noise", "a manholes"])
def test_english_keywords_need_word_boundaries(text: str) -> None:
    result = rules().classify(text)
    assert 'keyword "bin"' not in result.reasons
    if text == "binary noise":
        assert result.category_id == "noise"  # "noise" is a whole word there
    elif text == "a manholes":
        assert result.category_id == "manhole"  # plural
    else:
        assert result == Classification(None, 0.0, "none", ("no keyword matched",))


def test_longest_keyword_wins_and_more_specific_keywords_score_higher() -> None:
    one = rules().classify("路灯坏了")
    longer = rules().classify("路灯不亮")
    assert one.category_id == longer.category_id == "street_light"
    assert longer.confidence > one.confidence
    assert longer.reasons == ('keyword "路灯不亮"',)  # "路灯" inside it is not counted again
    more = rules().classify("路灯不亮，照明太差")
    assert more.confidence > longer.confidence


def test_a_lone_one_character_keyword_is_not_enough_at_the_default_threshold() -> None:
    cats = (Cat("trees", ("树", "绿化带")), Cat("trash", ("垃圾",)))
    weak = Classifier(cats).classify("门口的树")
    assert weak.category_id is None
    assert weak.reasons[-1].startswith("below threshold 0.60: best guess trees")
    assert Classifier(cats).classify("绿化带的树").category_id == "trees"


def test_a_keyword_shared_by_two_categories_counts_for_both() -> None:
    cats = (Cat("a", ("垃圾",)), Cat("b", ("垃圾", "堆放")))
    result = Classifier(cats).classify("垃圾堆放在路边")
    assert result.category_id == "b"
    assert result.confidence < Classifier(cats).classify("堆放杂物").confidence


# -- negation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "category", "ignored"),
    [
        ("井盖没有问题，但是路灯不亮", "street_light", "井盖"),
        ("not a manhole problem, the street light is broken", "street_light", "manhole"),
        ("不是井盖的问题，是路灯坏了", "street_light", "井盖"),
        ("并非垃圾，噪音扰民", "noise", "垃圾"),
        ("there is no garbage here, but loud music every night", "noise", "garbage"),
        ("this isn't about litter; the streetlight is out", "street_light", "litter"),
        ("without any noise. the manhole is open", "manhole", "noise"),
        ("路灯正常，井盖坏了", "manhole", "路灯"),
        ("the manhole cover is fine but the streetlight is out", "street_light", "manhole cover"),
        ("无垃圾，路灯坏了", "street_light", "垃圾"),
    ],
)
def test_negated_keywords_do_not_count(text: str, category: str, ignored: str) -> None:
    result = rules().classify(text)
    assert result.category_id == category
    assert f'negated keyword "{ignored}" ignored' in result.reasons
    assert "conflicting keywords" not in " ".join(result.reasons)


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("路灯不亮", "street_light"),  # a negation after the keyword describes the problem
        ("没有人修路灯", "street_light"),  # "没有人" is not a negation of 路灯
        ("不远处的井盖坏了", "manhole"),  # 不 is part of 不远处
        ("路灯不正常", "street_light"),
        ("不，井盖丢了", "manhole"),  # the negation is in another clause
        ("the street light is not working", "street_light"),
        ("no one has fixed the broken street light for weeks", "street_light"),
        ("the manhole cover is not ok", "manhole"),
    ],
)
def test_keywords_near_but_not_under_a_negation_count(text: str, category: str) -> None:
    result = rules().classify(text)
    assert result.category_id == category
    assert not any(r.startswith("negated") for r in result.reasons)


def test_only_negated_keywords_means_no_rule() -> None:
    result = rules().classify("不是井盖的问题")
    assert result.category_id is None
    assert result.method == "none"
    assert result.reasons == ('negated keyword "井盖" ignored', "no keyword matched")


# -- conflicts and the threshold -------------------------------------------------------------


def test_conflicting_keywords_lower_confidence() -> None:
    alone = rules().classify("井盖坏了")
    strong = rules(threshold=0.5).classify("井盖窨井都坏了，旁边有垃圾")
    assert strong.category_id == "manhole"
    assert strong.confidence < rules().classify("井盖窨井都坏了").confidence
    assert 'keyword "垃圾" → trash' in strong.reasons
    assert any(r.startswith("conflicting keywords: manhole") for r in strong.reasons)
    even = rules().classify("井盖坏了，路灯也坏了")
    assert even.category_id is None  # a tie cannot be decided by rules alone
    assert even.confidence < alone.confidence
    assert any(r.startswith("tie between manhole, street_light") for r in even.reasons)


def test_below_threshold_goes_to_triage_with_the_best_guess_in_reasons() -> None:
    text = "井盖窨井都坏了，旁边有垃圾"
    confident = rules(threshold=0.5).classify(text)
    assert confident.category_id == "manhole"
    strict = rules(threshold=0.95).classify(text)
    assert strict.category_id is None
    assert strict.confidence == pytest.approx(confident.confidence)
    assert strict.reasons[-1] == f"below threshold 0.95: best guess manhole {strict.confidence:.2f}"


def test_invalid_configuration_is_refused() -> None:
    with pytest.raises(ValueError, match="threshold"):
        Classifier(CATEGORIES, threshold=1.5)
    with pytest.raises(ValueError, match="unique"):
        Classifier([Cat("a", ()), Cat("a", ())])
    with pytest.raises(ValueError, match="unknown category ids: nowhere"):
        Classifier(CATEGORIES, fixed({"x": 0.5, "y": 0.5}), label_map={"x": "nowhere"})
    with pytest.raises(ValueError, match="pass label_map"):
        Classifier(CATEGORIES, fixed({"城乡建设": 0.5, "环境保护": 0.5}))


# -- rules and model together ----------------------------------------------------------------


def probs(top: str, p: float) -> dict[str, float]:
    others = [c.id for c in CATEGORIES if c.id != top]
    return {top: p, **{o: (1 - p) / len(others) for o in others}}


def test_model_alone_decides_when_no_keyword_matches() -> None:
    result = Classifier(CATEGORIES, fixed(probs("trash", 0.8))).classify("楼道里堆满了东西")
    assert (result.category_id, result.method) == ("trash", "model")
    assert result.confidence == pytest.approx(0.8)
    assert "model 0.80" in result.reasons


def test_agreement_raises_and_disagreement_lowers_confidence() -> None:
    text = "路边井盖丢了"
    rule_only = rules().classify(text).confidence
    agree = Classifier(CATEGORIES, fixed(probs("manhole", 0.7))).classify(text)
    assert agree.category_id == "manhole" and agree.method == "rule+model"
    assert agree.confidence > max(rule_only, 0.7)
    assert "rule and model agree" in agree.reasons
    weak = Classifier(CATEGORIES, fixed(probs("trash", 0.4))).classify(text)
    assert weak.category_id == "manhole"
    assert weak.confidence < rule_only
    assert "rule and model disagree" in weak.reasons
    assert "model prefers trash 0.40" in weak.reasons
    strong = Classifier(CATEGORIES, fixed(probs("trash", 0.9))).classify(text)
    assert strong.confidence < 0.9


def test_model_breaks_a_tie_between_keywords() -> None:
    text = "井盖坏了，路灯也坏了"
    result = Classifier(CATEGORIES, fixed(probs("street_light", 0.5))).classify(text)
    assert result.category_id == "street_light"
    assert result.confidence > 0.6


def test_label_map_translates_model_labels_and_unmapped_labels_are_never_chosen() -> None:
    model = fixed({"城乡建设": 0.7, "环境保护": 0.2, "教育文体": 0.1})
    mapped = Classifier(CATEGORIES, model, label_map={"城乡建设": "manhole", "环境保护": "trash"})
    result = mapped.classify("这里有个问题")
    assert result.category_id == "manhole"
    assert result.confidence == pytest.approx(0.7)
    other = fixed({"城乡建设": 0.1, "环境保护": 0.1, "教育文体": 0.8})
    result = Classifier(CATEGORIES, other, label_map={"城乡建设": "manhole"}).classify("学校")
    assert result.category_id is None
    assert "model: none of the district's categories" in result.reasons


def test_model_threshold_behaviour() -> None:
    model = fixed(probs("noise", 0.55))
    assert Classifier(CATEGORIES, model, threshold=0.5).classify("晚上很吵").category_id == "noise"
    triaged = Classifier(CATEGORIES, model, threshold=0.6).classify("晚上很吵")
    assert triaged.category_id is None
    assert triaged.reasons[-1] == "below threshold 0.60: best guess noise 0.55"


# -- the text model --------------------------------------------------------------------------

SMALL = {
    "lights": [
        "路灯不亮了",
        "晚上路灯坏了很黑",
        "小区路灯一直闪",
        "路灯白天也亮着",
        "这条路没有照明太黑",
    ],
    "manhole": ["井盖丢了很危险", "井盖松动一踩就响", "窨井盖破损", "路中间井盖塌陷", "井盖移位了"],
    "trash": [
        "垃圾桶满了",
        "垃圾没人清运很臭",
        "路边乱扔垃圾",
        "垃圾站苍蝇很多",
        "建筑垃圾堆在路边",
    ],
}


@pytest.fixture(scope="module")
def small_model() -> TextModel:
    texts = [t for ts in SMALL.values() for t in ts]
    labels = [label for label, ts in SMALL.items() for _ in ts]
    return TextModel.train(texts, labels, min_df=1)


def test_text_model_learns_and_gives_probabilities(small_model: TextModel) -> None:
    assert small_model.labels == ("lights", "manhole", "trash")
    out = small_model.predict_proba(["路灯坏了", "井盖不见了", "好多垃圾"])
    for row in out:
        assert set(row) == set(small_model.labels)
        assert sum(row.values()) == pytest.approx(1.0)
    assert [max(r, key=lambda k: r[k]) for r in out] == ["lights", "manhole", "trash"]
    assert small_model.predict_proba([]) == []


def test_training_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="two different labels"):
        TextModel.train(["a", "b"], ["x", "x"])
    with pytest.raises(ValueError, match="labels"):
        TextModel.train(["a", "b"], ["x"])
    with pytest.raises(TypeError, match="unknown TextModel parameter"):
        TextModel.train(["a", "b"], ["x", "y"], alpha=1)


def test_save_load_round_trip_gives_identical_probabilities(
    small_model: TextModel, tmp_path: Path
) -> None:
    path = tmp_path / "model.json"
    small_model.save(path)
    assert TextModel.arrays_path(path).is_file()
    loaded = TextModel.load(path)
    texts = ["路灯坏了", "井盖不见了", "好多垃圾", "something else entirely", "x"]
    assert loaded.labels == small_model.labels
    assert loaded.predict_proba(texts) == small_model.predict_proba(texts)
    assert b"pickle" not in path.read_bytes()
    with np.load(TextModel.arrays_path(path), allow_pickle=False) as npz:
        assert sorted(npz.files) == ["coef", "idf", "intercept"]


def test_tampered_or_foreign_model_files_are_refused(
    small_model: TextModel, tmp_path: Path
) -> None:
    path = tmp_path / "model.json"
    small_model.save(path)
    original = path.read_text(encoding="utf-8")
    arrays = TextModel.arrays_path(path).read_bytes()

    payload = json.loads(original)
    payload["temperature"] *= 2
    path.write_text(json.dumps(payload), encoding="utf-8")
    with pytest.raises(ModelFormatError, match="checksum mismatch"):
        TextModel.load(path)

    path.write_text(original, encoding="utf-8")
    TextModel.arrays_path(path).write_bytes(arrays[:-10] + b"0123456789")
    with pytest.raises(ModelFormatError, match="checksum mismatch, the arrays"):
        TextModel.load(path)
    TextModel.arrays_path(path).unlink()
    with pytest.raises(ModelFormatError, match="cannot read model arrays"):
        TextModel.load(path)

    path.write_bytes(pickle.dumps({"format": "suipai.text-model"}))
    with pytest.raises(ModelFormatError, match="not a Suipai text model"):
        TextModel.load(path)
    path.write_text(json.dumps({"hello": "world"}), encoding="utf-8")
    with pytest.raises(ModelFormatError, match="not a Suipai text model"):
        TextModel.load(path)
    path.write_text(json.dumps({"format": "suipai.text-model", "version": 99}), encoding="utf-8")
    with pytest.raises(ModelFormatError, match="unsupported model format version 99"):
        TextModel.load(path)
    with pytest.raises(ModelFormatError, match="cannot read model file"):
        TextModel.load(tmp_path / "missing.json")


def test_classifier_with_a_trained_model(small_model: TextModel) -> None:
    cats = (Cat("lights", ("路灯",)), Cat("manhole", ("井盖",)), Cat("trash", ("垃圾",)))
    clf = Classifier(cats, small_model)
    agree = clf.classify("路灯坏了好几天")
    assert agree.category_id == "lights" and agree.method == "rule+model"
    assert agree.confidence > Classifier(cats).classify("路灯坏了好几天").confidence
    assert clf.classify("不是井盖").method in {"model", "none"}
    unknown = clf.classify("zzz qqq")  # nothing the model has seen: its opinion is not used
    assert unknown == Classification(
        None, 0.0, "none", ("no keyword matched", "model: no known words")
    )
    assert small_model.predict_proba(["zzz"]) == [dict.fromkeys(small_model.labels, 1 / 3)]


# -- real data: cross-validation, speed ------------------------------------------------------


def read_csv(path: Path) -> tuple[list[str], list[str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [f"{r['title']}\n{r['text']}" for r in rows], [r["label"] for r in rows]


@needs_data
def test_cross_validated_quality_is_well_above_the_majority_baseline() -> None:
    texts, labels = read_csv(DATA_CSV)
    probas = cross_validate_proba(texts, labels, folds=5, seed=0)
    report = evaluate(labels, probas, threshold=0.6)
    majority, count = Counter(labels).most_common(1)[0]
    baseline_accuracy = count / len(labels)
    share = baseline_accuracy  # F1 of always answering the majority label, averaged over labels
    baseline_f1 = (2 * share / (1 + share)) / len(set(labels))
    assert report.majority_label == majority
    assert report.majority_macro_f1 == pytest.approx(baseline_f1)
    assert report.macro_f1 > baseline_f1 + 0.5
    assert report.accuracy > baseline_accuracy + 0.4
    # calibrated enough to be useful: the dispatched share is more accurate than the whole
    assert report.coverage > 0.5
    assert report.covered_accuracy > report.accuracy
    coverages = [c for _, c, _ in report.sweep]
    assert coverages == sorted(coverages, reverse=True)


@needs_data
def test_classifying_one_text_is_fast(small_model: TextModel) -> None:
    texts, _ = read_csv(DATA_CSV)
    clf = Classifier(
        (Cat("lights", ("路灯", "照明")), Cat("manhole", ("井盖",)), Cat("trash", ("垃圾",))),
        small_model,
    )
    clf.classify("warm up")
    sample = [*random.Random(0).sample(texts, 60), "路边井盖丢了", (texts[0] * 40)[:4096]]
    timings = []
    for text in sample:
        start = time.process_time()
        clf.classify(text)
        timings.append(time.process_time() - start)
    assert statistics.median(timings) < 0.010


# -- CLI -------------------------------------------------------------------------------------


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot")
    cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["classifier", *argv])
    result = args.func(args)
    assert isinstance(result, int)
    return result


@pytest.fixture()
def csv_copy(tmp_path: Path) -> Path:
    """A copy of the labelled data, a third of it, saved with a UTF-8 BOM."""
    if DATA_CSV.is_file():
        with DATA_CSV.open(encoding="utf-8-sig", newline="") as handle:
            rows = list(csv.DictReader(handle))[::3]
    else:  # keep the CLI tests meaningful without the data set
        rows = [
            {"id": str(i), "title": "", "text": text, "label": label}
            for i, (label, ts) in enumerate(SMALL.items())
            for text in ts
        ]
    path = tmp_path / "messages.csv"
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["id", "title", "text", "label"])
        writer.writeheader()
        writer.writerows(rows)
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    return path


def test_cli_train_then_eval(
    csv_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "out" / "model.json"
    data = ["--csv", str(csv_copy), "--text-col", "text", "--label-col", "label"]
    assert run_cli("train", *data, "--title-col", "title", "--out", str(model)) == 0
    out = capsys.readouterr().out
    labels = Counter(read_csv(csv_copy)[1])
    assert f"trained on {sum(labels.values())} rows" in out
    for label, n in labels.items():
        assert any(line.split() == [label, str(n)] for line in out.splitlines())
    assert model.is_file() and TextModel.arrays_path(model).is_file()

    assert run_cli("eval", *data, "--title-col", "title", "--model", str(model)) == 0
    out = capsys.readouterr().out
    assert "accuracy" in out and "macro-F1" in out and "majority baseline" in out
    assert "at threshold 0.60: coverage" in out
    for t in ("0.3", "0.5", "0.9"):
        assert any(line.split()[:1] == [t] for line in out.splitlines())

    assert run_cli("eval", *data, "--folds", "3", "--threshold", "0.7") == 0
    out = capsys.readouterr().out
    assert "3-fold stratified cross-validation" in out
    assert "at threshold 0.70" in out
    for label in labels:
        assert any(line.startswith(label) for line in out.splitlines())


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--csv", "{missing}", "--text-col", "text", "--label-col", "label"],
            "CSV file not found",
        ),
        (["--csv", "{csv}", "--text-col", "body", "--label-col", "label"], "column 'body' not in"),
        (
            ["--csv", "{csv}", "--text-col", "text", "--label-col", "label", "--model", "{csv}"],
            "not a Suipai text model",
        ),
        (
            ["--csv", "{csv}", "--text-col", "text", "--label-col", "label", "--folds", "1"],
            "--folds must be between 2",
        ),
    ],
)
def test_cli_errors_are_one_clear_line(
    argv: list[str],
    message: str,
    csv_copy: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    filled = [a.format(csv=csv_copy, missing=tmp_path / "nope.csv") for a in argv]
    assert run_cli("eval", *filled) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err
