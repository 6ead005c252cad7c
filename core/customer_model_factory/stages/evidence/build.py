"""Build the evidence pack manifest (stage 6): every artefact of the chain, read, hashed and bound.

:func:`build_evidence_pack` reads every artefact it binds (nothing is trusted unread): the
deployment, the selection, the selected benchmark result and the calibration result, the bundle,
the training manifest and the dataset report (given, or followed from the chain through the
artefact store), the model (its index and every file, from the store), the raw results, the
selected run's gate receipt from the run ledger, the audit log, the rollback package, the
telemetry file, the operator's evidence files and the sector evidence mappings. Each is put in
the factory home's artefact store (so ``cmf evidence export`` can write the pack later from the
manifest alone) and recorded with its digest, size and place in the exported pack.

Then every control of every evidence mapping is checked: each evidence kind it requires must be
proved by an artefact of the pack (:data:`BUILTIN_EVIDENCE`, or an operator file given with
``--evidence KIND=FILE``); a kind produced after stage 6 (:data:`DEFERRED_EVIDENCE`, e.g. the
risk register's hash) is recorded as deferred to the stage that proves it, and the release gate
checks it; any other kind is ``EVIDENCE_CONTROL_EVIDENCE_MISSING``.

The mappings come from the packs that own the data's sectors (the dataset report's
``sector_counts``), through the plugin manager; a sector no pack owns gets the core default
mapping, and data without sectors is checked against the default mapping under sector ``default``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Final, TypeVar
from urllib.parse import urlsplit

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from customer_model_factory.canonical import sha256_bytes
from customer_model_factory.context import RunContext
from customer_model_factory.errors import (
    ArtefactError,
    InputError,
    LedgerError,
    StageInputError,
)
from customer_model_factory.findings import Finding
from customer_model_factory.manifest import (
    BoundManifest,
    InputLink,
    Manifest,
    parse_manifest_payload,
    read_manifest_bytes,
)
from customer_model_factory.plugin_api.contracts import (
    DEFAULT_CONTROL_EVIDENCE,
    SectorEvidenceMapping,
    build_sector_evidence_mapping,
)
from customer_model_factory.stages.benchmark.models import CustomerBenchmarkResult
from customer_model_factory.stages.dataset.models import CustomerDatasetValidationReport
from customer_model_factory.stages.deployment.models import CustomerDeploymentManifest
from customer_model_factory.stages.evidence.models import (
    BUILTIN_EVIDENCE,
    DEFERRED_EVIDENCE,
    Classification,
    ControlCoverage,
    CustomerEvidencePackManifest,
    EvidenceArtefact,
    SectorMappingRef,
    check_pack_path,
)
from customer_model_factory.stages.sector import sector_evidence_mappings
from customer_model_factory.stages.selection.models import (
    CustomerModelSelectionReport,
    ModelBundle,
)
from customer_model_factory.stages.training.models import (
    CustomerTrainingManifest,
    model_index_bytes,
)
from customer_model_factory.store import ArtefactStore, StoredObject, build_file_uri

__all__ = [
    "BUILTIN_EVIDENCE",
    "DEFAULT_SECTOR",
    "DEFERRED_EVIDENCE",
    "MANIFEST_PATH",
    "RESERVED_PATHS",
    "EvidenceRequest",
    "build_evidence_pack",
    "check_callbacks",
    "control_coverage",
]

DEFAULT_SECTOR: Final = "default"
"""The sector id the default mapping is checked under when the data names no sector."""

MANIFEST_PATH: Final = "evidence_pack.json"
"""Where the evidence pack manifest itself lies in an exported pack."""
RESERVED_PATHS: Final = frozenset({MANIFEST_PATH, "SHA256SUMS", "statement.intoto.json"})
"""Paths of an exported pack that are not artefacts."""

_ID_RE: Final = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_FILE_ID_RE: Final = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_HOST_RE: Final = re.compile(
    r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$"
)
_SUFFIX_RE: Final = re.compile(r"^(\.[a-z0-9]{1,8}){1,2}$")
_M = TypeVar("_M", bound=Manifest)


class EvidenceRequest(BaseModel):
    """Everything ``cmf evidence build`` takes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    deployment: Path
    selection: Path
    result: Path = Field(description="The selected benchmark result.")
    dataset_report: Path | None = Field(default=None, description="Default: from the chain.")
    training_manifest: Path | None = Field(default=None, description="Default: from the chain.")
    sector_mappings: tuple[Path, ...] = Field(
        default=(), description="Reviewed mappings checked in addition to the owning packs'."
    )
    audit_log: str = Field(min_length=1, description="A path, file:// or cmf:// URI.")
    rollback_package: str = Field(min_length=1, description="A path, file:// or cmf:// URI.")
    telemetry: str = Field(min_length=1, description="A path, file:// or cmf:// URI.")
    evidence: dict[str, str] = Field(
        default_factory=dict,
        description="Evidence kind -> a file proving it (kinds the core does not produce).",
    )
    classification: Classification
    export_uri: str = Field(min_length=1)
    allow_callbacks: bool = False
    callback_endpoints: tuple[str, ...] = ()
    callback_hosts: tuple[str, ...] = ()
    package_id: str = Field(min_length=1)


