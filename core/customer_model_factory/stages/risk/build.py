"""Stage 9: the risk register, every risk decision checked against the current evidence.

:func:`load_risks` reads the risk decisions file; :func:`check_risks` (pure) judges every risk at
the run's instant; :func:`build_risk_register` loads the evidence pack and the monitoring
manifest (hashes recomputed), checks that they describe the same deployment, and seals a
:class:`~.models.CustomerRiskRegister`.

An **accepted** risk blocks the register (an error finding naming its ``risk_id`` and field)
when it has no owner, no ``accepted_at``, no ``expires_at``, an expiry at or before
``generated_at`` or at or before its acceptance, no compensating control, or when its
``linked_artifact_hashes`` do not hold the *current* ``evidence-pack`` and ``monitoring`` hashes.
Times are parsed as RFC 3339 and compared as UTC instants, never as text
(``2026-05-18T10:00:00+05:00`` is before ``2026-05-18T06:00:00Z``).

The risks file is TOML (an array of tables ``[[risks]]``) or JSON (a list of risk objects, or
``{"risks": [...]}``); each risk has the fields of
:class:`~.models.CustomerRiskException`, and nothing else.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import tomllib
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from customer_model_factory.canonical import content_hash, sha256_bytes
from customer_model_factory.context import RunContext
from customer_model_factory.errors import DataFormatError
from customer_model_factory.findings import Finding
from customer_model_factory.manifest import InputLink
from customer_model_factory.stages.dataset.models import parse_rfc3339
from customer_model_factory.stages.evidence.models import CustomerEvidencePackManifest
from customer_model_factory.stages.monitoring.models import CustomerMonitoringManifest
from customer_model_factory.stages.risk.models import CustomerRiskException, CustomerRiskRegister
from customer_model_factory.store import build_file_uri

__all__ = [
    "RISK_DECISIONS_KIND",
    "RiskRequest",
    "build_risk_register",
    "check_binding",
    "check_risks",
    "load_risks",
]

RISK_DECISIONS_KIND: Final = "risk-decisions"
"""The input-link kind of the risk decisions file (sha256 of its bytes)."""
_LINKED_KINDS: Final = ("evidence-pack", "monitoring")


class RiskRequest(BaseModel):
    """Everything ``cmf risk`` takes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    risks: Path = Field(description="The risk decisions file (TOML or JSON).")
    evidence_pack: Path = Field(description="The current evidence pack manifest.")
    monitoring: Path = Field(description="The current monitoring manifest.")
    register_id: str | None = Field(
        default=None, min_length=1, description="Default: derived from the inputs."
    )
    output: Path | None = Field(
        default=None,
        description="Where the register will be written: input URIs are then relative to its "
        "directory (else file:// URIs).",
    )


# ---- the risks file ----


def _plain_times(value: Any, path: Path, where: str) -> Any:
    """TOML date-times become RFC 3339 text (an offset is required); other values unchanged."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise DataFormatError(
                "a date-time needs a UTC offset (e.g. 2026-05-18T10:00:00Z)", path=path, field=where
            )
        return value.isoformat()
    if isinstance(value, dt.date | dt.time):
        raise DataFormatError(
            "write a full RFC 3339 date-time with an offset", path=path, field=where
        )
    return value


def _risk_line(text: str, risk_id: Any) -> int | None:
    """The line where a risk's ``risk_id`` is written (for locations), when it can be found."""
    if not isinstance(risk_id, str) or not risk_id:
        return None
    found = re.search(r"""["']?risk_id["']?\s*[:=]\s*["']""" + re.escape(risk_id) + "[\"']", text)
    return text.count("\n", 0, found.start()) + 1 if found else None


