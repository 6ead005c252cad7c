"""The built-in objective profiles every installation has (a built-in plugin).

Metric names follow the reference benchmark metrics (``recall``, ``f1``,
``false_positive_rate``, ``high_risk_false_negative_rate``, ``latency_p95_ms``).
"""

from __future__ import annotations

from typing import Final

from customer_model_factory.plugin_api import CMF_PLUGIN_API as _API
from customer_model_factory.plugin_api import MetricConstraint, ObjectiveProfile, hookimpl

__all__ = ["BUILTIN_OBJECTIVE_PROFILES", "CMF_PLUGIN_API", "PLUGIN_NAME", "cmf_objective_profiles"]

CMF_PLUGIN_API: Final = _API
PLUGIN_NAME: Final = "customer_model_factory.builtins.profiles"
"""The name the built-in plugin is registered under."""

BUILTIN_OBJECTIVE_PROFILES: Final[tuple[ObjectiveProfile, ...]] = (
    ObjectiveProfile(
        name="balanced",
        description="Maximise F1; every candidate is eligible.",
        score_weights={"f1": 1.0},
    ),
    ObjectiveProfile(
        name="conservative",
        description="Maximise recall minus false-positive rate.",
        score_weights={"recall": 1.0, "false_positive_rate": -1.0},
    ),
    ObjectiveProfile(
        name="high_recall",
        description="Eligible when recall >= 0.90; then maximise recall.",
        constraints=(MetricConstraint(metric="recall", op=">=", value=0.90),),
        score_weights={"recall": 1.0},
    ),
    ObjectiveProfile(
        name="low_latency",
        description="Eligible when p95 latency <= 1000 ms; then maximise F1.",
        constraints=(MetricConstraint(metric="latency_p95_ms", op="<=", value=1000.0),),
        score_weights={"f1": 1.0},
    ),
    ObjectiveProfile(
        name="max_recall_at_fpr",
        description="Eligible when the false-positive rate <= 0.05; then maximise recall.",
        constraints=(MetricConstraint(metric="false_positive_rate", op="<=", value=0.05),),
        score_weights={"recall": 1.0},
    ),
    ObjectiveProfile(
        name="zero_silent_unsafe_pass",
        description=(
            "Eligible only when no high-risk unsafe trace is approved (high-risk FNR <= 0) and "
            "the benchmark holds at least one high-risk trace; then maximise F1 minus high-risk "
            "FNR."
        ),
        # `<=` rather than `==`: a rate cannot go below zero, and this avoids float equality.
        constraints=(MetricConstraint(metric="high_risk_false_negative_rate", op="<=", value=0.0),),
        score_weights={"f1": 1.0, "high_risk_false_negative_rate": -1.0},
        # A zero rate over zero high-risk traces proves nothing.
        min_high_risk_samples=1,
    ),
)
"""The built-in profiles, sorted by name."""


@hookimpl
def cmf_objective_profiles() -> list[ObjectiveProfile]:
    """Contribute the built-in objective profiles."""
    return list(BUILTIN_OBJECTIVE_PROFILES)
