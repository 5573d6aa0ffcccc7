"""Sort a citizen's report into one of the district's categories, or hand it to triage.

Two sources of evidence are combined:

* **keyword rules** written by the district (``CategoryRule.keywords``): Chinese keywords match
  as substrings, English ones on word boundaries (an optional plural ``s``/``es`` is allowed).
  A keyword closely preceded by a negation in the same clause ("没有", "不是", "并非", "无", "不",
  "no", "not", "isn't", "without" …), or closely followed by an all-clear ("没问题", "正常",
  "is fine" …), does not count.  Each matched keyword scores by its specificity (length); keywords
  of several categories conflict and lower the rule's confidence.
* a trainable **text model** (:class:`TextModel`): TF-IDF over character 1–3-grams plus jieba
  words, a linear SVM, and a softmax whose temperature is fitted on inner cross-validation so
  that its probabilities are calibrated.  It is stored as JSON + ``.npz`` (never pickle) with
  checksums, and refuses files it did not write.

The two are pooled as independent experts (the rule's distribution times the model's vote):
agreement raises the confidence above either alone, disagreement lowers it.  Results whose
confidence is below the threshold get ``category_id=None`` (triage); the best guess is kept in
``reasons``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import threading
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol

import numpy as np

if TYPE_CHECKING:
    from jieba import Tokenizer
    from numpy.typing import NDArray

    FloatArray = NDArray[np.float64]
    IntArray = NDArray[np.intp]

log = logging.getLogger(__name__)

__all__ = [
    "CategoryRule",
    "Classification",
    "Classifier",
    "Evaluation",
    "ModelFormatError",
    "TextModel",
    "cross_validate_proba",
    "evaluate",
    "has_text",
    "normalize_text",
]

# --------------------------------------------------------------------------------------------
# Text normalisation
# --------------------------------------------------------------------------------------------

# Zero-width characters, bidi embeddings/overrides/isolates/marks, word joiner and invisible
# operators, soft hyphen, Arabic letter mark, Mongolian vowel separator, BOM, interlinear
# annotation controls and Unicode tag characters.
_INVISIBLE = re.compile(
    "[\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f"
    "\ufeff\ufff9-\ufffb\U000e0000-\U000e007f]"
)
_QUOTES = re.compile("[\u2018\u2019\u201b\u2032]")  # curly apostrophes → '
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")
_HSPACE = re.compile(r"[^\S\n]+")
_NEWLINES = re.compile(r" ?\n[\s]*")


def normalize_text(text: str) -> str:
    """NFKC, drop zero-width/bidi/format characters, lower-case, tidy whitespace.

    Line breaks are kept (as single ``\\n``) because they end a clause; other whitespace runs
    become one space.  The function is idempotent.
    """
    text = _INVISIBLE.sub("", text)
    text = unicodedata.normalize("NFKC", text)
    text = _QUOTES.sub("'", text).lower()
    if not unicodedata.is_normalized("NFKC", text):  # lower() can un-normalise ("İ")
        text = unicodedata.normalize("NFKC", text)
    text = _INVISIBLE.sub("", text)
    text = _CONTROL.sub(" ", text)
    text = _HSPACE.sub(" ", text)
    return _NEWLINES.sub("\n", text).strip()


def has_text(normalized: str) -> bool:
    """True when the (normalised) text has at least one letter, digit or CJK character."""
    return any(ch.isalnum() for ch in normalized)


# --------------------------------------------------------------------------------------------
# Public value types
# --------------------------------------------------------------------------------------------


class CategoryRule(Protocol):
    """What the classifier needs of a category (``bot.domain.district.Category`` satisfies it)."""

    @property
    def id(self) -> str: ...

    @property
    def keywords(self) -> tuple[str, ...]:
        """zh words and lower-cased English words/phrases."""
        ...


@dataclass(frozen=True)
class Classification:
    category_id: str | None  # None: could not tell → triage
    confidence: float  # 0..1
    method: str  # "rule" | "model" | "rule+model" | "none"
    reasons: tuple[str, ...]  # human-readable, for the case timeline


NO_TEXT: Final = Classification(None, 0.0, "none", ("no text",))


class ModelFormatError(ValueError):
    """A model file that is missing, corrupt, tampered with, or not a Suipai text model."""


# --------------------------------------------------------------------------------------------
# Tokenisation for the model (jieba is loaded lazily, once, quietly)
# --------------------------------------------------------------------------------------------

_jieba_lock = threading.Lock()
_jieba_tokenizer: Tokenizer | None = None


def _jieba() -> Tokenizer:
    """A private jieba tokenizer, so that nobody's global jieba settings change our features."""
    global _jieba_tokenizer
    if _jieba_tokenizer is None:
        with _jieba_lock:
            if _jieba_tokenizer is None:
                import jieba

                logger = logging.getLogger("jieba")
                level = logger.level
                logger.setLevel(logging.WARNING)  # jieba logs its dictionary loading to stderr
                try:
                    tokenizer = jieba.Tokenizer()
                    tokenizer.initialize()
                finally:
                    logger.setLevel(level)
                _jieba_tokenizer = tokenizer
    return _jieba_tokenizer


