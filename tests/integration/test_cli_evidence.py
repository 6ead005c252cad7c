"""``cmf evidence build | export | verify`` on a real chain, and an exported pack checked with
standard tools only: coreutils ``sha256sum -c`` and ``tar``, and the in-toto statement's subjects
recomputed with ``hashlib`` and ``json``."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from customer_model_factory.cli import app

from ..conftest import validate_against_committed_schema
from ..stage3_support import needs_lane_plugin_option
from ..stage_deploy_evidence_support import (
    PACK_EVIDENCE,
    Chain,
    build_chain,
    write_deployment,
    write_operational_files,
)

pytest.importorskip("cmf_example_retail_banking", reason="the example pack is not installed")
SHA256SUM = shutil.which("sha256sum")
TAR = shutil.which("tar")


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Chain:
    return build_chain(tmp_path_factory.mktemp("evidence-cli"))


def _cmf(chain: Chain, *args: str):
    return CliRunner().invoke(app, ["--home", str(chain.home), *needs_lane_plugin_option(), *args])


def _build_args(chain: Chain, root: Path, output: Path, *extra: str) -> list[str]:
    deployment = write_deployment(chain, root / "deployment.json")
    files = write_operational_files(root / "ops")
    args = [
        "evidence", "build", "--deployment", str(deployment), "--selection", str(chain.selection),
        "--result", str(chain.test), "--audit-log", str(files["audit_log"]),
        "--rollback-package", str(files["rollback"]), "--telemetry", str(files["telemetry"]),
        "--classification", "confidential", "--export-uri", "file:///srv/cmf/evidence/p.tar.gz",
        "--package-id", "retail-evidence-1", "-o", str(output),
    ]  # fmt: skip
    for kind in PACK_EVIDENCE:
        args += ["--evidence", f"{kind}={files[kind]}"]
    return [*args, *extra]


@pytest.fixture(scope="module")
def built(chain: Chain, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("evidence-built")
    output = root / "evidence_pack.json"
    result = _cmf(chain, *_build_args(chain, root, output))
    assert result.exit_code == 0, result.output
    assert result.output.startswith("READY  evidence pack retail-evidence-1")
    return output


def test_the_built_manifest_validates_against_its_schema(built):
    validate_against_committed_schema("evidence-pack", json.loads(built.read_text()))


@pytest.mark.skipif(SHA256SUM is None or TAR is None, reason="coreutils sha256sum / tar absent")
def test_an_exported_pack_passes_sha256sum_and_its_statement_matches_with_stdlib_only(
    chain, built, tmp_path
):
    archive = tmp_path / "pack.tar.gz"
    exported = _cmf(chain, "evidence", "export", str(built), "-o", str(archive))
    assert exported.exit_code == 0, exported.output
    unpacked = tmp_path / "unpacked"
    unpacked.mkdir()
    subprocess.run([TAR, "-xzf", str(archive), "-C", str(unpacked)], check=True)
    checked = subprocess.run(
        [SHA256SUM, "-c", "SHA256SUMS"], cwd=unpacked, capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.count(": OK") == len((unpacked / "SHA256SUMS").read_text().splitlines())
    statement = json.loads((unpacked / "statement.intoto.json").read_text())
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    manifest = json.loads((unpacked / "evidence_pack.json").read_text())
    expected_names = {a["path"] for a in manifest["artefact_files"]} | {"evidence_pack.json"}
    assert {s["name"] for s in statement["subject"]} == expected_names
    for subject in statement["subject"]:
        data = (unpacked / subject["name"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == subject["digest"]["sha256"], subject["name"]
    kinds = {entry["kind"]: entry["hash"] for entry in statement["predicate"]["chain"]}
    assert kinds["evidence-pack"] == manifest["evidence_hash"]
    tampered = unpacked / "artefacts" / "telemetry.json"
    tampered.write_text("{}\n")
    again = subprocess.run(
        [SHA256SUM, "-c", "SHA256SUMS"], cwd=unpacked, capture_output=True, text=True, check=False
    )
    assert again.returncode != 0 and "artefacts/telemetry.json: FAILED" in again.stdout


def test_export_then_verify_through_the_cli(chain, built, tmp_path):
    directory = tmp_path / "pack"
    assert _cmf(chain, "evidence", "export", str(built), "-o", str(directory)).exit_code == 0
    verified = _cmf(chain, "evidence", "verify", str(directory))
    assert verified.exit_code == 0, verified.output
    assert verified.output.startswith("ok  ")
    (directory / "extra.txt").write_text("x\n")
    mismatch = _cmf(chain, "evidence", "verify", str(directory), "--format", "json")
    assert mismatch.exit_code == 1
    assert json.loads(mismatch.output)["problems"][0]["path"] == "extra.txt"
    assert _cmf(chain, "evidence", "verify", str(tmp_path / "absent")).exit_code == 2


def test_a_missing_evidence_kind_exits_1_naming_the_kind(chain, tmp_path):
    args = _build_args(chain, tmp_path, tmp_path / "e.json")
    index = args.index(next(a for a in args if a.startswith("model_validation_report=")))
    del args[index - 1 : index + 1]
    result = _cmf(chain, *args)
    assert result.exit_code == 1, result.output
    assert "EVIDENCE_CONTROL_EVIDENCE_MISSING" in result.output
    assert "model_validation_report" in result.output
    exported = _cmf(
        chain, "evidence", "export", str(tmp_path / "e.json"), "-o", str(tmp_path / "p")
    )
    assert exported.exit_code == 1 and "EVIDENCE_NOT_READY" in exported.output


@pytest.mark.parametrize(
    "extra",
    [
        ("--classification", "secret"),
        ("--evidence", "no-equals-sign"),
        ("--callback-endpoint", "https://u:pw@hooks.example.com/", "--allow-callbacks"),
        ("--package-id", ""),
    ],
)
def test_malformed_options_exit_2_without_a_traceback(chain, tmp_path, extra):
    args = _build_args(chain, tmp_path, tmp_path / "e.json")
    if extra[0] in args:
        position = args.index(extra[0])
        del args[position : position + 2]
    result = _cmf(chain, *args, *extra)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "internal error" not in result.output
    assert "pw@" not in result.output


def test_callbacks_without_opt_in_exit_1(chain, tmp_path):
    args = _build_args(
        chain, tmp_path, tmp_path / "e.json", "--callback-endpoint", "https://hooks.example.com/x"
    )
    result = _cmf(chain, *args)
    assert result.exit_code == 1 and "EVIDENCE_CALLBACKS_NOT_ALLOWED" in result.output


def test_an_output_that_is_an_input_is_refused(chain, tmp_path):
    args = _build_args(chain, tmp_path, tmp_path / "deployment.json")
    before = (tmp_path / "deployment.json").read_bytes()
    result = _cmf(chain, *args)
    assert result.exit_code == 2 and "is also an input" in result.output
    assert (tmp_path / "deployment.json").read_bytes() == before


def test_the_chain_verifies_from_the_evidence_pack_back_to_the_dataset_report(chain, built):
    # --search: the bundle links its selection by hash only (no URI), so it is looked up there.
    verified = _cmf(chain, "manifest", "verify", "--chain", str(built), "--search", str(chain.root))
    assert verified.exit_code == 0, verified.output
    for kind in ("deployment", "selection-report", "gate-receipt", "audit-log", "model",
                 "sector-evidence-mapping", "dataset-report"):  # fmt: skip
        assert f"input {kind} " in verified.output, kind


def test_an_output_that_is_an_input_named_by_file_uri_is_refused(chain, tmp_path):
    args = _build_args(chain, tmp_path, tmp_path / "e.json")
    audit = Path(args[args.index("--audit-log") + 1])
    args[args.index("--audit-log") + 1] = audit.as_uri()
    args[args.index("-o") + 1] = str(audit)
    before = audit.read_bytes()
    result = _cmf(chain, *args)
    assert result.exit_code == 2 and "is also an input" in result.output
    assert audit.read_bytes() == before
