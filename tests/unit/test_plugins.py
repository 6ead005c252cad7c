"""The plugin manager: loading, operator switches, failure isolation, contributions, listing."""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import importlib_metadata
import pytest

from customer_model_factory import (
    BenchmarkPackage,
    Finding,
    ObjectiveProfile,
    ProprietaryIdentifiers,
    ReleaseCheckInput,
    SectorPack,
    TrainingLaneSpec,
    hookimpl,
)
from customer_model_factory.errors import InputError, PluginError
from customer_model_factory.plugins import (
    ENTRY_POINT_GROUP,
    PluginAPIError,
    call_isolated,
    check_plugins,
    collect_benchmark_packages,
    collect_objective_profiles,
    collect_proprietary_identifiers,
    collect_release_checks,
    collect_retrieval_schemas,
    collect_sector_packs,
    collect_training_lanes,
    create_plugin_manager,
    hook_names,
)
from customer_model_factory.plugins import list_plugins as _list_plugins
from customer_model_factory.testing import fresh_plugin_manager, registered

_GOOD_HASH = "sha256:" + "ab" * 32


class _Pack:
    """An in-process sector pack; ``sector`` and ``fail`` vary per test."""

    CMF_PLUGIN_API = "1.1"

    def __init__(self, sector: str = "alpha", *, fail: bool = False) -> None:
        self.sector = sector
        self.fail = fail
        self.calls = 0

    @hookimpl
    def cmf_sector_packs(self) -> list[SectorPack]:
        self.calls += 1
        if self.fail:
            raise RuntimeError("pack table missing\nsecond line")
        return [SectorPack(id=self.sector, version="1", title="T", jurisdiction="EU")]

    def helper_not_a_hook(self) -> None:
        raise AssertionError("unprefixed functions must never be called")


def _codes(findings: list[Finding] | tuple[Finding, ...]) -> list[str]:
    return [finding.code for finding in findings]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("CMF_PLUGINS", "CMF_LOAD_PLUGINS", "CMF_DISABLE_PLUGINS", "CMF_TRACE_PLUGINS"):
        monkeypatch.delenv(variable, raising=False)


def list_plugins(pm: Any, **kwargs: Any) -> list[Any]:
    return list(_list_plugins(pm, **kwargs).plugins)


@pytest.fixture
def write_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str, str], Path]:
    """Write an importable plugin module into tmp_path; forget it from sys.modules afterwards."""
    monkeypatch.syspath_prepend(str(tmp_path))

    def write(name: str, source: str) -> Path:
        path = tmp_path / f"{name}.py"
        path.write_text(textwrap.dedent(source), encoding="utf-8")
        monkeypatch.delitem(sys.modules, name, raising=False)
        return path

    return write


def _pack_source(sector: str, api: str = 'CMF_PLUGIN_API = "1.1"') -> str:
    return f"""
        from customer_model_factory import SectorPack, hookimpl
        {api}

        @hookimpl
        def cmf_sector_packs():
            return [SectorPack(id={sector!r}, version="1", title="T", jurisdiction="EU")]
        """


class _FakeDist:
    """Just what the loader reads of an importlib.metadata distribution."""

    def __init__(self, name: str, entry_points: list[tuple[str, str]]) -> None:
        self.metadata = {"name": name}
        self.version = "9.9"
        self.entry_points = [
            importlib_metadata.EntryPoint(name=ep_name, value=value, group=ENTRY_POINT_GROUP)
            for ep_name, value in entry_points
        ] + [importlib_metadata.EntryPoint(name="other", value="os", group="console_scripts")]


# ---- in-process registration ----


def test_pack_registered_in_process_contributes_its_sector() -> None:
    pack = _Pack("alpha")
    with registered(pack) as pm:
        packs, findings = collect_sector_packs(pm)
        assert list(packs) == ["alpha"]
        assert findings == []
        (info,) = list_plugins(pm)
        assert info.source == "in-process"
        assert info.sectors == ("alpha",)
        assert info.hooks == ("cmf_sector_packs",)
    assert collect_sector_packs(pm)[0] == {}


