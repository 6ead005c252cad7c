"""Decision thresholds calibrated on the validation split, with a stated conformal guarantee.

Scores are P(unsafe). The deployed policy reads three thresholds, ordered as the reference's
``DeploymentPolicy`` orders them (``threshold >= abstention_threshold >= escalation_threshold``)::

    score >= threshold                               -> block
    abstention_threshold <= score < threshold        -> abstain
    escalation_threshold <= score < abstention_th.   -> escalate
    score < escalation_threshold                     -> approve

They come from two calibrations on the same validation results (never the test split, which must
stay untouched for the benchmark):

1. **Split-conformal abstention band at error level α.** The nonconformity of a calibration trace
   is ``1 - p̂(its true label)`` (``1 - score`` when unsafe, ``score`` when safe). With ``n``
   calibration traces, ``q̂`` is the ``k``-th smallest of them, ``k = ⌈(n + 1)(1 - α)⌉``. The
   prediction set of a new trace is ``{unsafe if score >= 1 - q̂} ∪ {safe if score <= q̂}``; for a
   new trace exchangeable with the calibration traces it holds the true label with probability at
   least ``1 - α`` (Vovk et al.; Angelopoulos & Bates, "A gentle introduction to conformal
   prediction", 2021). A set of exactly ``{unsafe}`` blocks, ``{safe}`` approves, anything else
   (both labels, or none) abstains. This needs ``k <= n``, i.e. ``n >= 1/α - 1``; smaller sets are
   refused.
2. **The objective** moves the lowest flag threshold: ``max_fnr`` (at most that share of unsafe
   validation traces approved) adds an *escalate* tier below the band when the band alone misses
   too many; ``max_fpr`` (at most that share of safe traces flagged) raises the band's lower edge
   when it flags too many, and the result says so, because the approvals it adds are then outside
   what the conformal statement covers.

Rates achieved on the validation split are reported with a one-sided 95 % Clopper-Pearson upper
bound of the miss rate; they describe the calibration data, and only the conformal coverage is a
guarantee.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from typing import Final, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from customer_model_factory.errors import CalibrationError
from customer_model_factory.stages.benchmark.metrics import RawResult, clopper_pearson_upper

__all__ = [
    "DEFAULT_MIN_CALIBRATION_SIZE",
    "DEFAULT_MIN_CLASS_COUNT",
    "CalibratedThresholds",
    "ConformalBand",
    "ThresholdObjective",
    "calibrate_thresholds",
    "conformal_band",
    "objective_threshold",
]

DEFAULT_MIN_CALIBRATION_SIZE: Final = 50
DEFAULT_MIN_CLASS_COUNT: Final = 10
_UP: Final = math.inf


def _above(value: float) -> float:
    """The smallest float greater than ``value`` (turns ``score > v`` into ``score >= t``)."""
    return float(np.nextafter(value, _UP))


class ThresholdObjective(BaseModel):
    """What the flag threshold must achieve on the validation split."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["max_fnr", "max_fpr"] = Field(
        description="max_fnr: bound the share of unsafe traces approved; max_fpr: bound the "
        "share of safe traces flagged."
    )
    target: float = Field(ge=0.0, lt=1.0, allow_inf_nan=False, description="The bound.")


class ConformalBand(BaseModel):
    """The split-conformal prediction sets at error level α, as score thresholds."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    alpha: float = Field(description="Error level α: sets miss the true label at most this often.")
    calibration_size: int = Field(description="n, the number of calibration traces.")
    quantile_rank: int = Field(description="k = ceil((n + 1)(1 - α)).")
    conformal_quantile: float = Field(description="q̂, the k-th smallest nonconformity score.")
    block_from: float = Field(description="The set is exactly {unsafe} when score >= this.")
    abstain_from: float = Field(description="The set is not exactly {safe} when score >= this.")

    def covers(self, scores: np.ndarray, is_unsafe: np.ndarray) -> np.ndarray:
        """Whether each trace's prediction set holds its true label (vectorised)."""
        scores = np.asarray(scores, dtype=np.float64)
        is_unsafe = np.asarray(is_unsafe, dtype=bool)
        q = self.conformal_quantile
        return np.where(is_unsafe, scores >= 1.0 - q, scores <= q)


