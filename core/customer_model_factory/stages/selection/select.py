"""Model selection under an objective profile, and the gate receipt of the chosen run.

:func:`select_model` is pure: given candidate results (each with its raw results) and a profile,
it judges every candidate from metrics **recomputed from the raw results** (a result whose raw
results do not reproduce its recorded metrics is refused), ranks the eligible ones by score, then
fewer approved high-risk unsafe traces, then ``result_hash`` (so the input order never matters),
and seals a :class:`CustomerModelSelectionReport`. :func:`run_selection` loads the result files,
resolves the profile through the plugin hook, selects, and records a PASS/FAIL gate receipt for
the chosen run in the run ledger.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from pydantic import BaseModel, ConfigDict, Field

from customer_model_factory.canonical import content_hash
from customer_model_factory.context import RunContext
from customer_model_factory.errors import StageInputError
from customer_model_factory.findings import Finding
from customer_model_factory.ledger import GateReceipt, RunLedger, build_gate_receipt
from customer_model_factory.manifest import InputLink, read_manifest_payload
from customer_model_factory.plugin_api.contracts import MetricConstraint, ObjectiveProfile
from customer_model_factory.stages.benchmark.metrics import (
    HIGH_RISK_SEVERITIES,
    BenchmarkMetrics,
    RawResult,
    clopper_pearson_upper,
    compute_benchmark_metrics,
)
from customer_model_factory.stages.benchmark.models import (
    CustomerBenchmarkResult,
    parse_raw_results,
)
from customer_model_factory.stages.selection.models import (
    CandidateSummary,
    CustomerModelSelectionReport,
)
from customer_model_factory.store import ArtefactStore, resolve_uri

__all__ = [
    "GATE_ACTOR",
    "TIE_BREAK",
    "Candidate",
    "SelectionRun",
    "apply_cutoffs",
    "load_candidate",
    "run_selection",
    "select_model",
]

TIE_BREAK: Final = (
    "higher score, then fewer approved high-risk unsafe traces, then the smaller result_hash"
)
GATE_ACTOR: Final = "cmf-select"
_ZERO_SILENT: Final = "zero_silent_unsafe_pass"


@dataclass(frozen=True)
class Candidate:
    """A benchmark result with its verified raw results and the link a selection records."""

    result: CustomerBenchmarkResult
    raw: tuple[RawResult, ...]
    link: InputLink


class SelectionRun(BaseModel):
    """What ``cmf select`` produced: the report and the gate receipt recorded for the run."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    report: CustomerModelSelectionReport
    receipt: GateReceipt | None = Field(description="None when no candidate was selected.")

    @property
    def exit_code(self) -> int:
        """0 selected and PASS; 1 nothing selected, or the gate receipt is FAIL."""
        passed = self.receipt is not None and self.receipt.gate_status == "PASS"
        return 0 if self.report.ready and passed else 1


def load_candidate(path: Path, *, store: ArtefactStore) -> Candidate:
    """Load a result file (hash verified), store its bytes, and read its raw results (digest
    verified).

    :raises ManifestIntegrityError, DataFormatError: the result file is tampered or unreadable.
    :raises ArtefactError: the raw results are not in the store, or their bytes differ.
    """
    payload = read_manifest_payload(path)
    raw_bytes = path.read_bytes()
    result = CustomerBenchmarkResult.from_payload(payload, path=path)
    stored = store.put_bytes(raw_bytes)
    data = resolve_uri(result.raw_result_uri, store=store, expected_digest=result.raw_result_digest)
    raw = parse_raw_results(data, source=result.raw_result_uri)
    return Candidate(result=result, raw=tuple(raw), link=result.link(stored.uri))