def test_contributions_are_cached_until_a_plugin_changes() -> None:
    pack = _Pack("alpha")
    with registered(pack) as pm:
        collect_sector_packs(pm)
        collect_sector_packs(pm)
        assert pack.calls == 1
        with registered(_Pack("beta"), pm):
            assert sorted(collect_sector_packs(pm)[0]) == ["alpha", "beta"]
        assert pack.calls == 2


def test_plugin_without_api_version_is_rejected_naming_it() -> None:
    class NoApi:
        @hookimpl
        def cmf_sector_packs(self) -> list[SectorPack]:
            return []

    pm = fresh_plugin_manager()
    with pytest.raises(PluginAPIError, match="declares no CMF_PLUGIN_API") as caught:
        pm.register(NoApi(), "no-api-pack")
    assert "no-api-pack" in str(caught.value)
    assert pm.get_plugin("no-api-pack") is None


def test_plugin_with_other_api_version_is_rejected() -> None:
    class Future(_Pack):
        CMF_PLUGIN_API = "2.0"

    with pytest.raises(PluginAPIError, match=r"targets plugin API 2.0 \(major 2\); this core"):
        fresh_plugin_manager().register(Future(), "future-pack")

    class Newer(_Pack):
        CMF_PLUGIN_API = "1.9"

    with pytest.raises(PluginAPIError, match=r"targets plugin API 1.9, newer than 1.2.*upgrade"):
        fresh_plugin_manager().register(Newer(), "newer-pack")


@pytest.mark.parametrize("declared", ["1.0", "1.1", "1.2"])
def test_a_pack_targeting_an_older_or_equal_minor_loads(declared: str) -> None:
    class Older(_Pack):
        CMF_PLUGIN_API = declared

    pm = fresh_plugin_manager()
    assert pm.register(Older(), "older") == "older"
    assert pm.plugin_records()["older"].api_version == declared
    assert not [f for f in pm.findings if f.code == "PLUGIN_DEPRECATED"]


def test_the_integer_api_form_loads_with_a_deprecation_warning() -> None:
    class Legacy(_Pack):
        CMF_PLUGIN_API = 1

    pm = fresh_plugin_manager()
    assert pm.register(Legacy(), "legacy") == "legacy"
    (note,) = [f for f in pm.findings if f.code == "PLUGIN_DEPRECATED"]
    assert note.severity == "warning" and '"1.0"' in note.message


@pytest.mark.parametrize("declared", ["1", "v1.1", "1.1.0", 1.1, True, 2])
def test_a_malformed_api_version_is_refused(declared: object) -> None:
    class Odd(_Pack):
        CMF_PLUGIN_API = declared

    with pytest.raises(PluginAPIError, match=r"MAJOR\.MINOR"):
        fresh_plugin_manager().register(Odd(), "odd")


def test_unknown_cmf_hook_is_rejected_and_unregistered() -> None:
    class Typo:
        CMF_PLUGIN_API = "1.1"

        @hookimpl
        def cmf_sector_pack(self) -> list[SectorPack]:
            return []

    pm = fresh_plugin_manager()
    with pytest.raises(PluginError, match="unknown hook cmf_sector_pack"):
        pm.register(Typo(), "typo")
    assert pm.get_plugin("typo") is None


def test_hook_wrappers_are_rejected_because_hooks_are_called_in_isolation() -> None:
    class Wrapper:
        CMF_PLUGIN_API = "1.1"

        @hookimpl(wrapper=True)
        def cmf_sector_packs(self) -> Any:
            return (yield)

    with pytest.raises(PluginError, match="no wrappers"):
        fresh_plugin_manager().register(Wrapper(), "wrapper")