def _error(code: str, message: str, field: str | None = None) -> Finding:
    return Finding(code=code, severity="error", message=message, field=field)


def _warning(code: str, message: str, field: str | None = None) -> Finding:
    return Finding(code=code, severity="warning", message=message, field=field)


class _Pack:
    """The artefacts gathered so far, each stored, with the links and findings met."""

    def __init__(self, store: ArtefactStore) -> None:
        self.store = store
        self.artefacts: dict[str, EvidenceArtefact] = {}
        self.links: list[InputLink] = []
        self.findings: list[Finding] = []

    def add(
        self,
        role: str,
        kind: str,
        stored: StoredObject,
        *,
        path: str,
        source: str,
        manifest_hash: str | None = None,
        link: bool = True,
    ) -> None:
        if any(a.path == path for a in self.artefacts.values()) or path in RESERVED_PATHS:
            raise InputError(f"two artefacts of the pack would both lie at {path!r}")
        try:
            self.artefacts[role] = EvidenceArtefact(
                role=role,
                kind=kind,
                digest=stored.digest,
                size_bytes=stored.size,
                path=path,
                source_uri=source,
                manifest_hash=manifest_hash,
            )
        except ValidationError:
            raise InputError(
                f"artefact {role[:80]!r} cannot be placed in the pack: its name is not a safe "
                "relative path"
            ) from None
        if link:
            self.links.append(
                InputLink(kind=kind, hash=manifest_hash or stored.digest, uri=stored.uri)
            )

    def add_manifest(self, role: str, manifest: Manifest, raw: bytes, source: str) -> None:
        stored = self.store.put_bytes(raw)
        self.add(
            role,
            manifest.KIND,
            stored,
            path=f"manifests/{role}.json",
            source=source,
            manifest_hash=manifest.content_digest,
        )


def _load_file(path: Path, cls: type[_M]) -> tuple[_M, bytes]:
    """Read a manifest file once, verify its hash and model; return it with the bytes read."""
    raw = read_manifest_bytes(path)
    return _parse(raw, cls, path), raw


def _parse(raw: bytes, cls: type[_M], source: str | Path) -> _M:
    return cls.from_payload(parse_manifest_payload(raw, source), path=source)


def _linked(
    links: tuple[InputLink, ...], cls: type[_M], digest: str, store: ArtefactStore
) -> tuple[_M, bytes, str] | None:
    """The manifest ``cls`` linked under ``digest`` through a ``cmf://`` URI in the store."""
    link = next((x for x in links if x.kind == cls.KIND and x.hash == digest and x.uri), None)
    if link is None or link.uri is None or not link.uri.startswith("cmf://sha256/"):
        return None
    stored_digest = "sha256:" + link.uri.removeprefix("cmf://sha256/")
    try:
        if not store.contains(stored_digest):
            return None
        raw = store.get_bytes(stored_digest)
    except ArtefactError:
        return None
    manifest = _parse(raw, cls, link.uri)
    if manifest.content_digest != digest:
        return None
    return manifest, raw, link.uri


def _suffix(source: str) -> str:
    """The file's extension (``.jsonl``, ``.tar.gz``), when it is plain; else nothing."""
    parts = source.rstrip("/").rsplit("/", 1)[-1].lower().split(".")
    for size in (2, 1):
        if len(parts) > size and parts[0]:
            suffix = "." + ".".join(parts[-size:])
            if _SUFFIX_RE.match(suffix) and not any(p.isdigit() for p in parts[-size:]):
                return suffix
    return ""


