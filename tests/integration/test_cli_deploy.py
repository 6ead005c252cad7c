"""``cmf deploy`` on a real stage 1-3 chain: exit codes, written manifests, refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from customer_model_factory.cli import app

from ..conftest import validate_against_committed_schema
from ..stage3_support import needs_lane_plugin_option
from ..stage_deploy_evidence_support import Chain, build_chain

pytest.importorskip("cmf_example_retail_banking", reason="the example pack is not installed")


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Chain:
    return build_chain(tmp_path_factory.mktemp("deploy-cli"))


def _args(chain: Chain, output: Path, **overrides: str | None) -> list[str]:
    options: dict[str, str | None] = {
        "--selection": str(chain.selection),
        "--result": str(chain.test),
        "--bundle": str(chain.bundle),
        "--deployment-id": "retail-uk-prod-1",
        "--environment": "production",
        "--audit-log-uri": "file:///srv/cmf/audit/decisions.jsonl",
        "--evidence-pack-uri": "file:///srv/cmf/evidence/pack.tar.gz",
        "--rollback-package-uri": "file:///srv/cmf/packages/retail-scorer-0.9.0.tar.gz",
        "--retention-days": "365",
        "--telemetry-mode": "customer_controlled",
        "--package-uri": "file:///srv/cmf/packages/retail-scorer-1.0.0.tar.gz",
        "--package-version": "1.0.0",
        "-o": str(output),
    }
    options.update(overrides)
    args = ["--home", str(chain.home), *needs_lane_plugin_option(), "deploy"]
    for name, value in options.items():
        if value is not None:
            args += [name, value]
    return args


def _run(args: list[str]):
    return CliRunner().invoke(app, args, catch_exceptions=False)


def test_a_ready_deployment_exits_0_and_validates_against_its_schema(chain, tmp_path):
    out = tmp_path / "deployment.json"
    result = _run(_args(chain, out))
    assert result.exit_code == 0, result.output
    assert result.output.startswith("READY  deployment retail-uk-prod-1 (production)")
    payload = json.loads(out.read_text())
    validate_against_committed_schema("deployment", payload)
    assert payload["ready"] is True and payload["policy"]["thresholds_source"] == "calibration"


def test_production_without_rollback_exits_1_and_writes_the_blocked_manifest(chain, tmp_path):
    out = tmp_path / "deployment.json"
    result = _run(_args(chain, out, **{"--rollback-package-uri": None}))
    assert result.exit_code == 1, result.output
    assert "DEPLOY_ROLLBACK_REQUIRED" in result.output
    assert json.loads(out.read_text())["ready"] is False


def test_a_result_that_is_not_the_selected_one_exits_2_without_output(chain, tmp_path):
    out = tmp_path / "deployment.json"
    result = CliRunner().invoke(app, _args(chain, out, **{"--result": str(chain.validation)}))
    assert result.exit_code == 2
    assert "DEPLOY_RESULT_NOT_SELECTED" in result.output
    assert "Traceback" not in result.output
    assert not out.exists()


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--environment", "prod"),
        ("--telemetry-mode", "everywhere"),
        ("--deployment-id", ""),
        ("--package-version", ""),
    ],
)
def test_malformed_options_exit_2_with_one_line(chain, tmp_path, option, value):
    result = CliRunner().invoke(app, _args(chain, tmp_path / "d.json", **{option: value}))
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "internal error" not in result.output


def test_an_output_that_is_an_input_is_refused(chain):
    before = chain.selection.read_bytes()
    result = CliRunner().invoke(app, _args(chain, chain.selection))
    assert result.exit_code == 2 and "is also an input" in result.output
    assert chain.selection.read_bytes() == before


def test_json_format_prints_the_manifest(chain, tmp_path):
    out = tmp_path / "deployment.json"
    result = _run([*_args(chain, out), "--format", "json"])
    assert result.exit_code == 0
    assert json.loads(result.output) == json.loads(out.read_text())
