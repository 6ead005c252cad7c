"""The release domains the core declares: which evidence records a release gate requires.

Each domain is a declarative :class:`~customer_model_factory.plugin_api.ReleaseDomain`: the URI
names a record must give, the boolean checks it must give (each true), and the environments
where a release without a record for the domain is blocked. These are the reference's ten
domains; a pack adds its own through the ``cmf_release_domains`` hook. The table in
``docs/release.md`` lists exactly this tuple (a test keeps the two in step).

Four domains are required in production (observability, provenance, rollback, deployment
hardening): without them nobody can see, trace, undo or trust what was promoted. The other six
depend on how the package is used (multimodal input, federated data, edge devices, formal
properties, ...), so they are checked when a record is given and never required by default.
"""

from __future__ import annotations

from typing import Final

from customer_model_factory.plugin_api.contracts import ReleaseDomain

__all__ = ["CORE_DOMAINS", "core_domains"]

CORE_DOMAINS: Final[tuple[ReleaseDomain, ...]] = (
    ReleaseDomain(
        name="auto_redteam",
        title="Automated red-teaming",
        required_uris=("attack_corpus_uri", "redteam_report_uri"),
        required_checks=("no_open_critical_findings", "redteam_run_passed"),
        description="An automated red-team run against the package, and its open findings.",
    ),
    ReleaseDomain(
        name="conformal_routing",
        title="Conformal routing",
        required_uris=("calibration_report_uri",),
        required_checks=("abstention_band_calibrated", "coverage_guarantee_met"),
        description="The abstention / escalation bands hold their conformal coverage guarantee.",
    ),
    ReleaseDomain(
        name="deployment_hardening",
        title="Deployment hardening",
        required_uris=("hardening_checklist_uri", "network_policy_uri"),
        required_checks=("least_privilege", "secrets_externalised", "tls_enforced"),
        required_in=("production",),
        description="The runtime's host, network and secrets are locked down.",
    ),
    ReleaseDomain(
        name="edge",
        title="Edge deployment",
        required_uris=("edge_build_uri",),
        required_checks=("offline_mode_tested", "resource_limits_tested"),
        description="The package runs on edge devices within their limits, offline.",
    ),
    ReleaseDomain(
        name="federated_privacy",
        title="Federated privacy",
        required_uris=("privacy_assessment_uri",),
        required_checks=("data_residency_enforced", "secure_aggregation"),
        description="Training or monitoring across sites never moves raw customer data.",
    ),
    ReleaseDomain(
        name="formal",
        title="Formal verification",
        required_uris=("proof_report_uri", "specification_uri"),
        required_checks=("properties_verified",),
        description="Stated properties of the policy (threshold order, ...) are proved.",
    ),
    ReleaseDomain(
        name="multimodal",
        title="Multimodal inputs",
        required_uris=("modality_test_report_uri",),
        required_checks=("modality_coverage_tested", "unsupported_modalities_rejected"),
        description="Non-text inputs are scored as tested, or refused.",
    ),
    ReleaseDomain(
        name="observability",
        title="Observability",
        required_uris=("alerting_uri", "dashboard_uri"),
        required_checks=("alerts_routed", "decision_log_retained", "metrics_exported"),
        required_in=("production",),
        description="Decisions, metrics and alerts of the runtime are visible to the operator.",
    ),
    ReleaseDomain(
        name="provenance",
        title="Provenance",
        required_uris=("build_attestation_uri", "sbom_uri"),
        required_checks=("artefacts_signed", "dependencies_pinned"),
        required_in=("production",),
        description="What was built, from what, by whom: an SBOM and a build attestation.",
    ),
    ReleaseDomain(
        name="rollback",
        title="Rollback",
        required_uris=("rollback_package_uri", "rollback_runbook_uri"),
        required_checks=("previous_version_available", "rollback_tested"),
        required_in=("production",),
        description="The previous package can be restored, and restoring it was rehearsed.",
    ),
)
"""The core's ten release domains, sorted by name."""


def core_domains() -> dict[str, ReleaseDomain]:
    """The core's release domains by name."""
    return {domain.name: domain for domain in CORE_DOMAINS}