def _store_source(value: str, store: ArtefactStore, what: str) -> tuple[StoredObject, str]:
    """Read a FILE_OR_URI (a path, ``file://`` or ``cmf://``), store it; return it and its URI.

    :raises InputError: another scheme, a malformed URI, or an unreadable file.
    """
    if any(ord(c) < 0x20 or c == "\x7f" for c in value):
        raise InputError(f"{what}: the location holds a control character")
    if value.startswith("cmf:"):
        from customer_model_factory.store import parse_artefact_uri  # noqa: PLC0415

        digest = parse_artefact_uri(value).digest
        assert digest is not None
        return store.verify(digest), value
    if value.startswith("file:"):
        from customer_model_factory.store import parse_artefact_uri  # noqa: PLC0415

        path = Path(parse_artefact_uri(value).path or "")
        return store.put_file(path), value
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", value):
        raise InputError(
            f"{what}: only a local file, file:// or cmf:// URI can be read and hashed; "
            "fetch the artefact and give the file"
        )
    path = Path(value)
    try:
        stored = store.put_file(path.absolute())
    except ArtefactError as error:
        raise InputError(f"{what}: {error.message}", path=path) from None
    return stored, _source_of(path)


def _source_of(path: Path) -> str:
    """Where an artefact was read from: a relative path as given (relative to the directory the
    pack was built from, so a pack built in a run directory records no machine-specific absolute
    path), else its ``file://`` URI."""
    return build_file_uri(path) if path.is_absolute() else path.as_posix()


def check_callbacks(
    allowed: bool, endpoints: tuple[str, ...], hosts: tuple[str, ...]
) -> tuple[list[Finding], tuple[str, ...]]:
    """Check the callback policy: off unless allowed; every endpoint ``https://`` on a listed host.

    :returns: ``(findings, the normalised host allow list)``.
    :raises InputError: a malformed host, or an endpoint that is not a URL or carries credentials
        (it would be written into the manifest).
    """
    allowlist: list[str] = []
    for host in hosts:
        normal = host.strip().lower().rstrip(".")
        if not _HOST_RE.match(normal):
            raise InputError(f"--callback-host {host[:80]!r} is not a host name")
        allowlist.append(normal)
    findings: list[Finding] = []
    if endpoints and not allowed:
        findings.append(
            _error(
                "EVIDENCE_CALLBACKS_NOT_ALLOWED",
                f"{len(endpoints)} callback endpoints are given but callbacks are off; opt in "
                "with --allow-callbacks or give none",
                "callback_endpoints",
            )
        )
    for number, endpoint in enumerate(endpoints, start=1):
        if any(ord(c) <= 0x20 or c == "\x7f" for c in endpoint):
            raise InputError(f"callback endpoint {number} holds a space or control character")
        try:
            parts = urlsplit(endpoint)
            hostname = parts.hostname
            parts.port  # noqa: B018 - raises on a malformed port
        except ValueError:
            raise InputError(f"callback endpoint {number} is not a URL") from None
        if parts.username is not None or parts.password is not None:
            raise InputError(
                f"callback endpoint {number} carries credentials (user@ or user:password@); "
                "name the endpoint without them"
            )
        if parts.scheme != "https":
            findings.append(
                _error(
                    "EVIDENCE_CALLBACK_NOT_HTTPS",
                    f"callback endpoint {number} uses {parts.scheme or 'no'} scheme; "
                    "only https:// is allowed",
                    "callback_endpoints",
                )
            )
        if not hostname or hostname.rstrip(".") not in allowlist:
            findings.append(
                _error(
                    "EVIDENCE_CALLBACK_HOST_NOT_ALLOWED",
                    f"callback endpoint {number} names host {(hostname or '')[:80]!r}, which "
                    "is not on the --callback-host list",
                    "callback_endpoints",
                )
            )
    return findings, tuple(sorted(set(allowlist)))