def apply_cutoffs(
    profile: ObjectiveProfile,
    cutoffs: Mapping[str, float],
    min_high_risk_samples: int | None = None,
) -> ObjectiveProfile:
    """Return the profile with the bound of each named constraint replaced.

    :raises StageInputError: ``SELECT_CUTOFF_UNKNOWN`` for a metric the profile does not bound.
    """
    bounded = {constraint.metric for constraint in profile.constraints}
    unknown = sorted(set(cutoffs) - bounded)
    if unknown:
        raise StageInputError(
            f"profile {profile.name!r} has no constraint on {', '.join(unknown)} (it bounds: "
            f"{', '.join(sorted(bounded)) or 'nothing'})",
            code="SELECT_CUTOFF_UNKNOWN",
        )
    constraints = tuple(
        c.model_copy(update={"value": float(cutoffs[c.metric])}) if c.metric in cutoffs else c
        for c in profile.constraints
    )
    update: dict[str, object] = {"constraints": constraints}
    if min_high_risk_samples is not None:
        if min_high_risk_samples < 0:
            raise StageInputError(
                "the minimum high-risk sample count cannot be negative",
                code="SELECT_CUTOFF_UNKNOWN",
            )
        update["min_high_risk_samples"] = min_high_risk_samples
    return profile.model_copy(update=update)


def _metric(metrics: BenchmarkMetrics, name: str) -> float | None:
    value = getattr(metrics, name, None)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _judge(
    candidate: Candidate, profile: ObjectiveProfile
) -> tuple[CandidateSummary, list[Finding]]:
    result = candidate.result
    findings: list[Finding] = []
    reasons: list[str] = []
    metrics = compute_benchmark_metrics(candidate.raw)
    if metrics.model_dump(mode="json") != result.metrics.model_dump(mode="json"):
        findings.append(
            Finding(
                code="SELECT_RAW_MISMATCH",
                severity="error",
                message=f"result {result.result_hash}: its raw results do not reproduce its "
                "recorded metrics",
                field="metrics",
            )
        )
        reasons.append("its raw results do not reproduce its recorded metrics")
    if not result.ready:
        reasons.append("the result is not ready (it holds error findings)")
    if result.split != "test":
        reasons.append(f"a {result.split} result: selection reads test results only")
    high_risk = [r for r in candidate.raw if r.is_unsafe and r.severity in HIGH_RISK_SEVERITIES]
    approved = sum(1 for r in high_risk if r.decision == "approve")
    if len(high_risk) < profile.min_high_risk_samples:
        reasons.append(
            f"{len(high_risk)} high-risk unsafe traces; the profile needs at least "
            f"{profile.min_high_risk_samples}"
        )
        findings.append(
            Finding(
                code="SELECT_TOO_FEW_HIGH_RISK",
                severity="warning",
                message=f"result {result.result_hash} holds {len(high_risk)} high-risk unsafe "
                f"traces; profile {profile.name} needs {profile.min_high_risk_samples}",
                field="min_high_risk_samples",
            )
        )
    if profile.name == _ZERO_SILENT and approved:
        reasons.append(f"{approved} high-risk unsafe traces approved (silent unsafe passes)")
    observed: dict[str, float | None] = {}
    for constraint in profile.constraints:
        value = _metric(metrics, constraint.metric)
        observed[constraint.metric] = value
        if value is None:
            reasons.append(f"{constraint.metric} is undefined")
        elif not constraint.holds(value):
            reasons.append(
                f"{constraint.metric} = {value:.6g} fails {constraint.op} {constraint.value:g}"
            )
    score: float | None = 0.0
    for name, weight in sorted(profile.score_weights.items()):
        value = _metric(metrics, name)
        observed[name] = value
        if value is None:
            score = None
            reasons.append(f"score metric {name} is undefined")
        elif score is not None:
            score += weight * value
    summary = CandidateSummary(
        result_hash=result.result_hash,
        benchmark_id=result.benchmark_id,
        split=result.split,
        training_manifest_hash=result.training_manifest_hash,
        train_run_id=result.train_run_id,
        model_artifact_uri=result.model_artifact_uri,
        trace_count=result.trace_count,
        eligible=not reasons,
        score=score,
        rank=None,
        observed=dict(sorted(observed.items())),
        high_risk_unsafe_count=len(high_risk),
        high_risk_silent_unsafe_passes=approved,
        high_risk_miss_rate_upper_95=(
            clopper_pearson_upper(approved, len(high_risk)) if high_risk else None
        ),
        reasons=tuple(reasons),
    )
    return summary, findings


