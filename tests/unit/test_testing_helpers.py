"""The helpers for pack authors (``customer_model_factory.testing``) catch what they promise."""

from __future__ import annotations

import importlib
import itertools
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from customer_model_factory.plugins import CMFPluginManager
from customer_model_factory.stages.dataset import (
    REFERENCE_REQUIRED_FIELDS,
    validate_customer_trace_dataset,
)
from customer_model_factory.testing import (
    TRACE_DEFAULTS,
    check_benchmark_traces,
    check_finding_codes,
    check_pack,
    fresh_plugin_manager,
    make_trace,
    make_workspace,
    pack_manager,
    sector_findings,
)

# The fixture under test, used here as a pack's conftest would (imported fixtures are collected).
__all__ = ["pack_manager"]

_COUNTER = itertools.count()

_PLUGIN = """
from importlib.resources import files
from customer_model_factory.plugin_api import BenchmarkPackage, Finding, SectorPack, hookimpl

CMF_PLUGIN_API = "1.1"
SECTOR = "probe-sector"
CODES = {CODES}


@hookimpl
def cmf_sector_packs():
    return [SectorPack(id=SECTOR, version="1", title="probe", jurisdiction="EU",
                       finding_codes=CODES)]


@hookimpl
def cmf_validate_sector_metadata(sector_id, trace, metadata):
    if sector_id != SECTOR:
        return None
    if metadata.get("flag"):
        return [Finding(code="{EMITTED}", severity="error", message="flagged")]
    return []


@hookimpl
def cmf_benchmark_packages():
    return [BenchmarkPackage(id="probe-sector.bench", version="1", sector_id=SECTOR,
                             trace_source=str(files(__package__) / "traces.jsonl"),
                             claim_boundary="probe only")]
"""


@pytest.fixture
def make_pack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Any]]:
    """Write a small pack package under tmp_path and import its plugin module."""
    made: list[str] = []

    def build(
        *,
        codes: dict[str, str] | None = None,
        emitted: str = "SECTOR_PROBE_FLAGGED",
        traces: list[dict[str, Any]] | None = None,
    ) -> ModuleType:
        name = f"probe_pack_{next(_COUNTER)}"
        package = tmp_path / name
        package.mkdir()
        (package / "__init__.py").write_text("")
        declared = {"SECTOR_PROBE_FLAGGED": "A flagged row."} if codes is None else codes
        source = _PLUGIN.replace("{CODES}", repr(declared)).replace("{EMITTED}", emitted)
        (package / "plugin.py").write_text(textwrap.dedent(source))
        rows = traces if traces is not None else [_probe_trace(1), _probe_trace(2)]
        import orjson

        (package / "traces.jsonl").write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
        monkeypatch.syspath_prepend(str(tmp_path))
        made.append(name)
        return importlib.import_module(f"{name}.plugin")

    yield build
    for name in made:
        for module in [m for m in sys.modules if m == name or m.startswith(f"{name}.")]:
            del sys.modules[module]


def _probe_trace(index: int, **metadata: Any) -> dict[str, Any]:
    return make_trace(
        trace_id=f"probe-{index}",
        prompt=f"What does plan {index} include?",
        vertical="probe-sector",
        metadata={
            "sector_class": "probe",
            "knowledge_class": "terms",
            "jurisdiction": "EU",
            **metadata,
        },
    )


# ---- the trace factory ----


def test_make_trace_carries_every_required_field_and_validates() -> None:
    trace = make_trace()
    assert set(REFERENCE_REQUIRED_FIELDS) <= set(trace)
    report = validate_customer_trace_dataset(
        [make_trace(), make_trace(trace_id="trace-0002", prompt="Another question?")],
        make_workspace(),
        pm=fresh_plugin_manager(),
    )
    assert report.ready, report.findings
    assert report.row_count == 2


def test_make_trace_overrides_and_leaves_out_fields() -> None:
    trace = make_trace(severity="high", label="unsafe", without=("reviewer_role",))
    assert (trace["severity"], trace["label"]) == ("high", "unsafe")
    assert "reviewer_role" not in trace
    report = validate_customer_trace_dataset([trace], make_workspace(), pm=fresh_plugin_manager())
    assert "DATASET_MISSING_REQUIRED_FIELD" in {finding.code for finding in report.findings}


def test_make_trace_refuses_to_leave_out_an_unknown_field() -> None:
    with pytest.raises(ValueError, match="no field 'reviewer'"):
        make_trace(without=("reviewer",))


def test_make_trace_returns_independent_copies() -> None:
    first = make_trace()
    first["source_refs"].append("doc://changed")
    assert make_trace()["source_refs"] == TRACE_DEFAULTS["source_refs"]


