"""Stage 1, the dataset contract: validate a customer's trace dataset against its workspace.

- :mod:`.models`: the workspace, the trace, the report and their constants;
- :mod:`.rules`: every rule on a row and on the dataset, written once;
- :mod:`.engine`: the fast reader that calls the rules (typed decoding, cached verdicts, block
  scanning, worker processes, merging);
- :mod:`.validate`: :func:`validate_customer_trace_dataset`, the entry point.
"""

from __future__ import annotations

from customer_model_factory.stages.dataset.models import (
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
    hash_dataset_files,
)
from customer_model_factory.stages.dataset.validate import validate_customer_trace_dataset

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
    "hash_dataset_files",
    "validate_customer_trace_dataset",
]
