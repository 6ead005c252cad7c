"""``cmf manifest verify --chain`` on real manifests: a dataset report and a manifest linking it."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from customer_model_factory.catalog import verify_chain
from customer_model_factory.cli import app
from customer_model_factory.plugin_api import SectorEvidenceMapping

from .test_cli_dataset import WORKSPACE_TOML, trace

_CLI = Path(__file__).resolve().parents[2] / "core" / "customer_model_factory" / "cli"


@pytest.fixture
def chain(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "workspace.toml").write_text(WORKSPACE_TOML, encoding="utf-8")
    traces = tmp_path / "traces.jsonl"
    traces.write_bytes(b"".join(orjson.dumps(trace(i)) + b"\n" for i in range(6)))
    result = CliRunner().invoke(
        app,
        ["dataset", "validate", str(traces), "-w", str(tmp_path / "workspace.toml"),
         "-o", str(tmp_path / "dataset-report.json")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "dataset-report.json").read_text())
    assert report["kind"] == "dataset-report" and report["inputs"] == []
    downstream = SectorEvidenceMapping.seal(
        sector_id="demo",
        jurisdiction="EU",
        evidence_pack_uri="file:///evidence/",
        frameworks=("ISO27001",),
        control_evidence={"dataset_lineage": ("dataset_hash",)},
        inputs=[
            {"kind": "dataset-report", "hash": report["report_hash"], "uri": "dataset-report.json"}
        ],
    )
    path = downstream.write(tmp_path / "linked.json")
    return {"report": tmp_path / "dataset-report.json", "linked": path, "tmp": tmp_path}


def _verify(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "customer_model_factory", "manifest", "verify", *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_a_manifest_linking_an_upstream_manifest_verifies(chain: dict[str, Path]) -> None:
    result = _verify("--chain", str(chain["linked"]))
    assert result.returncode == 0, result.stderr
    assert "input dataset-report" in result.stdout and "ok" in result.stdout
    assert verify_chain([chain["linked"]]).ready


def test_one_edited_byte_upstream_exits_2_naming_the_link(chain: dict[str, Path]) -> None:
    raw = chain["report"].read_bytes()
    chain["report"].write_bytes(raw.replace(b'"acme"', b'"acmf"', 1))
    result = _verify("--chain", str(chain["linked"]))
    assert result.returncode == 2
    assert f"{chain['linked']}: input dataset-report" in result.stderr
    assert "report_hash mismatch" in result.stderr
    assert "Traceback" not in result.stderr
    # Without --chain only the named file is verified, and it is intact.
    assert _verify(str(chain["linked"])).returncode == 0


def test_a_deleted_upstream_exits_1_naming_the_link(chain: dict[str, Path]) -> None:
    chain["report"].unlink()
    result = _verify("--chain", str(chain["linked"]))
    assert result.returncode == 1
    assert f"{chain['linked']}: input dataset-report" in result.stderr
    assert "not found" in result.stderr


def test_a_link_is_found_by_hash_in_a_search_directory(chain: dict[str, Path]) -> None:
    elsewhere = chain["tmp"] / "archive"
    elsewhere.mkdir()
    chain["report"].rename(elsewhere / "renamed.json")
    assert _verify("--chain", str(chain["linked"])).returncode == 1
    result = _verify("--chain", "--search", str(elsewhere), str(chain["linked"]))
    assert result.returncode == 0, result.stderr


def test_chain_json_names_every_link(chain: dict[str, Path]) -> None:
    result = _verify("--chain", "--format", "json", str(chain["linked"]))
    payload = json.loads(result.stdout)
    assert payload["ready"] is True and payload["exit_code"] == 0
    assert [link["kind"] for link in payload["links"]] == ["dataset-report"]
    assert [m["kind"] for m in payload["manifests"]] == [
        "sector-evidence-mapping",
        "dataset-report",
    ]


def test_a_manifest_without_kind_is_refused_not_guessed(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"schema_version": "1", "thing_hash": "sha256:" + "0" * 64}))
    result = _verify(str(path))
    assert result.returncode == 2
    assert "no manifest kind" in result.stderr


def _writes_environ(tree: ast.AST) -> list[int]:
    lines = []
    for node in ast.walk(tree):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        elif isinstance(node, ast.Delete):
            targets = node.targets
        for target in targets:
            if isinstance(target, ast.Subscript) and "environ" in ast.unparse(target.value):
                lines.append(node.lineno)
        if isinstance(node, ast.Call):
            name = ast.unparse(node.func)
            if name.startswith(("os.environ.", "environ.")) and name.split(".")[-1] in (
                "update", "setdefault", "pop", "popitem", "clear", "__setitem__",
            ):  # fmt: skip
                lines.append(node.lineno)
            if name in ("os.putenv", "os.unsetenv", "putenv", "unsetenv"):
                lines.append(node.lineno)
    return sorted(lines)


def test_no_cli_module_writes_the_environment() -> None:
    offenders = {
        path.name: lines
        for path in sorted(_CLI.glob("*.py"))
        if (lines := _writes_environ(ast.parse(path.read_text(encoding="utf-8"))))
    }
    assert offenders == {}, f"the CLI passes a RunContext, it never writes os.environ: {offenders}"


def test_the_environment_writer_detector_catches_every_form() -> None:
    source = (
        "import os\nos.environ['A'] = '1'\nos.environ.update(B='2')\n"
        "os.environ.pop('C')\nos.putenv('D', '4')\ndel os.environ['E']\n"
    )
    assert _writes_environ(ast.parse(source)) == [2, 3, 4, 5, 6]
