"""Stage 10: assemble the release gate over the whole chain.

:func:`assemble_release` loads the four stage manifests it is given (each hash recomputed: a
tampered file is exit 2), then follows every hash link of their chains back to the dataset
report (:func:`customer_model_factory.catalog.verify_chain`), and decides promotion from:

* the chain: every link resolves and verifies, and it reaches a deployment and a dataset report
  (``RELEASE_CHAIN_BROKEN``);
* one customer / workspace / tenant / deployment across every manifest
  (``RELEASE_BINDING_MISMATCH``) and the cross-links between them (``RELEASE_LINK_MISMATCH``);
* every artefact of the chain ready (``RELEASE_INPUT_NOT_READY``), no accepted risk expired at
  ``generated_at`` (``RELEASE_RISK_EXPIRED``);
* enterprise readiness (``RELEASE_ENTERPRISE_NOT_READY``, ``RELEASE_ENTERPRISE_DEBT``);
* monitoring health: ``evidence_blocked`` and a false-negative incident breach block; any other
  breach is a ``RELEASE_MONITORING_REVIEW`` warning;
* domain evidence records checked against the declared domains (core and packs), their evidence
  files re-hashed (``RELEASE_DOMAIN_*``);
* every plugin problem (fail closed) and every plugin release check's error finding.

Promotion is allowed only when there is no blocker; each blocker names its source artefact and a
registered code, and is also an error finding of the manifest.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Final
from urllib.parse import urlparse

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from customer_model_factory.canonical import HASH_PREFIX
from customer_model_factory.catalog import verify_chain
from customer_model_factory.chain import ChainLink, ChainReport, resolve_store_uri
from customer_model_factory.context import RunContext
from customer_model_factory.errors import ArtefactError, CMFError, DataFormatError, InputError
from customer_model_factory.findings import FINDING_CODES, Finding
from customer_model_factory.manifest import BoundManifest, InputLink, Manifest, manifest_classes
from customer_model_factory.plugin_api.contracts import (
    ArtefactRef,
    ReleaseCheckInput,
    ReleaseDomain,
)
from customer_model_factory.plugins import collect_release_domains
from customer_model_factory.plugins.calling import one_line
from customer_model_factory.plugins.table import collect, entry_for
from customer_model_factory.stages.dataset.models import parse_rfc3339
from customer_model_factory.stages.deployment.models import CustomerDeploymentManifest
from customer_model_factory.stages.evidence.models import (
    DEFERRED_EVIDENCE,
    CustomerEvidencePackManifest,
)
from customer_model_factory.stages.monitoring.models import CustomerMonitoringManifest
from customer_model_factory.stages.release.domains import core_domains
from customer_model_factory.stages.release.models import (
    Blocker,
    CustomerReleaseGateManifest,
    DomainEvidenceRecord,
    DomainEvidenceResult,
    EnterpriseReadiness,
)
from customer_model_factory.stages.risk.build import check_risks
from customer_model_factory.stages.risk.models import CustomerRiskRegister
from customer_model_factory.stages.runtime.models import CustomerRuntimePackage
from customer_model_factory.store import build_file_uri, parse_artefact_uri

__all__ = [
    "DOMAIN_RECORD_KIND",
    "ENTERPRISE_READINESS_KIND",
    "ReleaseRequest",
    "assemble_release",
    "load_domain_records",
    "load_enterprise_readiness",
    "release_domains",
    "write_domain_record",
]

ENTERPRISE_READINESS_KIND: Final = "enterprise-readiness"
"""The kind of the enterprise readiness file's input link (a plain file, by sha256)."""
DOMAIN_RECORD_KIND: Final = "release-domain-record"
"""The kind of a domain evidence record's input link (a plain file, by sha256)."""
_MAX_JSON_BYTES: Final = 4 << 20
_CHUNK: Final = 1 << 20
_BINDING_FIELDS: Final = ("customer_id", "workspace_id", "tenant_id")
# Manifests of the chain that must be ready for a release (by kind).
_MUST_BE_READY: Final = (
    "dataset-report",
    "training-manifest",
    "selection-report",
    "deployment",
    "evidence-pack",
    "runtime-package",
    "monitoring",
    "risk-register",
)
# Kinds the chain must reach: where the deployment's identity and the data's origin are.
_MUST_REACH: Final = ("deployment", "dataset-report")


