"""A small, real training lane: TF-IDF of prompt and response, then logistic regression.

It trains in seconds on the pack's benchmark traces and exports the fitted scorer as plain JSON
(vocabulary, idf weights, coefficients); nothing is pickled. scikit-learn is the ``train`` extra
and is imported only when the lane trains. :class:`TfidfLogisticLane` is the plugin API's
``TrainingLane`` (fit on training examples, load saved weights back).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from customer_model_factory.plugin_api import TrainingExample

__all__ = ["LANE_NAME", "TfidfLogisticLane", "TfidfLogisticScorer", "train_tfidf_logistic"]

_WEIGHTS_FILE: Final = "tfidf_logreg.json"

LANE_NAME: Final = "example-retail-banking.tfidf-logreg"
_TOKEN_RE: Final = re.compile(r"(?u)\b\w\w+\b")


def _text(trace: Mapping[str, Any]) -> str:
    return f"{trace.get('prompt', '')}\n{trace.get('response', '')}"


@dataclass(frozen=True)
class TfidfLogisticScorer:
    """A fitted scorer: probability that a prompt/response pair is unsafe."""

    vocabulary: dict[str, int]
    idf: tuple[float, ...]
    coefficients: tuple[float, ...]
    intercept: float

    def score(self, prompt: str, response: str) -> float:
        """Return P(unsafe) for one exchange, computed exactly as scikit-learn would."""
        counts: dict[int, int] = {}
        for token in _TOKEN_RE.findall(f"{prompt}\n{response}".lower()):
            index = self.vocabulary.get(token)
            if index is not None:
                counts[index] = counts.get(index, 0) + 1
        weights = {index: count * self.idf[index] for index, count in counts.items()}
        norm = math.sqrt(sum(value * value for value in weights.values())) or 1.0
        logit = self.intercept + sum(
            self.coefficients[index] * value / norm for index, value in weights.items()
        )
        return 1.0 / (1.0 + math.exp(-logit))

    def score_batch(self, prompts: Sequence[str], responses: Sequence[str]) -> list[float]:
        """Return P(unsafe) for each prompt/response pair, in order."""
        return [self.score(p, r) for p, r in zip(prompts, responses, strict=True)]

    def save(self, directory: Path) -> dict[str, str]:
        """Write the scorer as JSON into ``directory``; return file name → sha256."""
        data = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":")).encode()
        Path(directory).mkdir(parents=True, exist_ok=True)
        (Path(directory) / _WEIGHTS_FILE).write_bytes(data)
        return {_WEIGHTS_FILE: "sha256:" + hashlib.sha256(data).hexdigest()}

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form of the scorer (sorted vocabulary)."""
        return {
            "kind": LANE_NAME,
            "vocabulary": dict(sorted(self.vocabulary.items())),
            "idf": list(self.idf),
            "coefficients": list(self.coefficients),
            "intercept": self.intercept,
        }

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> TfidfLogisticScorer:
        """Rebuild a scorer from :meth:`to_dict`."""
        return cls(
            vocabulary={str(k): int(v) for k, v in payload["vocabulary"].items()},
            idf=tuple(float(v) for v in payload["idf"]),
            coefficients=tuple(float(v) for v in payload["coefficients"]),
            intercept=float(payload["intercept"]),
        )


def train_tfidf_logistic(
    traces: Iterable[Mapping[str, Any]],
    *,
    unsafe_labels: Iterable[str] = ("unsafe",),
    seed: int = 0,
) -> TfidfLogisticScorer:
    """Fit the scorer on labelled traces.

    :param traces: trace objects with ``prompt``, ``response`` and ``label``.
    :param unsafe_labels: the labels that mean unsafe (the workspace's label map).
    :param seed: the solver's random state.
    :raises ValueError: the traces hold fewer than two classes.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer  # noqa: PLC0415
    from sklearn.linear_model import LogisticRegression  # noqa: PLC0415

    unsafe = set(unsafe_labels)
    rows = list(traces)
    texts = [_text(trace) for trace in rows]
    labels = [1 if trace.get("label") in unsafe else 0 for trace in rows]
    if len(set(labels)) < 2:
        raise ValueError("training needs both unsafe and safe traces")
    vectorizer = TfidfVectorizer(lowercase=True, token_pattern=_TOKEN_RE.pattern)
    features = vectorizer.fit_transform(texts)
    model = LogisticRegression(C=10.0, max_iter=1000, random_state=seed)
    model.fit(features, labels)
    return TfidfLogisticScorer(
        vocabulary={str(k): int(v) for k, v in vectorizer.vocabulary_.items()},
        idf=tuple(float(v) for v in vectorizer.idf_),
        coefficients=tuple(float(v) for v in model.coef_[0]),
        intercept=float(model.intercept_[0]),
    )


class _BatchScorer:
    """The plugin API's ``TrainedScorer`` view of a fitted :class:`TfidfLogisticScorer`."""

    def __init__(self, scorer: TfidfLogisticScorer) -> None:
        self.scorer = scorer

    def score(self, prompts: Sequence[str], responses: Sequence[str]) -> list[float]:
        return self.scorer.score_batch(prompts, responses)

    def save(self, directory: Path) -> dict[str, str]:
        return self.scorer.save(directory)


class TfidfLogisticLane:
    """The pack's training lane, as the plugin API's ``TrainingLane`` protocol."""

    def fit(
        self,
        examples: Sequence[TrainingExample],
        *,
        hyperparameters: Mapping[str, Any],
        seed: int,
    ) -> _BatchScorer:
        """Fit on training examples (their ``unsafe`` flag is the label)."""
        del hyperparameters  # the lane has none to tune
        rows = [
            {
                "prompt": example.prompt,
                "response": example.response,
                "label": "unsafe" if example.unsafe else "safe",
            }
            for example in examples
        ]
        return _BatchScorer(train_tfidf_logistic(rows, seed=seed))

    def load(self, directory: Path) -> _BatchScorer:
        """Rebuild a saved scorer from its JSON file."""
        payload = json.loads((Path(directory) / _WEIGHTS_FILE).read_text(encoding="utf-8"))
        return _BatchScorer(TfidfLogisticScorer.from_dict(payload))
