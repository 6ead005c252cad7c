"""Findings and the registry of every finding code.

A :class:`Finding` is one located observation a stage makes: a stable UPPER_SNAKE ``code``
prefixed by its stage, a ``severity``, a one-line ``message`` that never echoes a secret or a
proprietary identifier, and where it applies (``trace_id``, ``field``, ``location`` as
``file:line``). A manifest is ``ready`` when it holds no finding of severity ``error``.

Every code the core emits is registered exactly once below, with a one-line meaning; the
reference page of the docs is generated from :data:`FINDING_CODES`, and a test fails when the
package uses a code that is not registered here. Sector packs declare the codes of their own
rules with their sector pack (:class:`~customer_model_factory.contributions.SectorPack`), which
:func:`register_finding_codes` adds at plugin load.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "FINDING_CODES",
    "STAGE_PREFIXES",
    "Finding",
    "Severity",
    "count_by_severity",
    "has_errors",
    "register_finding_codes",
    "sort_findings",
]

Severity = Literal["error", "warning", "info"]

STAGE_PREFIXES: Final = (
    "DATASET_",
    "TRAIN_",
    "BENCH_",
    "SELECT_",
    "DEPLOY_",
    "SECTOR_",
    "EVIDENCE_",
    "RUNTIME_",
    "MONITOR_",
    "RISK_",
    "RELEASE_",
    "PLUGIN_",
    "BOUNDARY_",
    "MANIFEST_",
)
_CODE_RE: Final = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$")

_CODES: dict[str, str] = {}


def _register(code: str, meaning: str) -> None:
    if code in _CODES:
        raise ValueError(f"finding code {code} is registered twice")
    if not _CODE_RE.match(code) or not code.startswith(STAGE_PREFIXES):
        raise ValueError(f"finding code {code!r} is not UPPER_SNAKE with a stage prefix")
    _CODES[code] = meaning


# ---- manifests (every stage) ----
_register("MANIFEST_HASH_MISMATCH", "A manifest's recomputed hash differs from its stored hash.")
_register(
    "MANIFEST_SCHEMA_VERSION", "A manifest declares a schema version this release cannot read."
)
_register("MANIFEST_INVALID", "A manifest file is not valid JSON or does not match its model.")

# ---- dataset stage ----

# ---- training stage ----

# ---- benchmark stage ----

# ---- selection stage ----

# ---- deployment stage ----

# ---- sector extension ----

# ---- evidence pack ----

# ---- runtime package ----

# ---- monitoring ----

# ---- risk register ----

# ---- release gate ----

# ---- plugins ----

# ---- boundary verifier ----


FINDING_CODES: Final[Mapping[str, str]] = MappingProxyType(_CODES)
"""Every registered finding code mapped to its one-line meaning (read-only view)."""


def register_finding_codes(codes: Mapping[str, str], *, owner: str) -> None:
    """Register the finding codes a sector pack declares for its own rules.

    A code already registered with the same meaning is accepted (a pack loaded twice); a code
    registered with another meaning is rejected, naming ``owner``.

    :param codes: code → one-line meaning.
    :param owner: the plugin declaring them, named in errors.
    :raises ValueError: a malformed code, or a clash with a registered code.
    """
    for code, meaning in codes.items():
        existing = _CODES.get(code)
        if existing == meaning:
            continue
        if existing is not None:
            raise ValueError(f"{owner}: finding code {code} is already registered")
        if not _CODE_RE.match(code) or not code.startswith(STAGE_PREFIXES):
            raise ValueError(f"{owner}: finding code {code!r} is not UPPER_SNAKE with a prefix")
        _CODES[code] = meaning


class Finding(BaseModel):
    """One located observation made by a stage.

    Findings compare, hash and serialise by value; a manifest's findings are sorted with
    :func:`sort_findings` before the manifest is hashed.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str = Field(description="Stable UPPER_SNAKE code prefixed by its stage.")
    severity: Severity = Field(description="error blocks readiness; warning and info do not.")
    message: str = Field(description="One line; never echoes a secret or proprietary identifier.")
    trace_id: str | None = Field(default=None, description="The trace concerned, if any.")
    field: str | None = Field(default=None, description="The field concerned, if any.")
    location: str | None = Field(default=None, description="file:line where a line exists.")

    @field_validator("code")
    @classmethod
    def _code_is_well_formed(cls, value: str) -> str:
        if not _CODE_RE.match(value) or not value.startswith(STAGE_PREFIXES):
            raise ValueError(f"finding code {value!r} is not UPPER_SNAKE with a stage prefix")
        return value

    @property
    def meaning(self) -> str | None:
        """The registered one-line meaning of :attr:`code`, or ``None`` if unregistered."""
        return _CODES.get(self.code)


def _sort_key(finding: Finding) -> tuple[str, int, str, str, str, str, str]:
    # Split ``file:line`` so line 9 sorts before line 10.
    path, _, line = (finding.location or "").rpartition(":")
    if not line.isdigit():
        path, line = finding.location or "", "0"
    return (
        path,
        int(line),
        finding.trace_id or "",
        finding.code,
        finding.field or "",
        finding.severity,
        finding.message,
    )


def sort_findings(findings: Iterable[Finding]) -> tuple[Finding, ...]:
    """Return findings in a stable order (location, trace, code, field, severity, message)."""
    return tuple(sorted(findings, key=_sort_key))


def has_errors(findings: Iterable[Finding]) -> bool:
    """Return ``True`` when any finding has severity ``error``."""
    return any(f.severity == "error" for f in findings)


def count_by_severity(findings: Iterable[Finding]) -> dict[str, int]:
    """Return ``{"error": n, "warning": n, "info": n}``."""
    counts = Counter(f.severity for f in findings)
    return {level: counts.get(level, 0) for level in ("error", "warning", "info")}