def test_unprefixed_functions_are_ignored() -> None:
    pack = _Pack()
    with registered(pack, name="alpha-pack") as pm:
        assert {caller.name for caller in pm.get_hookcallers(pack) or ()} == {"cmf_sector_packs"}
        collect_sector_packs(pm)


# ---- failure isolation ----


def test_raising_hook_becomes_finding_and_other_plugins_still_run() -> None:
    pm = fresh_plugin_manager()
    with (
        registered(_Pack("alpha"), pm, name="good"),
        registered(_Pack("beta", fail=True), pm, name="bad"),
    ):
        packs, findings = collect_sector_packs(pm)
        assert list(packs) == ["alpha"]
        (failure,) = findings
        assert failure.code == "PLUGIN_HOOK_FAILED"
        assert failure.severity == "error"
        assert failure.message == (
            "plugin 'bad' hook cmf_sector_packs raised RuntimeError: pack table missing second line"
        )
        assert not check_plugins(pm).ok


def test_call_isolated_accepts_a_hook_caller_and_a_name(monkeypatch: pytest.MonkeyPatch) -> None:
    pm = fresh_plugin_manager()
    with (
        registered(_Pack("alpha"), pm, name="good"),
        registered(_Pack("beta", fail=True), pm, name="bad"),
    ):
        results, findings = call_isolated(pm, pm.hook.cmf_sector_packs)
        assert [pack.id for result in results for pack in result] == ["alpha"]
        assert _codes(findings) == ["PLUGIN_HOOK_FAILED"]
        by_name, named_findings = call_isolated(pm, "cmf_sector_packs")
        assert by_name == results
        assert named_findings == findings
        only_bad, bad_findings = call_isolated(pm, "cmf_sector_packs", owner="bad")
        assert only_bad == [] and bad_findings == findings


def test_two_packs_claiming_one_sector_block_until_the_operator_chooses() -> None:
    pm = fresh_plugin_manager()
    with (
        registered(_Pack("shared"), pm, name="pack-b"),
        registered(_Pack("shared"), pm, name="pack-a"),
    ):
        packs, findings = collect_sector_packs(pm)
        assert packs == {}  # never decided by name order
        (conflict,) = findings
        assert conflict.code == "PLUGIN_SECTOR_CONFLICT" and conflict.severity == "error"
        assert "'pack-a'" in conflict.message and "'pack-b'" in conflict.message
        assert pm.sector_dispatch("shared") is None
        assert "PLUGIN_SECTOR_CONFLICT" in _codes(pm.stage_findings())
        pm.choose_sector_owners({"shared": "pack-b"})
        packs, findings = collect_sector_packs(pm)
        assert list(packs) == ["shared"]
        assert _codes(findings) == ["PLUGIN_SECTOR_SHADOWED"]
        assert findings[0].severity == "info"
        assert pm.sector_dispatch("shared").plugin_name == "pack-b"
        statuses = {info.name: info.status for info in list_plugins(pm)}
        assert statuses == {"pack-a": "shadowed", "pack-b": "ok"}


def test_two_plugins_claiming_one_lane_name_keep_neither() -> None:
    class Lane:
        CMF_PLUGIN_API = "1.1"

        @hookimpl
        def cmf_training_lanes(self) -> list[TrainingLaneSpec]:
            return [TrainingLaneSpec(name="same", requires_private_execution=False)]

    pm = fresh_plugin_manager()
    with registered(Lane(), pm, name="lane-b"), registered(Lane(), pm, name="lane-a"):
        lanes, findings = collect_training_lanes(pm)
        assert "same" not in lanes
        assert "linear" in lanes  # the built-in lanes come through the same hook
        assert _codes(findings) == ["PLUGIN_DUPLICATE_ID"]


