"""``POST /v1/score``: the payload built from a runtime package, answered on loopback by the
standard library server with the same decision and log line as ``cmf score``; refusals of other
tenants, forged package fields, oversized bodies and non-JSON, never echoing the input."""

from __future__ import annotations

import http.client
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from customer_model_factory.stages.runtime.payload import (
    SCORE_PATH,
    PayloadRefused,
    build_score_payload,
    check_score_payload,
    load_runtime_package,
)
from customer_model_factory.stages.runtime.score import load_runtime, score_file
from customer_model_factory.stages.runtime.serve import RuntimeServer, make_server

from ..stage3_support import write_jsonl
from ..stage_runtime_support import Ticks, build_chain, build_runtime, requests_of

pytest.importorskip("cmf_example_retail_banking", reason="the example pack is not installed")

SECRET = "my-card-number-4111111111111111"


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    chain = build_chain(tmp_path_factory.mktemp("serve"))
    chain["runtime"] = build_runtime(chain, chain["root"] / "built")
    return chain


@pytest.fixture
def server(chain, tmp_path) -> Iterator[RuntimeServer]:
    runtime = load_runtime(chain["runtime"], context=chain["context"])
    server = make_server(
        runtime,
        context=chain["context"],
        decision_log=tmp_path / "serve.log",
        max_body_bytes=64 * 1024,
        timer=Ticks(),
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _url(server: RuntimeServer, path: str = SCORE_PATH) -> str:
    host, port = server.server_address[:2]
    return f"http://{host}:{port}{path}"


def _post(
    server: RuntimeServer, body: bytes, content_type: str = "application/json"
) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        _url(server), data=body, method="POST", headers={"Content-Type": content_type}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


def _payload(chain: dict[str, Any], index: int = 0) -> dict[str, Any]:
    package = load_runtime_package(chain["runtime"])
    row = requests_of(chain)[index]
    return build_score_payload(
        package,
        trace_id=row["trace_id"],
        prompt=row["prompt"],
        response=row["response"],
        source_refs=row["source_refs"],
    )


def test_the_payload_preserves_the_package_fields(chain):
    payload = _payload(chain)
    package = load_runtime_package(chain["runtime"])
    config = package.runtime_config
    assert payload["customer_id"] == package.customer_id
    assert payload["tenant_id"] == package.tenant_id
    assert payload["deployment_id"] == package.deployment_id
    assert payload["runtime_hash"] == package.runtime_hash
    assert payload["model"]["digest"] == config.model.digest
    assert payload["thresholds"]["threshold"] == config.policy.threshold
    assert payload["telemetry_mode"] == config.policy.telemetry_mode
    assert payload["audit_log_uri"] == config.policy.audit_log_uri
    assert payload["evidence_hash"] == package.evidence_hash
    assert payload["callback_policy"] == {
        "external_callbacks_allowed": False,
        "callback_endpoints": [],
    }
    assert set(payload["input"]) == {"trace_id", "prompt", "response", "source_refs"}
    request = check_score_payload(orjson.loads(orjson.dumps(payload)), package)
    assert request.trace_id == payload["input"]["trace_id"]


def test_the_server_gives_the_same_decision_as_cmf_score(chain, server, tmp_path):
    status, record = _post(server, orjson.dumps(_payload(chain, 3)))
    assert status == 200
    runtime = load_runtime(chain["runtime"], context=chain["context"])
    source = write_jsonl(tmp_path / "one.jsonl", [requests_of(chain)[3]])
    score_file(runtime, source, output=tmp_path / "o.jsonl", context=chain["context"],
               decision_log=tmp_path / "file.log")  # fmt: skip
    from_file = orjson.loads((tmp_path / "o.jsonl").read_bytes())
    for name in ("trace_id", "score", "decision", "reason", "runtime_hash", "package_version"):
        assert record[name] == from_file[name], name
    logged = (tmp_path / "serve.log").read_bytes().splitlines()
    assert [orjson.loads(line) for line in logged] == [record]


def test_concurrent_requests_each_log_one_whole_line(chain, server, tmp_path):
    bodies = [orjson.dumps(_payload(chain, index)) for index in range(12)]
    results: list[int] = []

    def send(body: bytes) -> None:
        results.append(_post(server, body)[0])

    threads = [threading.Thread(target=send, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert results == [200] * 12
    lines = (tmp_path / "serve.log").read_bytes().splitlines()
    assert sorted(orjson.loads(line)["trace_id"] for line in lines) == sorted(
        requests_of(chain)[index]["trace_id"] for index in range(12)
    )


@pytest.mark.parametrize("field", ["tenant_id", "customer_id", "workspace_id", "deployment_id"])
def test_a_payload_for_another_binding_is_refused_with_403(chain, server, tmp_path, field):
    payload = _payload(chain)
    payload[field] = "another-" + field
    payload["input"]["prompt"] = SECRET
    status, body = _post(server, orjson.dumps(payload))
    assert status == 403
    assert body["error"]["code"] == "RUNTIME_PAYLOAD_BINDING_MISMATCH"
    assert SECRET not in json.dumps(body) and "another-" not in json.dumps(body)
    assert not (tmp_path / "serve.log").exists()


@pytest.mark.parametrize(
    ("edit", "code"),
    [
        (lambda p: p["thresholds"].update(threshold=0.999), "RUNTIME_PAYLOAD_PACKAGE_MISMATCH"),
        (lambda p: p.update(runtime_hash="sha256:" + "1" * 64), "RUNTIME_PAYLOAD_PACKAGE_MISMATCH"),
        (lambda p: p.update(**{SECRET: 1}), "RUNTIME_PAYLOAD_INVALID"),
        (lambda p: p["input"].update(trace_id=""), "RUNTIME_PAYLOAD_INVALID"),
        (lambda p: p["input"].update(source_refs=SECRET), "RUNTIME_PAYLOAD_INVALID"),
        (lambda p: p.pop("input"), "RUNTIME_PAYLOAD_INVALID"),
        (lambda p: p.pop("tenant_id"), "RUNTIME_PAYLOAD_INVALID"),
    ],
)
def test_a_forged_or_invalid_payload_is_refused_with_422(chain, server, edit, code):
    payload = _payload(chain)
    payload["input"]["prompt"] = SECRET
    edit(payload)
    status, body = _post(server, orjson.dumps(payload))
    assert (status, body["error"]["code"]) == (422, code)
    assert SECRET not in json.dumps(body)


def test_a_body_over_the_cap_is_refused_with_413(chain, server):
    payload = _payload(chain)
    payload["input"]["prompt"] = "x" * (200 * 1024)
    status, body = _post(server, orjson.dumps(payload))
    assert (status, body["error"]["code"]) == (413, "RUNTIME_PAYLOAD_TOO_LARGE")


def test_a_huge_announced_body_is_refused_before_it_is_sent(server):
    host, port = server.server_address[:2]
    connection = http.client.HTTPConnection(host, port, timeout=10)
    connection.putrequest("POST", SCORE_PATH)
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Content-Length", str(50 << 30))
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 413
    connection.close()


def test_wrong_content_type_not_json_and_other_routes(chain, server):
    body = orjson.dumps(_payload(chain))
    assert _post(server, body, content_type="text/plain")[0] == 415
    status, error = _post(server, b'{"tenant_id": ' + SECRET.encode())
    assert (status, error["error"]["code"]) == (400, "RUNTIME_PAYLOAD_INVALID")
    assert SECRET not in json.dumps(error)
    assert _post(server, b"[1, 2]")[0] == 400
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(_url(server), timeout=10)
    caught.value.close()
    assert caught.value.code == 405
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(_url(server, "/v1/other"), timeout=10)
    caught.value.close()
    assert caught.value.code == 404


def test_the_server_binds_to_loopback_by_default(chain, tmp_path):
    runtime = load_runtime(chain["runtime"], context=chain["context"])
    server = make_server(runtime, context=chain["context"], decision_log=tmp_path / "l.log")
    try:
        assert server.server_address[0] == "127.0.0.1"
    finally:
        server.server_close()


def test_the_server_refuses_a_log_that_is_the_package(chain):
    runtime = load_runtime(chain["runtime"], context=chain["context"])
    from customer_model_factory.errors import InputError

    with pytest.raises(InputError):
        make_server(
            runtime,
            context=chain["context"],
            decision_log=Path(chain["runtime"]) / "runtime_package.json",
        )


def test_payload_refused_renders_a_json_error():
    refusal = PayloadRefused(403, "RUNTIME_PAYLOAD_BINDING_MISMATCH", "field 'tenant_id'")
    assert refusal.body() == {
        "error": {
            "code": "RUNTIME_PAYLOAD_BINDING_MISMATCH",
            "message": "field 'tenant_id'",
            "status": 403,
        }
    }


def test_a_log_that_turned_into_a_link_gives_500_and_no_decision(chain, server, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_bytes(b"")
    (tmp_path / "serve.log").symlink_to(elsewhere)
    status, body = _post(server, orjson.dumps(_payload(chain)))
    assert (status, body["error"]["code"]) == (500, "RUNTIME_DECISION_LOG_INVALID")
    assert "trace_id" not in body and elsewhere.read_bytes() == b""
