"""The dataset stage's public names, at the import path they have always had.

The stage lives in :mod:`customer_model_factory.stages.dataset`; this module re-exports its
public API so ``from customer_model_factory.dataset import ...`` keeps working.
"""

from __future__ import annotations

from customer_model_factory.stages.dataset import (
    DECISIONS,
    HIGH_RISK_SEVERITIES,
    JSONL_PROBLEM_CODES,
    REDACTION_STATUSES,
    REFERENCE_REQUIRED_FIELDS,
    SEVERITIES,
    AsOfPolicy,
    CustomerDatasetValidationReport,
    CustomerTrace,
    CustomerWorkspace,
    RedactedCopy,
    ShardDigest,
    TimeWindow,
    validate_customer_trace_dataset,
)

__all__ = [
    "DECISIONS",
    "HIGH_RISK_SEVERITIES",
    "JSONL_PROBLEM_CODES",
    "REDACTION_STATUSES",
    "REFERENCE_REQUIRED_FIELDS",
    "SEVERITIES",
    "AsOfPolicy",
    "CustomerDatasetValidationReport",
    "CustomerTrace",
    "CustomerWorkspace",
    "RedactedCopy",
    "ShardDigest",
    "TimeWindow",
    "validate_customer_trace_dataset",
]