def control_coverage(
    mapping: SectorEvidenceMapping, present: Mapping[str, str]
) -> tuple[list[ControlCoverage], list[Finding]]:
    """Check every control of ``mapping`` against the evidence kinds ``present`` (kind -> the
    role proving it): a required kind neither present nor deferred is an error finding."""
    coverage: list[ControlCoverage] = []
    findings: list[Finding] = []
    for control, kinds in sorted(mapping.control_evidence.items()):
        required = tuple(sorted(set(kinds)))
        have = tuple(k for k in required if k in present)
        deferred = tuple(k for k in required if k not in present and k in DEFERRED_EVIDENCE)
        missing = tuple(k for k in required if k not in present and k not in DEFERRED_EVIDENCE)
        coverage.append(
            ControlCoverage(
                sector_id=mapping.sector_id,
                control=control,
                required=required,
                present=have,
                deferred=deferred,
                missing=missing,
            )
        )
        findings.extend(
            _error(
                "EVIDENCE_CONTROL_EVIDENCE_MISSING",
                f"sector {mapping.sector_id!r} control {control!r} needs evidence kind "
                f"{kind!r}, which no artefact of the pack proves",
                f"control_evidence.{control}",
            )
            for kind in missing
        )
    return coverage, findings


def _check_export_uri(value: str) -> None:
    if any(ord(c) < 0x20 or c == "\x7f" for c in value):
        raise InputError("--export-uri holds a control character")
    try:
        parts = urlsplit(value)
    except ValueError:
        raise InputError("--export-uri is not a URI") from None
    if parts.password is not None:
        raise InputError("--export-uri carries credentials; name the location without them")


def _same_location(given: str, declared: str) -> bool:
    if given == declared:
        return True
    if "://" not in given:
        try:
            return build_file_uri(Path(given).absolute()) == declared
        except ArtefactError:
            return False
    return False


