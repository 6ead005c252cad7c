"""The runtime decision policy: threshold bands, then the citation rule.

Bands are those of the deployment policy (and of the benchmark's calibrated thresholds): block
when ``score >= threshold``, abstain when ``score >= abstention_threshold``, escalate when
``score >= escalation_threshold``, approve below. With ``require_citations``, a request without
citations is never approved: an ``approve`` becomes ``escalate`` with reason
``citations_required`` (the more restrictive decisions stand).
"""

from __future__ import annotations

from typing import Final

import numpy as np

from customer_model_factory.stages.deployment.models import DeploymentPolicy

__all__ = ["CITATIONS_REQUIRED", "decide"]

CITATIONS_REQUIRED: Final = "citations_required"
"""The reason of an approve turned into an escalation because the request cited nothing."""


def decide(
    scores: np.ndarray, policy: DeploymentPolicy, cited: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(decisions, reasons)`` for each score (string arrays of the same length).

    :param scores: P(unsafe) of each request, in [0, 1].
    :param cited: whether each request carries at least one citation (source ref).
    """
    decisions = np.full(scores.shape, "approve", dtype="<U8")
    decisions[scores >= policy.escalation_threshold] = "escalate"
    decisions[scores >= policy.abstention_threshold] = "abstain"
    decisions[scores >= policy.threshold] = "block"
    reasons = decisions.astype("<U18")
    if policy.require_citations:
        uncited = (decisions == "approve") & ~np.asarray(cited, dtype=bool)
        decisions[uncited] = "escalate"
        reasons[uncited] = CITATIONS_REQUIRED
    return decisions, reasons
