"""``cmf plugins list`` and ``cmf plugins check`` on real plugin files and the installed pack."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import importlib_metadata
import pytest
from typer.testing import CliRunner

from customer_model_factory.cli import app

_SWITCHES = (
    "CMF_PLUGINS",
    "CMF_LOAD_PLUGINS",
    "CMF_DISABLE_PLUGINS",
    "CMF_TRACE_PLUGINS",
    "CMF_SECTOR_OWNERS",
)
_EXAMPLE_INSTALLED = importlib.util.find_spec("cmf_example_retail_banking") is not None
_needs_example = pytest.mark.skipif(
    not _EXAMPLE_INSTALLED, reason="install it: pip install -e ./plugins_example"
)


@pytest.fixture(autouse=True)
def _isolated_switches() -> Iterator[None]:
    # Tests set operator switches in os.environ; the CLI itself never writes it.
    saved = {name: os.environ.pop(name, None) for name in _SWITCHES}
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def _write_plugin(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


_LOOSE_PACK = """
    from customer_model_factory import SectorPack, hookimpl
    CMF_PLUGIN_API = "1.0"

    @hookimpl
    def cmf_sector_packs():
        return [SectorPack(id="loose", version="1", title="Loose", jurisdiction="EU")]
    """


@_needs_example
def test_list_shows_the_example_pack_and_every_hook(runner: CliRunner) -> None:
    result = runner.invoke(app, ["plugins", "list", "--format", "json"])
    assert result.exit_code == 0, result.output
    (example,) = [p for p in json.loads(result.stdout) if p["name"] == "example-retail-banking"]
    assert example["distribution"] == "cmf-example-retail-banking"
    assert example["api_version"] == "1.2"
    assert example["hooks"] == [
        "cmf_benchmark_packages",
        "cmf_evidence_mappings",
        "cmf_objective_profiles",
        "cmf_proprietary_identifiers",
        "cmf_release_checks",
        "cmf_release_domains",
        "cmf_retrieval_schemas",
        "cmf_sector_packs",
        "cmf_training_lanes",
        "cmf_validate_sector_metadata",
    ]
    contributions = example["contributions"]
    assert contributions["sectors"] == ["example-retail-banking"]
    assert contributions["lanes"] == ["example-retail-banking.tfidf-logreg"]
    assert contributions["benchmark packages"] == ["example-retail-banking.conduct-v1"]
    assert contributions["release domains"] == ["example-retail-banking.consumer-duty"]
    text = runner.invoke(app, ["plugins", "list"]).stdout
    assert (
        "example-retail-banking (cmf-example-retail-banking 0.1.0, api 1.2, entry-point): ok"
        in (text)
    )
    assert "customer_model_factory.builtins" not in text


def test_without_external_plugins_only_builtins_show_with_all(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As if no pack were installed: no distribution declares an entry point.
    monkeypatch.setattr(importlib_metadata, "distributions", lambda: iter(()))
    result = runner.invoke(app, ["plugins", "list"])
    assert result.exit_code == 0
    assert result.stdout.startswith("no plugins")
    listed = json.loads(runner.invoke(app, ["plugins", "list", "--all", "-f", "json"]).stdout)
    assert [(p["name"], p["builtin"]) for p in listed] == [
        ("customer_model_factory.builtins.lanes", True),
        ("customer_model_factory.builtins.profiles", True),
    ]
    assert "linear" in listed[0]["contributions"]["lanes"]
    assert "zero_silent_unsafe_pass" in listed[1]["contributions"]["objective profiles"]


def test_hook_filter_and_unknown_hook(runner: CliRunner, tmp_path: Path) -> None:
    os.environ["CMF_LOAD_PLUGINS"] = ""
    plugin = _write_plugin(tmp_path, "loose_cli_pack", _LOOSE_PACK)
    listed = runner.invoke(
        app,
        ["--plugin", str(plugin), "plugins", "list", "--hook", "cmf_sector_packs", "-f", "json"],
    )
    assert [p["name"] for p in json.loads(listed.stdout)] == ["loose_cli_pack"]
    none = runner.invoke(app, ["plugins", "list", "--hook", "cmf_training_lanes", "-f", "json"])
    assert json.loads(none.stdout) == []
    bad = runner.invoke(app, ["plugins", "list", "--hook", "cmf_bogus"])
    assert bad.exit_code == 2
    assert "unknown hook 'cmf_bogus'" in bad.stderr
    sys.modules.pop("loose_cli_pack", None)


def test_check_is_clean_then_exits_1_on_a_broken_plugin(runner: CliRunner, tmp_path: Path) -> None:
    ok = runner.invoke(app, ["plugins", "check"])
    assert ok.exit_code == 0, ok.output
    assert ": ok" in ok.stdout.splitlines()[0]
    broken = _write_plugin(tmp_path, "broken_cli_pack", "raise ImportError('no such table')\n")
    result = runner.invoke(app, ["--plugin", str(broken), "plugins", "check"])
    assert result.exit_code == 1
    assert "BROKEN" in result.stdout
    assert "PLUGIN_LOAD_FAILED" in result.stdout
    assert "ImportError: no such table" in result.stdout
    report = json.loads(
        runner.invoke(app, ["--plugin", str(broken), "plugins", "check", "-f", "json"]).stdout
    )
    assert report["ok"] is False
    assert {p["name"]: p["status"] for p in report["plugins"]}["broken_cli_pack"] == "failed"


def test_check_reports_a_raising_hook(runner: CliRunner, tmp_path: Path) -> None:
    plugin = _write_plugin(
        tmp_path,
        "raising_cli_pack",
        """
        from customer_model_factory import hookimpl
        CMF_PLUGIN_API = "1.0"

        @hookimpl
        def cmf_training_lanes():
            raise ValueError("lane registry offline")
        """,
    )
    result = runner.invoke(app, ["--plugin", str(plugin), "plugins", "check"])
    assert result.exit_code == 1
    assert (
        "PLUGIN_HOOK_FAILED: plugin 'raising_cli_pack' hook cmf_training_lanes raised "
        "ValueError: lane registry offline"
    ) in result.stdout
    sys.modules.pop("raising_cli_pack", None)


def test_api_mismatch_is_a_clear_error_and_list_exits_1(runner: CliRunner, tmp_path: Path) -> None:
    plugin = _write_plugin(tmp_path, "future_cli_pack", 'CMF_PLUGIN_API = "7.0"\n')
    result = runner.invoke(app, ["--plugin", str(plugin), "plugins", "list"])
    assert result.exit_code == 1
    assert "future_cli_pack (module, api ?, module): API-MISMATCH" in result.stdout
    assert "targets plugin API 7.0 (major 7); this core" in result.stdout
    assert "provides plugin API 1.2" in result.stdout
    sys.modules.pop("future_cli_pack", None)


@_needs_example
def test_allowlist_leaves_the_example_pack_disabled(runner: CliRunner) -> None:
    os.environ["CMF_LOAD_PLUGINS"] = "some-other-pack"
    (example,) = json.loads(runner.invoke(app, ["plugins", "list", "-f", "json"]).stdout)
    assert (example["name"], example["status"]) == ("example-retail-banking", "disabled")
    assert example["error"] == "not listed in CMF_LOAD_PLUGINS"


@_needs_example
def test_disable_plugin_option_hides_the_example_pack(runner: CliRunner) -> None:
    result = runner.invoke(
        app, ["--disable-plugin", "cmf-example-retail-banking", "plugins", "list", "-f", "json"]
    )
    (example,) = json.loads(result.stdout)
    assert example["status"] == "disabled"
    assert example["hooks"] == []
    assert runner.invoke(app, ["plugins", "check"]).exit_code == 0


@_needs_example
def test_installed_cmf_lists_the_pack_in_a_subprocess(tmp_path: Path) -> None:
    cmf = shutil.which("cmf")
    argv = [cmf] if cmf else [sys.executable, "-m", "customer_model_factory"]
    env = {k: v for k, v in os.environ.items() if k not in _SWITCHES}
    result = subprocess.run(
        [*argv, "plugins", "list"], capture_output=True, text=True, check=False, env=env
    )
    assert result.returncode == 0, result.stderr
    assert "sectors: example-retail-banking" in result.stdout
    traced = subprocess.run(
        [*argv, "plugins", "check"],
        capture_output=True,
        text=True,
        check=False,
        env={**env, "CMF_TRACE_PLUGINS": "1"},
    )
    assert traced.returncode == 0
    assert "cmf-plugins: call cmf_sector_packs on example-retail-banking" in traced.stderr