class _Chain(BaseModel):
    """The manifests of the chain the pack binds."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    deployment: CustomerDeploymentManifest
    selection: CustomerModelSelectionReport
    result: CustomerBenchmarkResult
    training: CustomerTrainingManifest | None
    report: CustomerDatasetValidationReport | None
    bundle: ModelBundle | None


def _gather_manifests(request: EvidenceRequest, pack: _Pack) -> _Chain:
    store = pack.store
    deployment, raw = _load_file(request.deployment, CustomerDeploymentManifest)
    pack.add_manifest("deployment", deployment, raw, _source_of(request.deployment))
    selection, raw = _load_file(request.selection, CustomerModelSelectionReport)
    pack.add_manifest("selection", selection, raw, _source_of(request.selection))
    result, raw = _load_file(request.result, CustomerBenchmarkResult)
    pack.add_manifest("benchmark", result, raw, _source_of(request.result))
    checks = (
        ("deployment.selection_hash", deployment.selection_hash, selection.selection_hash),
        ("deployment.selected_result_hash", deployment.selected_result_hash, result.result_hash),
        ("selection.selected_result_hash", selection.selected_result_hash, result.result_hash),
        ("deployment.model.digest", deployment.model.digest, result.model_digest),
    )
    pack.findings.extend(
        _error(
            "EVIDENCE_CHAIN_MISMATCH",
            f"{name} is {found}, but the pack's artefact is {expected}",
            name,
        )
        for name, found, expected in checks
        if found != expected
    )
    calibration_hash = deployment.policy.calibration_result_hash
    if calibration_hash is not None:
        linked = _linked(deployment.inputs, CustomerBenchmarkResult, calibration_hash, store)
        if linked is None:
            pack.findings.append(
                _warning(
                    "EVIDENCE_ARTEFACT_UNAVAILABLE",
                    f"the calibration result {calibration_hash} the deployment links is not in "
                    "the artefact store",
                    "calibration",
                )
            )
        else:
            pack.add_manifest("calibration", linked[0], linked[1], linked[2])
    bundle: ModelBundle | None = None
    if deployment.bundle_hash is not None:
        linked_bundle = _linked(deployment.inputs, ModelBundle, deployment.bundle_hash, store)
        if linked_bundle is None:
            pack.findings.append(
                _warning(
                    "EVIDENCE_ARTEFACT_UNAVAILABLE",
                    f"the bundle {deployment.bundle_hash} the deployment links is not in the "
                    "artefact store",
                    "bundle",
                )
            )
        else:
            bundle = linked_bundle[0]
            pack.add_manifest("bundle", bundle, linked_bundle[1], linked_bundle[2])
    training = _given_or_linked(
        request.training_manifest,
        CustomerTrainingManifest,
        links=result.inputs,
        expected=result.training_manifest_hash,
        role="training_manifest",
        pack=pack,
    )
    report = None
    if training is not None:
        report = _given_or_linked(
            request.dataset_report,
            CustomerDatasetValidationReport,
            links=training.inputs,
            expected=training.dataset_report_hash,
            role="dataset_report",
            pack=pack,
        )
    elif request.dataset_report is not None:
        report, raw = _load_file(request.dataset_report, CustomerDatasetValidationReport)
        pack.add_manifest("dataset_report", report, raw, _source_of(request.dataset_report))
    return _Chain(
        deployment=deployment,
        selection=selection,
        result=result,
        training=training,
        report=report,
        bundle=bundle,
    )


def _given_or_linked(
    path: Path | None,
    cls: type[_M],
    *,
    links: tuple[InputLink, ...],
    expected: str,
    role: str,
    pack: _Pack,
) -> _M | None:
    if path is not None:
        manifest, raw = _load_file(path, cls)
        if manifest.content_digest != expected:
            pack.findings.append(
                _error(
                    "EVIDENCE_CHAIN_MISMATCH",
                    f"the {role.replace('_', ' ')} given is {manifest.content_digest}, but the "
                    f"chain links {expected}",
                    role,
                )
            )
        pack.add_manifest(role, manifest, raw, _source_of(path))
        return manifest
    linked = _linked(links, cls, expected, pack.store)
    if linked is None:
        pack.findings.append(
            _warning(
                "EVIDENCE_ARTEFACT_UNAVAILABLE",
                f"the {role.replace('_', ' ')} {expected} was not given and is not in the "
                "artefact store",
                role,
            )
        )
        return None
    pack.add_manifest(role, linked[0], linked[1], linked[2])
    return linked[0]


def _readiness_and_bindings(chain: _Chain, findings: list[Finding]) -> None:
    bound: list[tuple[str, BoundManifest | None]] = [
        ("deployment", chain.deployment),
        ("selection", chain.selection),
        ("benchmark", chain.result),
        ("training_manifest", chain.training),
        ("dataset_report", chain.report),
        ("bundle", chain.bundle),
    ]
    present = [(role, m) for role, m in bound if m is not None]
    findings.extend(
        _error(
            "EVIDENCE_INPUT_NOT_READY",
            f"the {role.replace('_', ' ')} holds error findings (ready: false)",
            role,
        )
        for role, manifest in present
        if not manifest.ready
    )
    bindings = {(m.customer_id, m.workspace_id, m.tenant_id) for _, m in present}
    if len(bindings) > 1:
        findings.append(
            _error(
                "EVIDENCE_BINDING_MISMATCH",
                f"the pack's manifests belong to {len(bindings)} different customer / "
                "workspace / tenant bindings",
                "customer_id",
            )
        )


def _gather_model(chain: _Chain, pack: _Pack) -> None:
    store = pack.store
    model = chain.deployment.model
    index = model_index_bytes(model.lane, model.files)
    if sha256_bytes(index) != model.digest:
        raise StageInputError(
            "the deployment's model file list does not hash to its digest",
            code="EVIDENCE_CHAIN_MISMATCH",
        )
    stored = store.put_bytes(index)
    pack.add("model", "model", stored, path="model/index.json", source=model.uri)
    for name, digest in sorted(model.files.items()):
        try:
            check_pack_path(name)
        except ValueError:
            raise StageInputError(
                f"model file name {name[:80]!r} is not a safe relative POSIX path",
                code="EVIDENCE_CHAIN_MISMATCH",
            ) from None
        file_object = store.verify(digest)
        pack.add(
            f"model_file.{name}",
            "model-file",
            file_object,
            path=f"model/files/{name}",
            source=file_object.uri,
            link=False,  # the model link (its index digest) covers every file
        )
    raw = store.verify(chain.result.raw_result_digest)
    pack.add("raw_results", "raw-results", raw, path="artefacts/raw_results.jsonl", source=raw.uri)


def _gather_receipt(chain: _Chain, pack: _Pack, context: RunContext) -> None:
    from customer_model_factory.ledger import RunLedger  # noqa: PLC0415

    run_id = chain.deployment.selected_train_run_id
    try:
        with RunLedger(context.home) as ledger:
            receipt = ledger.show(run_id).receipt
    except LedgerError:
        receipt = None
    if (
        receipt is None
        or receipt.gate_status != "PASS"
        or chain.selection.selection_hash not in receipt.evidence_refs
        or receipt.compute_hash() != receipt.receipt_hash
    ):
        pack.findings.append(
            _error(
                "EVIDENCE_GATE_RECEIPT_MISSING",
                "the run ledger of the factory home holds no intact PASS gate receipt of the "
                "selected run for this selection",
                "gate_receipt",
            )
        )
        return
    data = orjson.dumps(
        receipt.model_dump(mode="json"), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS
    )
    stored = pack.store.put_bytes(data + b"\n")
    source = f"ledger:{run_id}"
    pack.add("gate_receipt", "gate-receipt", stored, path="ledger/gate_receipt.json", source=source)


def _gather_operational(request: EvidenceRequest, chain: _Chain, pack: _Pack) -> None:
    policy = chain.deployment.policy
    sources = (
        ("audit_log", "audit-log", request.audit_log, "--audit-log", policy.audit_log_uri),
        (
            "rollback",
            "rollback-package",
            request.rollback_package,
            "--rollback-package",
            policy.rollback_package_uri,
        ),
        ("telemetry", "telemetry", request.telemetry, "--telemetry", None),
    )
    for role, kind, value, option, declared in sources:
        stored, source = _store_source(value, pack.store, option)
        pack.add(role, kind, stored, path=f"artefacts/{role}{_suffix(value)}", source=source)
        if declared and not _same_location(value, declared):
            pack.findings.append(
                Finding(
                    code="EVIDENCE_URI_DIFFERS",
                    severity="info",
                    message=f"{option} was read from another location than the deployment "
                    "declares; the pack holds the file read, by digest",
                    field=f"policy.{role}",
                )
            )
    for kind, value in sorted(request.evidence.items()):
        stored, source = _store_source(value, pack.store, f"--evidence {kind}")
        evidence_path = f"evidence/{_evidence_name(kind)}{_suffix(value)}"
        pack.add(f"evidence.{kind}", "evidence", stored, path=evidence_path, source=source)


def _mapping_path(mapping: SectorEvidenceMapping, taken: set[str]) -> tuple[str, str]:
    sector = mapping.sector_id if _ID_RE.match(mapping.sector_id) else "sector"
    short = mapping.mapping_hash.removeprefix("sha256:")[:12]
    role = f"sector_mapping.{sector}"
    if role in taken:
        role = f"{role}.{short}"
    return role, f"sector_mappings/{sector}-{short}.json"


def _sector_ids(report: CustomerDatasetValidationReport | None) -> tuple[str, ...] | None:
    if report is None:
        return None
    sectors = set(report.sector_counts) | set(report.sector_owners)
    if report.vertical:
        sectors.add(report.vertical)
    return tuple(sorted(s for s in sectors if s)) or (DEFAULT_SECTOR,)


def _gather_mappings(
    request: EvidenceRequest, chain: _Chain, pack: _Pack, context: RunContext
) -> list[tuple[SectorEvidenceMapping, SectorMappingRef]]:
    pm = context.plugin_manager
    pack.findings.extend(pm.stage_findings())
    sectors = _sector_ids(chain.report)
    chosen: list[tuple[SectorEvidenceMapping, SectorMappingRef]] = []
    evidence_uri = chain.deployment.policy.evidence_pack_uri

    def default(sector: str, why: str) -> None:
        pack.findings.append(
            _warning(
                "EVIDENCE_SECTOR_DEFAULT_MAPPING",
                f"sector {sector!r}: {why}; it is checked against the core default mapping",
                "sector_mappings",
            )
        )
        mapping = build_sector_evidence_mapping(
            sector_id=sector,
            jurisdiction="unspecified",
            evidence_pack_uri=evidence_uri,
            control_evidence=DEFAULT_CONTROL_EVIDENCE,
        )
        chosen.append((mapping, _ref(mapping, None, None, None)))

    if sectors is None:
        pack.findings.append(
            _error(
                "EVIDENCE_SECTORS_UNKNOWN",
                "no dataset report was given or found through the chain, so the data's sectors "
                "(and their evidence mappings) are unknown; give --dataset-report",
                "dataset_report",
            )
        )
        sectors = ()
    for sector in sectors:
        if sector == DEFAULT_SECTOR and chain.report is not None and not chain.report.sector_counts:
            default(sector, "the data names no sector")
            continue
        dispatch = pm.sector_dispatch(sector)
        recorded = chain.report.sector_owners.get(sector) if chain.report else None
        if dispatch is None:
            if recorded is not None:
                pack.findings.append(
                    _error(
                        "EVIDENCE_SECTOR_OWNER_MISSING",
                        f"sector {sector!r} was validated by pack {recorded.plugin!r}, which is "
                        "not loaded now, so its evidence mapping cannot be read",
                        "sector_mappings",
                    )
                )
                continue
            default(sector, "no loaded pack owns it")
            continue
        if recorded is not None and (recorded.plugin, recorded.distribution) != (
            dispatch.plugin_name,
            dispatch.distribution,
        ):
            pack.findings.append(
                _error(
                    "EVIDENCE_SECTOR_OWNER_CHANGED",
                    f"sector {sector!r} was validated by pack {recorded.plugin!r} but is owned "
                    f"by {dispatch.plugin_name!r} now",
                    "sector_mappings",
                )
            )
        mappings, problems = sector_evidence_mappings(sector, pm)
        pack.findings.extend(problems)
        mappings = [m for m in mappings if m.sector_id == sector]
        if not mappings:
            default(sector, f"its pack {dispatch.plugin_name!r} gives no evidence mapping")
            continue
        for mapping in mappings:
            chosen.append(
                (
                    mapping,
                    _ref(mapping, dispatch.plugin_name, dispatch.distribution, dispatch.version),
                )
            )
    for path in request.sector_mappings:
        mapping, _ = _load_file(path, SectorEvidenceMapping)
        chosen.append((mapping, _ref(mapping, None, None, None)))
    taken: set[str] = set()
    unique: dict[str, tuple[SectorEvidenceMapping, SectorMappingRef]] = {}
    for mapping, ref in chosen:
        unique.setdefault(mapping.mapping_hash, (mapping, ref))
    ordered = sorted(unique.values(), key=lambda pair: (pair[0].sector_id, pair[0].mapping_hash))
    for mapping, _ in ordered:
        if not mapping.ready:
            pack.findings.append(
                _error(
                    "EVIDENCE_MAPPING_NOT_READY",
                    f"the evidence mapping of sector {mapping.sector_id!r} holds error findings",
                    "sector_mappings",
                )
            )
        role, path = _mapping_path(mapping, taken)
        taken.add(role)
        stored = pack.store.put_bytes(mapping.to_json_bytes())
        pack.add(
            role,
            mapping.KIND,
            stored,
            path=path,
            source=stored.uri,
            manifest_hash=mapping.mapping_hash,
        )
    return ordered


def _ref(
    mapping: SectorEvidenceMapping,
    plugin: str | None,
    distribution: str | None,
    version: str | None,
) -> SectorMappingRef:
    return SectorMappingRef(
        sector_id=mapping.sector_id,
        mapping_hash=mapping.mapping_hash,
        jurisdiction=mapping.jurisdiction,
        frameworks=mapping.frameworks,
        plugin=plugin,
        distribution=distribution,
        version=version,
    )


def _check_evidence_kinds(evidence: Mapping[str, str]) -> None:
    for kind in evidence:
        if not kind.strip() or len(kind) > 128 or not kind.isprintable():
            raise InputError(
                "--evidence: a kind is 1 to 128 printable characters (as its mapping names it)"
            )
        if kind in BUILTIN_EVIDENCE or kind in DEFERRED_EVIDENCE:
            proof = BUILTIN_EVIDENCE.get(kind) or f"the {DEFERRED_EVIDENCE[kind]} manifest"
            raise InputError(
                f"--evidence {kind}: this kind is proved by {proof}, not by a file given here"
            )


def _evidence_name(kind: str) -> str:
    """A file name for an evidence kind: the kind itself when it is a plain id, else a digest."""
    if _FILE_ID_RE.match(kind):
        return kind
    return "kind-" + sha256_bytes(kind.encode()).removeprefix("sha256:")[:16]


def build_evidence_pack(
    request: EvidenceRequest, context: RunContext
) -> CustomerEvidencePackManifest:
    """Build the evidence pack manifest (see the module doc).

    :raises ManifestIntegrityError, DataFormatError: a tampered or unreadable manifest (exit 2).
    :raises InputError: an unreadable artefact, a URI that cannot be read, a malformed
        ``--evidence`` kind or callback endpoint (exit 2).
    :raises ArtefactError: a model file or the raw results missing or corrupted in the store.
    """
    _check_evidence_kinds(request.evidence)
    _check_export_uri(request.export_uri)
    callback_findings, allowlist = check_callbacks(
        request.allow_callbacks, request.callback_endpoints, request.callback_hosts
    )
    pack = _Pack(ArtefactStore(context.home))
    pack.findings.extend(callback_findings)
    chain = _gather_manifests(request, pack)
    _readiness_and_bindings(chain, pack.findings)
    _gather_model(chain, pack)
    _gather_receipt(chain, pack, context)
    _gather_operational(request, chain, pack)
    mappings = _gather_mappings(request, chain, pack, context)
    if request.export_uri != chain.deployment.policy.evidence_pack_uri:
        pack.findings.append(
            Finding(
                code="EVIDENCE_URI_DIFFERS",
                severity="info",
                message="--export-uri differs from the deployment's evidence_pack_uri",
                field="export_uri",
            )
        )
    present = {
        kind: role
        for kind, role in BUILTIN_EVIDENCE.items()
        if role.startswith("field:") or role in pack.artefacts
    }
    present.update({kind: f"evidence.{kind}" for kind in request.evidence})
    coverage: list[ControlCoverage] = []
    required: set[str] = set()
    for mapping, _ in mappings:
        rows, problems = control_coverage(mapping, present)
        coverage.extend(rows)
        pack.findings.extend(problems)
        required.update(k for kinds in mapping.control_evidence.values() for k in kinds)
    for kind in sorted(set(request.evidence) - required):
        pack.findings.append(
            _warning(
                "EVIDENCE_KIND_UNUSED",
                f"--evidence {kind} is required by no control of the pack's mappings",
                f"evidence.{kind}",
            )
        )
    deferred = sorted(required & set(DEFERRED_EVIDENCE))
    pack.findings.extend(
        Finding(
            code="EVIDENCE_CONTROL_EVIDENCE_DEFERRED",
            severity="info",
            message=f"evidence kind {kind!r} is proved by the {DEFERRED_EVIDENCE[kind]} "
            "manifest of a later stage; the release gate checks it",
            field=f"evidence_kinds.{kind}",
        )
        for kind in deferred
    )
    kinds = dict(present)
    kinds.update({kind: f"deferred:{DEFERRED_EVIDENCE[kind]}" for kind in deferred})
    control_evidence: dict[str, set[str]] = {}
    for row in coverage:
        control_evidence.setdefault(row.control, set()).update(row.present)
    deployment = chain.deployment
    artefacts = [pack.artefacts[role] for role in sorted(pack.artefacts)]
    return CustomerEvidencePackManifest.seal(
        customer_id=deployment.customer_id,
        workspace_id=deployment.workspace_id,
        tenant_id=deployment.tenant_id,
        inputs=pack.links,
        findings=list(dict.fromkeys(pack.findings)),
        package_id=request.package_id,
        deployment_id=deployment.deployment_id,
        deployment_hash=deployment.deployment_hash,
        environment=deployment.environment,
        classification=request.classification,
        export_uri=request.export_uri,
        external_callbacks_allowed=request.allow_callbacks,
        callback_endpoints=tuple(sorted(set(request.callback_endpoints))),
        callback_allowlist=allowlist,
        artefacts={a.role: a.digest for a in artefacts},
        artefact_files=tuple(artefacts),
        evidence_kinds=dict(sorted(kinds.items())),
        control_evidence={c: tuple(sorted(k)) for c, k in sorted(control_evidence.items())},
        sector_mappings=tuple(ref for _, ref in mappings),
        control_coverage=tuple(sorted(coverage, key=lambda row: (row.sector_id, row.control))),
    )