class ReleaseRequest(BaseModel):
    """Everything ``cmf release assemble`` takes (the reference guide's flags)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    release_id: str = Field(min_length=1, description="The release's id.")
    generated_at: str | None = Field(
        default=None, description="RFC 3339 instant of the decision (default: the run clock)."
    )
    enterprise_readiness: Path = Field(description='{"ready": bool, "blocking_debt_ids": [...]}')
    runtime_package: Path
    evidence_pack: Path
    monitoring_manifest: Path
    risk_register: Path
    domain_evidence: tuple[Path, ...] = Field(
        default=(), description="Domain evidence record files, or directories of *.json records."
    )
    search: tuple[Path, ...] = Field(
        default=(), description="Directories where chain links without a resolvable uri are found."
    )
    output: Path | None = Field(
        default=None,
        description="Where the gate will be written: input link uris are made relative to it.",
    )


@dataclass
class _Gate:
    """The blockers and warnings gathered while checking."""

    blockers: list[Blocker] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)

    def block(self, code: str, source: str, message: str, source_hash: str | None = None) -> None:
        self.blockers.append(
            Blocker(code=code, source=source, source_hash=source_hash, message=one_line(message))
        )

    def warn(self, code: str, message: str, field_name: str | None = None) -> None:
        self.warnings.append(
            Finding(code=code, severity="warning", message=one_line(message), field=field_name)
        )

    def findings(self) -> list[Finding]:
        return [
            Finding(
                code=blocker.code,
                severity="error",
                message=f"{blocker.source}: {blocker.message}",
                field=blocker.source,
            )
            for blocker in self.blockers
        ] + self.warnings


# ---- reading the inputs ----


def _read_json_object(path: Path, what: str) -> tuple[dict[str, Any], bytes]:
    try:
        if not path.exists():
            raise DataFormatError(f"{what}: file not found", path=path)
        if not path.is_file():
            raise DataFormatError(f"{what}: not a regular file", path=path)
        if path.stat().st_size > _MAX_JSON_BYTES:
            raise DataFormatError(f"{what}: larger than {_MAX_JSON_BYTES} bytes", path=path)
        raw = path.read_bytes()
    except OSError as error:
        raise DataFormatError(f"{what}: cannot read: {error.strerror}", path=path) from None
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        line = raw.count(b"\n", 0, error.pos) + 1
        raise DataFormatError(f"{what}: invalid JSON: {error.msg}", path=path, line=line) from None
    if not isinstance(payload, dict):
        raise DataFormatError(f"{what}: a JSON object is expected", path=path)
    # A key given twice reads differently in different tools (a reviewer may see the first,
    # a parser keeps the last): refuse it rather than pick one.
    duplicate = _duplicate_key(raw)
    if duplicate is not None:
        raise DataFormatError(f"{what}: a key is given twice", path=path, field=duplicate)
    return payload, raw


def _duplicate_key(raw: bytes) -> str | None:
    found: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [key for key, _ in items]
        if len(set(keys)) != len(keys) and not found:
            found.append(next(key for key in keys if keys.count(key) > 1))
        return dict(items)

    json.loads(raw, object_pairs_hook=pairs)
    return found[0] if found else None


def _validation_error(error: ValidationError, path: Path, what: str) -> DataFormatError:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or None
    return DataFormatError(f"{what}: {first['msg']}", path=path, field=where)


def load_enterprise_readiness(path: Path) -> tuple[EnterpriseReadiness, bytes]:
    """Read the enterprise readiness file; return it and its bytes.

    :raises DataFormatError: missing, not JSON, or not ``{"ready": bool, "blocking_debt_ids":
        [str, ...]}`` (exit 2).
    """
    payload, raw = _read_json_object(path, "enterprise readiness")
    try:
        return EnterpriseReadiness.model_validate(payload), raw
    except ValidationError as error:
        raise _validation_error(error, path, "enterprise readiness") from None


def _record_files(sources: Iterable[Path]) -> Iterator[Path]:
    seen: set[Path] = set()
    for source in sources:
        if source.is_dir():
            found = sorted(
                path for path in source.iterdir() if path.suffix == ".json" and path.is_file()
            )
        else:
            found = [source]
        for path in found:  # one file named twice (a directory and its file) is read once
            key = path.resolve()
            if key not in seen:
                seen.add(key)
                yield path


def load_domain_records(
    sources: Iterable[Path],
) -> list[tuple[Path, DomainEvidenceRecord, bytes]]:
    """Read domain evidence records from files and directories (their ``*.json`` files).

    :raises DataFormatError: a missing file, invalid JSON, or a record that breaks the format
        (exit 2), naming the file and the field.
    """
    records: list[tuple[Path, DomainEvidenceRecord, bytes]] = []
    for path in _record_files(sources):
        payload, raw = _read_json_object(path, "domain evidence record")
        try:
            record = DomainEvidenceRecord.model_validate(payload)
        except ValidationError as error:
            raise _validation_error(error, path, "domain evidence record") from None
        records.append((path, record, raw))
    return records


def _generated_at(request: ReleaseRequest, context: RunContext) -> tuple[str, dt.datetime]:
    text = request.generated_at if request.generated_at is not None else context.now()
    moment = parse_rfc3339(text)
    if moment is None:
        raise InputError(
            "--generated-at is not an RFC 3339 date-time with an offset (e.g. "
            "2026-05-18T18:45:00Z)",
            field="generated_at",
        )
    utc = moment.astimezone(dt.UTC)
    return utc.isoformat().replace("+00:00", "Z"), utc


def _digest(data: bytes) -> str:
    return HASH_PREFIX + hashlib.sha256(data).hexdigest()


def _link_uri(target: Path, output: Path | None) -> str:
    """A link's uri: relative to the gate's directory when known, else a file:// URI."""
    absolute = Path(os.path.abspath(target))
    if output is None:
        return build_file_uri(absolute)
    base = Path(os.path.abspath(output)).parent
    return Path(os.path.relpath(absolute, base)).as_posix()


# ---- the chain ----