def _jieba_version() -> str:
    import jieba

    return str(getattr(jieba, "__version__", "unknown"))


def _tokens(text: str, ngram_min: int, ngram_max: int, words: bool) -> tuple[list[str], list[str]]:
    """Character n-grams (whitespace collapsed) and, optionally, jieba words of a text."""
    flat = " ".join(normalize_text(text).split())
    grams: list[str] = []
    for n in range(ngram_min, ngram_max + 1):
        grams.extend(flat[i : i + n] for i in range(len(flat) - n + 1))
    if ngram_min == 1:
        grams = [g for g in grams if g != " "]
    word_list: list[str] = []
    if words and flat:
        word_list = [
            w
            for w in _jieba().lcut(flat, HMM=False)  # dictionary words only: stable features
            if any(ch.isalnum() for ch in w) and w.strip() == w
        ]
    return grams, word_list


# --------------------------------------------------------------------------------------------
# The trainable model
# --------------------------------------------------------------------------------------------

_FORMAT: Final = "suipai.text-model"
_FORMAT_VERSION: Final = 1
_ARRAY_KEYS: Final = frozenset({"idf", "coef", "intercept"})

_DEFAULT_PARAMS: Final[Mapping[str, Any]] = {
    "C": 1.0,  # LinearSVC regularisation
    "class_weight": "balanced",  # "balanced" or None
    "ngram_min": 1,
    "ngram_max": 3,
    "words": True,  # add jieba words to the character n-grams
    "min_df": 2,  # a feature must occur in at least this many training texts
    "sublinear_tf": False,
    "max_chars": 500,  # the model reads the first max_chars characters (latency bound)
    "calibration_folds": 3,  # inner CV folds for fitting the softmax temperature
}


def _check_params(params: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(params) - set(_DEFAULT_PARAMS))
    if unknown:
        raise TypeError(f"unknown TextModel parameter(s): {', '.join(unknown)}")
    p = {**_DEFAULT_PARAMS, **params}
    if not (isinstance(p["C"], int | float) and p["C"] > 0):
        raise ValueError("C must be a positive number")
    if p["class_weight"] not in ("balanced", None):
        raise ValueError('class_weight must be "balanced" or None')
    for key in ("ngram_min", "ngram_max", "min_df", "max_chars", "calibration_folds"):
        if not isinstance(p[key], int) or isinstance(p[key], bool) or p[key] < 1:
            raise ValueError(f"{key} must be a positive integer")
    if p["ngram_min"] > p["ngram_max"]:
        raise ValueError("ngram_min must not exceed ngram_max")
    p["C"] = float(p["C"])
    p["words"] = bool(p["words"])
    p["sublinear_tf"] = bool(p["sublinear_tf"])
    return p


def _softmax(z: FloatArray) -> FloatArray:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    out: FloatArray = e / e.sum(axis=-1, keepdims=True)
    return out


def _nll(scores: FloatArray, y: IntArray, temperature: float) -> float:
    z = scores * temperature
    zmax = z.max(axis=1, keepdims=True)
    lse = np.log(np.exp(z - zmax).sum(axis=1)) + zmax[:, 0]
    return float(np.mean(lse - z[np.arange(len(y)), y]))


