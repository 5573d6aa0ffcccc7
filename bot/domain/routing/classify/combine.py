"""The classifier: keyword rules and the optional text model pooled into one
:class:`Classification`.

The two are pooled as independent experts (the rules' distribution times the model's vote):
agreement raises the confidence above either alone, disagreement lowers it. Results whose
confidence is below the threshold get ``category_id=None`` (triage); the best guess is kept in
``reasons``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from bot.domain.routing.classify.rules import CategoryRule, Hit, Rules, keyword_weight
from bot.domain.routing.classify.text import has_text, normalize_text

if TYPE_CHECKING:
    from bot.domain.routing.classify.model import TextModel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Classification:
    category_id: str | None  # None: could not tell → triage
    confidence: float  # 0..1
    method: str  # "rule" | "model" | "rule+model" | "none"
    reasons: tuple[str, ...]  # human-readable, for the case timeline


NO_TEXT: Final = Classification(None, 0.0, "none", ("no text",))


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
        self._rules = Rules.build(categories)
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
        hits: Sequence[Hit],
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