@dataclass
class _Chain:
    """The verified manifests and artefacts of the chain, by kind."""

    report: ChainReport
    manifests: dict[str, dict[str, Manifest]] = field(default_factory=dict)
    """kind -> hash -> the verified manifest."""
    uris: dict[str, str | None] = field(default_factory=dict)
    """hash -> the file:// URI of the file it was verified from (what plugins are handed)."""
    files: dict[str, set[str]] = field(default_factory=dict)
    """kind -> hashes of plain-file artefacts verified."""

    def add(self, manifest: Manifest, uri: str | None) -> None:
        self.manifests.setdefault(manifest.KIND, {})[manifest.content_digest] = manifest
        self.uris.setdefault(manifest.content_digest, uri)

    def of(self, kind: str) -> list[Manifest]:
        return [self.manifests[kind][digest] for digest in sorted(self.manifests.get(kind, {}))]


def _reason(link: ChainLink) -> str:
    """What is wrong with a link, with file paths shortened to their names."""
    reason = link.message.removeprefix(f"{link.source}: input {link.kind} {link.hash}: ")
    if link.resolved:
        reason = reason.replace(link.resolved, Path(link.resolved).name)
    return reason


def _verify_chain(
    starts: list[tuple[Path, Manifest]], request: ReleaseRequest, context: RunContext, gate: _Gate
) -> _Chain:
    report = verify_chain([path for path, _ in starts], search=request.search, home=context.home)
    chain = _Chain(report=report)
    for path, manifest in starts:
        chain.add(manifest, build_file_uri(Path(os.path.abspath(path))))
    classes = manifest_classes()
    broken: set[tuple[str, str]] = set()
    for link in report.links:
        if link.status != "ok":
            if (link.kind, link.hash) not in broken:
                broken.add((link.kind, link.hash))
                gate.block(
                    "RELEASE_CHAIN_BROKEN",
                    link.kind,
                    f"{link.status}, linked from {Path(link.source).name}: {_reason(link)}",
                    source_hash=link.hash,
                )
            continue
        cls = classes.get(link.kind)
        if cls is None:
            chain.files.setdefault(link.kind, set()).add(link.hash)
            if link.resolved is not None:
                chain.uris.setdefault(link.hash, build_file_uri(Path(link.resolved).resolve()))
            continue
        if link.hash in chain.manifests.get(link.kind, {}):
            continue
        assert link.resolved is not None
        problem = ""
        manifest: Manifest | None
        try:
            manifest = cls.load(link.resolved)
        except CMFError as error:  # changed since the walk verified it
            manifest, problem = None, str(error)
        if manifest is None or manifest.content_digest != link.hash:
            broken.add((link.kind, link.hash))
            gate.block(
                "RELEASE_CHAIN_BROKEN",
                link.kind,
                f"changed while the release was assembled: "
                f"{problem if manifest is None else 'now ' + manifest.content_digest}",
                source_hash=link.hash,
            )
            continue
        chain.add(manifest, build_file_uri(Path(link.resolved).resolve()))
    for check in report.manifests:
        if not check.ok and check.kind is not None:  # pragma: no cover - starts were loaded
            gate.block("RELEASE_CHAIN_BROKEN", check.kind, check.error or "does not verify")
    if not broken:
        for kind in _MUST_REACH:
            if kind not in chain.manifests:
                gate.block(
                    "RELEASE_CHAIN_BROKEN",
                    kind,
                    f"the chain behind the release never links a {kind} manifest",
                )
    return chain


# ---- consistency ----


def _check_binding(runtime: CustomerRuntimePackage, chain: _Chain, gate: _Gate) -> None:
    for kind in sorted(chain.manifests):
        for manifest in chain.of(kind):
            if not isinstance(manifest, BoundManifest):
                continue
            for name in _BINDING_FIELDS:
                if getattr(manifest, name) != getattr(runtime, name):
                    gate.block(
                        "RELEASE_BINDING_MISMATCH",
                        kind,
                        f"{name} differs from the runtime package's",
                        source_hash=manifest.content_digest,
                    )
            deployment_id = getattr(manifest, "deployment_id", None)
            if isinstance(deployment_id, str) and deployment_id != runtime.deployment_id:
                gate.block(
                    "RELEASE_BINDING_MISMATCH",
                    kind,
                    "deployment_id differs from the runtime package's",
                    source_hash=manifest.content_digest,
                )


def _mismatch(gate: _Gate, source: Manifest, what: str, recorded: str, current: str) -> None:
    if recorded != current:
        gate.block(
            "RELEASE_LINK_MISMATCH",
            source.KIND,
            f"records {what} {recorded}, but the one given is {current}",
            source_hash=source.content_digest,
        )