def _fit_temperature(scores: FloatArray, y: IntArray) -> float:
    """Golden-section search of the softmax temperature minimising the log-loss."""
    lo, hi = math.log(1e-2), math.log(1e3)
    ratio = (math.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = _nll(scores, y, math.exp(a)), _nll(scores, y, math.exp(b))
    for _ in range(80):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = _nll(scores, y, math.exp(a))
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = _nll(scores, y, math.exp(b))
    return math.exp((lo + hi) / 2)


@dataclass(frozen=True)
class _Docs:
    """Tokenised texts (for training and cross-validation without re-tokenising)."""

    grams: list[list[str]]
    words: list[list[str]]


def _tokenize_all(texts: Sequence[str], params: Mapping[str, Any]) -> _Docs:
    grams, words = [], []
    for text in texts:
        g, w = _tokens(
            text[: params["max_chars"]], params["ngram_min"], params["ngram_max"], params["words"]
        )
        grams.append(g)
        words.append(w)
    return _Docs(grams, words)


class TextModel:
    """TF-IDF (character n-grams + jieba words) → linear SVM → temperature-scaled softmax.

    Defaults (``_DEFAULT_PARAMS``) were chosen by repeated stratified 5-fold cross-validation
    on the development data; the model reads the first ``max_chars`` (500) characters of a text,
    which bounds the time per report.  Classes are weighted "balanced".
    """

    def __init__(
        self,
        labels: Sequence[str],
        grams: Sequence[str],
        words: Sequence[str],
        idf: FloatArray,
        coef: FloatArray,
        intercept: FloatArray,
        temperature: float,
        params: Mapping[str, Any],
        info: Mapping[str, Any] | None = None,
    ) -> None:
        self.labels: tuple[str, ...] = tuple(labels)
        self._grams = tuple(grams)
        self._words = tuple(words)
        self._gram_index = {g: i for i, g in enumerate(self._grams)}
        self._word_index = {w: len(self._grams) + i for i, w in enumerate(self._words)}
        self._idf = idf
        self._coef_t = np.ascontiguousarray(coef.T)  # (features, labels): rows by feature
        self._intercept = intercept
        self._temperature = float(temperature)
        self._params = _check_params(params)
        self.info: dict[str, Any] = dict(info or {})
        n = len(self._grams) + len(self._words)
        if (
            len(set(self.labels)) != len(self.labels)
            or len(self.labels) < 2
            or len(self._gram_index) != len(self._grams)
            or len(self._word_index) != len(self._words)
            or idf.shape != (n,)
            or coef.shape != (len(self.labels), n)
            or intercept.shape != (len(self.labels),)
            or not (math.isfinite(self._temperature) and self._temperature > 0)
        ):
            raise ModelFormatError("inconsistent text model (labels, vocabulary and arrays)")

    # -- training ----------------------------------------------------------------------------

    @classmethod
    def train(cls, texts: Sequence[str], labels: Sequence[str], **params: Any) -> TextModel:
        """Train on texts (a title, if any, already joined to its text) and their labels."""
        p = _check_params(params)
        if len(texts) != len(labels):
            raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
        return cls._fit(_tokenize_all(texts, p), [str(x) for x in labels], p)

    @classmethod
    def _fit(cls, docs: _Docs, labels: Sequence[str], p: dict[str, Any]) -> TextModel:
        from sklearn.svm import LinearSVC

        label_set = sorted(set(labels))
        if len(label_set) < 2:
            raise ValueError("training needs at least two different labels")
        n_docs = len(labels)
        gram_df = Counter(g for doc in docs.grams for g in set(doc))
        word_df = Counter(w for doc in docs.words for w in set(doc))
        grams = sorted(g for g, df in gram_df.items() if df >= p["min_df"])
        words = sorted(w for w, df in word_df.items() if df >= p["min_df"])
        if not grams and not words:
            raise ValueError("no feature occurs in min_df texts; lower min_df or add data")
        dfs = np.array([gram_df[g] for g in grams] + [word_df[w] for w in words], dtype=np.float64)
        idf = np.log((1.0 + n_docs) / (1.0 + dfs)) + 1.0
        n = len(label_set)
        placeholder = cls(
            label_set,
            grams,
            words,
            idf,
            np.zeros((n, len(dfs))),
            np.zeros(n),
            1.0,
            p,
        )
        x = placeholder._matrix(docs)
        y = np.searchsorted(np.array(label_set), np.array(labels)).astype(np.intp)

        def fit(rows: IntArray) -> tuple[FloatArray, FloatArray, IntArray]:
            svm = LinearSVC(
                C=p["C"], class_weight=p["class_weight"], random_state=0, max_iter=20000
            )
            svm.fit(x[rows], y[rows])
            classes = np.asarray(svm.classes_, dtype=np.intp)
            coef = np.asarray(svm.coef_, dtype=np.float64)
            intercept = np.asarray(svm.intercept_, dtype=np.float64)
            if len(classes) == 2:  # binary: one score d → softmax over (-d/2, d/2)
                coef = np.vstack([-coef[0] / 2, coef[0] / 2])
                intercept = np.array([-intercept[0] / 2, intercept[0] / 2])
            return coef, intercept, classes

        coef, intercept, _ = fit(np.arange(n_docs, dtype=np.intp))
        temperature, source = cls._calibrate(x, y, n, p["calibration_folds"], fit)
        counts = Counter(labels)
        info = {
            "n_texts": n_docs,
            "label_counts": {label: counts[label] for label in label_set},
            "temperature_from": source,
            "jieba": _jieba_version() if p["words"] else None,
        }
        return cls(label_set, grams, words, idf, coef, intercept, temperature, p, info)

    @staticmethod
    def _calibrate(
        x: Any,
        y: IntArray,
        n_labels: int,
        folds: int,
        fit: Any,
    ) -> tuple[float, str]:
        """Softmax temperature from out-of-fold SVM scores (inner stratified CV)."""
        import warnings

        from sklearn.model_selection import StratifiedKFold

        counts = np.bincount(y, minlength=n_labels)
        if folds < 2 or counts.max() < folds:
            return 1.0, "default (too little data)"
        scores = np.full((len(y), n_labels), np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # classes rarer than the folds
            splits = list(StratifiedKFold(folds, shuffle=True, random_state=0).split(x, y))
        for train_rows, test_rows in splits:
            if len(np.unique(y[train_rows])) < 2:
                continue
            coef, intercept, classes = fit(train_rows.astype(np.intp))
            fold_scores = np.asarray(x[test_rows] @ coef.T) + intercept
            full = np.full((len(test_rows), n_labels), np.nan)
            full[:, classes] = fold_scores
            # classes absent from this training fold cannot be predicted: lowest score
            low = np.nanmin(full, axis=1, keepdims=True) - 1.0
            scores[test_rows] = np.where(np.isnan(full), low, full)
        ok = ~np.isnan(scores).any(axis=1)
        if ok.sum() < 2:
            return 1.0, "default (too little data)"
        return _fit_temperature(scores[ok], y[ok]), f"{folds}-fold cross-validation"

    # -- prediction --------------------------------------------------------------------------

    def _vector(self, grams: Iterable[str], words: Iterable[str]) -> tuple[IntArray, FloatArray]:
        counts: dict[int, int] = {}
        for index, tokens in ((self._gram_index, grams), (self._word_index, words)):
            for token, n in Counter(tokens).items():
                j = index.get(token)
                if j is not None:
                    counts[j] = n
        idx = np.fromiter(counts.keys(), dtype=np.intp, count=len(counts))
        tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
        if self._params["sublinear_tf"]:
            tf = 1.0 + np.log(tf)
        values = tf * self._idf[idx]
        norm = float(np.sqrt(values @ values))
        if norm > 0:
            values /= norm
        return idx, values

    def _matrix(self, docs: _Docs) -> Any:
        import scipy.sparse as sp

        rows, cols, vals = [], [], []
        for k, (g, w) in enumerate(zip(docs.grams, docs.words, strict=True)):
            idx, values = self._vector(g, w)
            rows.append(np.full(len(idx), k, dtype=np.intp))
            cols.append(idx)
            vals.append(values)
        shape = (len(docs.grams), len(self._idf))
        if not rows:
            return sp.csr_matrix(shape, dtype=np.float64)
        return sp.csr_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=shape
        )

    def _proba_one(self, grams: Sequence[str], words: Sequence[str]) -> dict[str, float]:
        idx, values = self._vector(grams, words)
        if len(idx) == 0:  # nothing the model has seen: no opinion (uniform), not its bias
            return dict.fromkeys(self.labels, 1.0 / len(self.labels))
        scores = values @ self._coef_t[idx] + self._intercept
        probs = _softmax(scores * self._temperature)
        return {label: float(pr) for label, pr in zip(self.labels, probs, strict=True)}

    def predict_proba(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """Probability of each label for each text (each dict sums to 1)."""
        docs = _tokenize_all(texts, self._params)
        return self._predict_docs(docs)

    def _predict_docs(self, docs: _Docs) -> list[dict[str, float]]:
        return [self._proba_one(g, w) for g, w in zip(docs.grams, docs.words, strict=True)]

    # -- persistence (JSON + .npz, no pickle) ------------------------------------------------

    @staticmethod
    def arrays_path(path: Path) -> Path:
        """Where the arrays of the model saved at ``path`` live: ``<path>.npz``."""
        return path.with_name(path.name + ".npz")

    def _payload(self) -> dict[str, Any]:
        return {
            "format": _FORMAT,
            "version": _FORMAT_VERSION,
            "labels": list(self.labels),
            "params": self._params,
            "temperature": self._temperature,
            "vocabulary": {"grams": list(self._grams), "words": list(self._words)},
            "info": self.info,
        }

    def save(self, path: Path) -> None:
        """Write ``path`` (JSON) and ``<path>.npz`` (idf, coef, intercept) with checksums."""
        import io

        path = Path(path)
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer,
            idf=self._idf,
            coef=np.ascontiguousarray(self._coef_t.T),
            intercept=self._intercept,
            allow_pickle=False,
        )
        arrays = buffer.getvalue()
        payload = self._payload()
        payload["arrays"] = {
            "file": self.arrays_path(path).name,
            "sha256": hashlib.sha256(arrays).hexdigest(),
        }
        payload["sha256"] = _digest(payload)
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_atomic(self.arrays_path(path), arrays)
        _write_atomic(path, json.dumps(payload, ensure_ascii=False, indent=1).encode("utf-8"))

    @classmethod
    def load(cls, path: Path) -> TextModel:
        """Read a model written by :meth:`save`; raise :class:`ModelFormatError` otherwise."""
        import io

        path = Path(path)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ModelFormatError(f"cannot read model file {path}: {exc.strerror}") from exc
        try:
            payload = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelFormatError(f"{path} is not a Suipai text model (not JSON)") from exc
        if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
            raise ModelFormatError(f"{path} is not a Suipai text model")
        if payload.get("version") != _FORMAT_VERSION:
            raise ModelFormatError(
                f"{path}: unsupported model format version {payload.get('version')!r}"
                f" (this code reads version {_FORMAT_VERSION})"
            )
        claimed = payload.pop("sha256", None)
        if claimed != _digest(payload):
            raise ModelFormatError(f"{path}: checksum mismatch, the model file was altered")
        arrays_file = cls.arrays_path(path)
        try:
            meta = payload["arrays"]
            arrays = arrays_file.read_bytes()
        except OSError as exc:
            raise ModelFormatError(
                f"cannot read model arrays {arrays_file}: {exc.strerror}"
            ) from exc
        except (KeyError, TypeError) as exc:
            raise ModelFormatError(f"{path}: malformed model file") from exc
        if not isinstance(meta, dict) or hashlib.sha256(arrays).hexdigest() != meta.get("sha256"):
            raise ModelFormatError(f"{arrays_file}: checksum mismatch, the arrays were altered")
        try:
            with np.load(io.BytesIO(arrays), allow_pickle=False) as npz:
                if set(npz.files) != _ARRAY_KEYS:
                    raise ModelFormatError(f"{arrays_file}: unexpected arrays {sorted(npz.files)}")
                loaded = {k: np.asarray(npz[k], dtype=np.float64) for k in _ARRAY_KEYS}
            vocabulary = payload["vocabulary"]
            labels, grams, words = payload["labels"], vocabulary["grams"], vocabulary["words"]
            for seq in (labels, grams, words):
                if not isinstance(seq, list) or not all(isinstance(s, str) for s in seq):
                    raise ModelFormatError(f"{path}: malformed labels or vocabulary")
            if not all(np.isfinite(a).all() for a in loaded.values()):
                raise ModelFormatError(f"{arrays_file}: non-finite numbers")
            model = cls(
                labels,
                grams,
                words,
                loaded["idf"],
                loaded["coef"],
                loaded["intercept"],
                float(payload["temperature"]),
                payload["params"],
                payload.get("info"),
            )
        except ModelFormatError:
            raise
        except (KeyError, TypeError, ValueError, OSError) as exc:
            raise ModelFormatError(f"{path}: malformed model file ({exc})") from exc
        if model._params["words"]:
            _jieba()  # load the dictionary now (~1 s), not while classifying the first report
        jieba_version = model.info.get("jieba")
        if jieba_version and jieba_version != _jieba_version():
            log.warning(
                "model %s was trained with jieba %s, running %s: word features may differ",
                path,
                jieba_version,
                _jieba_version(),
            )
        return model


def _digest(payload: Mapping[str, Any]) -> str:
    canonical = json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


# --------------------------------------------------------------------------------------------
# Keyword rules
# --------------------------------------------------------------------------------------------

_CLAUSE_END = re.compile(
    r"[\n,.;:!?，。；：！？…]|但是|可是|不过|然而|而是|但|"
    r"(?<![a-z0-9'])(?:but|however|although|though|whereas)(?![a-z0-9'])"
)
# zh: a negation word right before the keyword, or a two-character one with a filler between.
_ZH_NEG_BEFORE = re.compile(
    r"(?:(?:没有|不是|并非|并不是|从来没有)"
    r"(?:是|个|一个|什么|任何|这个|那个|这|那|该|有|发现|看到|看见|存在)?|不|无)$"
)
_EN_NEG_BEFORE = re.compile(
    r"(?<![a-z0-9'])(?:no|not|isn't|aren't|wasn't|weren't|without|never)"
    r"(?:[^a-z0-9']+[a-z0-9']+){0,2}[^a-z0-9']*$"
)
# An all-clear right after the keyword: "井盖没有问题", "the manhole cover is fine".
_ZH_CLEAR_AFTER = re.compile(
    r"^(?:的|也|都|还|倒|是|现在|目前|已经)*"
    r"(?:没有问题|没问题|没什么问题|无问题|不是问题|没事|没有事|没毛病|正常|完好|好好的|是好的|没坏|没有坏)"
)
_EN_CLEAR_AFTER = re.compile(
    r"^[^a-z0-9']*(?:[a-z0-9']+[^a-z0-9']+){0,2}?(?<!not )(?<!n't )"
    r"(?:fine|ok|okay|intact|no problems?|no issues?"
    r"|not (?:broken|damaged|a problem|an issue|the problem|the issue))(?![a-z0-9])"
)
_NEG_WINDOW: Final = 40  # characters looked at on either side of a keyword


def keyword_weight(keyword: str) -> float:
    """Specificity of a (normalised) keyword: CJK characters count 1, Latin letters 1/3."""
    weight = 0.0
    for ch in keyword:
        if ch.isascii():
            weight += 1 / 3 if ch.isalnum() else 0.0
        elif ch.isalnum():
            weight += 1.0
    return max(weight, 1 / 3)


_LATIN_TOKEN: Final = re.compile("[0-9a-z\u00c0-\u024f]+")  # a Latin word (lower-cased)
_LATIN_GAP: Final = re.compile(r"[ \-]+")  # what may separate the words of a phrase


def _is_latin(keyword: str) -> bool:
    """A keyword without wide (CJK) characters is matched on word boundaries."""
    return not any(unicodedata.east_asian_width(ch) in "WF" for ch in keyword)


@dataclass(frozen=True)
class _Hit:
    keyword: str
    categories: tuple[str, ...]
    start: int
    end: int
    negated: bool


@dataclass(frozen=True)
class _Rules:
    """Compiled keyword rules of all categories.

    CJK keywords are looked up as substrings, indexed by first character and length; Latin
    keywords as sequences of whole words (phrase words separated by spaces or hyphens, the last
    word optionally with a plural ``s``/``es``), indexed by first word.
    """

    owners: Mapping[str, tuple[str, ...]]  # keyword → category ids
    cjk: Mapping[str, tuple[int, ...]]  # first character → keyword lengths, longest first
    latin: Mapping[str, tuple[tuple[str, ...], ...]]  # first word → phrases, longest first
    latin_keyword: Mapping[tuple[str, ...], str]  # phrase words → keyword

    @classmethod
    def build(cls, categories: Sequence[CategoryRule]) -> _Rules:
        owners: dict[str, list[str]] = {}
        for category in categories:
            for raw in category.keywords:
                keyword = normalize_text(str(raw))
                if has_text(keyword) and category.id not in owners.setdefault(keyword, []):
                    owners[keyword].append(category.id)
        cjk: dict[str, set[int]] = {}
        latin: dict[str, set[tuple[str, ...]]] = {}
        latin_keyword: dict[tuple[str, ...], str] = {}
        for keyword in owners:
            words = tuple(_LATIN_TOKEN.findall(keyword)) if _is_latin(keyword) else ()
            if words:
                latin.setdefault(words[0], set()).add(words)
                latin_keyword.setdefault(words, keyword)
            else:
                cjk.setdefault(keyword[0], set()).add(len(keyword))
        return cls(
            owners={k: tuple(v) for k, v in owners.items()},
            cjk={c: tuple(sorted(ls, reverse=True)) for c, ls in cjk.items()},
            latin={w: tuple(sorted(ps, key=lambda p: (-len(p), p))) for w, ps in latin.items()},
            latin_keyword=latin_keyword,
        )

    def _cjk_spans(self, text: str) -> Iterable[tuple[int, int, str]]:
        for i, ch in enumerate(text):
            lengths = self.cjk.get(ch)
            if lengths is None:
                continue
            for length in lengths:
                piece = text[i : i + length]
                if len(piece) == length and piece in self.owners:
                    yield i, i + length, piece
                    break

    def _latin_spans(self, text: str) -> Iterable[tuple[int, int, str]]:
        tokens = [(m.start(), m.end(), m.group()) for m in _LATIN_TOKEN.finditer(text)]
        for k, (start, _, word) in enumerate(tokens):
            for phrase in self.latin.get(word, ()) + self._plural(word):
                end = self._phrase_end(text, tokens, k, phrase)
                if end is not None:
                    yield start, end, self.latin_keyword[phrase]
                    break

    def _plural(self, word: str) -> tuple[tuple[str, ...], ...]:
        """Single-word keywords that ``word`` is a plural of ("bins" → "bin")."""
        stems = [word[:-1]] if word.endswith("s") else []
        stems += [word[:-2]] if word.endswith("es") else []
        return tuple((s,) for s in stems if (s,) in self.latin_keyword)

    @staticmethod
    def _phrase_end(
        text: str, tokens: Sequence[tuple[int, int, str]], k: int, phrase: tuple[str, ...]
    ) -> int | None:
        if k + len(phrase) > len(tokens):
            return None
        end = tokens[k][1]
        for j, expected in enumerate(phrase[1:], start=k + 1):
            start, end, word = tokens[j]
            if not _LATIN_GAP.fullmatch(text, tokens[j - 1][1], start):
                return None
            last = j == k + len(phrase) - 1
            if word != expected and not (last and word in (expected + "s", expected + "es")):
                return None
        return end

    def match(self, text: str) -> list[_Hit]:
        spans = [*self._cjk_spans(text), *self._latin_spans(text)]
        # leftmost-longest, non-overlapping: "垃圾桶" wins over "垃圾" inside it
        spans.sort(key=lambda s: (s[0], -(s[1] - s[0])))
        hits: list[_Hit] = []
        last_end = -1
        for start, end, keyword in spans:
            if start < last_end:
                continue
            last_end = end
            hits.append(_Hit(keyword, self.owners[keyword], start, end, _negated(text, start, end)))
        return hits


def _negated(text: str, start: int, end: int) -> bool:
    before = text[max(0, start - _NEG_WINDOW) : start]
    clause_starts = [m.end() for m in _CLAUSE_END.finditer(before)]
    if clause_starts:
        before = before[clause_starts[-1] :]
    if _ZH_NEG_BEFORE.search(before) or _EN_NEG_BEFORE.search(before):
        return True
    after = text[end : end + _NEG_WINDOW]
    stop = _CLAUSE_END.search(after)
    if stop is not None:
        after = after[: stop.start()]
    return bool(_ZH_CLEAR_AFTER.match(after) or _EN_CLEAR_AFTER.match(after))


# --------------------------------------------------------------------------------------------
# The classifier
# --------------------------------------------------------------------------------------------

_UNMAPPED: Final = "\x00unmapped"  # the outcome "a model label that is none of the categories"
# Rule evidence e = total/(total + scale), capped: a lone one-character keyword (or a 3-letter
# English word) gives 0.57, below the default threshold; a 2-character one 0.73, 4 characters 0.84.
_RULE_SCALE: Final = 0.75
_RULE_CAP: Final = 0.95  # keywords alone are never certain
_MAX_KEYWORD_REASONS: Final = 5


class Classifier:
    """Keyword rules + optional text model → :class:`Classification`."""

    def __init__(
        self,
        categories: Sequence[CategoryRule],
        model: TextModel | None = None,
        *,
        threshold: float = 0.6,
        label_map: Mapping[str, str] | None = None,
    ) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError("threshold must be between 0 and 1")
        ids = [c.id for c in categories]
        if len(set(ids)) != len(ids) or not all(isinstance(i, str) and i for i in ids):
            raise ValueError("category ids must be unique non-empty strings")
        self.threshold = float(threshold)
        self.category_ids: tuple[str, ...] = tuple(ids)
        self.model = model
        self._rules = _Rules.build(categories)
        self._label_to_category: dict[str, str | None] = {}
        if model is not None:
            known = set(ids)
            if label_map is not None:
                bad = sorted({v for v in label_map.values() if v not in known})
                if bad:
                    raise ValueError(f"label_map maps to unknown category ids: {', '.join(bad)}")
                mapping: Mapping[str, str] = label_map
            else:
                mapping = {label: label for label in model.labels if label in known}
            self._label_to_category = {label: mapping.get(label) for label in model.labels}
            if not any(self._label_to_category.values()):
                raise ValueError(
                    "none of the model's labels is a category id; pass label_map"
                    f" (model labels: {', '.join(model.labels)})"
                )
            unmapped = [k for k, v in self._label_to_category.items() if v is None]
            if unmapped:
                log.info("model labels without a category (never chosen): %s", unmapped)
        self._outcomes: tuple[str, ...] = self.category_ids + (
            (_UNMAPPED,) if None in self._label_to_category.values() else ()
        )

    # -- evidence ----------------------------------------------------------------------------

    def _rule_distribution(
        self, scores: Mapping[str, float]
    ) -> tuple[dict[str, float], float] | None:
        total = sum(scores.values())
        if total <= 0:
            return None
        evidence = min(_RULE_CAP, total / (total + _RULE_SCALE))
        rest = [o for o in self._outcomes if o not in scores]
        if not rest:
            return {o: scores.get(o, 0.0) / total for o in self._outcomes}, evidence
        dist = {o: (1 - evidence) / len(rest) for o in rest}
        dist.update({c: evidence * s / total for c, s in scores.items()})
        return dist, evidence

    def _model_distribution(self, text: str) -> dict[str, float] | None:
        """The model's probabilities per outcome; None when it has no opinion (uniform)."""
        assert self.model is not None
        probs = self.model.predict_proba([text])[0]
        if not probs or max(probs.values()) - min(probs.values()) < 1e-12:
            return None
        dist = dict.fromkeys(self._outcomes, 0.0)
        for label, p in probs.items():
            dist[self._label_to_category.get(label) or _UNMAPPED] += p
        return dist

    # -- classification ----------------------------------------------------------------------

    def classify(self, text: str) -> Classification:
        normalized = normalize_text(text)
        if not has_text(normalized):
            return NO_TEXT
        hits = self._rules.match(normalized)
        scores: dict[str, float] = {}
        seen: set[str] = set()
        for hit in hits:
            if hit.negated or hit.keyword in seen:
                continue
            seen.add(hit.keyword)
            for category in hit.categories:
                scores[category] = scores.get(category, 0.0) + keyword_weight(hit.keyword)
        rule = self._rule_distribution(scores)
        model = self._model_distribution(normalized) if self.model is not None else None
        silent = ["model: no known words"] if self.model is not None and model is None else []

        if rule is None and model is None:
            reasons = [f'negated keyword "{h.keyword}" ignored' for h in hits if h.negated]
            return Classification(
                None, 0.0, "none", (*_dedupe(reasons), "no keyword matched", *silent)
            )

        if rule is not None and model is not None:
            method = "rule+model"
            rule_dist = rule[0]
            model_top = _argmax(model)
            n = len(self._outcomes)
            vote = {
                o: model[model_top] if o == model_top else (1 - model[model_top]) / max(n - 1, 1)
                for o in self._outcomes
            }
            pooled = {o: rule_dist[o] * vote[o] for o in self._outcomes}
            z = sum(pooled.values())
            final = {o: v / z for o, v in pooled.items()} if z > 0 else rule_dist
        elif rule is not None:
            method, final = "rule", rule[0]
        else:
            assert model is not None
            method, final = "model", model

        best = _argmax(final)
        confidence = min(1.0, max(0.0, final[best]))
        runner_up = max((v for o, v in final.items() if o != best), default=0.0)
        reasons = self._reasons(best, hits, scores, model) + silent
        if rule is not None and model is not None:
            top_score = max(scores.values())
            rule_tops = {c for c, s in scores.items() if s == top_score}
            reasons.append(
                "rule and model agree" if _argmax(model) in rule_tops else "rule and model disagree"
            )
        if best == _UNMAPPED:
            reasons.append("model: none of the district's categories")
            return Classification(None, confidence, method, tuple(reasons))
        if math.isclose(confidence, runner_up, rel_tol=1e-9, abs_tol=1e-12):
            tied = sorted(o for o, v in final.items() if math.isclose(v, confidence))
            reasons.append(f"tie between {', '.join(tied)} {confidence:.2f}")
            return Classification(None, confidence, method, tuple(reasons))
        if confidence < self.threshold:
            reasons.append(
                f"below threshold {self.threshold:.2f}: best guess {best} {confidence:.2f}"
            )
            return Classification(None, confidence, method, tuple(reasons))
        return Classification(best, confidence, method, tuple(reasons))

    def _reasons(
        self,
        best: str,
        hits: Sequence[_Hit],
        scores: Mapping[str, float],
        model: Mapping[str, float] | None,
    ) -> list[str]:
        own: list[str] = []
        other: list[str] = []
        negated: list[str] = []
        for hit in hits:
            if hit.negated:
                negated.append(f'negated keyword "{hit.keyword}" ignored')
            elif best in hit.categories:
                own.append(f'keyword "{hit.keyword}"')
            else:
                other.append(f'keyword "{hit.keyword}" → {", ".join(hit.categories)}')
        reasons = _dedupe(own)[:_MAX_KEYWORD_REASONS]
        reasons += _dedupe(other)[:_MAX_KEYWORD_REASONS]
        if len(scores) > 1:
            ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
            reasons.append(
                "conflicting keywords: " + ", ".join(f"{c} {s:.1f}" for c, s in ranked[:3])
            )
        reasons += _dedupe(negated)[:_MAX_KEYWORD_REASONS]
        if model is not None:
            reasons.append(f"model {model.get(best, 0.0):.2f}")
            top = _argmax(model)
            if top != best:
                name = "(not a category)" if top == _UNMAPPED else top
                reasons.append(f"model prefers {name} {model[top]:.2f}")
        return reasons


def _argmax(dist: Mapping[str, float]) -> str:
    return max(dist, key=lambda k: dist[k])


def _dedupe(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


# --------------------------------------------------------------------------------------------
# Evaluation helpers (used by the CLI and the tests)
# --------------------------------------------------------------------------------------------


def cross_validate_proba(
    texts: Sequence[str],
    labels: Sequence[str],
    folds: int = 5,
    *,
    seed: int = 0,
    **params: Any,
) -> list[dict[str, float]]:
    """Out-of-fold label probabilities from stratified K-fold CV (a model trained per fold)."""
    import warnings

    from sklearn.model_selection import StratifiedKFold

    if len(texts) != len(labels):
        raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
    p = _check_params(params)
    docs = _tokenize_all(texts, p)  # tokenise once; vocabulary and idf are fitted per fold
    y = np.array([str(x) for x in labels])
    out: list[dict[str, float]] = [{} for _ in texts]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # classes rarer than the folds
        splits = list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(y, y))
    for train_rows, test_rows in splits:
        model = TextModel._fit(
            _Docs([docs.grams[i] for i in train_rows], [docs.words[i] for i in train_rows]),
            [str(y[i]) for i in train_rows],
            p,
        )
        test = _Docs([docs.grams[i] for i in test_rows], [docs.words[i] for i in test_rows])
        for i, probs in zip(test_rows, model._predict_docs(test), strict=True):
            out[int(i)] = probs
    return out


@dataclass(frozen=True)
class LabelScore:
    label: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class Evaluation:
    n: int
    accuracy: float
    macro_f1: float
    per_label: tuple[LabelScore, ...]
    threshold: float
    coverage: float  # share with top probability ≥ threshold (dispatched automatically)
    covered_accuracy: float  # accuracy on that share (nan when nothing is covered)
    sweep: tuple[tuple[float, float, float], ...]  # (threshold, coverage, covered accuracy)
    majority_label: str
    majority_accuracy: float
    majority_macro_f1: float


def _macro_f1(truth: Sequence[str], predicted: Sequence[str]) -> tuple[float, list[LabelScore]]:
    labels = sorted(set(truth) | set(predicted))
    per_label = []
    for label in labels:
        tp = sum(t == label and p == label for t, p in zip(truth, predicted, strict=True))
        n_pred = sum(p == label for p in predicted)
        n_true = sum(t == label for t in truth)
        precision = tp / n_pred if n_pred else 0.0
        recall = tp / n_true if n_true else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_label.append(LabelScore(label, precision, recall, f1, n_true))
    return sum(s.f1 for s in per_label) / len(per_label), per_label


def _coverage(
    truth: Sequence[str], predicted: Sequence[str], confidence: Sequence[float], threshold: float
) -> tuple[float, float]:
    covered = [
        t == p for t, p, c in zip(truth, predicted, confidence, strict=True) if c >= threshold
    ]
    coverage = len(covered) / len(truth)
    return coverage, (sum(covered) / len(covered) if covered else math.nan)


def evaluate(
    truth: Sequence[str], probas: Sequence[Mapping[str, float]], threshold: float = 0.6
) -> Evaluation:
    """Accuracy, macro-F1, per-label scores and coverage/accuracy at thresholds 0.3..0.9."""
    if not truth or len(truth) != len(probas):
        raise ValueError("need as many (non-zero) probability rows as true labels")
    predicted = [max(p, key=lambda k: p[k]) if p else "" for p in probas]
    confidence = [max(p.values()) if p else 0.0 for p in probas]
    accuracy = sum(t == p for t, p in zip(truth, predicted, strict=True)) / len(truth)
    macro_f1, per_label = _macro_f1(truth, predicted)
    coverage, covered_accuracy = _coverage(truth, predicted, confidence, threshold)
    sweep = tuple((t / 10, *_coverage(truth, predicted, confidence, t / 10)) for t in range(3, 10))
    majority, count = Counter(truth).most_common(1)[0]
    majority_f1, _ = _macro_f1(truth, [majority] * len(truth))
    return Evaluation(
        n=len(truth),
        accuracy=accuracy,
        macro_f1=macro_f1,
        per_label=tuple(s for s in per_label if s.label),
        threshold=threshold,
        coverage=coverage,
        covered_accuracy=covered_accuracy,
        sweep=sweep,
        majority_label=majority,
        majority_accuracy=count / len(truth),
        majority_macro_f1=majority_f1,
    )
