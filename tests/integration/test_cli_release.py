"""``cmf release assemble`` end to end on real files: promoted, blocked, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from customer_model_factory.cli import app

from ..conftest import validate_against_committed_schema
from ..stage_release_support import (
    ReleaseChain,
    breach_fn,
    build_release_chain,
    example_pack_domains,
    write_all_domain_records,
)


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def _args(chain: ReleaseChain, output: Path, *extra: str) -> list[str]:
    return [
        "--home", str(chain.root / ".cmf"),
        "release", "assemble",
        "--release-id", "release-customer-20260518",
        "--generated-at", "2026-05-18T18:45:00Z",
        "--enterprise-readiness", str(chain.readiness),
        "--runtime-package", str(chain.path("runtime-package")),
        "--evidence-pack", str(chain.path("evidence-pack")),
        "--monitoring-manifest", str(chain.path("monitoring")),
        "--risk-register", str(chain.path("risk-register")),
        "--output", str(output),
        *extra,
    ]  # fmt: skip


def test_a_consistent_production_chain_is_promoted(runner: CliRunner, tmp_path: Path) -> None:
    chain = build_release_chain(tmp_path / "chain", environment="production")
    # The example pack (loaded by the CLI when installed) adds a domain required in production.
    extra = example_pack_domains()
    write_all_domain_records(tmp_path / "records", "production", extra=extra)
    output = tmp_path / "out" / "release_gate.json"
    result = runner.invoke(
        app, _args(chain, output, "--domain-evidence", str(tmp_path / "records"))
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("PROMOTION ALLOWED  release release-customer-20260518")
    payload = json.loads(output.read_text())
    validate_against_committed_schema("release-gate", payload)
    assert payload["promotion_allowed"] and payload["chain_verified"]
    assert len(payload["domain_evidence"]) == 10 + len(extra)
    verify = runner.invoke(app, ["manifest", "verify", "--chain", str(output)])
    assert verify.exit_code == 0, verify.output


def test_a_blocked_release_exits_1_and_still_writes_the_gate(
    runner: CliRunner, tmp_path: Path
) -> None:
    chain = build_release_chain(tmp_path / "chain", overrides={"monitoring": breach_fn(3)})
    output = tmp_path / "gate.json"
    result = runner.invoke(app, [*_args(chain, output), "--format", "json"])
    assert result.exit_code == 1, result.output
    payload = json.loads(result.stdout)
    assert payload == json.loads(output.read_text())
    assert not payload["promotion_allowed"]
    assert [b["code"] for b in payload["blockers"]] == ["RELEASE_MONITORING_FN_BREACH"]
    validate_against_committed_schema("release-gate", payload)


def test_production_without_domain_records_names_each_missing_domain(
    runner: CliRunner, tmp_path: Path
) -> None:
    chain = build_release_chain(tmp_path / "chain", environment="production")
    result = runner.invoke(app, _args(chain, tmp_path / "gate.json"))
    assert result.exit_code == 1
    assert "blocker RELEASE_DOMAIN_MISSING [domain.rollback]" in result.stdout


def test_a_tampered_input_is_exit_2_naming_the_file_without_a_traceback(tmp_path: Path) -> None:
    chain = build_release_chain(tmp_path / "chain")
    path = chain.path("evidence-pack")
    payload = json.loads(path.read_text())
    payload["classification"] = "internal"
    path.write_text(json.dumps(payload))
    result = subprocess.run(
        [sys.executable, "-m", "customer_model_factory", *_args(chain, tmp_path / "gate.json")],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "CMF_LOAD_PLUGINS": ""},
    )
    assert result.returncode == 2, result.stderr
    assert "evidence_pack.json" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "gate.json").exists()


def test_an_output_that_is_an_input_or_inside_the_records_is_refused(
    runner: CliRunner, tmp_path: Path
) -> None:
    chain = build_release_chain(tmp_path / "chain")
    before = chain.path("risk-register").read_bytes()
    result = runner.invoke(app, _args(chain, chain.path("risk-register")))
    assert result.exit_code == 2 and "is also an input" in result.output
    assert chain.path("risk-register").read_bytes() == before
    records = tmp_path / "records"
    write_all_domain_records(records, "staging", ["edge"])
    result = runner.invoke(
        app, _args(chain, records / "gate.json", "--domain-evidence", str(records))
    )
    assert result.exit_code == 2 and "--domain-evidence directory" in result.output


def test_a_bad_generated_at_is_exit_2(runner: CliRunner, tmp_path: Path) -> None:
    chain = build_release_chain(tmp_path / "chain")
    args = _args(chain, tmp_path / "gate.json")
    args[args.index("--generated-at") + 1] = "2026-05-18 late"
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "RFC 3339" in result.output
    for beyond in ("9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+01:00"):
        args[args.index("--generated-at") + 1] = beyond
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and "internal error" not in result.output, result.output


def test_an_existing_output_that_is_not_a_release_gate_is_never_overwritten(
    runner: CliRunner, tmp_path: Path
) -> None:
    chain = build_release_chain(tmp_path / "chain")
    upstream = chain.path("dataset-report")
    before = upstream.read_bytes()
    result = runner.invoke(app, _args(chain, upstream))
    assert result.exit_code == 2 and "not a release-gate manifest" in result.output
    assert upstream.read_bytes() == before
    # An earlier gate at the same place is replaced.
    gate = tmp_path / "gate.json"
    assert runner.invoke(app, _args(chain, gate)).exit_code == 0
    assert runner.invoke(app, _args(chain, gate)).exit_code == 0
