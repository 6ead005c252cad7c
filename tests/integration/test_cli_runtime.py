"""``cmf runtime build``, ``cmf score``, ``cmf runtime payload`` and ``cmf serve`` on real files,
and the two examples run as scripts against a runtime package built here."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from customer_model_factory.cli import app

from ..conftest import validate_against_committed_schema
from ..stage3_support import write_jsonl
from ..stage_runtime_support import build_chain, requests_of, write_inputs

pytest.importorskip("cmf_example_retail_banking", reason="the example pack is not installed")

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    chain = build_chain(tmp_path_factory.mktemp("cli-runtime"))
    chain["inputs"] = write_inputs(chain, chain["root"] / "inputs")
    code, _, err = _cmf(chain, *_build_args(chain, chain["root"] / "runtime"))
    assert code == 0, err
    chain["runtime"] = chain["root"] / "runtime"
    return chain


def _cmf(chain: dict[str, Any], *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["--home", str(chain["home"]), *args])
    return result.exit_code, result.stdout, result.stderr


def _build_args(chain: dict[str, Any], output: Path, **paths: Path) -> list[str]:
    inputs = {**chain["inputs"], **paths}
    return [
        "runtime", "build",
        "--deployment", str(inputs["deployment"]),
        "--evidence-pack", str(inputs["evidence_pack"]),
        "--result", str(inputs["result"]),
        "--runtime-id", "retail-runtime",
        "--runtime-mode", "customer_cloud_private",
        "--cost-per-decision", "0.0002",
        "--cost-per-compute-second", "0.01",
        "-o", str(output),
    ]  # fmt: skip


def test_build_writes_a_ready_package_that_validates_against_its_schema(chain):
    payload = json.loads((chain["runtime"] / "runtime_package.json").read_text())
    validate_against_committed_schema("runtime-package", payload)
    assert payload["ready"] is True and payload["runtime_mode"] == "customer_cloud_private"
    assert payload["runtime_config"]["cost_model"]["per_compute_second"] == 0.01
    assert (chain["runtime"] / "model" / "weights.npz").is_file()


def test_build_json_output_and_a_blocked_package_exit_1(chain, tmp_path):
    code, out, _ = _cmf(chain, *_build_args(chain, tmp_path / "a"), "--format", "json")
    assert code == 0 and json.loads(out)["runtime_id"] == "retail-runtime"
    code, out, _ = _cmf(
        chain, *_build_args(chain, tmp_path / "b", result=chain["root"] / "validation.json")
    )
    assert code == 1
    assert "RUNTIME_RESULT_NOT_SELECTED" in out
    assert json.loads((tmp_path / "b" / "runtime_package.json").read_text())["ready"] is False


def test_build_refuses_bad_input_with_exit_2(chain, tmp_path):
    tampered = tmp_path / "deployment.json"
    text = chain["inputs"]["deployment"].read_text().replace("2026.03.1", "2026.03.2")
    tampered.write_text(text)
    code, _, err = _cmf(chain, *_build_args(chain, tmp_path / "x", deployment=tampered))
    assert code == 2 and "deployment_hash mismatch" in err and "Traceback" not in err
    code, _, err = _cmf(chain, *_build_args(chain, tmp_path / "y"), "--model-dir", "../escape")
    assert code == 2 and "model_dir" in err
    code, _, err = _cmf(chain, *_build_args(chain, tmp_path / "z")[:-4], "--runtime-mode", "x")
    assert code == 2


def test_score_writes_decisions_and_appends_the_log(chain, tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", requests_of(chain))
    log = tmp_path / "decisions.log"
    args = ["score", str(source), "--runtime", str(chain["runtime"]), "--decision-log", str(log)]
    code, out, err = _cmf(chain, *args, "-o", str(tmp_path / "out.jsonl"))
    assert code == 0, err
    assert out.startswith("scored 200 requests with runtime retail-runtime")
    records = [orjson.loads(line) for line in (tmp_path / "out.jsonl").read_bytes().splitlines()]
    assert len(records) == 200
    validate_against_committed_schema("decision-record", records[0])
    code, out, err = _cmf(chain, *args, "-o", str(tmp_path / "out2.jsonl"), "--format", "json")
    assert code == 0, err
    assert json.loads(out)["scored"] == 200
    assert len(log.read_bytes().splitlines()) == 400


def test_score_refuses_tampering_and_bad_lines_with_one_line_and_exit_2(chain, tmp_path):
    runtime = tmp_path / "runtime"
    shutil.copytree(chain["runtime"], runtime)
    source = write_jsonl(tmp_path / "in.jsonl", requests_of(chain)[:3])
    log = tmp_path / "log"
    base = ["score", str(source), "--runtime", str(runtime), "--decision-log", str(log), "-o"]
    (runtime / "model" / "config.json").write_bytes(b"{}")
    code, _, err = _cmf(chain, *base, str(tmp_path / "o.jsonl"))
    assert code == 2 and "RUNTIME_MODEL_FILE_INVALID" in err and len(err.splitlines()) == 1
    shutil.rmtree(runtime)
    shutil.copytree(chain["runtime"], runtime)
    with source.open("ab") as handle:
        handle.write(b'{"trace_id": "x", "prompt": "p"}\n')
    code, _, err = _cmf(chain, *base, str(tmp_path / "o.jsonl"))
    assert code == 2
    assert err.strip() == f"error: {source}:4: field 'response': response must be a string"
    assert not log.exists()
    code, _, err = _cmf(chain, *base[:4], "--decision-log", str(source), "-o", "o.jsonl")
    assert code == 2 and "is also an input" in err


def test_payload_from_files_and_from_a_jsonl_line(chain, tmp_path):
    (tmp_path / "prompt.txt").write_text("How do I reset my password?")
    (tmp_path / "response.txt").write_text("Use the forgotten password link in the app.")
    code, out, err = _cmf(
        chain, "runtime", "payload", "--runtime", str(chain["runtime"]),
        "--prompt-file", str(tmp_path / "prompt.txt"),
        "--response-file", str(tmp_path / "response.txt"),
        "--source-ref", "kb://help/passwords",
    )  # fmt: skip
    assert code == 0, err
    body = json.loads(out)
    assert body["input"]["trace_id"].startswith("req-")
    assert body["input"]["source_refs"] == ["kb://help/passwords"]
    assert body["tenant_id"] == "retail-uk"
    source = write_jsonl(tmp_path / "in.jsonl", requests_of(chain)[:3])
    code, out, err = _cmf(
        chain, "runtime", "payload", "--runtime", str(chain["runtime"]),
        "--from-jsonl", str(source), "--line", "2", "-o", str(tmp_path / "body.json"),
    )  # fmt: skip
    assert code == 0, err
    body = json.loads((tmp_path / "body.json").read_text())
    assert body["input"]["trace_id"] == requests_of(chain)[1]["trace_id"]
    code, _, err = _cmf(
        chain, "runtime", "payload", "--runtime", str(chain["runtime"]),
        "--from-jsonl", str(source), "--line", "9",
    )  # fmt: skip
    assert code == 2 and "no request on line 9" in err


def _run(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run(
        [sys.executable, *argv], capture_output=True, text=True, cwd=cwd, env=env, check=False
    )


def test_the_runtime_example_scores_and_logs(chain, tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", requests_of(chain)[:5])
    done = _run(
        str(REPO / "examples" / "runtime.py"), "--runtime", str(chain["runtime"]), str(source),
        "--decision-log", str(tmp_path / "log"), "--home", str(chain["home"]), cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 5
    assert lines[0].split("\t")[0] == requests_of(chain)[0]["trace_id"]
    assert lines[0].split("\t")[1] in {"approve", "escalate", "abstain", "block"}
    assert len((tmp_path / "log").read_bytes().splitlines()) == 5


def test_the_rest_payload_example_prints_and_posts_the_body(chain, tmp_path):
    done = _run(
        str(REPO / "examples" / "rest_payload.py"), "--runtime", str(chain["runtime"]),
        "--prompt", "Can I raise my contactless limit?", "--response", "Yes, in the app.",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    assert body["input"]["trace_id"] == "example-request-1"
    from customer_model_factory.stages.runtime import load_runtime, make_server

    server = make_server(
        load_runtime(chain["runtime"], context=chain["context"]),
        context=chain["context"],
        decision_log=tmp_path / "serve.log",
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        done = _run(
            str(REPO / "examples" / "rest_payload.py"), "--runtime", str(chain["runtime"]),
            "--prompt", "Can I raise my contactless limit?", "--response", "Yes, in the app.",
            "--post", f"http://{host}:{port}/v1/score", cwd=tmp_path,
        )  # fmt: skip
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["trace_id"] == "example-request-1"
    assert len((tmp_path / "serve.log").read_bytes().splitlines()) == 1


@pytest.mark.slow
def test_cmf_serve_answers_on_loopback(chain, tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-m", "customer_model_factory", "--home", str(chain["home"]), "serve",
         "--runtime", str(chain["runtime"]), "--port", "0",
         "--decision-log", str(tmp_path / "serve.log")],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )  # fmt: skip
    try:
        assert process.stderr is not None
        banner = process.stderr.readline()
        assert "serving runtime retail-runtime on http://127.0.0.1:" in banner, banner
        url = banner.split(" on ")[1].split(" ")[0]
        from customer_model_factory.stages.runtime import build_score_payload, load_runtime_package

        body = build_score_payload(
            load_runtime_package(chain["runtime"]), trace_id="t-1", prompt="hi", response="hello"
        )
        request = urllib.request.Request(
            url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
        )
        deadline = time.monotonic() + 10
        with urllib.request.urlopen(request, timeout=deadline - time.monotonic()) as response:
            record = json.loads(response.read())
        assert record["trace_id"] == "t-1"
    finally:
        process.terminate()
        process.wait(10)
        if process.stderr is not None:
            process.stderr.close()
    assert len((tmp_path / "serve.log").read_bytes().splitlines()) == 1


def test_score_never_appends_to_or_overwrites_a_file_that_holds_no_decisions(
    tmp_path: Path,
) -> None:
    from customer_model_factory.stages.runtime.decision_log import holds_decisions

    manifest = tmp_path / "evidence_pack.json"
    manifest.write_text('{\n  "kind": "evidence-pack"\n}\n')
    assert not holds_decisions(manifest)
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    assert holds_decisions(empty)
    record = tmp_path / "log.jsonl"
    record.write_text('{"decided_at": "2026-05-18T18:45:00Z", "runtime_hash": "sha256:x"}\n')
    assert holds_decisions(record)