def _check_cross_links(
    runtime: CustomerRuntimePackage,
    evidence: CustomerEvidencePackManifest,
    monitoring: CustomerMonitoringManifest,
    risk: CustomerRiskRegister,
    *,
    deployment: CustomerDeploymentManifest | None,
    gate: _Gate,
) -> None:
    _mismatch(gate, runtime, "evidence_hash", runtime.evidence_hash, evidence.evidence_hash)
    _mismatch(gate, monitoring, "runtime_hash", monitoring.runtime_hash, runtime.runtime_hash)
    _mismatch(gate, monitoring, "evidence_hash", monitoring.evidence_hash, evidence.evidence_hash)
    _mismatch(gate, risk, "evidence_hash", risk.evidence_hash, evidence.evidence_hash)
    _mismatch(gate, risk, "monitoring_hash", risk.monitoring_hash, monitoring.monitoring_hash)
    _mismatch(gate, evidence, "deployment_hash", evidence.deployment_hash, runtime.deployment_hash)
    environment = runtime.runtime_config.environment
    _mismatch(gate, evidence, "environment", evidence.environment, environment)
    if deployment is not None:
        _mismatch(gate, deployment, "environment", deployment.environment, environment)
    for manifest, kinds in (
        (runtime, {"deployment": runtime.deployment_hash, "evidence-pack": evidence.evidence_hash}),
        (monitoring, {"runtime-package": runtime.runtime_hash}),
        (
            risk,
            {"evidence-pack": evidence.evidence_hash, "monitoring": monitoring.monitoring_hash},
        ),
    ):
        for kind, current in kinds.items():
            linked = {link.hash for link in manifest.inputs if link.kind == kind}
            if current not in linked:
                gate.block(
                    "RELEASE_LINK_MISMATCH",
                    manifest.KIND,
                    f"its inputs do not link the {kind} {current}",
                    source_hash=manifest.content_digest,
                )


def _deployment(
    runtime: CustomerRuntimePackage, chain: _Chain, gate: _Gate
) -> CustomerDeploymentManifest | None:
    found = chain.manifests.get("deployment", {})
    current = found.get(runtime.deployment_hash)
    for digest in sorted(found):
        if digest != runtime.deployment_hash:
            gate.block(
                "RELEASE_LINK_MISMATCH",
                "deployment",
                f"the chain links another deployment than the runtime package's "
                f"{runtime.deployment_hash}",
                source_hash=digest,
            )
    if current is None and found:
        gate.block(
            "RELEASE_LINK_MISMATCH",
            "runtime-package",
            "its deployment_hash names no deployment of the chain",
            source_hash=runtime.runtime_hash,
        )
    return current if isinstance(current, CustomerDeploymentManifest) else None


def _check_ready(chain: _Chain, deployment: CustomerDeploymentManifest | None, gate: _Gate) -> None:
    for kind in _MUST_BE_READY:
        for manifest in chain.of(kind):
            if not manifest.ready:
                gate.block(
                    "RELEASE_INPUT_NOT_READY",
                    kind,
                    f"is not ready ({_error_codes(manifest)})",
                    source_hash=manifest.content_digest,
                )
    if deployment is not None:
        selected = chain.manifests.get("benchmark-result", {}).get(deployment.selected_result_hash)
        if selected is not None and not selected.ready:
            gate.block(
                "RELEASE_INPUT_NOT_READY",
                "benchmark-result",
                f"the selected result is not ready ({_error_codes(selected)})",
                source_hash=selected.content_digest,
            )


def _error_codes(manifest: Manifest) -> str:
    codes = sorted({f.code for f in manifest.findings if f.severity == "error"})
    return "errors: " + ", ".join(codes[:8]) + (" ..." if len(codes) > 8 else "")


def _check_not_backdated(
    at: dt.datetime,
    monitoring: CustomerMonitoringManifest,
    risk: CustomerRiskRegister,
    gate: _Gate,
) -> None:
    """A release decided before the evidence it rests on existed would revive expired risks."""
    for source, stamp, digest in (
        ("monitoring", monitoring.monitored_at, monitoring.monitoring_hash),
        ("risk-register", risk.generated_at, risk.register_hash),
    ):
        moment = parse_rfc3339(stamp)
        if moment is not None and at < moment.astimezone(dt.UTC):
            gate.block(
                "RELEASE_GENERATED_AT_TOO_EARLY",
                source,
                f"generated_at is before this artefact was made ({stamp})",
                source_hash=digest,
            )


def _check_risks(
    risk: CustomerRiskRegister, current: dict[str, str], at: dt.datetime, gate: _Gate
) -> None:
    # The register's own findings are not trusted: a register re-sealed after its risks were
    # edited verifies by hash, so every risk rule is applied again here, at generated_at.
    for finding in check_risks(
        risk.risks,
        evidence_hash=current["evidence-pack"],
        monitoring_hash=current["monitoring"],
        generated_at=at,
    ):
        # Expiry and stale links are judged below, under the gate's own codes.
        if finding.severity == "error" and finding.code not in {"RISK_EXPIRED", "RISK_LINK_STALE"}:
            gate.block(
                finding.code,
                "risk-register",
                finding.message,
                source_hash=risk.register_hash,
            )
    for item in risk.risks:
        if item.status != "accepted":
            continue
        for kind, digest in sorted(current.items()):
            linked = item.linked_artifact_hashes.get(kind)
            if linked is not None and linked != digest:
                gate.block(
                    "RELEASE_LINK_MISMATCH",
                    "risk-register",
                    f"accepted risk {item.risk_id} was accepted against another {kind} "
                    f"({linked}), not the current {digest}",
                    source_hash=risk.register_hash,
                )
        expires = parse_rfc3339(item.expires_at) if item.expires_at else None
        if expires is None:
            gate.block(
                "RELEASE_RISK_EXPIRED",
                "risk-register",
                f"accepted risk {item.risk_id} has no valid expires_at",
                source_hash=risk.register_hash,
            )
        elif expires.astimezone(dt.UTC) <= at:
            gate.block(
                "RELEASE_RISK_EXPIRED",
                "risk-register",
                f"accepted risk {item.risk_id} expired at {item.expires_at}, before the "
                "release's generated_at",
                source_hash=risk.register_hash,
            )