class CalibratedThresholds(BaseModel):
    """Block / abstain / escalate thresholds and the guarantee they come with."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    threshold: float = Field(description="Block when score >= threshold.")
    abstention_threshold: float = Field(description="Abstain when score is in [this, threshold).")
    escalation_threshold: float = Field(
        description="Escalate when score is in [this, abstention_threshold); approve below."
    )
    alpha: float = Field(description="Conformal error level α.")
    calibration_size: int = Field(description="Number of validation traces calibrated on.")
    coverage_guarantee: str = Field(description="The finite-sample guarantee, in one sentence.")
    band: ConformalBand = Field(description="The conformal band the thresholds start from.")
    objective: ThresholdObjective = Field(description="The objective the flag threshold meets.")
    objective_threshold: float = Field(description="The flag threshold the objective alone asks.")
    band_truncated_by_objective: bool = Field(
        description="True when max_fpr raised the band's lower edge (some non-singleton sets are "
        "approved)."
    )
    validation_false_negative_rate: float | None = Field(
        description="Share of unsafe validation traces the policy approves."
    )
    validation_false_negative_rate_upper_95: float | None = Field(
        description="One-sided 95% Clopper-Pearson upper bound of that rate."
    )
    validation_false_positive_rate: float | None = Field(
        description="Share of safe validation traces the policy flags."
    )
    validation_abstention_rate: float = Field(description="Share of validation traces abstained.")
    validation_escalation_rate: float = Field(description="Share of validation traces escalated.")

    def decide(self, scores: Sequence[float] | np.ndarray) -> np.ndarray:
        """Return the decision (approve / escalate / abstain / block) for each score."""
        return _decide(
            np.asarray(scores, dtype=np.float64),
            self.threshold,
            self.abstention_threshold,
            self.escalation_threshold,
        )


def _decide(
    scores: np.ndarray, threshold: float, abstention: float, escalation: float
) -> np.ndarray:
    decisions = np.full(scores.shape, "approve", dtype="<U8")
    decisions[scores >= escalation] = "escalate"
    decisions[scores >= abstention] = "abstain"
    decisions[scores >= threshold] = "block"
    return decisions


def _arrays(results: Sequence[RawResult]) -> tuple[np.ndarray, np.ndarray]:
    scores = np.fromiter((r.score for r in results), dtype=np.float64, count=len(results))
    unsafe = np.fromiter((r.is_unsafe for r in results), dtype=bool, count=len(results))
    return scores, unsafe


def _quantile_rank(size: int, alpha: float) -> int:
    # Exact decimal arithmetic: (n + 1) * 0.9 in floats can land just above an integer.
    return math.ceil((size + 1) * (1 - Fraction(str(alpha))))


def _too_small(message: str) -> CalibrationError:
    return CalibrationError(message, code="SELECT_CALIBRATION_TOO_SMALL")


def conformal_band(
    results: Sequence[RawResult],
    *,
    alpha: float,
    min_size: int = DEFAULT_MIN_CALIBRATION_SIZE,
) -> ConformalBand:
    """Calibrate the split-conformal prediction sets at error level ``alpha``.

    :raises CalibrationError: ``SELECT_CALIBRATION_TOO_SMALL`` when fewer than ``min_size``
        results are given, or too few for ``alpha`` (``⌈(n + 1)(1 - α)⌉ > n``).
    :raises ValueError: ``alpha`` outside ``(0, 1)``.
    """
    if not (isinstance(alpha, float | int) and 0.0 < alpha < 1.0):
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    size = len(results)
    rank = _quantile_rank(size, alpha)
    if size < min_size:
        raise _too_small(
            f"the calibration split holds {size} traces; at least {min_size} are required"
        )
    if rank > size:
        raise _too_small(
            f"alpha {alpha} needs at least {math.ceil(1 / alpha) - 1} calibration traces, "
            f"the split holds {size}"
        )
    scores, unsafe = _arrays(results)
    nonconformity = np.where(unsafe, 1.0 - scores, scores)
    q = float(np.partition(nonconformity, rank - 1)[rank - 1])
    if q >= 0.5:  # sets are {safe} below 1 - q, both labels in [1 - q, q], {unsafe} above q
        block_from, abstain_from = _above(q), 1.0 - q
    else:  # {safe} up to q, empty set in (q, 1 - q), {unsafe} from 1 - q
        block_from, abstain_from = 1.0 - q, _above(q)
    return ConformalBand(
        alpha=float(alpha),
        calibration_size=size,
        quantile_rank=rank,
        conformal_quantile=q,
        block_from=block_from,
        abstain_from=abstain_from,
    )


def objective_threshold(
    results: Sequence[RawResult],
    objective: ThresholdObjective,
    *,
    min_class_count: int = DEFAULT_MIN_CLASS_COUNT,
) -> float:
    """Return the flag threshold (flag when ``score >= t``) the objective asks on these results.

    ``max_fnr``: the largest ``t`` with at most ``floor(target * P)`` of the ``P`` unsafe traces
    below it. ``max_fpr``: the smallest ``t`` with at most ``floor(target * N)`` of the ``N`` safe
    traces at or above it.

    :raises CalibrationError: ``SELECT_CALIBRATION_TOO_SMALL`` when the class the objective reads
        has fewer than ``min_class_count`` traces.
    """
    scores, unsafe = _arrays(results)
    target = Fraction(str(objective.target))
    if objective.kind == "max_fnr":
        positives = np.sort(scores[unsafe])
        if len(positives) < min_class_count:
            raise _too_small(
                f"max_fnr needs at least {min_class_count} unsafe calibration traces, "
                f"the split holds {len(positives)}"
            )
        allowed = math.floor(target * len(positives))
        return float(positives[allowed])
    negatives = np.sort(scores[~unsafe])[::-1]
    if len(negatives) < min_class_count:
        raise _too_small(
            f"max_fpr needs at least {min_class_count} safe calibration traces, "
            f"the split holds {len(negatives)}"
        )
    allowed = math.floor(target * len(negatives))
    return _above(float(negatives[allowed])) if allowed < len(negatives) else 0.0


def calibrate_thresholds(
    results: Sequence[RawResult],
    *,
    split: str,
    objective: ThresholdObjective,
    alpha: float = 0.1,
    min_size: int = DEFAULT_MIN_CALIBRATION_SIZE,
    min_class_count: int = DEFAULT_MIN_CLASS_COUNT,
) -> CalibratedThresholds:
    """Choose block / abstain / escalate thresholds on validation results (module docstring).

    :param split: the split ``results`` come from; anything but ``validation`` is refused, so
        thresholds are never tuned on the test split the benchmark reports.
    :raises CalibrationError: ``SELECT_CALIBRATION_WRONG_SPLIT`` for another split,
        ``SELECT_CALIBRATION_TOO_SMALL`` for too few traces (in all or in the class the objective
        reads). The objective is always met on the validation split itself: the escalate tier
        (max_fnr) or the raised lower edge (max_fpr) makes it so.
    """
    if split != "validation":
        raise CalibrationError(
            f"thresholds are calibrated on the validation split only, not {split[:40]!r}",
            code="SELECT_CALIBRATION_WRONG_SPLIT",
        )
    band = conformal_band(results, alpha=alpha, min_size=min_size)
    flag_at = objective_threshold(results, objective, min_class_count=min_class_count)
    threshold, abstention = band.block_from, band.abstain_from
    truncated = False
    if objective.kind == "max_fnr":
        escalation = min(flag_at, abstention)
    else:
        if flag_at > abstention:
            truncated = True
            abstention = flag_at
            threshold = max(threshold, flag_at)
        escalation = abstention
    scores, unsafe = _arrays(results)
    decisions = _decide(scores, threshold, abstention, escalation)
    flagged = decisions != "approve"
    positives, negatives = int(unsafe.sum()), int((~unsafe).sum())
    missed = int(np.count_nonzero(unsafe & ~flagged))
    false_flags = int(np.count_nonzero(~unsafe & flagged))
    fnr = missed / positives if positives else None
    fpr = false_flags / negatives if negatives else None
    sentence = (
        f"For a new trace exchangeable with the {band.calibration_size} validation traces "
        f"calibrated on, the conformal prediction set holds the true label with probability at "
        f"least {1 - band.alpha:.4g} (split conformal, alpha = {band.alpha:.4g}, "
        f"q = {band.conformal_quantile:.6g}, the {band.quantile_rank}-th smallest of "
        f"{band.calibration_size} nonconformity scores); a trace whose set is not exactly one "
        "label is abstained."
    )
    if truncated:
        sentence += (
            " The max_fpr objective raised the flag threshold above the band's lower edge, so "
            "some traces whose set is not a single label are approved; the guarantee covers the "
            "prediction sets, not those approvals."
        )
    return CalibratedThresholds(
        threshold=threshold,
        abstention_threshold=abstention,
        escalation_threshold=escalation,
        alpha=band.alpha,
        calibration_size=band.calibration_size,
        coverage_guarantee=sentence,
        band=band,
        objective=objective,
        objective_threshold=flag_at,
        band_truncated_by_objective=truncated,
        validation_false_negative_rate=fnr,
        validation_false_negative_rate_upper_95=(
            clopper_pearson_upper(missed, positives) if positives else None
        ),
        validation_false_positive_rate=fpr,
        validation_abstention_rate=float(np.mean(decisions == "abstain")),
        validation_escalation_rate=float(np.mean(decisions == "escalate")),
    )
