"""The trainable text model: TF-IDF over character 1–3-grams plus jieba words, a linear SVM, and
a softmax whose temperature is fitted on inner cross-validation so that its probabilities are
calibrated. It is stored as JSON + ``.npz`` (never pickle) with checksums, and refuses files it
did not write.

scikit-learn, scipy and jieba are imported when a model is trained, used or loaded, not when
this module is: a bot running on keyword rules alone never loads them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from bot.domain.routing.classify.text import normalize_text
from storage.files import write_atomically

if TYPE_CHECKING:
    from jieba import Tokenizer
    from numpy.typing import NDArray

    FloatArray = NDArray[np.float64]
    IntArray = NDArray[np.intp]

log = logging.getLogger(__name__)


class ModelFormatError(ValueError):
    """A model file that is missing, corrupt, tampered with, or not a Suipai text model."""


# -- tokenisation (jieba is loaded lazily, once, quietly) -------------------------------------

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


# -- the model ---------------------------------------------------------------------------------

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


def check_params(params: Mapping[str, Any]) -> dict[str, Any]:
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
class Docs:
    """Tokenised texts (for training and cross-validation without re-tokenising)."""

    grams: list[list[str]]
    words: list[list[str]]


def tokenize_all(texts: Sequence[str], params: Mapping[str, Any]) -> Docs:
    grams, words = [], []
    for text in texts:
        g, w = _tokens(
            text[: params["max_chars"]], params["ngram_min"], params["ngram_max"], params["words"]
        )
        grams.append(g)
        words.append(w)
    return Docs(grams, words)


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
        self._params = check_params(params)
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
        p = check_params(params)
        if len(texts) != len(labels):
            raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
        return cls._fit(tokenize_all(texts, p), [str(x) for x in labels], p)

    @classmethod
    def _fit(cls, docs: Docs, labels: Sequence[str], p: dict[str, Any]) -> TextModel:
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

    def _matrix(self, docs: Docs) -> Any:
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
        docs = tokenize_all(texts, self._params)
        return self._predict_docs(docs)

    def _predict_docs(self, docs: Docs) -> list[dict[str, float]]:
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
        write_atomically(self.arrays_path(path), arrays)
        write_atomically(path, json.dumps(payload, ensure_ascii=False, indent=1).encode("utf-8"))

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