def _check_enterprise(readiness: EnterpriseReadiness, digest: str, gate: _Gate) -> None:
    if not readiness.ready:
        gate.block(
            "RELEASE_ENTERPRISE_NOT_READY",
            ENTERPRISE_READINESS_KIND,
            "enterprise readiness is false",
            source_hash=digest,
        )
    if readiness.blocking_debt_ids:
        count = len(readiness.blocking_debt_ids)
        gate.block(
            "RELEASE_ENTERPRISE_DEBT",
            ENTERPRISE_READINESS_KIND,
            f"{count} blocking debt item(s) (see enterprise_blocking_debt_ids)",
            source_hash=digest,
        )


def _check_monitoring(monitoring: CustomerMonitoringManifest, gate: _Gate) -> None:
    digest = monitoring.monitoring_hash
    if monitoring.health_status == "evidence_blocked":
        gate.block(
            "RELEASE_MONITORING_EVIDENCE_BLOCKED",
            "monitoring",
            "monitoring health is evidence_blocked",
            source_hash=digest,
        )
    observed = monitoring.metrics.false_negative_incident_count
    limit = monitoring.thresholds.max_false_negative_incidents
    recorded = any(
        breach.metric in ("false_negative_incident_count", "max_false_negative_incidents")
        for breach in monitoring.threshold_breaches
    )
    if observed > limit or recorded:
        gate.block(
            "RELEASE_MONITORING_FN_BREACH",
            "monitoring",
            f"{observed} false-negative incident(s), limit {limit}",
            source_hash=digest,
        )
    others = sorted(
        {
            breach.metric
            for breach in monitoring.threshold_breaches
            if breach.metric
            not in ("false_negative_incident_count", "max_false_negative_incidents")
        }
    )
    if others or monitoring.health_status == "review_required":
        gate.warn(
            "RELEASE_MONITORING_REVIEW",
            f"monitoring is {monitoring.health_status}"
            + (f"; breaches: {', '.join(others)}" if others else ""),
            "monitoring",
        )


def _recount_incidents(
    monitoring: CustomerMonitoringManifest, monitoring_path: Path, gate: _Gate
) -> None:
    """Count the false-negative incidents again from the incident queue the monitoring read.

    The queue's bytes are verified by the chain (its digest is linked), but the count in the
    manifest is only as good as the manifest: a manifest re-sealed with a lower count would
    otherwise hide a breach that the verified queue still holds.
    """
    from customer_model_factory.stages.monitoring.queues import read_incidents  # noqa: PLC0415

    uri = monitoring.incident_queue_uri
    if not uri:
        return
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        path = Path(parsed.path)
    elif "://" in uri:
        return  # not a file this gate can read; the chain check names it
    else:
        path = monitoring_path.parent / uri
    try:
        queue = read_incidents(path)
    except CMFError:
        return  # missing or unreadable: the chain check blocks on it (RELEASE_CHAIN_BROKEN)
    if queue.digest != monitoring.incident_queue_digest:
        return  # another file than the one monitored: the chain check blocks on it
    counted = len({record.incident_id for _, record, _ in queue.records})
    recorded = monitoring.metrics.false_negative_incident_count
    digest = monitoring.monitoring_hash
    if counted != recorded:
        gate.block(
            "RELEASE_MONITORING_MISMATCH",
            "monitoring",
            f"the incident queue it read holds {counted} false-negative incident(s); "
            f"the manifest records {recorded}",
            source_hash=digest,
        )
    limit = monitoring.thresholds.max_false_negative_incidents
    if counted > limit >= recorded:
        gate.block(
            "RELEASE_MONITORING_FN_BREACH",
            "monitoring",
            f"{counted} false-negative incident(s) in the queue, limit {limit}",
            source_hash=digest,
        )


def _check_deferred_evidence(
    evidence: CustomerEvidencePackManifest, monitoring: CustomerMonitoringManifest, gate: _Gate
) -> None:
    """Evidence kinds the pack could only defer (produced by stages 7-9) must be proved now.

    The runtime package, monitoring manifest and risk register are loaded and cross-linked to
    this evidence pack by the gate itself, so ``runtime_hash``, ``monitoring_hash`` and
    ``risk_register_hash`` are proved by their presence; ``review_queue_uri`` needs monitoring
    that actually read a review queue (a URI and its digest).
    """
    proved = {
        "runtime_hash": True,
        "monitoring_hash": True,
        "risk_register_hash": True,
        "review_queue_uri": bool(monitoring.review_queue_uri)
        and monitoring.review_queue_digest is not None,
    }
    missing = sorted(
        {
            (coverage.sector_id, coverage.control, kind)
            for coverage in evidence.control_coverage
            for kind in coverage.deferred
            if kind not in DEFERRED_EVIDENCE or not proved.get(kind, False)
        }
    )
    for sector, control, kind in missing:
        gate.block(
            "RELEASE_DEFERRED_EVIDENCE_MISSING",
            "evidence-pack",
            f"sector {sector!r}, control {control!r}: deferred evidence kind {kind!r} is not "
            "proved by the chain"
            + (" (monitoring read no review queue)" if kind == "review_queue_uri" else ""),
            source_hash=evidence.evidence_hash,
        )


# ---- domains ----


