"""Test helpers for sector-pack authors: a pytest plugin and plain functions.

Install them with the ``testing`` extra (``pip install "customer-model-factory[testing]"``, which
brings pytest and hypothesis) and enable the fixtures in the pack's ``tests/conftest.py``::

    pytest_plugins = ["customer_model_factory.testing"]

It is deliberately not registered through a ``pytest11`` entry point, so installing the core
changes nobody's test session. It provides:

* the ``plugin_manager`` fixture: a fresh manager with the built-ins only (no installed entry
  points, no ``CMF_*`` switches), so a test sees exactly the plugins it registers;
* the ``pack_manager`` fixture: the same with the pack under test registered, the pack being
  what the pack's own ``cmf_pack`` fixture returns (its entry-point module);
* :func:`registered`: a context manager registering a plugin for the duration of a block
  (``finally: unregister``);
* :func:`make_trace` and :func:`make_workspace`: a valid trace carrying every required field
  (each overridable, or left out with ``without=``) and the workspace it validates under;
* :func:`sector_findings`: the findings the sector stage gives one trace (the core's generic
  sector contract, the pack's metadata model, then the pack's rules);
* behavioural checks of a pack's contributions, each failing the test with every problem listed:
  :func:`check_plugin_contributions` (every contribution validates and every validation, evidence
  and release-check hook runs without raising on the pack's own benchmark traces),
  :func:`check_finding_codes` (every code is declared, prefixed and used) and
  :func:`check_benchmark_traces` (the benchmark traces exist and validate under the pack's
  workspace); :func:`check_pack` runs all three.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import inspect
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import unquote, urlparse

import pytest

from customer_model_factory.findings import FINDING_CODES, Finding, pack_code_problem
from customer_model_factory.plugins import (
    CMFPluginManager,
    PluginSwitches,
    check_plugins,
    collect_sector_packs,
    create_plugin_manager,
)
from customer_model_factory.plugins.table import collect, entry_for

if TYPE_CHECKING:
    from customer_model_factory.stages.dataset import (
        CustomerDatasetValidationReport,
        CustomerWorkspace,
    )

__all__ = [
    "TRACE_DEFAULTS",
    "check_benchmark_traces",
    "check_finding_codes",
    "check_pack",
    "check_plugin_contributions",
    "cmf_pack",
    "fresh_plugin_manager",
    "make_trace",
    "make_workspace",
    "pack_manager",
    "plugin_manager",
    "registered",
    "sector_findings",
]

TRACE_DEFAULTS: Final[Mapping[str, Any]] = MappingProxyType(
    {
        "trace_id": "trace-0001",
        "customer_id": "example-customer",
        "tenant_id": "example-tenant",
        "workspace_id": "example-workspace",
        "split": "test",
        "prompt": "What fee applies to an international transfer?",
        "response": "The fee schedule in the product terms lists the international transfer fee.",
        "expected_decision": "approve",
        "severity": "low",
        "label": "safe",
        "source_refs": ["doc://example/product-terms"],
        "policy_refs": ["policy://example/fee-disclosure"],
        "reviewer_role": "analyst",
        "observed_at": "2026-01-15T09:00:00Z",
        "contains_pii": False,
        "contains_secret": False,
        "redaction_status": "not_required",
    }
)
"""The fields of :func:`make_trace`'s trace: every field the reference requires, and the
optional self-declarations, bound to the workspace :func:`make_workspace` returns."""

_PACK_CODE_RE: Final = re.compile(r"\b(?:SECTOR|RELEASE)_[A-Z0-9]+(?:_[A-Z0-9]+)+\b")
_SHOWN_PROBLEMS: Final = 20


def fresh_plugin_manager() -> CMFPluginManager:
    """Return a new plugin manager holding only the core's built-ins."""
    return create_plugin_manager(PluginSwitches(entry_points=False))


@contextlib.contextmanager
def registered(
    plugin: Any, pm: CMFPluginManager | None = None, *, name: str | None = None
) -> Iterator[CMFPluginManager]:
    """Register ``plugin`` on ``pm`` (default: a fresh manager) for the duration of the block.

    :returns: a context manager yielding the manager the plugin is registered on.
    """
    manager = fresh_plugin_manager() if pm is None else pm
    registered_name = manager.register(plugin, name)
    try:
        yield manager
    finally:
        if registered_name is not None:
            manager.unregister(name=registered_name)


def make_trace(*, without: Iterable[str] = (), **overrides: Any) -> dict[str, Any]:
    """Return a trace that validates under :func:`make_workspace`, with ``overrides`` applied.

    Every key of :data:`TRACE_DEFAULTS` is present unless named in ``without``; ``overrides``
    replace values or add fields (``vertical=...``, ``metadata={...}``, any extra field). The
    result is a fresh copy each time.

    :raises ValueError: ``without`` names a field the trace does not have (a typo would
        otherwise test nothing).
    """
    trace = copy.deepcopy(dict(TRACE_DEFAULTS))
    trace.update(copy.deepcopy(overrides))
    for name in without:
        if name not in trace:
            raise ValueError(f"make_trace(without=...): the trace has no field {name!r}")
        del trace[name]
    return trace