def test_make_workspace_takes_overrides() -> None:
    workspace = make_workspace(data_classification="restricted", required_splits=["test"])
    assert workspace.data_classification == "restricted"
    assert workspace.customer_id == TRACE_DEFAULTS["customer_id"]


# ---- finding codes ----


def test_check_finding_codes_returns_the_declared_codes(make_pack: Callable[..., Any]) -> None:
    plugin = make_pack()
    assert check_finding_codes(plugin) == {"SECTOR_PROBE_FLAGGED": "A flagged row."}


def test_check_finding_codes_catches_a_code_used_but_not_declared(
    make_pack: Callable[..., Any],
) -> None:
    plugin = make_pack(emitted="SECTOR_PROBE_UNDECLARED")
    with pytest.raises(AssertionError) as raised:
        check_finding_codes(plugin)
    message = str(raised.value)
    assert "plugin.py:" in message
    assert "SECTOR_PROBE_UNDECLARED is used but not declared" in message
    assert "SECTOR_PROBE_FLAGGED is declared but never used" in message
    plugin_ok = make_pack(
        codes={"SECTOR_PROBE_FLAGGED": "x", "SECTOR_PROBE_SPARE": "y"},
        emitted="SECTOR_PROBE_FLAGGED",
    )
    with pytest.raises(AssertionError, match="SECTOR_PROBE_SPARE is declared but never used"):
        check_finding_codes(plugin_ok)
    assert "SECTOR_PROBE_SPARE" in check_finding_codes(plugin_ok, require_used=False)


def test_check_finding_codes_catches_a_code_without_the_prefix(
    make_pack: Callable[..., Any],
) -> None:
    plugin = make_pack(codes={"PROBE_FLAGGED": "no prefix"}, emitted="SECTOR_PROBE_FLAGGED")
    with pytest.raises(AssertionError, match="not UPPER_SNAKE starting with SECTOR_ or RELEASE_"):
        check_finding_codes(plugin)


# ---- benchmark traces ----


def test_check_benchmark_traces_passes_a_pack_whose_traces_validate(
    make_pack: Callable[..., Any],
) -> None:
    (report,) = check_benchmark_traces(make_pack(), make_workspace())
    assert report.ready
    assert report.row_count == 2


def test_check_benchmark_traces_lists_rows_that_do_not_validate(
    make_pack: Callable[..., Any],
) -> None:
    plugin = make_pack(
        traces=[_probe_trace(1), _probe_trace(2, flag=True), {**_probe_trace(3), "tenant_id": "x"}]
    )
    with pytest.raises(AssertionError) as raised:
        check_benchmark_traces(plugin, make_workspace())
    message = str(raised.value)
    assert "traces.jsonl:2: SECTOR_PROBE_FLAGGED" in message
    assert "traces.jsonl:3: DATASET_TENANT_ID_MISMATCH" in message


def test_check_benchmark_traces_reads_a_workspace_file(
    make_pack: Callable[..., Any], tmp_path: Path
) -> None:
    workspace = tmp_path / "workspace.toml"
    workspace.write_text(
        '[workspace]\ncustomer_id = "other"\nworkspace_id = "example-workspace"\n'
        'tenant_id = "example-tenant"\ndata_classification = "internal"\n'
    )
    with pytest.raises(AssertionError, match="DATASET_CUSTOMER_ID_MISMATCH"):
        check_benchmark_traces(make_pack(), workspace)


def test_check_benchmark_traces_catches_a_missing_trace_file(
    make_pack: Callable[..., Any],
) -> None:
    plugin = make_pack()
    (Path(plugin.__file__).parent / "traces.jsonl").unlink()
    with pytest.raises(AssertionError, match=r"trace source .*traces\.jsonl does not exist"):
        check_benchmark_traces(plugin, make_workspace())


def test_check_pack_runs_every_check(make_pack: Callable[..., Any]) -> None:
    check_pack(make_pack(), workspace=make_workspace())
    with pytest.raises(AssertionError, match="not declared"):
        check_pack(make_pack(emitted="SECTOR_PROBE_OTHER"), workspace=make_workspace())


# ---- fixtures ----


@pytest.fixture
def cmf_pack(make_pack: Callable[..., Any]) -> Any:
    return make_pack()


def test_pack_manager_holds_the_pack_and_the_builtins_only(
    pack_manager: CMFPluginManager, cmf_pack: Any
) -> None:
    assert pack_manager.is_registered(cmf_pack)
    assert list(pack_manager.sector_packs()) == ["probe-sector"]
    (finding,) = sector_findings(_probe_trace(1, flag=True), pack_manager)
    assert finding.code == "SECTOR_PROBE_FLAGGED"
    assert sector_findings(_probe_trace(1), pack_manager) == []