def release_domains(
    context: RunContext, gate: _Gate | None = None
) -> dict[str, tuple[ReleaseDomain, str]]:
    """Every release domain: the core's and the packs', by name, with where it comes from
    (``"core"`` or ``"plugin.<name>"``). A pack reusing a core name is a
    ``RELEASE_DOMAIN_CONFLICT`` blocker (when ``gate`` is given) and the core's keeps it."""
    domains = {name: (domain, "core") for name, domain in core_domains().items()}
    pm = context.plugin_manager
    added, _ = collect_release_domains(pm)
    owners = collect(pm, entry_for("cmf_release_domains")).owners
    for name in sorted(added):
        source = f"plugin.{owners[name]}"
        if name in domains:
            if gate is not None:
                gate.block(
                    "RELEASE_DOMAIN_CONFLICT",
                    source,
                    f"declares release domain {name!r}, which the core declares",
                )
            continue
        domains[name] = (added[name], source)
    return dict(sorted(domains.items()))


def _digest_regular_file(path: Path) -> str:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as error:
        raise ArtefactError(f"cannot read: {error.strerror}", path=path) from None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise ArtefactError("not a regular file", path=path)
        digest = hashlib.sha256()
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return HASH_PREFIX + digest.hexdigest()


def _evidence_digest(uri: str, record_path: Path, context: RunContext) -> str:
    """Recompute the sha256 of the file a record's ``evidence_uri`` names.

    :raises ArtefactError: a refused URI, a file outside the record's directory, a missing or
        irregular file.
    """
    if uri.startswith(("cmf:", "file:")):
        parsed = parse_artefact_uri(uri)
        if parsed.scheme == "cmf":
            target = resolve_store_uri(uri, context.home)
            if target is None:  # pragma: no cover - parse_artefact_uri checked the form
                raise ArtefactError(f"{uri[:120]!r}: not a store URI")
            return _digest_regular_file(target)
        assert parsed.path is not None
        return _digest_regular_file(Path(parsed.path))
    if urlparse(uri).scheme:
        raise ArtefactError(
            f"{uri[:120]!r}: evidence_uri must be cmf://sha256/<hex>, file:///path or a path "
            "relative to the record"
        )
    relative = PurePosixPath(uri)
    if relative.is_absolute() or ".." in relative.parts or "\\" in uri or "\x00" in uri:
        raise ArtefactError(
            f"{uri[:120]!r}: a relative evidence_uri must stay inside the record's directory"
        )
    base = record_path.parent.resolve()
    target = (base / relative).resolve()
    if base not in target.parents:
        raise ArtefactError("evidence file lies outside the record's directory", path=target)
    return _digest_regular_file(target)


def _check_domains(
    records: list[tuple[Path, DomainEvidenceRecord, bytes]],
    domains: dict[str, tuple[ReleaseDomain, str]],
    environment: str,
    context: RunContext,
    gate: _Gate,
) -> tuple[list[DomainEvidenceResult], dict[str, str]]:
    results: list[DomainEvidenceResult] = []
    hashes: dict[str, str] = {}
    seen: set[str] = set()
    for path, record, raw in sorted(records, key=lambda item: (item[1].domain, str(item[0]))):
        source = f"domain.{record.domain}"
        record_hash = _digest(raw)
        if record.domain in seen:
            gate.block(
                "RELEASE_DOMAIN_DUPLICATE",
                source,
                f"a second record for this domain ({path.name}); give one",
                source_hash=record_hash,
            )
            continue
        seen.add(record.domain)
        hashes[source] = record_hash
        before = len(gate.blockers)
        definition = domains.get(record.domain)
        if definition is None:
            gate.block(
                "RELEASE_DOMAIN_UNKNOWN",
                source,
                "no core domain or loaded pack declares this domain",
                source_hash=record_hash,
            )
            required_uris: tuple[str, ...] = ()
            required_checks: tuple[str, ...] = ()
            definition_source = "none"
        else:
            required_uris = definition[0].required_uris
            required_checks = definition[0].required_checks
            definition_source = definition[1]
        for name in required_uris:
            value = record.uris.get(name, "")
            if not value.strip() or not urlparse(value).scheme:
                gate.block(
                    "RELEASE_DOMAIN_URI_MISSING",
                    source,
                    f"required URI {name} is missing or has no scheme",
                    source_hash=record_hash,
                )
        for name in required_checks:
            if record.checks.get(name) is not True:
                state = "missing" if name not in record.checks else "false"
                gate.block(
                    "RELEASE_DOMAIN_CHECK_FAILED",
                    source,
                    f"required check {name} is {state}",
                    source_hash=record_hash,
                )
        if record.environment != environment:
            gate.block(
                "RELEASE_DOMAIN_ENVIRONMENT_MISMATCH",
                source,
                f"record is for {record.environment}, the deployment is {environment}",
                source_hash=record_hash,
            )
        recomputed: str | None
        try:
            recomputed = _evidence_digest(record.evidence_uri, path, context)
        except ArtefactError as error:
            recomputed = None
            gate.block(
                "RELEASE_DOMAIN_EVIDENCE_UNREADABLE",
                source,
                f"evidence file of {path.name}: {error}",
                source_hash=record_hash,
            )
        if recomputed is not None:
            hashes[f"{source}.evidence"] = recomputed
            if recomputed != record.evidence_hash:
                gate.block(
                    "RELEASE_DOMAIN_EVIDENCE_MISMATCH",
                    source,
                    f"evidence file hashes to {recomputed}, the record claims "
                    f"{record.evidence_hash}",
                    source_hash=record_hash,
                )
        results.append(
            DomainEvidenceResult(
                domain=record.domain,
                definition_source=definition_source,
                environment=record.environment,
                uris=dict(sorted(record.uris.items())),
                checks=dict(sorted(record.checks.items())),
                evidence_uri=record.evidence_uri,
                evidence_hash=record.evidence_hash,
                recomputed_hash=recomputed,
                status="pass" if len(gate.blockers) == before else "blocked",
            )
        )
    for name, (domain, _) in domains.items():
        if environment in domain.required_in and name not in seen:
            gate.block(
                "RELEASE_DOMAIN_MISSING",
                f"domain.{name}",
                f"{environment} requires an evidence record for this domain",
            )
    return results, hashes