def make_workspace(**overrides: Any) -> CustomerWorkspace:
    """Return the workspace :func:`make_trace`'s traces are bound to (classification internal,
    splits train, validation and test), with ``overrides`` applied to its fields."""
    from customer_model_factory.stages.dataset import CustomerWorkspace  # noqa: PLC0415

    fields: dict[str, Any] = {
        "customer_id": TRACE_DEFAULTS["customer_id"],
        "workspace_id": TRACE_DEFAULTS["workspace_id"],
        "tenant_id": TRACE_DEFAULTS["tenant_id"],
        "data_classification": "internal",
    }
    fields.update(overrides)
    return CustomerWorkspace.from_mapping(fields)


def sector_findings(
    trace: Mapping[str, Any], pm: CMFPluginManager, *, sector_id: str | None = None
) -> list[Finding]:
    """Return the findings the dataset stage gives ``trace``'s sector metadata on ``pm``: the
    generic sector contract, the owning pack's metadata model, then the pack's own rules.

    :param sector_id: validate against this sector instead of the trace's ``vertical``.
    """
    from customer_model_factory.stages.sector import validate_sector_trace_metadata  # noqa: PLC0415

    return validate_sector_trace_metadata(trace, sector_id=sector_id, pm=pm)


def _fail(what: str, problems: list[str]) -> None:
    if not problems:
        return
    shown = problems[:_SHOWN_PROBLEMS]
    more = len(problems) - len(shown)
    listing = "\n".join(f"  {problem}" for problem in shown)
    tail = f"\n  ... and {more} more" if more > 0 else ""
    raise AssertionError(f"{what}:\n{listing}{tail}")


def _plugin_name(manager: CMFPluginManager, plugin: Any) -> str:
    name = manager.get_name(plugin)
    assert name is not None
    return name


def _source_files(plugin: Any) -> list[Path]:
    """The ``*.py`` files of the top-level package that defines ``plugin``."""
    module = plugin if inspect.ismodule(plugin) else inspect.getmodule(type(plugin))
    if module is None:
        return []
    top = module.__name__.split(".", 1)[0]
    spec = importlib.util.find_spec(top)
    if spec is None:
        return []
    if spec.submodule_search_locations:
        roots = [Path(location) for location in spec.submodule_search_locations]
        return sorted(path for root in roots for path in root.rglob("*.py"))
    return [Path(spec.origin)] if spec.origin else []


def check_finding_codes(
    plugin: Any, *, name: str | None = None, require_used: bool = True
) -> dict[str, str]:
    """Check the finding codes of ``plugin``'s sector packs.

    Every declared code must be UPPER_SNAKE, prefixed ``SECTOR_`` or ``RELEASE_`` and not one of
    the core's codes; every pack-style code written in the plugin's package source must be
    declared; with ``require_used``, every declared code must appear in that source besides its
    declaration (twice at least: a code written once is declared and never emitted).

    :returns: the declared codes (code → meaning), sorted.
    :raises AssertionError: listing every problem.
    """
    problems: list[str] = []
    with registered(plugin, name=name) as manager:
        packs, findings = collect_sector_packs(manager)
        owners = collect(manager, entry_for("cmf_sector_packs")).owners
        own = _plugin_name(manager, plugin)
    problems += [f"{f.code}: {f.message}" for f in findings if f.severity == "error"]
    declared: dict[str, str] = {}
    for sector_id, pack in packs.items():
        if owners.get(sector_id) != own:
            continue
        for code, meaning in pack.finding_codes.items():
            problem = pack_code_problem(code)
            if problem is not None:
                problems.append(f"sector {sector_id!r}: {problem}")
            elif not str(meaning).strip():
                problems.append(f"sector {sector_id!r}: finding code {code} has no meaning")
            declared[code] = meaning
    occurrences: dict[str, int] = {}
    for path in _source_files(plugin):
        text = path.read_text(encoding="utf-8")
        for match in _PACK_CODE_RE.finditer(text):
            code = match.group()
            if code in FINDING_CODES:
                continue
            occurrences[code] = occurrences.get(code, 0) + 1
            if code not in declared:
                line = text.count("\n", 0, match.start()) + 1
                problems.append(
                    f"{path.name}:{line}: finding code {code} is used but not declared with the "
                    "sector pack (SectorPack.finding_codes)"
                )
    if require_used:
        # Written once in the source is the declaration itself: no rule emits the code.
        problems += [
            f"finding code {code} is declared but never used in the pack's source"
            for code in sorted(declared)
            if occurrences.get(code, 0) < 2
        ]
    _fail("the pack's finding codes are not in order", sorted(set(problems)))
    return dict(sorted(declared.items()))


def _path_of(source: str) -> Path:
    if source.startswith("file://"):
        return Path(unquote(urlparse(source).path))
    return Path(source)


