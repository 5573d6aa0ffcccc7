"""Sort a citizen's report into one of the district's categories, or hand it to triage.

Two sources of evidence, each in a module of its own, pooled by :mod:`.combine`:

* :mod:`.rules`: **keyword rules** written by the district (``CategoryRule.keywords``), with
  negations ("没有井盖问题", "isn't broken") not counting;
* :mod:`.model`: a trainable **text model** (:class:`TextModel`: TF-IDF, linear SVM, calibrated
  softmax), stored as JSON + ``.npz``.

:mod:`.text` normalises what both read; :mod:`.evaluate` measures a classifier for
``python -m bot classifier eval``. Callers import from here.
"""

from bot.domain.routing.classify.combine import NO_TEXT, Classification, Classifier
from bot.domain.routing.classify.evaluate import (
    Evaluation,
    LabelScore,
    cross_validate_proba,
    evaluate,
)
from bot.domain.routing.classify.model import ModelFormatError, TextModel
from bot.domain.routing.classify.rules import CategoryRule, keyword_weight
from bot.domain.routing.classify.text import has_text, normalize_text

__all__ = [
    "NO_TEXT",
    "CategoryRule",
    "Classification",
    "Classifier",
    "Evaluation",
    "LabelScore",
    "ModelFormatError",
    "TextModel",
    "cross_validate_proba",
    "evaluate",
    "has_text",
    "keyword_weight",
    "normalize_text",
]