# ---- plugins ----


def _ref(manifest: Manifest | None, chain: _Chain) -> ArtefactRef | None:
    if manifest is None:
        return None
    return ArtefactRef(
        kind=manifest.KIND,
        hash=manifest.content_digest,
        uri=chain.uris.get(manifest.content_digest),
        manifest=manifest,
    )


def _refs(chain: _Chain, kind: str) -> tuple[ArtefactRef, ...]:
    return tuple(ref for m in chain.of(kind) if (ref := _ref(m, chain)) is not None)


def _one(chain: _Chain, kind: str, preferred: str | None = None) -> Manifest | None:
    found = chain.manifests.get(kind, {})
    if preferred is not None and preferred in found:
        return found[preferred]
    return chain.of(kind)[0] if found else None


def _release_input(
    runtime: CustomerRuntimePackage,
    evidence: CustomerEvidencePackManifest,
    monitoring: CustomerMonitoringManifest,
    risk: CustomerRiskRegister,
    *,
    deployment: CustomerDeploymentManifest | None,
    chain: _Chain,
    findings: list[Finding],
) -> ReleaseCheckInput:
    report = _one(chain, "dataset-report")
    sectors = {mapping.sector_id for mapping in evidence.sector_mappings}
    if report is not None:
        sectors |= set(getattr(report, "sector_counts", {}) or {})
        vertical = getattr(report, "vertical", None)
        if vertical:
            sectors.add(vertical)
    training = _one(
        chain,
        "training-manifest",
        getattr(_one(chain, "benchmark-result"), "training_manifest_hash", None),
    )
    selection = _one(chain, "selection-report", deployment.selection_hash if deployment else None)
    return ReleaseCheckInput(
        customer_id=runtime.customer_id,
        workspace_id=runtime.workspace_id,
        tenant_id=runtime.tenant_id,
        deployment_id=runtime.deployment_id,
        environment=runtime.runtime_config.environment,
        sector_ids=tuple(sorted(sectors)),
        dataset_report=_ref(report, chain),
        training_manifest=_ref(training, chain),
        benchmark_results=_refs(chain, "benchmark-result"),
        selection=_ref(selection, chain),
        deployment=_ref(deployment, chain),
        sector_evidence=_refs(chain, "sector-evidence-mapping"),
        evidence_pack=_ref(evidence, chain),
        runtime_package=_ref(runtime, chain),
        monitoring=_ref(monitoring, chain),
        risk_register=_ref(risk, chain),
        findings=tuple(findings),
    )


def _run_plugins(release: ReleaseCheckInput, context: RunContext, gate: _Gate) -> None:
    pm = context.plugin_manager
    for problem in pm.stage_findings():
        if problem.severity == "error":
            gate.block(problem.code, "plugins", problem.message)
        else:
            gate.warnings.append(problem)
    declared = {**FINDING_CODES, **pm.finding_codes()}
    hook = "cmf_release_checks"
    names = sorted({impl.plugin_name for impl in getattr(pm.hook, hook).get_hookimpls()})
    for name in names:
        source = f"plugin.{name}"
        # A fresh legacy mapping per plugin: one plugin editing it cannot mislead the next.
        kwargs = {"release": release, "context": release.as_mapping()}
        results, failures = pm.call_each(hook, kwargs, owner=name)
        for failure in failures:
            gate.block(failure.code, source, failure.message)
        for _, value in results:
            items = value if isinstance(value, list | tuple) else [value]
            for item in items:
                if not isinstance(item, Finding):
                    gate.block(
                        "PLUGIN_INVALID_CONTRIBUTION",
                        source,
                        f"{hook} returned a {type(item).__name__}, not a Finding",
                    )
                elif item.severity != "error":
                    gate.warnings.append(
                        item.model_copy(update={"message": f"{source}: {item.message}"})
                    )
                elif item.code in declared:
                    gate.block(item.code, source, item.message)
                else:
                    gate.block(
                        "RELEASE_PLUGIN_CHECK_FAILED",
                        source,
                        f"{item.code} (not a code the plugin declares): {item.message}",
                    )


# ---- the gate ----