def check_benchmark_traces(
    plugin: Any,
    workspace: CustomerWorkspace | str | Path,
    *,
    name: str | None = None,
) -> list[CustomerDatasetValidationReport]:
    """Validate every benchmark package of ``plugin`` with the dataset stage, under ``workspace``
    (a :class:`CustomerWorkspace` or the path of its TOML), with only that plugin registered.

    Each package's trace source must exist and hold rows, its report must be ready (no error
    finding), and every pack code in it must be one the plugin declares.

    :returns: one ready report per benchmark package, in package-id order.
    :raises AssertionError: listing every problem (at most 20 findings per package are shown).
    """
    from customer_model_factory.plugins import collect_benchmark_packages  # noqa: PLC0415
    from customer_model_factory.stages.dataset import (  # noqa: PLC0415
        CustomerWorkspace,
        validate_customer_trace_dataset,
    )

    bound = (
        workspace
        if isinstance(workspace, CustomerWorkspace)
        else CustomerWorkspace.from_toml(workspace)
    )
    problems: list[str] = []
    reports: list[CustomerDatasetValidationReport] = []
    with registered(plugin, name=name) as manager:
        own = _plugin_name(manager, plugin)
        packages, findings = collect_benchmark_packages(manager)
        owners = collect(manager, entry_for("cmf_benchmark_packages")).owners
        declared = manager.finding_codes()
        problems += [f"{f.code}: {f.message}" for f in findings if f.severity == "error"]
        mine = [packages[ident] for ident in sorted(packages) if owners.get(ident) == own]
        if not mine and not problems:
            problems.append("the plugin contributes no benchmark package")
        for package in mine:
            path = _path_of(package.trace_source)
            if not path.exists():
                problems.append(f"benchmark {package.id!r}: trace source {path} does not exist")
                continue
            report = validate_customer_trace_dataset(path, bound, pm=manager, workers=1)
            if report.row_count == 0:
                problems.append(f"benchmark {package.id!r}: {path} holds no trace")
            for finding in report.findings:
                where = f"{finding.location}: " if finding.location else ""
                field = f" ({finding.field})" if finding.field else ""
                text = f"benchmark {package.id!r}: {where}{finding.code}{field}: {finding.message}"
                if finding.severity == "error":
                    problems.append(text)
                elif (
                    finding.code.startswith(("SECTOR_", "RELEASE_"))
                    and finding.code not in FINDING_CODES
                    and finding.code not in declared
                ):
                    problems.append(f"{text} (code not declared)")
            reports.append(report)
    _fail("the pack's benchmark traces do not validate", problems)
    return reports


def check_pack(
    plugin: Any, *, workspace: CustomerWorkspace | str | Path, name: str | None = None
) -> None:
    """Run every behavioural check of a pack: :func:`check_plugin_contributions` (no error),
    :func:`check_finding_codes` and :func:`check_benchmark_traces` under ``workspace``.

    :raises AssertionError: from the first check that fails, listing its problems.
    """
    check_plugin_contributions(plugin, name=name)
    check_finding_codes(plugin, name=name)
    check_benchmark_traces(plugin, workspace, name=name)


def check_plugin_contributions(plugin: Any, *, name: str | None = None) -> list[Finding]:
    """Register ``plugin`` alone on a fresh manager and validate everything it contributes.

    Sector packs, retrieval schemas (valid JSON Schemas), benchmark packages, lanes, objective
    profiles, proprietary identifiers (hash format) and each sector's evidence mappings are
    collected, and the validation and release-check hooks are called with samples (the pack's
    own benchmark traces); duplicates of built-in ids count as problems.

    :returns: the non-error findings (warnings, info), for further assertions.
    :raises AssertionError: listing every error finding, when one is found.
    """
    with registered(plugin, name=name) as manager:
        report = check_plugins(manager)
    errors = [finding for finding in report.findings if finding.severity == "error"]
    if errors:
        listing = "\n".join(f"  {finding.code}: {finding.message}" for finding in errors)
        raise AssertionError(f"plugin contributions do not validate:\n{listing}")
    return list(report.findings)


@pytest.fixture
def plugin_manager() -> CMFPluginManager:
    """A fresh plugin manager with the built-ins only, discarded after the test."""
    return fresh_plugin_manager()


@pytest.fixture
def cmf_pack() -> Any:
    """The plugin under test: override it in the pack's ``conftest.py`` to return the pack's
    entry-point module (``from my_pack import plugin; return plugin``)."""
    pytest.fail(
        "define a `cmf_pack` fixture in tests/conftest.py that returns the pack's entry-point "
        "module, to use pack_manager",
        pytrace=False,
    )


@pytest.fixture
def pack_manager(cmf_pack: Any) -> Iterator[CMFPluginManager]:
    """A fresh plugin manager with the built-ins and the ``cmf_pack`` plugin only (no installed
    entry point, no ``CMF_*`` switch); the pack is unregistered after the test."""
    with registered(cmf_pack) as manager:
        yield manager