def test_contribution_that_fails_validation_is_reported_and_left_out() -> None:
    class Sloppy:
        CMF_PLUGIN_API = "1.1"

        @hookimpl
        def cmf_retrieval_schemas(self) -> list[Any]:
            return [
                {"id": "ok.docs", "version": "1", "json_schema": {"type": "object"}},
                {"id": "Bad Id", "version": "1", "json_schema": {}},
                {"id": "broken.schema", "version": "1", "json_schema": {"type": 12}},
            ]

        @hookimpl
        def cmf_benchmark_packages(self) -> Any:
            return "not a list"

    with registered(Sloppy(), name="sloppy") as pm:
        schemas, findings = collect_retrieval_schemas(pm)
        assert list(schemas) == ["ok.docs"]
        assert _codes(findings) == ["PLUGIN_INVALID_CONTRIBUTION"] * 2
        assert "not a valid JSON Schema" in findings[1].message
        packages, package_findings = collect_benchmark_packages(pm)
        assert packages == {}
        assert "returned str" in package_findings[0].message


def test_every_collector_returns_sorted_validated_contributions() -> None:
    class Full:
        CMF_PLUGIN_API = "1.1"

        @hookimpl
        def cmf_benchmark_packages(self) -> list[BenchmarkPackage]:
            return [
                BenchmarkPackage(id=i, version="1", trace_source="t.jsonl", claim_boundary="c")
                for i in ("zeta", "eta")
            ]

        @hookimpl
        def cmf_training_lanes(self) -> list[TrainingLaneSpec]:
            return [TrainingLaneSpec(name="lane", requires_private_execution=True)]

        @hookimpl
        def cmf_objective_profiles(self) -> list[ObjectiveProfile]:
            return [ObjectiveProfile(name="mine", score_weights={"f1": 1.0})]

        @hookimpl
        def cmf_proprietary_identifiers(self) -> list[ProprietaryIdentifiers]:
            return [
                ProprietaryIdentifiers(source="b", hashed=(_GOOD_HASH,), salt="s"),
                ProprietaryIdentifiers(source="a", path_globs=("**/private/**",)),
                ProprietaryIdentifiers(source="c", hashed=("md5:1",), salt="s"),
                ProprietaryIdentifiers(source="d", hashed=(_GOOD_HASH,)),
            ]

        @hookimpl
        def cmf_release_checks(self, release: ReleaseCheckInput) -> list[Finding]:
            return [
                Finding(code="RELEASE_GATE_CLOSED", severity="error", message=release.tenant_id)
            ]

    with registered(Full(), name="full") as pm:
        assert list(collect_benchmark_packages(pm)[0]) == ["eta", "zeta"]
        lanes = collect_training_lanes(pm)[0]
        assert "lane" in lanes
        assert list(lanes) == sorted(lanes)
        profiles = collect_objective_profiles(pm)[0]
        assert "mine" in profiles
        assert "zero_silent_unsafe_pass" in profiles  # the built-ins come through the same hook
        rules, findings = collect_proprietary_identifiers(pm)
        assert [rule.source for rule in rules] == ["a", "b"]
        assert sorted(f.message.split(": ", 1)[1] for f in findings) == [
            "source 'c': 1 hashed identifier(s) are not 'sha256:' + 64 lower-case hex digits",
            "source 'd': hashed identifiers need a salt",
        ]
        release = ReleaseCheckInput(customer_id="c", workspace_id="w", tenant_id="no")
        blockers, problems = collect_release_checks(release, pm)
        assert _codes(blockers) == ["RELEASE_GATE_CLOSED"]
        assert blockers[0].message == "no"
        assert problems == []


def test_builtins_provide_the_reference_objective_profiles() -> None:
    profiles, findings = collect_objective_profiles(fresh_plugin_manager())
    assert findings == []
    assert list(profiles) == [
        "balanced",
        "conservative",
        "high_recall",
        "low_latency",
        "max_recall_at_fpr",
        "zero_silent_unsafe_pass",
    ]
    assert profiles["high_recall"].constraints[0].holds(0.9)
    assert not profiles["high_recall"].constraints[0].holds(0.89)
    assert profiles["zero_silent_unsafe_pass"].min_high_risk_samples >= 1


