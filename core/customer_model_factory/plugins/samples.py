"""Sample inputs ``cmf plugins check`` calls the validation and release-check hooks with.

A pack's own benchmark traces are the sample when it ships a benchmark package for its sector;
otherwise one minimal trace of the sector with the generic metadata filled in. A hook that raises
on its own pack's data fails the check.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import unquote, urlparse

import orjson

from customer_model_factory.plugin_api.contracts import ReleaseCheckInput

if TYPE_CHECKING:
    from customer_model_factory.plugins.manager import CMFPluginManager

__all__ = ["SAMPLE_TRACES_PER_SECTOR", "release_sample", "sector_samples"]

SAMPLE_TRACES_PER_SECTOR: Final = 50
"""At most this many benchmark traces of a sector are passed to its validator."""


def _minimal_trace(sector_id: str) -> dict[str, Any]:
    return {
        "trace_id": f"plugins-check-{sector_id}",
        "customer_id": "plugins-check",
        "tenant_id": "plugins-check",
        "split": "test",
        "prompt": "What is the fee for a late payment?",
        "response": "The fee is listed in the product terms.",
        "expected_decision": "approve",
        "severity": "low",
        "label": "safe",
        "source_refs": ["doc:terms"],
        "policy_refs": ["policy:fees"],
        "reviewer_role": "analyst",
        "observed_at": "2026-01-01T00:00:00Z",
        "vertical": sector_id,
        "metadata": {
            "sector_class": "sample",
            "knowledge_class": "sample",
            "jurisdiction": "sample",
        },
    }


def _path_of(source: str) -> Path:
    if source.startswith("file://"):
        return Path(unquote(urlparse(source).path))
    return Path(source)


def _benchmark_traces(pm: CMFPluginManager, sector_id: str) -> Iterator[dict[str, Any]]:
    from customer_model_factory.plugins.table import collect, entry_for  # noqa: PLC0415

    packages = collect(pm, entry_for("cmf_benchmark_packages")).items.values()
    for package in sorted(packages, key=lambda item: item.id):
        if package.sector_id != sector_id:
            continue
        try:
            with _path_of(package.trace_source).open("rb") as handle:
                taken = 0
                for line in handle:
                    if taken >= SAMPLE_TRACES_PER_SECTOR:
                        return
                    try:
                        row = orjson.loads(line)
                    except orjson.JSONDecodeError:
                        continue
                    if isinstance(row, dict) and row.get("vertical") in (None, sector_id):
                        taken += 1
                        yield row
        except OSError:
            continue


def sector_samples(pm: CMFPluginManager) -> list[dict[str, Any]]:
    """Keyword arguments for ``cmf_validate_sector_metadata``, per owned sector."""
    samples: list[dict[str, Any]] = []
    for sector_id in sorted(pm.sector_packs()):
        rows = list(_benchmark_traces(pm, sector_id)) or [_minimal_trace(sector_id)]
        for row in rows:
            metadata = row.get("metadata")
            samples.append(
                {
                    "sector_id": sector_id,
                    "trace": row,
                    "metadata": metadata if isinstance(metadata, dict) else {},
                }
            )
    return samples


def release_sample(pm: CMFPluginManager) -> ReleaseCheckInput:
    """A release input naming every owned sector and no artefact (the emptiest release)."""
    return ReleaseCheckInput(
        customer_id="plugins-check",
        workspace_id="plugins-check",
        tenant_id="plugins-check",
        environment="staging",
        sector_ids=tuple(sorted(pm.sector_packs())),
    )
