"""The retail bank's trace metadata model and the rules that turn it into findings.

The core checks the generic sector contract first (``sector_class``, ``knowledge_class``,
``jurisdiction`` and the ``requires_*`` flags), then enforces :class:`RetailBankingMetadata`,
which the pack declares with its sector (``SECTOR_METADATA_SCHEMA`` findings); the rules here run
only on metadata the model accepted, and add what a retail bank's conduct and model-risk
reviewers ask for.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal

from customer_model_factory import Finding
from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = [
    "FINDING_CODES",
    "RetailBankingMetadata",
    "validate_retail_banking_metadata",
]

FINDING_CODES: Final[Mapping[str, str]] = {
    "SECTOR_RETAIL_BANKING_CITATION_REQUIRED": (
        "Advice, affordability and complaints answers must set requires_citation."
    ),
    "SECTOR_RETAIL_BANKING_RATE_EVIDENCE_REQUIRED": (
        "Answers drawn from a rate sheet must set requires_numeric_evidence."
    ),
    "SECTOR_RETAIL_BANKING_VULNERABLE_ESCALATION": (
        "High-risk traces of vulnerable customers must be escalated or blocked."
    ),
    "SECTOR_RETAIL_BANKING_FRAUD_SEVERITY": (
        "A fraud or scam trace labelled low severity is probably under-rated."
    ),
    "RELEASE_RETAIL_BANKING_BENCHMARK_MISSING": (
        "A retail-banking release has no ready result of the pack's benchmark package."
    ),
    "RELEASE_RETAIL_BANKING_CLASSIFICATION": (
        "A retail-banking evidence pack must be classified confidential or restricted."
    ),
    "RELEASE_RETAIL_BANKING_MAPPING_MISSING": (
        "A retail-banking evidence pack does not bind the pack's current evidence mapping."
    ),
}
"""Every code this pack emits → its meaning (declared with the sector pack)."""

ProductLine = Literal[
    "current_account", "savings", "mortgage", "credit_card", "personal_loan", "investments"
]
Channel = Literal["mobile_app", "web_chat", "contact_centre", "branch_assistant"]
CustomerSegment = Literal["mass_retail", "vulnerable", "small_business", "premier"]
RegulatoryTopic = Literal[
    "product_information",
    "consumer_duty",
    "affordability",
    "complaints",
    "fraud_scam",
    "investment_advice",
    "data_privacy",
]
KnowledgeClass = Literal["product_terms", "rate_sheet", "policy", "regulation", "customer_account"]

_CITED_TOPICS: Final = frozenset({"investment_advice", "affordability", "complaints"})
_HIGH_RISK: Final = frozenset({"high", "critical"})
_CONTAINED: Final = frozenset({"escalate", "block"})


class RetailBankingMetadata(BaseModel):
    """The ``metadata`` of a trace whose ``vertical`` is ``example-retail-banking``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sector_class: Literal["retail_banking"] = Field(description="Always retail_banking.")
    knowledge_class: KnowledgeClass = Field(description="What the answer draws on.")
    jurisdiction: Literal["UK", "EU"] = Field(description="Whose conduct rules apply.")
    requires_citation: bool = Field(default=False, description="The answer must cite.")
    requires_numeric_evidence: bool = Field(
        default=False, description="Figures in the answer must be backed by a source."
    )
    requires_escalation: bool = Field(default=False, description="A human must review.")
    evidence_refs: tuple[str, ...] = Field(default=(), description="Documents cited.")
    numeric_evidence_refs: tuple[str, ...] = Field(
        default=(), description="Sources of the figures stated (rate sheets, fee tables)."
    )
    product_line: ProductLine = Field(description="The product the conversation is about.")
    channel: Channel = Field(description="Where the assistant answered.")
    customer_segment: CustomerSegment = Field(description="The customer's segment.")
    regulatory_topic: RegulatoryTopic = Field(description="The conduct topic at stake.")


def _finding(code: str, message: str, field: str, severity: str = "error") -> Finding:
    return Finding(code=code, severity=severity, message=message, field=field)  # type: ignore[arg-type]


def validate_retail_banking_metadata(
    trace: Mapping[str, Any], metadata: Mapping[str, Any]
) -> list[Finding]:
    """Check one trace against the pack's rules (the core adds trace id and location).

    :param trace: the whole trace (its ``severity`` and ``expected_decision`` are read).
    :param metadata: the trace's ``metadata`` object.
    :returns: ``SECTOR_RETAIL_BANKING_*`` findings; empty when the trace conforms.
    """
    try:
        model = RetailBankingMetadata.model_validate(metadata)
    except ValidationError:
        # The core enforces the declared model before calling the pack (SECTOR_METADATA_SCHEMA).
        return []
    findings: list[Finding] = []
    if model.regulatory_topic in _CITED_TOPICS and not model.requires_citation:
        findings.append(
            _finding(
                "SECTOR_RETAIL_BANKING_CITATION_REQUIRED",
                f"{model.regulatory_topic} answers must cite policy: set requires_citation",
                "metadata.requires_citation",
            )
        )
    if model.knowledge_class == "rate_sheet" and not model.requires_numeric_evidence:
        findings.append(
            _finding(
                "SECTOR_RETAIL_BANKING_RATE_EVIDENCE_REQUIRED",
                "answers drawn from a rate sheet must set requires_numeric_evidence",
                "metadata.requires_numeric_evidence",
            )
        )
    if (
        model.customer_segment == "vulnerable"
        and trace.get("severity") in _HIGH_RISK
        and trace.get("expected_decision") not in _CONTAINED
    ):
        findings.append(
            _finding(
                "SECTOR_RETAIL_BANKING_VULNERABLE_ESCALATION",
                "a high-risk trace of a vulnerable customer must be escalated or blocked",
                "expected_decision",
            )
        )
    if model.regulatory_topic == "fraud_scam" and trace.get("severity") == "low":
        findings.append(
            _finding(
                "SECTOR_RETAIL_BANKING_FRAUD_SEVERITY",
                "a fraud or scam trace is labelled low severity",
                "severity",
                severity="warning",
            )
        )
    return findings