def load_risks(path: str | Path) -> tuple[list[CustomerRiskException], list[int | None], bytes]:
    """Read a risk decisions file: the risks in file order, the line of each, the file's bytes.

    :raises DataFormatError: missing, not UTF-8, not TOML/JSON, not a list of risks, or a risk
        that fails validation (one line naming the file, the line when known and the field).
    """
    target = Path(path)
    if target.exists() and not target.is_dir() and not target.is_file():
        raise DataFormatError("is not a regular file", path=target)
    try:
        raw = target.read_bytes()
    except FileNotFoundError:
        raise DataFormatError("file not found", path=target) from None
    except IsADirectoryError:
        raise DataFormatError("is a directory; give the risks file", path=target) from None
    except OSError as error:
        raise DataFormatError(f"cannot read: {error.strerror}", path=target) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        raise DataFormatError("invalid UTF-8", path=target, line=line) from None
    data: Any
    if target.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise DataFormatError(
                f"invalid JSON: {error.msg}", path=target, line=error.lineno
            ) from None
        if isinstance(data, dict) and set(data) == {"risks"}:
            data = data["risks"]
    else:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise DataFormatError(f"invalid TOML: {error}", path=target) from None
        unknown = sorted(set(data) - {"risks"})
        if unknown:
            raise DataFormatError(
                "a risks file holds only [[risks]] tables", path=target, field=unknown[0][:60]
            )
        data = data.get("risks", [])
    if not isinstance(data, list):
        raise DataFormatError("expected a list of risks", path=target, field="risks")
    risks: list[CustomerRiskException] = []
    lines: list[int | None] = []
    for index, item in enumerate(data):
        where = f"risks[{index}]"
        if not isinstance(item, dict):
            raise DataFormatError("a risk is an object (table)", path=target, field=where)
        line = _risk_line(text, item.get("risk_id"))
        fields = {key: _plain_times(value, target, f"{where}.{key}") for key, value in item.items()}
        try:
            risks.append(CustomerRiskException.model_validate(fields))
        except ValidationError as error:
            first = error.errors()[0]
            if first["type"] == "extra_forbidden":
                raise DataFormatError(
                    f"an unknown field (known: {', '.join(CustomerRiskException.model_fields)})",
                    path=target,
                    line=line,
                    field=where,
                ) from None
            field = ".".join(str(part) for part in first["loc"])
            raise DataFormatError(
                str(first["msg"]), path=target, line=line, field=f"{where}.{field}"
            ) from None
        lines.append(line)
    return risks, lines, raw


# ---- the checks ----


def _finding(
    code: str, risk: CustomerRiskException, field: str, message: str, location: str | None
) -> Finding:
    severity = "warning" if code == "RISK_ACCEPTED_IN_FUTURE" else "error"
    return Finding(
        code=code,
        severity=severity,  # type: ignore[arg-type]
        message=f"risk {risk.risk_id[:80]!r}: {message}",
        field=field,
        location=location,
    )


def _visible(text: str) -> bool:
    """Whether ``text`` holds a character one can see: not only spaces, controls or format
    characters (a zero-width space is no owner)."""
    return any(not c.isspace() and unicodedata.category(c)[0] not in "CZ" for c in text)


def check_risks(
    risks: Sequence[CustomerRiskException],
    *,
    evidence_hash: str,
    monitoring_hash: str,
    generated_at: dt.datetime,
    locations: Sequence[str | None] | None = None,
) -> list[Finding]:
    """Judge every risk at ``generated_at`` (an aware datetime); see the module docstring."""
    now = generated_at.astimezone(dt.UTC)
    current = {"evidence-pack": evidence_hash, "monitoring": monitoring_hash}
    findings: list[Finding] = []
    seen: set[str] = set()
    for index, risk in enumerate(risks):
        where = locations[index] if locations is not None else None

        def add(code: str, field: str, message: str, risk: CustomerRiskException = risk) -> None:
            findings.append(_finding(code, risk, field, message, where))  # noqa: B023

        if risk.risk_id in seen:
            add("RISK_DUPLICATE_ID", "risk_id", "the risk_id is used by an earlier risk")
        seen.add(risk.risk_id)
        times: dict[str, dt.datetime | None] = {}
        for name in ("accepted_at", "expires_at"):
            text = getattr(risk, name)
            parsed = parse_rfc3339(text) if text.strip() else None
            if text.strip() and parsed is None:
                add("RISK_TIME_INVALID", name, "is not an RFC 3339 date-time with an offset")
            times[name] = parsed  # aware: compared as instants, whatever the offset
        if risk.status != "accepted":
            continue
        if not _visible(risk.owner):
            add("RISK_OWNER_MISSING", "owner", "an accepted risk needs an owner")
        if not risk.accepted_at.strip():
            add("RISK_ACCEPTED_AT_MISSING", "accepted_at", "an accepted risk needs accepted_at")
        if not risk.expires_at.strip():
            add("RISK_EXPIRY_MISSING", "expires_at", "an accepted risk needs an expiry")
        accepted, expires = times["accepted_at"], times["expires_at"]
        if expires is not None and expires <= now:
            add(
                "RISK_EXPIRED",
                "expires_at",
                f"expired at {_utc(expires)}, at or before generated_at {_utc(now)}",
            )
        if expires is not None and accepted is not None and expires <= accepted:
            add(
                "RISK_EXPIRY_BEFORE_ACCEPTANCE",
                "expires_at",
                f"expires ({_utc(expires)}) at or before it was accepted ({_utc(accepted)})",
            )
        if accepted is not None and accepted > now:
            add(
                "RISK_ACCEPTED_IN_FUTURE",
                "accepted_at",
                f"accepted at {_utc(accepted)}, after generated_at {_utc(now)}",
            )
        if not any(_visible(control) for control in risk.compensating_controls):
            add(
                "RISK_CONTROLS_MISSING",
                "compensating_controls",
                "an accepted risk needs at least one compensating control",
            )
        for kind in _LINKED_KINDS:
            linked = risk.linked_artifact_hashes.get(kind)
            field = f"linked_artifact_hashes.{kind}"
            if linked is None:
                add("RISK_LINK_MISSING", field, f"does not link the current {kind} hash")
            elif linked != current[kind]:
                add(
                    "RISK_LINK_STALE",
                    field,
                    f"links {kind} {linked[:80]!r}, not the current {current[kind]}",
                )
    return findings