def assemble_release(request: ReleaseRequest, context: RunContext) -> CustomerReleaseGateManifest:
    """Decide whether a release may be promoted; return the sealed release gate.

    :raises InputError: an input is missing, malformed or tampered with (exit 2), naming the
        file; the gate is not built.
    """
    generated_at, at = _generated_at(request, context)
    readiness, readiness_raw = load_enterprise_readiness(request.enterprise_readiness)
    runtime = CustomerRuntimePackage.load(request.runtime_package)
    evidence = CustomerEvidencePackManifest.load(request.evidence_pack)
    monitoring = CustomerMonitoringManifest.load(request.monitoring_manifest)
    risk = CustomerRiskRegister.load(request.risk_register)
    records = load_domain_records(request.domain_evidence)

    gate = _Gate()
    starts: list[tuple[Path, Manifest]] = [
        (request.runtime_package, runtime),
        (request.evidence_pack, evidence),
        (request.monitoring_manifest, monitoring),
        (request.risk_register, risk),
    ]
    chain = _verify_chain(starts, request, context, gate)
    deployment = _deployment(runtime, chain, gate)
    environment = deployment.environment if deployment else runtime.runtime_config.environment
    _check_binding(runtime, chain, gate)
    _check_cross_links(runtime, evidence, monitoring, risk, deployment=deployment, gate=gate)
    _check_ready(chain, deployment, gate)
    current = {"evidence-pack": evidence.evidence_hash, "monitoring": monitoring.monitoring_hash}
    _check_not_backdated(at, monitoring, risk, gate)
    _check_risks(risk, current, at, gate)
    readiness_digest = _digest(readiness_raw)
    _check_enterprise(readiness, readiness_digest, gate)
    _check_monitoring(monitoring, gate)
    _recount_incidents(monitoring, request.monitoring_manifest, gate)
    _check_deferred_evidence(evidence, monitoring, gate)
    domains = release_domains(context, gate)
    domain_results, domain_hashes = _check_domains(records, domains, environment, context, gate)
    release = _release_input(
        runtime,
        evidence,
        monitoring,
        risk,
        deployment=deployment,
        chain=chain,
        findings=gate.findings(),
    )
    _run_plugins(release, context, gate)

    artifact_hashes = _artifact_hashes(chain)
    artifact_hashes[ENTERPRISE_READINESS_KIND] = readiness_digest
    artifact_hashes.update(domain_hashes)
    links = [manifest.link(_link_uri(path, request.output)) for path, manifest in starts] + [
        InputLink(
            kind=ENTERPRISE_READINESS_KIND,
            hash=readiness_digest,
            uri=_link_uri(request.enterprise_readiness, request.output),
        )
    ]
    links += [
        InputLink(kind=DOMAIN_RECORD_KIND, hash=_digest(raw), uri=_link_uri(path, request.output))
        for path, _, raw in records
    ]
    blockers = sorted(
        dict.fromkeys(gate.blockers),
        key=lambda b: (b.source, b.code, b.source_hash or "", b.message),
    )
    gate.blockers = blockers
    chain_verified = chain.report.ready and not any(
        b.code == "RELEASE_CHAIN_BROKEN" for b in blockers
    )
    return CustomerReleaseGateManifest.seal(
        customer_id=runtime.customer_id,
        workspace_id=runtime.workspace_id,
        tenant_id=runtime.tenant_id,
        inputs=links,
        findings=list(dict.fromkeys(gate.findings())),
        release_id=request.release_id,
        promotion_allowed=not blockers,
        deployment_id=runtime.deployment_id,
        environment=environment,
        generated_at=generated_at,
        enterprise_ready=readiness.ready,
        enterprise_blocking_debt_ids=tuple(sorted(set(readiness.blocking_debt_ids))),
        artifact_hashes=dict(sorted(artifact_hashes.items())),
        chain_verified=chain_verified,
        monitoring_health=monitoring.health_status,
        domain_evidence=tuple(domain_results),
        blockers=tuple(blockers),
    )


def _artifact_hashes(chain: _Chain) -> dict[str, str]:
    hashes: dict[str, str] = {}
    by_kind: dict[str, list[str]] = {kind: sorted(found) for kind, found in chain.manifests.items()}
    for kind, digests in chain.files.items():
        by_kind.setdefault(kind, []).extend(sorted(digests))
    for kind, digests in by_kind.items():
        unique = sorted(set(digests))
        if len(unique) == 1:
            hashes[kind] = unique[0]
        else:
            for digest in unique:
                hashes[f"{kind}:{digest.removeprefix(HASH_PREFIX)[:12]}"] = digest
    return hashes


def write_domain_record(
    path: Path,
    *,
    domain: str,
    environment: str,
    uris: dict[str, str],
    checks: dict[str, bool],
    evidence_file: Path,
) -> DomainEvidenceRecord:
    """Write a domain evidence record for ``evidence_file`` (its sha256 computed here, its uri
    relative to the record when it lies beside or below it, else ``file://``)."""
    from customer_model_factory.io import atomic_write_bytes  # noqa: PLC0415

    base = Path(os.path.abspath(path)).parent
    target = Path(os.path.abspath(evidence_file))
    uri = target.relative_to(base).as_posix() if base in target.parents else build_file_uri(target)
    record = DomainEvidenceRecord(
        domain=domain,
        environment=environment,  # type: ignore[arg-type]
        uris=dict(uris),
        checks=dict(checks),
        evidence_uri=uri,
        evidence_hash=_digest_regular_file(target),
    )
    data = orjson.dumps(
        record.model_dump(mode="json"), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS
    )
    atomic_write_bytes(path, data + b"\n")
    return record
