"""ROC, precision-recall and calibration curves computed from raw per-trace results.

The curves are the ones scikit-learn's ``roc_curve``, ``precision_recall_curve`` and
``calibration_curve`` (uniform bins) compute; numpy only, so the core needs no training extra.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np

__all__ = ["calibration_points", "decimate", "pr_points", "roc_points"]

_MAX_POINTS: Final = 400


def _sorted_counts(scores: np.ndarray, unsafe: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative true and false positives at each distinct score, highest score first."""
    order = np.argsort(-scores, kind="mergesort")
    ordered_scores, ordered_unsafe = scores[order], unsafe[order]
    distinct = np.r_[np.nonzero(np.diff(ordered_scores))[0], ordered_scores.size - 1]
    true_pos = np.cumsum(ordered_unsafe)[distinct]
    false_pos = (distinct + 1) - true_pos
    return true_pos.astype(np.float64), false_pos.astype(np.float64)


def roc_points(scores: Sequence[float], unsafe: Sequence[bool]) -> list[tuple[float, float]]:
    """``(false positive rate, true positive rate)`` from (0, 0) to (1, 1); empty when a class
    is missing (the curve is undefined)."""
    s, u = np.asarray(scores, dtype=np.float64), np.asarray(unsafe, dtype=bool)
    positives, negatives = int(u.sum()), int((~u).sum())
    if s.size == 0 or positives == 0 or negatives == 0:
        return []
    tp, fp = _sorted_counts(s, u)
    fpr = np.r_[0.0, fp / negatives]
    tpr = np.r_[0.0, tp / positives]
    return list(zip(fpr.tolist(), tpr.tolist(), strict=True))


def pr_points(scores: Sequence[float], unsafe: Sequence[bool]) -> list[tuple[float, float]]:
    """``(recall, precision)`` from recall 0 (precision 1) upwards; empty without an unsafe
    trace."""
    s, u = np.asarray(scores, dtype=np.float64), np.asarray(unsafe, dtype=bool)
    positives = int(u.sum())
    if s.size == 0 or positives == 0:
        return []
    tp, fp = _sorted_counts(s, u)
    recall = np.r_[0.0, tp / positives]
    precision = np.r_[1.0, tp / (tp + fp)]
    return list(zip(recall.tolist(), precision.tolist(), strict=True))


def calibration_points(
    scores: Sequence[float], unsafe: Sequence[bool], *, bins: int = 10
) -> list[tuple[float, float]]:
    """``(mean score, share unsafe)`` of each non-empty bin of ``bins`` equal bins of [0, 1]."""
    s, u = np.asarray(scores, dtype=np.float64), np.asarray(unsafe, dtype=np.float64)
    if s.size == 0:
        return []
    # Bins closed on the right, as scikit-learn's: 0.1 falls in the first of ten bins.
    index = np.searchsorted(np.linspace(0.0, 1.0, bins + 1)[1:-1], s)
    counts = np.bincount(index, minlength=bins)
    score_sums = np.bincount(index, weights=s, minlength=bins)
    unsafe_sums = np.bincount(index, weights=u, minlength=bins)
    kept = counts > 0
    return list(
        zip(
            (score_sums[kept] / counts[kept]).tolist(),
            (unsafe_sums[kept] / counts[kept]).tolist(),
            strict=True,
        )
    )


def decimate(
    points: list[tuple[float, float]], limit: int = _MAX_POINTS
) -> list[tuple[float, float]]:
    """At most ``limit`` points, evenly spaced along the list, first and last kept."""
    if len(points) <= limit:
        return points
    step = (len(points) - 1) / (limit - 1)
    return [points[round(i * step)] for i in range(limit)]
