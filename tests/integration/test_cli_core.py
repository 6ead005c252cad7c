"""The CLI skeleton: version, help, error boundary, ``manifest verify`` and ``schemas export``."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import typer
from typer.testing import CliRunner

from customer_model_factory import __version__
from customer_model_factory.cli import app
from customer_model_factory.cli._app import _ErrorBoundary
from customer_model_factory.errors import ConfigError
from customer_model_factory.findings import Finding
from customer_model_factory.plugin_api import SectorEvidenceMapping

runner = CliRunner()


def _write_manifest(path):
    # A manifest kind of the catalog, so a fresh `cmf` process knows its class.
    return SectorEvidenceMapping.seal(
        sector_id="hello",
        jurisdiction="EU",
        evidence_pack_uri="file:///evidence/",
        frameworks=("ISO27001",),
        control_evidence={"audit_logging": ("decision_log_uri",)},
        findings=[Finding(code="MANIFEST_INVALID", severity="info", message="m")],
    ).write(path)


def test_version_and_help():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for group in ("manifest", "schemas"):
        assert group in result.output


def test_python_dash_m_runs_the_cli():
    result = subprocess.run(
        [sys.executable, "-m", "customer_model_factory", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0
    assert __version__ in result.stdout


def test_unknown_command_is_a_usage_error():
    result = runner.invoke(app, ["no-such-group"])
    assert result.exit_code == 2


def test_manifest_verify_accepts_an_intact_manifest(tmp_path):
    path = _write_manifest(tmp_path / "m.json")
    result = runner.invoke(app, ["manifest", "verify", str(path)])
    assert result.exit_code == 0, result.output
    assert "ok" in result.output and "mapping_hash" in result.output


def test_manifest_verify_names_the_file_and_both_hashes_of_a_tampered_manifest(tmp_path):
    good = _write_manifest(tmp_path / "good.json")
    bad = _write_manifest(tmp_path / "bad.json")
    stored = json.loads(bad.read_text())["mapping_hash"]
    bad.write_bytes(bad.read_bytes().replace(b"hello", b"hellp"))
    result = runner.invoke(app, ["manifest", "verify", str(good), str(bad)])
    assert result.exit_code == 2
    assert str(bad) in result.output and stored in result.output
    assert "recomputed sha256:" in result.output
    assert "Traceback" not in result.output


def test_manifest_verify_json_output(tmp_path):
    path = _write_manifest(tmp_path / "m.json")
    result = runner.invoke(app, ["manifest", "verify", "--format", "json", str(path)])
    assert result.exit_code == 0
    payload = json.loads(result.stdout)
    [check] = payload["manifests"]
    assert check["ok"] is True and check["stored"] == check["actual"]
    assert payload["ready"] is True and payload["links"] == []


def test_manifest_verify_of_a_missing_file_exits_2(tmp_path):
    result = runner.invoke(app, ["manifest", "verify", str(tmp_path / "nope.json")])
    assert result.exit_code == 2
    assert "file not found" in result.output


def test_cmf_binary_prints_one_line_without_traceback(tmp_path):
    path = _write_manifest(tmp_path / "m.json")
    path.write_bytes(path.read_bytes().replace(b"hello", b"jello"))
    result = subprocess.run(
        [sys.executable, "-m", "customer_model_factory", "manifest", "verify", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1


def _boundary_app(error: Exception) -> typer.Typer:
    probe = typer.Typer(cls=_ErrorBoundary)

    @probe.callback()
    def root() -> None:
        pass

    @probe.command()
    def fail() -> None:
        raise error

    return probe


def test_error_boundary_maps_library_errors_to_their_exit_code(monkeypatch):
    monkeypatch.delenv("CMF_DEBUG", raising=False)
    result = runner.invoke(_boundary_app(ConfigError("bad value", path="w.toml", line=3)), ["fail"])
    assert result.exit_code == 2
    assert result.output.strip() == "error: w.toml:3: bad value"


def test_error_boundary_reports_internal_errors_with_exit_3(monkeypatch):
    monkeypatch.delenv("CMF_DEBUG", raising=False)
    result = runner.invoke(_boundary_app(ZeroDivisionError("boom")), ["fail"])
    assert result.exit_code == 3
    assert "internal error: ZeroDivisionError: boom" in result.output
    assert "Traceback" not in result.output


def test_debug_shows_the_traceback(monkeypatch):
    monkeypatch.setenv("CMF_DEBUG", "1")
    result = runner.invoke(_boundary_app(ConfigError("bad value")), ["fail"])
    assert result.exit_code == 2
    assert "Traceback" in result.output


def test_debug_flag_sets_debug_mode(tmp_path, monkeypatch):
    monkeypatch.delenv("CMF_DEBUG", raising=False)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "customer_model_factory",
            "--debug",
            "manifest",
            "verify",
            str(tmp_path / "missing.json"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2


@pytest.fixture
def schema_dir(tmp_path):
    result = runner.invoke(app, ["schemas", "export", "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    return tmp_path


def test_schemas_export_then_check_is_fresh(schema_dir):
    result = runner.invoke(app, ["schemas", "export", "--check", "--dir", str(schema_dir)])
    assert result.exit_code == 0, result.output


def test_schemas_check_names_a_stale_file_and_the_fix(schema_dir):
    files = sorted(schema_dir.glob("customer-model-factory-*.schema.json"))
    if not files:
        pytest.skip("the catalog publishes no schema yet")
    stale = files[0]
    stale.write_text(stale.read_text().replace('"title"', '"titel"', 1))
    result = runner.invoke(app, ["schemas", "export", "--check", "--dir", str(schema_dir)])
    assert result.exit_code == 1
    assert str(stale) in result.output and "cmf schemas export" in result.output


def test_schemas_check_reports_orphans_and_export_removes_them(schema_dir):
    orphan = schema_dir / "customer-model-factory-retired.schema.json"
    orphan.write_text("{}")
    result = runner.invoke(app, ["schemas", "export", "--check", "--dir", str(schema_dir)])
    assert result.exit_code == 1 and "no model publishes" in result.output
    runner.invoke(app, ["schemas", "export", "--dir", str(schema_dir)])
    assert not orphan.exists()
