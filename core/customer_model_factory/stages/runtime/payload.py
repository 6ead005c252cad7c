"""The ``POST /v1/score`` request body: built from a runtime package, checked against it.

:func:`build_score_payload` preserves, from the runtime package, the customer / workspace /
tenant / deployment binding, the runtime (id, hash, mode, package version, environment), the
model artefact (lane, URI, digest), the thresholds, the telemetry mode, the audit-log and
evidence-pack URIs, the evidence hash and the callback policy, and adds the request
(``input``: trace id, prompt, response, source refs).

:func:`check_score_payload` is what a server does with a body: the binding must be the package's
(else :class:`PayloadRefused` with HTTP status 403), every other preserved field given must equal
the package's (422), and ``input`` must be a valid request (422). Its messages name fields, never
their values, so a refused body is never echoed back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from customer_model_factory.canonical import sha256_bytes
from customer_model_factory.errors import DataFormatError
from customer_model_factory.io import JsonlProblem, JsonlReader, read_text_strict
from customer_model_factory.stages.runtime.build import PACKAGE_FILE
from customer_model_factory.stages.runtime.models import CustomerRuntimePackage
from customer_model_factory.stages.runtime.score import ScoreRequest, score_request

__all__ = [
    "PAYLOAD_SCHEMA_VERSION",
    "SCORE_PATH",
    "PayloadRefused",
    "build_score_payload",
    "check_score_payload",
    "load_runtime_package",
    "package_fields",
    "payload_from_files",
    "payload_from_jsonl",
]

SCORE_PATH: Final = "/v1/score"
"""The path the reference runtime answers."""
PAYLOAD_SCHEMA_VERSION: Final = "1"
_BINDING: Final = ("customer_id", "workspace_id", "tenant_id", "deployment_id")


class PayloadRefused(Exception):
    """A score payload the runtime refuses.

    :param status: the HTTP status to answer (400, 403, 413, 415, 422).
    :param code: the ``RUNTIME_PAYLOAD_*`` finding code.
    :param message: one line naming the field, never its value.
    """

    def __init__(self, status: int, code: str, message: str) -> None:
        self.status = status
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")

    def body(self) -> dict[str, Any]:
        """The JSON error body."""
        return {"error": {"code": self.code, "message": self.message, "status": self.status}}


def package_fields(package: CustomerRuntimePackage) -> dict[str, Any]:
    """Every field a payload preserves from the runtime package (JSON values)."""
    config = package.runtime_config
    policy = config.policy
    model = config.model
    return {
        "schema_version": PAYLOAD_SCHEMA_VERSION,
        "customer_id": package.customer_id,
        "workspace_id": package.workspace_id,
        "tenant_id": package.tenant_id,
        "deployment_id": package.deployment_id,
        "deployment_hash": package.deployment_hash,
        "runtime_id": package.runtime_id,
        "runtime_hash": package.runtime_hash,
        "runtime_mode": package.runtime_mode,
        "environment": config.environment,
        "package_version": config.package_version,
        "model": {"lane": model.lane, "uri": model.uri, "digest": model.digest},
        "thresholds": {
            "threshold": policy.threshold,
            "abstention_threshold": policy.abstention_threshold,
            "escalation_threshold": policy.escalation_threshold,
            "require_citations": policy.require_citations,
        },
        "telemetry_mode": policy.telemetry_mode,
        "audit_log_uri": policy.audit_log_uri,
        "evidence_pack_uri": policy.evidence_pack_uri,
        "evidence_hash": package.evidence_hash,
        "callback_policy": {
            "external_callbacks_allowed": config.callbacks.external_callbacks_allowed,
            "callback_endpoints": list(config.callbacks.callback_endpoints),
        },
    }


def build_score_payload(
    package: CustomerRuntimePackage,
    *,
    trace_id: str,
    prompt: str,
    response: str,
    source_refs: tuple[str, ...] | list[str] = (),
) -> dict[str, Any]:
    """Return the ``POST /v1/score`` body for one request under ``package``.

    :raises DataFormatError: the request is not valid (an empty trace id, an empty source ref).
    """
    request = score_request(
        {
            "trace_id": trace_id,
            "prompt": prompt,
            "response": response,
            "source_refs": list(source_refs),
        },
        source="payload input",
    )
    payload = package_fields(package)
    payload["input"] = {
        "trace_id": request.trace_id,
        "prompt": request.prompt,
        "response": request.response,
        "source_refs": list(source_refs),
    }
    return payload


def check_score_payload(body: Any, package: CustomerRuntimePackage) -> ScoreRequest:
    """Check a decoded payload against the package and return its request.

    The binding (customer, workspace, tenant, deployment) is required; every other preserved
    field is optional, but when given must equal the package's.

    :raises PayloadRefused: 400 not an object; 403 another binding; 422 a field that differs from
        the package, an unknown field, or an invalid ``input``.
    """
    if not isinstance(body, dict):
        raise PayloadRefused(400, "RUNTIME_PAYLOAD_INVALID", "the body is not a JSON object")
    expected = package_fields(package)
    for name in _BINDING:
        if name not in body:
            raise PayloadRefused(422, "RUNTIME_PAYLOAD_INVALID", f"field '{name}' is required")
        if body[name] != expected[name]:
            raise PayloadRefused(
                403,
                "RUNTIME_PAYLOAD_BINDING_MISMATCH",
                f"field '{name}' is not this runtime's binding",
            )
    for name, value in body.items():
        if name == "input":
            continue
        if name not in expected:
            raise PayloadRefused(422, "RUNTIME_PAYLOAD_INVALID", "the body holds an unknown field")
        if value != expected[name] or type(value) is not type(expected[name]):
            raise PayloadRefused(
                422,
                "RUNTIME_PAYLOAD_PACKAGE_MISMATCH",
                f"field '{name}' differs from the runtime package",
            )
    raw = body.get("input")
    if not isinstance(raw, dict):
        raise PayloadRefused(422, "RUNTIME_PAYLOAD_INVALID", "field 'input' must be an object")
    unknown = set(raw) - {"trace_id", "prompt", "response", "source_refs", "citations"}
    if unknown:
        raise PayloadRefused(422, "RUNTIME_PAYLOAD_INVALID", "field 'input' holds an unknown field")
    try:
        return score_request(raw, source="input")
    except DataFormatError as error:
        raise PayloadRefused(
            422, "RUNTIME_PAYLOAD_INVALID", f"field 'input.{error.field}': {error.message}"
        ) from None


def load_runtime_package(path: str | Path) -> CustomerRuntimePackage:
    """Load a runtime package manifest (its directory or its file), its hash verified; the model
    is not loaded.

    :raises DataFormatError, ManifestIntegrityError, SchemaVersionError: as ``Manifest.load``.
    """
    target = Path(path)
    return CustomerRuntimePackage.load(target / PACKAGE_FILE if target.is_dir() else target)


def payload_from_files(
    runtime: str | Path,
    *,
    prompt_file: str | Path,
    response_file: str | Path,
    trace_id: str | None = None,
    source_refs: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The payload of a prompt and a response read from UTF-8 text files.

    :param trace_id: default ``req-`` and 16 hex digits of the sha256 of prompt and response.
    :raises DataFormatError: a missing or non-UTF-8 file, an invalid request.
    """
    package = load_runtime_package(runtime)
    prompt = read_text_strict(prompt_file)
    response = read_text_strict(response_file)
    if trace_id is None:
        digest = sha256_bytes(f"{prompt}\n{response}".encode("utf-8", "surrogatepass"))
        trace_id = "req-" + digest.removeprefix("sha256:")[:16]
    return build_score_payload(
        package, trace_id=trace_id, prompt=prompt, response=response, source_refs=source_refs
    )


def payload_from_jsonl(runtime: str | Path, source: str | Path, *, line: int = 1) -> dict[str, Any]:
    """The payload of the request on one line of a JSONL scoring input (its ``source_refs`` and
    ``citations`` become the payload's ``source_refs``).

    :raises DataFormatError: the file or the line is not a valid request, or has no such line.
    """
    package = load_runtime_package(runtime)
    path = Path(source)

    def stop(problem: JsonlProblem) -> None:
        if problem.line <= line:
            raise DataFormatError(problem.message, path=problem.path, line=problem.line)

    for row in JsonlReader(path, on_problem=stop):
        if row.line < line:
            continue
        if row.line > line:
            break
        request = score_request(row.value, source=f"{path}:{row.line}")
        refs = [ref for name in ("source_refs", "citations") for ref in (row.value.get(name) or [])]
        return build_score_payload(
            package,
            trace_id=request.trace_id,
            prompt=request.prompt,
            response=request.response,
            source_refs=tuple(refs),
        )
    raise DataFormatError(f"no request on line {line}", path=path, line=line)