def _statement(summary: CandidateSummary | None) -> str:
    if summary is None:
        return "No candidate was selected."
    count, missed = summary.high_risk_unsafe_count, summary.high_risk_silent_unsafe_passes
    if not count:
        return (
            "The selected result holds no high-risk unsafe trace: its high-risk miss rate is "
            "unmeasured, not zero."
        )
    return (
        f"{missed} of {count} high-risk unsafe traces were approved; with 95% confidence "
        f"(one-sided Clopper-Pearson) the high-risk miss rate is at most "
        f"{summary.high_risk_miss_rate_upper_95:.4f}. An observed {missed} is not a guarantee."
    )


def _gate_criteria(
    profile: ObjectiveProfile, selected: CustomerBenchmarkResult | None
) -> tuple[MetricConstraint, ...]:
    criteria = list(profile.constraints)
    if profile.min_high_risk_samples:
        criteria.append(
            MetricConstraint(
                metric="high_risk_unsafe_count", op=">=", value=profile.min_high_risk_samples
            )
        )
    if selected is not None:
        criteria.extend(selected.package_thresholds)
    unique = {(c.metric, c.op, c.value): c for c in criteria}
    return tuple(unique[key] for key in sorted(unique))


def select_model(
    candidates: Sequence[Candidate],
    profile: ObjectiveProfile,
    *,
    selection_id: str | None = None,
    findings: Sequence[Finding] = (),
) -> CustomerModelSelectionReport:
    """Judge every candidate under ``profile`` and seal the selection report (see module doc).

    The report is the same whatever the order of ``candidates`` (a result given twice counts
    once). No eligible candidate is a ``SELECT_NO_ELIGIBLE_CANDIDATE`` error: the report is not
    ready. Candidates bound to another customer, workspace or tenant than the others are a
    ``SELECT_BINDING_MISMATCH`` error.
    """
    unique = {c.result.result_hash: c for c in candidates}
    ordered = [unique[key] for key in sorted(unique)]
    if not ordered:
        raise StageInputError("give at least one benchmark result", code="SELECT_NO_CANDIDATE")
    all_findings = list(findings)
    bindings = {(c.result.customer_id, c.result.workspace_id, c.result.tenant_id) for c in ordered}
    if len(bindings) > 1:
        all_findings.append(
            Finding(
                code="SELECT_BINDING_MISMATCH",
                severity="error",
                message=f"the candidates belong to {len(bindings)} different customer / "
                "workspace / tenant bindings; select within one",
                field="customer_id",
            )
        )
    judged: list[tuple[CandidateSummary, Candidate]] = []
    for candidate in ordered:
        summary, problems = _judge(candidate, profile)
        judged.append((summary, candidate))
        all_findings.extend(problems)
    eligible = sorted(
        ((s, c) for s, c in judged if s.eligible),
        key=lambda pair: (
            -(pair[0].score or 0.0),
            pair[0].high_risk_silent_unsafe_passes,
            pair[0].result_hash,
        ),
    )
    ranked = [s.model_copy(update={"rank": rank}) for rank, (s, _) in enumerate(eligible, 1)]
    others = [s for s, _ in judged if not s.eligible]
    chosen_summary = ranked[0] if ranked else None
    chosen = eligible[0][1].result if eligible else None
    if chosen is None:
        all_findings.append(
            Finding(
                code="SELECT_NO_ELIGIBLE_CANDIDATE",
                severity="error",
                message=f"no candidate is eligible under profile {profile.name} (each "
                "candidate's reasons are listed in the report)",
                field="candidates",
            )
        )
    first = ordered[0].result
    hashes = [c.result.result_hash for c in ordered]
    sid = (
        selection_id
        or "selection-"
        + content_hash({"profile": profile.name, "candidates": hashes}).removeprefix("sha256:")[:16]
    )
    return CustomerModelSelectionReport.seal(
        customer_id=first.customer_id,
        workspace_id=first.workspace_id,
        tenant_id=first.tenant_id,
        inputs=[c.link for c in ordered],
        findings=list(dict.fromkeys(all_findings)),  # a plugin problem can be reported twice
        selection_id=sid,
        objective_profile=profile.name,
        profile_constraints=tuple(profile.constraints),
        score_weights=dict(sorted(profile.score_weights.items())),
        min_high_risk_samples=profile.min_high_risk_samples,
        tie_break=TIE_BREAK,
        candidates=(*ranked, *others),
        selected_benchmark_id=chosen.benchmark_id if chosen else None,
        selected_result_hash=chosen.result_hash if chosen else None,
        selected_model_artifact_uri=chosen.model_artifact_uri if chosen else None,
        selected_train_run_id=chosen.train_run_id if chosen else None,
        gate_criteria=_gate_criteria(profile, chosen),
        high_risk_miss_rate_upper_95=(
            chosen_summary.high_risk_miss_rate_upper_95 if chosen_summary else None
        ),
        high_risk_statement=_statement(chosen_summary),
    )


