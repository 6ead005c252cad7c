"""``cmf serve``: the reference runtime over HTTP, on the standard library's threading server.

One route: ``POST /v1/score`` with the body :func:`~.payload.build_score_payload` builds
(``Content-Type: application/json``, a ``Content-Length`` of at most ``max_body_bytes``). The
answer is the same :class:`~.models.DecisionRecord` ``cmf score`` writes, appended to the same
decision log before it is sent (a decision handed back is always logged). Refusals are JSON
``{"error": {"code", "message", "status"}}`` naming fields, never echoing what was sent:

* 400 ``RUNTIME_PAYLOAD_INVALID``: not JSON, or not an object;
* 403 ``RUNTIME_PAYLOAD_BINDING_MISMATCH``: another customer, workspace, tenant or deployment;
* 404 / 405: another path or method;
* 411 ``RUNTIME_PAYLOAD_INVALID``: no ``Content-Length`` (chunked bodies are not read);
* 413 ``RUNTIME_PAYLOAD_TOO_LARGE``: a body over the cap (it is not read);
* 415 ``RUNTIME_PAYLOAD_INVALID``: a content type other than JSON;
* 422 ``RUNTIME_PAYLOAD_PACKAGE_MISMATCH`` / ``RUNTIME_PAYLOAD_INVALID``: a preserved field that
  differs from the package, an unknown field, an invalid ``input``;
* 500: the model or the decision log failed (nothing was decided).

The server binds to loopback unless told otherwise; it needs no dependency beyond Python.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Final

import orjson

from customer_model_factory.context import RunContext
from customer_model_factory.errors import CMFError, InputError, StageInputError
from customer_model_factory.io import same_file
from customer_model_factory.stages.runtime.decision_log import append_lines, check_log_path
from customer_model_factory.stages.runtime.payload import (
    SCORE_PATH,
    PayloadRefused,
    check_score_payload,
)
from customer_model_factory.stages.runtime.score import LoadedRuntime, default_decision_log

__all__ = ["DEFAULT_HOST", "DEFAULT_MAX_BODY_BYTES", "RuntimeServer", "make_server"]

DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_MAX_BODY_BYTES: Final = 1 << 20
"""The largest request body read (1 MiB)."""
_JSON_TYPES: Final = ("application/json",)
_DRAIN_LIMIT: Final = 16 << 20


class RuntimeServer(ThreadingHTTPServer):
    """A threading HTTP server holding one loaded runtime and its decision log."""

    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        runtime: LoadedRuntime,
        *,
        decision_log: Path,
        context: RunContext,
        max_body_bytes: int,
        timer: Callable[[], float],
    ) -> None:
        self.runtime = runtime
        self.decision_log = decision_log
        self.context = context
        self.max_body_bytes = max_body_bytes
        self.timer = timer
        self.log_lock = threading.Lock()
        super().__init__(address, _ScoreHandler)

    def score(self, body: Any) -> bytes:
        """Check a decoded body, decide, log, and return the decision record (the exact bytes
        of the logged line).

        :raises PayloadRefused: the body is refused (see the module docstring).
        :raises StageInputError: the model failed, or the decision log cannot be appended to.
        """
        request = check_score_payload(body, self.runtime.package)
        lines, _, _ = self.runtime.decide_lines(
            [request], decided_at=self.context.now(), timer=self.timer
        )
        with self.log_lock:  # flock orders processes; this lock orders this server's threads
            append_lines(self.decision_log, lines[0] + b"\n")
        return lines[0]


class _ScoreHandler(BaseHTTPRequestHandler):
    server: RuntimeServer
    server_version = "cmf-runtime"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    timeout = 30  # seconds a client may take to send its request

    def log_message(self, format: str, *args: Any) -> None:
        # The decision log is the record; request lines (client text) are not printed.
        return

    def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None):
        self._send_bytes(status, orjson.dumps(payload, option=orjson.OPT_SORT_KEYS), headers)

    def _send_bytes(self, status: int, data: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _refuse(self, refusal: PayloadRefused, *, close: bool = False) -> None:
        if close:
            self.close_connection = True
        self._send(refusal.status, refusal.body(), {"Connection": "close"} if close else None)

    def do_GET(self) -> None:
        if self.path == SCORE_PATH:
            self._refuse(PayloadRefused(405, "RUNTIME_PAYLOAD_INVALID", "use POST"), close=True)
        else:
            self._refuse(PayloadRefused(404, "RUNTIME_PAYLOAD_INVALID", "no such path"), close=True)

    def do_POST(self) -> None:
        if self.path != SCORE_PATH:
            self._refuse(PayloadRefused(404, "RUNTIME_PAYLOAD_INVALID", "no such path"), close=True)
            return
        body = self._read_body()
        if body is None:
            return
        try:
            decoded = orjson.loads(body)
        except orjson.JSONDecodeError:
            self._refuse(PayloadRefused(400, "RUNTIME_PAYLOAD_INVALID", "the body is not JSON"))
            return
        try:
            record = self.server.score(decoded)
        except PayloadRefused as refusal:
            self._refuse(refusal)
            return
        except CMFError as error:
            code = getattr(error, "code", "RUNTIME_SCORE_INVALID")
            self._send(
                500, {"error": {"code": code, "message": "nothing was decided", "status": 500}}
            )
            return
        self._send_bytes(200, record)

    def _too_large(self) -> PayloadRefused:
        return PayloadRefused(
            413,
            "RUNTIME_PAYLOAD_TOO_LARGE",
            f"the body is larger than {self.server.max_body_bytes} bytes",
        )

    def handle_expect_100(self) -> bool:
        """Refuse a body announced too large before the client sends it."""
        raw_length = (self.headers.get("Content-Length") or "").strip()
        if raw_length.isdigit() and int(raw_length) > self.server.max_body_bytes:
            self._refuse(self._too_large(), close=True)
            return False
        return super().handle_expect_100()

    def _read_body(self) -> bytes | None:
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if content_type not in _JSON_TYPES:
            refusal = PayloadRefused(415, "RUNTIME_PAYLOAD_INVALID", "send application/json")
            self._refuse(refusal, close=True)
            return None
        if self.headers.get("Transfer-Encoding"):
            refusal = PayloadRefused(411, "RUNTIME_PAYLOAD_INVALID", "send a Content-Length")
            self._refuse(refusal, close=True)
            return None
        raw_length = self.headers.get("Content-Length")
        if raw_length is None or not raw_length.strip().isdigit():
            refusal = PayloadRefused(411, "RUNTIME_PAYLOAD_INVALID", "send a Content-Length")
            self._refuse(refusal, close=True)
            return None
        length = int(raw_length)
        if length > self.server.max_body_bytes:
            # Never kept nor parsed; a body of moderate size is drained (in chunks) so the client
            # reads the 413 instead of a reset connection, a larger one is cut off.
            if length <= _DRAIN_LIMIT:
                remaining = length
                while remaining > 0:
                    chunk = self.rfile.read(min(remaining, 1 << 16))
                    if not chunk:
                        break
                    remaining -= len(chunk)
            self._refuse(self._too_large(), close=True)
            return None
        body = self.rfile.read(length)
        if len(body) != length:
            self.close_connection = True
            return None
        return body


def make_server(
    runtime: LoadedRuntime,
    *,
    context: RunContext,
    host: str = DEFAULT_HOST,
    port: int = 0,
    decision_log: str | Path | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    timer: Callable[[], float] = time.perf_counter,
) -> RuntimeServer:
    """Bind a server for ``runtime`` (port 0: any free port; read it from ``server_address``).

    Call ``serve_forever()`` on the result (and ``shutdown()`` from another thread to stop).

    :raises StageInputError: ``RUNTIME_DECISION_LOG_MISSING`` / ``RUNTIME_DECISION_LOG_INVALID``.
    :raises InputError: the decision log names the package or a model file; the port is taken.
    """
    if max_body_bytes < 1:
        raise InputError("the body size cap must be at least 1 byte", field="max_body_bytes")
    log = Path(decision_log) if decision_log is not None else default_decision_log(runtime.package)
    if log is None:
        raise StageInputError(
            "the policy's audit_log_uri is not a file:// path: name the decision log "
            "(--decision-log)",
            code="RUNTIME_DECISION_LOG_MISSING",
        )
    for source in (runtime.package_file, *runtime.model_files):
        if same_file(log, source):
            raise InputError("the decision log is also an input; write it elsewhere", path=log)
    check_log_path(log)
    try:
        return RuntimeServer(
            (host, port),
            runtime,
            decision_log=log,
            context=context,
            max_body_bytes=max_body_bytes,
            timer=timer,
        )
    except OSError as error:
        raise InputError(f"cannot listen on {host}:{port}: {error.strerror}") from None