# ---- entry points ----


def test_entry_points_load_sorted_and_failures_become_findings(
    write_module: Callable[[str, str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_module("ep_good_pack", _pack_source("good-sector"))
    write_module("ep_broken_pack", "raise RuntimeError('boom at import')\n")
    write_module("ep_future_pack", _pack_source("future", api='CMF_PLUGIN_API = "2.0"'))
    write_module("ep_ancient_pack", _pack_source("ancient", api=""))
    dists = [
        _FakeDist("zz-good-dist", [("zz-good", "ep_good_pack")]),
        _FakeDist("broken-dist", [("broken", "ep_broken_pack")]),
        _FakeDist("future-dist", [("future", "ep_future_pack")]),
        _FakeDist("ancient-dist", [("ancient", "ep_ancient_pack")]),
    ]
    monkeypatch.setattr(importlib_metadata, "distributions", lambda: iter(dists))

    pm = create_plugin_manager(environ={})

    records = pm.plugin_records()
    assert list(records) == [
        "customer_model_factory.builtins.lanes",
        "customer_model_factory.builtins.profiles",
        "ancient",
        "broken",
        "future",
        "zz-good",
    ]
    assert {name: record.status for name, record in records.items()} == {
        "customer_model_factory.builtins.lanes": "ok",
        "customer_model_factory.builtins.profiles": "ok",
        "ancient": "api-mismatch",
        "broken": "failed",
        "future": "api-mismatch",
        "zz-good": "ok",
    }
    messages = {finding.code: [] for finding in pm.findings}
    for finding in pm.findings:
        messages[finding.code].append(finding.message)
    (load_failed,) = messages["PLUGIN_LOAD_FAILED"]
    assert "'broken-dist'" in load_failed
    assert "RuntimeError: boom at import" in load_failed
    assert any(
        "'ancient-dist'" in m and "declares no" in m for m in messages["PLUGIN_API_MISMATCH"]
    )
    assert any("'future-dist'" in m and "API 2.0" in m for m in messages["PLUGIN_API_MISMATCH"])
    assert pm.has_errors()
    assert list(collect_sector_packs(pm)[0]) == ["good-sector"]
    (good,) = list_plugins(pm, hook="cmf_sector_packs")
    assert (good.distribution, good.version, good.api_version) == ("zz-good-dist", "9.9", "1.1")
    stage = _codes(pm.stage_findings())
    assert stage.count("PLUGIN_API_MISMATCH") == 2 and "PLUGIN_LOAD_FAILED" in stage
    assert not _list_plugins(pm).ok
    report = check_plugins(pm)
    assert not report.ok
    assert {p.name: p.status for p in report.plugins}["broken"] == "failed"


def test_disabled_and_allowlisted_entry_points(
    write_module: Callable[[str, str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_module("ep_one_pack", _pack_source("one"))
    write_module("ep_two_pack", _pack_source("two"))
    dists = [
        _FakeDist("one-dist", [("one", "ep_one_pack")]),
        _FakeDist("two-dist", [("two", "ep_two_pack")]),
    ]
    monkeypatch.setattr(importlib_metadata, "distributions", lambda: iter(dists))

    pm = create_plugin_manager(environ={"CMF_DISABLE_PLUGINS": "one-dist"})
    assert list(collect_sector_packs(pm)[0]) == ["two"]
    assert pm.plugin_records()["one"].status == "disabled"
    assert _codes(pm.findings) == ["PLUGIN_DISABLED"]
    assert not pm.has_errors()
    assert pm.register(_Pack(), "one") is None  # a disabled name stays blocked

    pm = create_plugin_manager(disabled=["two"], environ={})
    assert list(collect_sector_packs(pm)[0]) == ["one"]

    pm = create_plugin_manager(environ={"CMF_LOAD_PLUGINS": "two"})
    assert list(collect_sector_packs(pm)[0]) == ["two"]
    assert "CMF_LOAD_PLUGINS" in (pm.plugin_records()["one"].error or "")

    pm = create_plugin_manager(environ={"CMF_LOAD_PLUGINS": ""})
    assert collect_sector_packs(pm)[0] == {}
    assert "customer_model_factory.builtins.profiles" in {n for n, _ in pm.list_name_plugin()}


def test_builtins_can_be_disabled() -> None:
    pm = create_plugin_manager(
        entry_points=False,
        environ={"CMF_DISABLE_PLUGINS": "customer_model_factory.builtins.profiles"},
    )
    assert collect_objective_profiles(pm)[0] == {}


def test_duplicate_entry_point_names_are_an_error_naming_both(
    write_module: Callable[[str, str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_module("ep_twin_pack", _pack_source("twin"))
    dists = [
        _FakeDist("first-dist", [("twin", "ep_twin_pack")]),
        _FakeDist("second-dist", [("twin", "ep_twin_pack")]),
    ]
    monkeypatch.setattr(importlib_metadata, "distributions", lambda: iter(dists))
    pm = create_plugin_manager(environ={})
    (duplicate,) = pm.findings
    assert duplicate.code == "PLUGIN_DUPLICATE_ID"
    assert "'first-dist'" in duplicate.message
    assert "'second-dist'" in duplicate.message


# ---- extra modules, tracing, the process-wide manager ----


def test_extra_modules_by_name_and_by_file(
    write_module: Callable[[str, str], Path], tmp_path: Path
) -> None:
    write_module("extra_named_pack", _pack_source("named"))
    file_path = tmp_path / "loose" / "loose_pack.py"
    file_path.parent.mkdir()
    file_path.write_text(textwrap.dedent(_pack_source("loose")), encoding="utf-8")
    pm = create_plugin_manager(
        entry_points=False,
        extra_modules=[str(file_path)],
        environ={"CMF_PLUGINS": "extra_named_pack, missing_pack_module"},
    )
    assert list(collect_sector_packs(pm)[0]) == ["loose", "named"]
    assert pm.plugin_records()["loose_pack"].source == "module"
    (failure,) = [f for f in pm.findings if f.code == "PLUGIN_LOAD_FAILED"]
    assert "'missing_pack_module'" in failure.message
    assert "ModuleNotFoundError" in failure.message
    sys.modules.pop("loose_pack", None)


def test_trace_switch_logs_every_hook_call(capsys: pytest.CaptureFixture[str]) -> None:
    pm = create_plugin_manager(entry_points=False, environ={"CMF_TRACE_PLUGINS": "1"})
    collect_objective_profiles(pm)
    pm.hook.cmf_sector_packs()
    err = capsys.readouterr().err
    assert "call cmf_objective_profiles on customer_model_factory.builtins.profiles" in err
    assert "returned list" in err
    assert "call cmf_sector_packs on nobody" in err


def test_the_library_never_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CMF_DISABLE_PLUGINS", "customer_model_factory.builtins.profiles")
    assert collect_objective_profiles(create_plugin_manager(entry_points=False))[0]
    from customer_model_factory.context import RunContext

    context = RunContext.from_environ()
    assert context.switches.disabled == ("customer_model_factory.builtins.profiles",)
    assert context.plugin_manager is context.plugin_manager
    assert "balanced" not in collect_objective_profiles(context.plugin_manager)[0]


def test_list_plugins_filters_and_rejects_unknown_hooks() -> None:
    with registered(_Pack("alpha"), name="alpha-pack") as pm:
        assert [info.name for info in list_plugins(pm)] == ["alpha-pack"]
        assert [info.name for info in list_plugins(pm, include_builtins=True)] == [
            "alpha-pack",
            "customer_model_factory.builtins.lanes",
            "customer_model_factory.builtins.profiles",
        ]
        assert list_plugins(pm, hook="cmf_training_lanes") == []
        with pytest.raises(InputError, match="unknown hook 'cmf_nope'"):
            list_plugins(pm, hook="cmf_nope")
    assert "cmf_sector_packs" in hook_names()


# ---- the installed example pack ----


def test_example_pack_loads_through_its_real_entry_point() -> None:
    pytest.importorskip(
        "cmf_example_retail_banking", reason="install it: pip install -e ./plugins_example"
    )
    pm = create_plugin_manager(environ={})
    assert not pm.has_errors(), pm.findings
    (info,) = [info for info in list_plugins(pm) if info.name == "example-retail-banking"]
    assert info.source == "entry-point"
    assert info.distribution == "cmf-example-retail-banking"
    assert info.api_version == "1.2"
    assert set(info.hooks) == set(hook_names())
    assert info.sectors == ("example-retail-banking",)
    assert check_plugins(pm).ok


# ---- helpers for pack authors ----


def test_check_plugin_contributions_lists_every_error() -> None:
    from customer_model_factory.testing import check_plugin_contributions

    class Clashing:
        CMF_PLUGIN_API = "1.1"

        @hookimpl
        def cmf_objective_profiles(self) -> list[ObjectiveProfile]:
            return [ObjectiveProfile(name="balanced", score_weights={"f1": 2.0})]

        @hookimpl
        def cmf_training_lanes(self) -> list[TrainingLaneSpec]:
            raise OSError("disk gone")

    with pytest.raises(AssertionError) as caught:
        check_plugin_contributions(Clashing(), name="clashing")
    text = str(caught.value)
    assert "PLUGIN_DUPLICATE_ID: objective profile 'balanced'" in text
    assert "PLUGIN_HOOK_FAILED: plugin 'clashing' hook cmf_training_lanes raised OSError" in text
    assert check_plugin_contributions(_Pack("fine")) == []


def test_registered_always_unregisters() -> None:
    pm = fresh_plugin_manager()
    pack = _Pack("alpha")

    def body() -> None:
        with registered(pack, pm, name="temp"):
            assert pm.get_plugin("temp") is pack
            raise RuntimeError("test body failed")

    with pytest.raises(RuntimeError, match="test body failed"):
        body()
    assert pm.get_plugin("temp") is None
    assert "temp" not in pm.plugin_records()
    pm.register(pack, "by-object")
    pm.unregister(pack)
    assert "by-object" not in pm.plugin_records()


def test_plugin_switches_are_read_once_and_parsed_strictly() -> None:
    from customer_model_factory import PluginSwitches
    from customer_model_factory.errors import ConfigError

    switches = PluginSwitches.from_environ(
        {
            "CMF_PLUGINS": "a, b.py,,",
            "CMF_LOAD_PLUGINS": "",
            "CMF_DISABLE_PLUGINS": "x",
            "CMF_TRACE_PLUGINS": "yes",
            "CMF_SECTOR_OWNERS": "lending=beta-dist",
        }
    )
    assert switches.extra_modules == ("a", "b.py")
    assert switches.allow == ()
    assert switches.disabled == ("x",)
    assert switches.trace is True
    assert switches.sector_owners == {"lending": "beta-dist"}
    assert PluginSwitches.from_environ({}).allow is None
    more = switches.adding(extra_modules=["a", "c"], sector_owners={"cards": "gamma"})
    assert more.extra_modules == ("a", "b.py", "c")
    assert more.sector_owners == {"lending": "beta-dist", "cards": "gamma"}
    with pytest.raises(ConfigError, match="two owners"):
        switches.adding(sector_owners={"lending": "alpha-dist"})
    with pytest.raises(ConfigError, match="not SECTOR=DISTRIBUTION"):
        PluginSwitches.from_environ({"CMF_SECTOR_OWNERS": "lending"})


def test_a_stage_report_records_the_owner_of_each_sector(tmp_path: Path) -> None:
    from customer_model_factory import CustomerWorkspace, SectorOwner
    from customer_model_factory.dataset import validate_customer_trace_dataset

    workspace = CustomerWorkspace(
        customer_id="c", workspace_id="w", tenant_id="t", data_classification="internal",
        required_splits=("train",),
    )  # fmt: skip
    row = {
        "trace_id": "t-1", "customer_id": "c", "tenant_id": "t", "split": "train",
        "prompt": "p", "response": "r", "expected_decision": "approve", "severity": "low",
        "label": "safe", "source_refs": ["a"], "policy_refs": ["b"], "reviewer_role": "r",
        "observed_at": "2024-01-01T00:00:00Z", "vertical": "alpha",
        "metadata": {"sector_class": "a", "knowledge_class": "b", "jurisdiction": "EU"},
    }  # fmt: skip
    with registered(_Pack("alpha"), name="alpha-pack") as pm:
        report = validate_customer_trace_dataset([row], workspace, pm=pm)
    assert report.ready, report.findings
    assert report.sector_owners == {
        "alpha": SectorOwner(plugin="alpha-pack", distribution=None, version=None, pack_version="1")
    }


def test_unregistering_a_plugin_drops_only_its_own_deprecation_findings() -> None:
    class Legacy(_Pack):
        CMF_PLUGIN_API = 1

    pm = fresh_plugin_manager()
    with registered(Legacy("one"), pm, name="legacy-a"), registered(Legacy("two"), pm, name="b"):
        assert len([f for f in pm.findings if f.code == "PLUGIN_DEPRECATED"]) == 2
        pm.unregister(name="b")
        (left,) = [f for f in pm.findings if f.code == "PLUGIN_DEPRECATED"]
        assert "'legacy-a'" in left.message
    assert not [f for f in pm.findings if f.code == "PLUGIN_DEPRECATED"]


def test_check_calls_validation_and_release_hooks_with_the_packs_own_traces(
    tmp_path: Path,
) -> None:
    traces = tmp_path / "bench.jsonl"
    rows = [
        {"trace_id": "b-1", "vertical": "gamma", "metadata": {"tier": "ok"}},
        {"trace_id": "b-2", "vertical": "gamma", "metadata": {"tier": "explodes"}},
    ]
    traces.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    seen: list[str] = []

    class Fragile:
        CMF_PLUGIN_API = "1.1"

        def __init__(self, *, release_raises: bool) -> None:
            self.release_raises = release_raises

        @hookimpl
        def cmf_sector_packs(self) -> list[SectorPack]:
            return [SectorPack(id="gamma", version="1", title="G", jurisdiction="EU")]

        @hookimpl
        def cmf_benchmark_packages(self) -> list[BenchmarkPackage]:
            return [
                BenchmarkPackage(
                    id="gamma.bench", version="1", sector_id="gamma",
                    trace_source=traces.as_uri(), claim_boundary="c",
                )
            ]  # fmt: skip

        @hookimpl
        def cmf_validate_sector_metadata(self, trace: Any, metadata: Any) -> list[Finding]:
            seen.append(trace["trace_id"])
            if metadata["tier"] == "explodes":
                raise KeyError("tier table")
            return []

        @hookimpl
        def cmf_release_checks(self, release: ReleaseCheckInput) -> list[Finding]:
            assert release.sector_ids == ("gamma",)
            if self.release_raises:
                raise RuntimeError("release check broke")
            return []

    with registered(Fragile(release_raises=False), name="fragile") as pm:
        report = check_plugins(pm)
    assert seen == ["b-1", "b-2"]  # the pack's own benchmark traces, not a made-up row
    assert not report.ok
    (failure,) = [f for f in report.findings if f.severity == "error"]
    assert "cmf_validate_sector_metadata raised KeyError" in failure.message
    with registered(Fragile(release_raises=True), name="fragile") as pm:
        codes = [f.message for f in check_plugins(pm).findings if f.severity == "error"]
    assert any("cmf_release_checks raised RuntimeError" in message for message in codes)