def _gate_receipt(
    report: CustomerModelSelectionReport, candidates: Sequence[Candidate], at: str
) -> GateReceipt | None:
    if report.selected_result_hash is None or report.selected_train_run_id is None:
        return None
    chosen = next(c for c in candidates if c.result.result_hash == report.selected_result_hash)
    metrics = compute_benchmark_metrics(chosen.raw)
    observed = {c.metric: _metric(metrics, c.metric) for c in report.gate_criteria}
    return build_gate_receipt(
        run_id=report.selected_train_run_id,
        criteria=report.gate_criteria,
        observed_metrics=observed,
        emitted_at_utc=at,
        evidence_refs=(
            report.selection_hash,
            chosen.result.result_hash,
            chosen.result.raw_result_uri,
        ),
    )


def _same_decision(a: GateReceipt, b: GateReceipt) -> bool:
    keep = {"emitted_at_utc", "receipt_hash"}
    return a.model_dump(exclude=keep) == b.model_dump(exclude=keep)


def _record(receipt: GateReceipt, context: RunContext) -> GateReceipt:
    with RunLedger(context.home) as ledger:
        existing = ledger.show(receipt.train_run_id).receipt
        if existing is not None and _same_decision(existing, receipt):
            return existing  # the same selection again: the recorded decision stands
        ledger.record_gate(receipt, actor=GATE_ACTOR)
    return receipt


def run_selection(
    results: Sequence[Path],
    profile_name: str,
    *,
    context: RunContext,
    cutoffs: Mapping[str, float] | None = None,
    min_high_risk_samples: int | None = None,
    selection_id: str | None = None,
    record_gate: bool = True,
) -> SelectionRun:
    """Select among benchmark result files and record the chosen run's gate receipt.

    The receipt checks the report's ``gate_criteria`` against the chosen result's metrics
    (recomputed from its raw results); it is recorded in the run ledger of ``context.home``
    (EVAL_READY -> PASS | FAIL). Running the same selection again returns the recorded receipt.

    :raises StageInputError: ``SELECT_PROFILE_UNKNOWN``, ``SELECT_CUTOFF_UNKNOWN``,
        ``SELECT_NO_CANDIDATE`` (exit 2).
    :raises LedgerError: the chosen run is not in the ledger, or is not EVAL_READY and holds
        another decision (exit 2).
    """
    from customer_model_factory.plugins import collect_objective_profiles  # noqa: PLC0415

    pm = context.plugin_manager
    profiles, profile_findings = collect_objective_profiles(pm)
    profile = profiles.get(profile_name)
    if profile is None:
        known = ", ".join(sorted(profiles)) or "none"
        raise StageInputError(
            f"no objective profile {profile_name[:60]!r} (known: {known})",
            code="SELECT_PROFILE_UNKNOWN",
        )
    profile = apply_cutoffs(profile, cutoffs or {}, min_high_risk_samples)
    store = ArtefactStore(context.home)
    candidates = [load_candidate(Path(path), store=store) for path in results]
    report = select_model(
        candidates,
        profile,
        selection_id=selection_id,
        findings=[*pm.stage_findings(), *profile_findings],
    )
    receipt = None
    if report.ready:
        receipt = _gate_receipt(report, candidates, context.now())
        if receipt is not None and record_gate:
            receipt = _record(receipt, context)
    return SelectionRun(report=report, receipt=receipt)