def _utc(moment: dt.datetime) -> str:
    try:
        return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    except OverflowError:  # year 1 at +01:00 or 9999 at -01:00 has no UTC calendar form
        return moment.isoformat()


def check_binding(
    evidence: CustomerEvidencePackManifest, monitoring: CustomerMonitoringManifest
) -> list[Finding]:
    """Errors when the evidence pack and the monitoring describe different deployments."""
    findings = [
        Finding(
            code="RISK_BINDING_MISMATCH",
            severity="error",
            message=f"the monitoring's {name} differs from the evidence pack's",
            field=name,
        )
        for name in ("customer_id", "workspace_id", "tenant_id", "deployment_id")
        if getattr(evidence, name) != getattr(monitoring, name)
    ]
    if monitoring.evidence_hash != evidence.evidence_hash:
        findings.append(
            Finding(
                code="RISK_EVIDENCE_MISMATCH",
                severity="error",
                message=f"the monitoring was computed for evidence {monitoring.evidence_hash}, "
                f"not the evidence pack given ({evidence.evidence_hash})",
                field="evidence_hash",
            )
        )
    return findings


def _uri(path: Path, output: Path | None) -> str:
    absolute = Path(os.path.abspath(path))
    if output is None:
        return build_file_uri(absolute)
    base = Path(os.path.abspath(output)).parent
    return Path(os.path.relpath(absolute, base)).as_posix()


def build_risk_register(request: RiskRequest, context: RunContext) -> CustomerRiskRegister:
    """Load, check and seal the risk register (see the module docstring).

    :raises InputError: a missing, malformed or tampered input (exit 2).
    """
    evidence = CustomerEvidencePackManifest.load(request.evidence_pack)
    monitoring = CustomerMonitoringManifest.load(request.monitoring)
    risks, lines, raw = load_risks(request.risks)
    generated_at = context.now()
    instant = parse_rfc3339(generated_at)
    if instant is None:  # context.now() always renders RFC 3339
        raise DataFormatError("the run clock gave no RFC 3339 instant", field="generated_at")
    locations = [f"{request.risks}:{line}" if line else str(request.risks) for line in lines]
    findings = check_binding(evidence, monitoring)
    findings += check_risks(
        risks,
        evidence_hash=evidence.evidence_hash,
        monitoring_hash=monitoring.monitoring_hash,
        generated_at=instant,
        locations=locations,
    )
    risks_digest = sha256_bytes(raw)
    output = request.output
    register_id = (
        request.register_id
        or "risk-register-"
        + content_hash(
            [evidence.evidence_hash, monitoring.monitoring_hash, risks_digest]
        ).removeprefix("sha256:")[:16]
    )
    return CustomerRiskRegister.seal(
        customer_id=evidence.customer_id,
        workspace_id=evidence.workspace_id,
        tenant_id=evidence.tenant_id,
        inputs=[
            evidence.link(_uri(request.evidence_pack, output)),
            monitoring.link(_uri(request.monitoring, output)),
            InputLink(kind=RISK_DECISIONS_KIND, hash=risks_digest, uri=_uri(request.risks, output)),
        ],
        findings=findings,
        register_id=register_id,
        deployment_id=evidence.deployment_id,
        evidence_hash=evidence.evidence_hash,
        monitoring_hash=monitoring.monitoring_hash,
        generated_at=generated_at,
        risks=tuple(sorted(risks, key=lambda risk: risk.risk_id)),
    )
