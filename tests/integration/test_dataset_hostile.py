"""``cmf dataset validate`` under hostile and careless input.

Each class of problem is tried with several instances. Every test asserts the exit code, a
located one-line message, no traceback, the inputs byte-identical afterwards and no planted
secret in any output.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from customer_model_factory.cli import _app
from customer_model_factory.stages.dataset import outputs as outputs_module
from customer_model_factory.stages.dataset.validate import validate_dataset_to_files

WORKSPACE_TOML = """\
[workspace]
customer_id = "acme"
workspace_id = "ws-1"
tenant_id = "acme-eu"
data_classification = "confidential"
secrets_policy = "redact"
"""

AWS_KEY = "AK" + "IA" + "TESTONLY" + "7QX2PL3M"
EMAIL = "jane.doe" + "@" + "example.org"
PLANTED = (AWS_KEY, EMAIL)


def trace(index: int, **overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "trace_id": f"t-{index}",
        "customer_id": "acme",
        "tenant_id": "acme-eu",
        "split": ("train", "validation", "test")[index % 3],
        "prompt": f"What is my card limit? ({index})",
        "response": "It is shown in the app.",
        "expected_decision": "approve",
        "severity": "low",
        "label": "safe",
        "source_refs": ["kb://limits"],
        "policy_refs": ["policy://v1"],
        "reviewer_role": "analyst",
        "observed_at": "2024-05-01T09:00:00Z",
    }
    row.update(overrides)
    return row


def jsonl(rows: list[dict[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(row) + b"\n" for row in rows)


class Case:
    """A dataset, a workspace and a snapshot of every input's bytes."""

    def __init__(self, root: Path, data: bytes | None = None) -> None:
        self.root = root
        self.workspace = root / "workspace.toml"
        self.workspace.write_text(WORKSPACE_TOML, encoding="utf-8")
        self.traces = root / "traces.jsonl"
        rows = [trace(i) for i in range(6)] + [trace(6, prompt=f"my key {AWS_KEY}")]
        self.traces.write_bytes(jsonl(rows) if data is None else data)
        self.shards = root / "shards"
        self.shards.mkdir()
        (self.shards / "a.jsonl").write_bytes(jsonl([trace(i) for i in range(3)]))
        (self.shards / "b.jsonl").write_bytes(jsonl([trace(i) for i in range(3, 6)]))
        self.before = self.snapshot()

    def snapshot(self) -> dict[Path, bytes]:
        files = [self.workspace, self.traces, *sorted(self.shards.iterdir())]
        return {path: path.read_bytes() for path in files if path.is_file()}

    def assert_inputs_intact(self) -> None:
        assert self.snapshot() == self.before

    def run(self, *args: str, traces: Path | None = None) -> Any:
        result = CliRunner().invoke(
            _app.app,
            ["dataset", "validate", str(traces or self.traces), "-w", str(self.workspace), *args],
        )
        output = result.output
        assert "Traceback" not in output, output
        assert "internal error" not in output, output
        for secret in PLANTED:
            assert secret not in output
        return result

    def assert_no_secret_in_outputs(self) -> None:
        for path in self.root.rglob("*"):
            if path.is_file() and path not in self.before:
                data = path.read_bytes()
                for secret in PLANTED:
                    assert secret.encode() not in data, path


@pytest.fixture
def case(tmp_path: Path) -> Case:
    return Case(tmp_path)


def one_line(result: Any) -> str:
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    return lines[0]


# ---- class 1: outputs never overwrite inputs ----


def _output_aliases(case: Case) -> list[tuple[str, Path]]:
    """Ways to name an input (or the other output) as an output."""
    (case.root / "sub").mkdir(exist_ok=True)
    link = case.root / "link.json"
    link.symlink_to(case.traces)
    hard = case.root / "hard.json"
    os.link(case.traces, hard)
    dir_link = case.root / "dir-link"
    dir_link.symlink_to(case.root / "sub")
    return [
        ("same path", case.traces),
        ("dot-dot", case.root / "sub" / ".." / "traces.jsonl"),
        ("through a symlinked directory", dir_link / ".." / "traces.jsonl"),
        ("symlink", link),
        ("hard link", hard),
        ("workspace", case.workspace),
    ]


@pytest.mark.parametrize("option", ["-o", "--redacted-copy"])
def test_an_output_that_is_the_trace_file_or_workspace_is_refused(case, option):
    for name, alias in _output_aliases(case):
        result = case.run(option, str(alias))
        assert result.exit_code == 2, (name, result.output)
        line = one_line(result)
        assert "never overwrites an input" in line, (name, line)
        assert str(alias) in line
        case.assert_inputs_intact()
        assert alias.is_dir() or alias.read_bytes() in case.before.values()


@pytest.mark.parametrize("option", ["-o", "--redacted-copy"])
def test_an_output_that_is_a_shard_of_the_trace_directory_is_refused(case, option):
    shard_link = case.root / "shard-link.json"
    shard_link.symlink_to(case.shards / "b.jsonl")
    hard = case.root / "hard-shard.json"
    os.link(case.shards / "a.jsonl", hard)
    for alias in (case.shards / "a.jsonl", case.shards / "x" / ".." / "b.jsonl", shard_link, hard):
        result = case.run(option, str(alias), traces=case.shards)
        assert result.exit_code == 2, result.output
        assert "a shard of the trace directory" in one_line(result)
        case.assert_inputs_intact()


def test_the_two_outputs_may_not_be_one_file(case):
    report = case.root / "out.json"
    alias = case.root / "alias.json"
    alias.symlink_to(report)
    for copy in (report, case.root / "x" / ".." / "out.json", alias):
        result = case.run("-o", str(report), "--redacted-copy", str(copy))
        assert result.exit_code == 2, result.output
        assert "never overwrites" in one_line(result)
        assert not report.exists()
    case.assert_inputs_intact()


def test_outputs_are_checked_before_anything_is_read(case):
    # A workspace that would fail to load: the output check speaks first.
    case.workspace.write_text("[workspace]\ncustomer_id = 3\n", encoding="utf-8")
    case.before = case.snapshot()
    result = case.run("-o", str(case.traces))
    assert result.exit_code == 2
    assert "never overwrites an input" in one_line(result)
    case.assert_inputs_intact()


# ---- class 2: outputs fail early and together ----


def test_an_output_that_cannot_be_written_fails_before_the_pass(case, monkeypatch):
    from customer_model_factory.stages.dataset import validate as validate_module

    read = []
    monkeypatch.setattr(
        validate_module, "validate_customer_trace_dataset", lambda *a, **k: read.append(a)
    )
    (case.root / "taken").mkdir()
    (case.root / "a-file").write_bytes(b"x")
    for option in ("-o", "--redacted-copy"):
        for target, reason in (
            (case.root / "taken", "is a directory"),
            (case.root / "a-file" / "report.json", "is a file, not a directory"),
            (case.shards, "is a directory"),
        ):
            result = case.run(option, str(target))
            assert result.exit_code == 2, result.output
            assert reason in result.output and str(target) in result.output, result.output
            # The library refuses it as well, before reading anything.
            keyword = "output" if option == "-o" else "redacted_copy"
            with pytest.raises(outputs_module.OutputError, match=reason):
                validate_dataset_to_files(case.traces, case.workspace, **{keyword: target})
    assert read == []
    case.assert_inputs_intact()
    assert (case.root / "a-file").read_bytes() == b"x"


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs a read-only /proc")
def test_an_output_on_a_file_system_that_refuses_it_fails_before_the_pass(case):
    for target in (Path("/proc/cmf-report.json"), Path("/proc/self/cmf/report.json")):
        result = case.run("-o", str(target))
        assert result.exit_code == 2, result.output
        line = one_line(result)
        assert "cannot be written" in line and str(target) in line
    case.assert_inputs_intact()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_an_output_in_a_read_only_directory_fails_before_the_pass(case):
    locked = case.root / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        result = case.run("-o", str(locked / "report.json"))
        assert result.exit_code == 2
        assert "cannot be written" in one_line(result)
    finally:
        locked.chmod(0o755)


def test_a_failure_while_publishing_leaves_no_output_of_the_run(case, monkeypatch):
    report = case.root / "report.json"
    copy = case.root / "copy.jsonl"
    # Outputs of an earlier run: they must survive unchanged.
    report.write_bytes(b"old report\n")
    copy.write_bytes(b"old copy\n")
    real_replace = os.replace

    def failing(source, target, *args, **kwargs):
        if Path(target).name == "report.json" and str(source).endswith(".tmp"):
            raise PermissionError(13, "Permission denied", str(target))
        return real_replace(source, target, *args, **kwargs)

    monkeypatch.setattr(outputs_module.os, "replace", failing)
    result = case.run("-o", str(report), "--redacted-copy", str(copy))
    monkeypatch.undo()
    assert result.exit_code == 2, result.output
    line = one_line(result)
    assert "could not be published" in line and "none was changed" in line
    assert report.read_bytes() == b"old report\n"
    assert copy.read_bytes() == b"old copy\n"
    assert sorted(p.name for p in case.root.iterdir() if p.name.startswith(".")) == []
    case.assert_inputs_intact()


def test_a_failure_during_the_pass_publishes_nothing(case, monkeypatch):
    copy = case.root / "copy.jsonl"
    report = case.root / "report.json"

    def broken(*_args, **_kwargs):
        raise RuntimeError("boom")

    from customer_model_factory.stages.dataset import validate as validate_module

    monkeypatch.setattr(validate_module, "_finish", broken)
    with pytest.raises(RuntimeError):
        validate_dataset_to_files(
            case.traces, case.workspace, output=report, redacted_copy=copy, workers=1
        )
    assert not copy.exists() and not report.exists()
    assert [p.name for p in case.root.iterdir() if p.name.startswith(".")] == []


def test_concurrent_runs_never_mix_a_report_and_a_copy(case):
    other = case.root / "other.jsonl"
    other.write_bytes(jsonl([trace(i, prompt=f"mail {EMAIL} ({i})") for i in range(40)]))
    case.before[other] = other.read_bytes()
    report = case.root / "report.json"
    copy = case.root / "copy.jsonl"
    errors: list[BaseException] = []

    def run(source: Path) -> None:
        try:
            for _ in range(5):
                validate_dataset_to_files(
                    source, case.workspace, output=report, redacted_copy=copy, workers=1
                )
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(path,)) for path in (case.traces, other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    recorded = orjson.loads(report.read_bytes())["redacted_copy"]["sha256"]
    assert recorded == "sha256:" + hashlib.sha256(copy.read_bytes()).hexdigest()
    case.assert_no_secret_in_outputs()


def test_outputs_are_written_and_hold_no_planted_secret(case):
    report = case.root / "out" / "report.json"
    copy = case.root / "out" / "copy.jsonl"
    result = case.run("-o", str(report), "--redacted-copy", str(copy))
    assert result.exit_code == 0, result.output
    recorded = orjson.loads(report.read_bytes())["redacted_copy"]["sha256"]
    assert recorded == "sha256:" + hashlib.sha256(copy.read_bytes()).hexdigest()
    case.assert_inputs_intact()
    case.assert_no_secret_in_outputs()


# ---- helpers for row-level classes ----


def report_of(case: Case, data: bytes, *args: str, name: str = "rows.jsonl") -> tuple[Any, dict]:
    """Run the command on ``data`` (also through the typed path) and return the result and the
    JSON report; the input must be unchanged and no planted secret may be in any output."""
    path = case.root / name
    path.write_bytes(data)
    case.before[path] = data
    out = case.root / f"{name}.report.json"
    result = case.run("-o", str(out), *args, traces=path)
    assert result.exit_code in (0, 1), result.output
    assert path.read_bytes() == data
    case.assert_no_secret_in_outputs()
    return result, orjson.loads(out.read_bytes())


def located(report: dict, code: str) -> list[dict]:
    found = [f for f in report["findings"] if f["code"] == code]
    for finding in found:
        assert finding["location"] and finding["location"].rsplit(":", 1)[1].isdigit()
    return found


def clean_line(index: int, **overrides: Any) -> bytes:
    return orjson.dumps(trace(index, **overrides))


# ---- class 5: duplicate keys are an error ----


def test_a_repeated_key_is_a_located_error_naming_the_key(case):
    base = clean_line(1)[:-1]
    lines = [
        clean_line(0),
        base + b', "split": "test"}',  # top level, the typed path's kind of row
        clean_line(2)[:-1] + b', "metadata": {"desk": "a", "desk": "b"}}',  # nested
        clean_line(3)[:-1] + b', "label" : "harmful", "label":"safe"}',  # spaced colon
        clean_line(4)[:-1] + b', "\\u0073plit": "test"}',  # the same key, escaped
        clean_line(5)[:-1] + b', "source_refs": [{"schema": "kb", "schema": "x"}]}',
        clean_line(6),
    ]
    result, report = report_of(case, b"\n".join(lines) + b"\n")
    assert result.exit_code == 1
    found = {
        (f["location"].rsplit(":", 1)[1], f["field"])
        for f in located(report, "DATASET_DUPLICATE_KEY")
    }
    assert found == {
        ("2", "split"),
        ("3", "metadata.desk"),
        ("4", "label"),
        ("5", "split"),
        ("6", "source_refs"),
        ("6", "source_refs[0].schema"),
    }
    message = located(report, "DATASET_DUPLICATE_KEY")[0]["message"]
    assert "appears more than once" in message and "readers disagree" in message


def test_a_secret_in_a_repeated_key_or_its_shadowed_value_never_escapes(case):
    lines = [
        f'{{"prompt": "my key {AWS_KEY}", '.encode() + clean_line(0)[1:],
        clean_line(1)[:-1] + f', "{AWS_KEY}": 1, "{AWS_KEY}": 2'.encode() + b"}",
        clean_line(2)[:-1] + f', "metadata": {{"m": "{EMAIL}", "m": "ok"}}'.encode() + b"}",
    ]
    copy = case.root / "copy.jsonl"
    result, report = report_of(case, b"\n".join(lines) + b"\n", "--redacted-copy", str(copy))
    assert result.exit_code == 1
    repeated = located(report, "DATASET_DUPLICATE_KEY")
    assert len(repeated) == 3
    assert {f["field"] for f in repeated} >= {"[REDACTED:key]", "metadata.m"}
    shadowed = [f for f in report["findings"] if "shadowed" in f["message"]]
    assert {f["field"] for f in shadowed} >= {"prompt", "metadata.m"}
    text = copy.read_bytes()
    assert AWS_KEY.encode() not in text and EMAIL.encode() not in text


# ---- class 6: every malformed line is a located finding, never exit 3 ----


def test_invalid_utf8_is_a_located_finding_on_every_path(case):
    lines = [
        clean_line(0),
        clean_line(1).replace(b'"t-1"', b'"t-\xc3\x28"'),  # a field the typed path reads
        clean_line(2)[:-1] + b', "extra": "\xff"}',  # a field it skips
        clean_line(3)[:-1] + b', "\x80": 1}',  # a key it skips
        clean_line(4).replace(b"card", b"c\xe9rd"),  # Latin-1, not UTF-8
        clean_line(5),
    ]
    for args in ((), ("--redacted-copy", str(case.root / "copy.jsonl"))):
        result, report = report_of(case, b"\n".join(lines) + b"\n", *args)
        assert result.exit_code == 1
        found = located(report, "DATASET_JSONL_INVALID_UTF8")
        assert sorted(f["location"].rsplit(":", 1)[1] for f in found) == ["2", "3", "4", "5"]
        assert report["row_count"] == 2


def test_nesting_beyond_the_limit_is_a_located_finding(case):
    deep_array = b"[" * 5000 + b"]" * 5000
    deep_meta = clean_line(1)[:-1] + b', "metadata": ' + b'{"a": ' * 100 + b"1" + b"}" * 100 + b"}"
    nested_in_strings = clean_line(2).replace(b"app.", b"app " + b"[{" * 100 + b".")
    lines = [clean_line(0), deep_array, deep_meta, nested_in_strings, b'{"x": ' * 3000]
    result, report = report_of(case, b"\n".join(lines) + b"\n")
    assert result.exit_code == 1
    found = located(report, "DATASET_NESTING_TOO_DEEP")
    assert sorted(f["location"].rsplit(":", 1)[1] for f in found) == ["2", "3", "5"]
    assert "deeper than 64 levels" in found[0]["message"]
    # The limit is the operator's: 128 lets the metadata through.
    _, wider = report_of(case, b"\n".join(lines) + b"\n", "--max-depth", "128", name="w.jsonl")
    assert sorted(
        f["location"].rsplit(":", 1)[1] for f in located(wider, "DATASET_NESTING_TOO_DEEP")
    ) == ["2", "5"]


def test_numbers_and_escapes_json_cannot_hold_are_named(case):
    lines = [
        clean_line(0),
        clean_line(1)[:-1] + b', "score": 1e999}',
        clean_line(2)[:-1] + b', "score": -1E+400}',
        clean_line(3)[:-1] + b', "score": ' + b"9" * 400 + b"}",
        clean_line(4)[:-1] + b', "note": "\\ud800"}',
        clean_line(5)[:-1] + b', "note": "\\udc00 x"}',
        clean_line(6)[:-1] + b', "note": "\\ud800\\u0041"}',
    ]
    result, report = report_of(case, b"\n".join(lines) + b"\n")
    assert result.exit_code == 1
    messages = {
        f["location"].rsplit(":", 1)[1]: f["message"]
        for f in located(report, "DATASET_JSONL_INVALID_JSON")
    }
    assert set(messages) == {"2", "3", "4", "5", "6", "7"}
    for line in ("2", "3", "4"):
        assert "too large for a double" in messages[line]
    for line in ("5", "6", "7"):
        assert "surrogate" in messages[line]


@pytest.mark.parametrize(
    ("encode", "code", "words"),
    [
        (lambda data: data.decode().encode("utf-16"), "DATASET_JSONL_ENCODING", "UTF-16"),
        (lambda data: data.decode().encode("utf-16-le"), "DATASET_JSONL_ENCODING", "UTF-16"),
        (lambda data: data.decode().encode("utf-16-be"), "DATASET_JSONL_ENCODING", "UTF-16"),
        (lambda data: data.decode().encode("utf-32"), "DATASET_JSONL_ENCODING", "UTF-32"),
        (lambda data: __import__("gzip").compress(data), "DATASET_JSONL_COMPRESSED", "gzip"),
        (lambda data: __import__("bz2").compress(data), "DATASET_JSONL_COMPRESSED", "bzip2"),
        (lambda data: __import__("lzma").compress(data), "DATASET_JSONL_COMPRESSED", "xz"),
    ],
)
def test_a_whole_file_in_another_encoding_gets_one_clear_message(case, encode, code, words):
    data = encode(b"".join(clean_line(i) + b"\n" for i in range(50)))
    result, report = report_of(case, data)
    assert result.exit_code == 1
    found = located(report, code)
    assert len(found) == 1 and words in found[0]["message"]
    assert found[0]["location"].endswith(":1")
    assert len(report["findings"]) == 2  # and DATASET_NO_ROWS


def test_gzip_shards_are_read_transparently(case):
    import gzip

    rows = b"".join(clean_line(i) + b"\n" for i in range(30))
    shards = case.root / "gz"
    shards.mkdir()
    first = b"".join(clean_line(i) + b"\n" for i in range(15))
    (shards / "a.jsonl").write_bytes(first)
    packed = gzip.compress(rows[len(first) :] + clean_line(99, customer_id="other") + b"\n")
    (shards / "b.jsonl.gz").write_bytes(packed)
    out = case.root / "gz.json"
    result = case.run("-o", str(out), traces=shards)
    assert result.exit_code == 1, result.output
    report = orjson.loads(out.read_bytes())
    assert report["row_count"] == 31
    mismatch = located(report, "DATASET_CUSTOMER_ID_MISMATCH")
    assert [f["location"] for f in mismatch] == [f"{shards / 'b.jsonl.gz'}:16"]
    # dataset_hash is over the files' bytes as stored, in name order.
    stored = (shards / "a.jsonl").read_bytes() + packed
    assert report["dataset_hash"] == "sha256:" + hashlib.sha256(stored).hexdigest()
    assert [s["line_count"] for s in report["shards"]] == [15, 16]
    # A single .jsonl.gz file is read the same way.
    single = case.root / "single.jsonl.gz"
    single.write_bytes(gzip.compress(rows))
    result = case.run(traces=single)
    assert result.exit_code == 0, result.output


# ---- class 3: redaction removes the whole secret ----

PEM_BODY = ["MIIEow" + "IBAAKCAQEA7x9QzT4k", "Zq1vW8rYbN3pLmC0sDfGhJkL", "uTyRe" + "WqAsDfGh2JkLz"]
PLANTED_BY_KIND = {
    "aws_access_key": AWS_KEY,
    "aws_secret_key": "aws_secret_access_key=" + "wJalrXUtnFEMI" + "K7MDENGbPxRfiCYEXAMPLEKEYab",
    "github_token": "gh" + "p_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",
    "slack_token": "xo" + "xb-" + "123456789012-abcdefGHIJKL",
    "stripe_key": "sk" + "_live_" + "4eC39HqLyjWDarjtT1zdp7dc",
    "api_token": "sk" + "-proj-" + "Ab3dEf6hIj9kLm2nOp5qRs8tUv",
    "google_api_key": "AI" + "za" + "SyD3xAmPl3K3yF0rT3st1ngPurp0s3s0nly",
    "private_key": "-----BEGIN RSA PRIVATE KEY-----\n"
    + "\n".join(PEM_BODY)
    + "\n-----END RSA PRIVATE KEY-----",
    "jwt": "ey" + "JhbGciOiJIUzI1NiJ9.ey" + "JzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N",
    "password_in_url": "https://alice:" + "Sup3rS3cretPassw0rd" + "@db.internal",
    "email": EMAIL,
    "phone_number": "+44 20 " + "7946 0958",
    "iban": "DE89 3704 " + "0044 0532 0130 00",
    "credit_card": "4111 1111 " + "1111 1111",
}
# What must not survive of each (not the host after a URL's credentials, nor the label of an
# AWS secret key).
SECRET_PART = {
    **PLANTED_BY_KIND,
    "password_in_url": "alice:Sup3rS3cretPassw0rd",
    "aws_secret_key": PLANTED_BY_KIND["aws_secret_key"].removeprefix("aws_secret_access_key="),
}


def _all_text(value: Any) -> str:
    """Every string in a decoded JSON value (keys included), NUL-separated."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return "\x00".join(f"{key}\x00{_all_text(item)}" for key, item in value.items())
    if isinstance(value, list):
        return "\x00".join(_all_text(item) for item in value)
    return ""


def _substrings(secret: str, width: int = 8) -> list[str]:
    return [secret[i : i + width] for i in range(len(secret) - width + 1)]


@pytest.mark.parametrize("kind", sorted(PLANTED_BY_KIND))
def test_redaction_removes_every_character_of_each_kind_of_secret(case, kind):
    planted = PLANTED_BY_KIND[kind]
    rows = [
        trace(0),
        trace(1, prompt=f"here it is: {planted} -- thanks"),
        trace(2, metadata={"notes": [f"again {planted}"]}),
    ]
    copy = case.root / "copy.jsonl"
    result, report = report_of(case, jsonl(rows), "--redacted-copy", str(copy))
    assert result.exit_code == 0, result.output  # redact policy: redacted into the copy
    found = [f for f in report["findings"] if f["code"].endswith("_DETECTED")]
    assert {f["location"].rsplit(":", 1)[1] for f in found} == {"2", "3"}
    assert all(kind in f["message"] for f in found)
    text = copy.read_text(encoding="utf-8")
    outputs = text + result.output + orjson.dumps(report).decode()
    leaked = [part for part in _substrings(SECRET_PART[kind]) if part in outputs]
    assert leaked == [], leaked
    assert f"[REDACTED:{kind}]" in text


def test_a_private_key_without_an_end_line_is_redacted_to_the_end_of_the_text(case):
    planted = "-----BEGIN PRIVATE KEY-----\n" + "\n".join(PEM_BODY)
    copy = case.root / "copy.jsonl"
    report_of(case, jsonl([trace(0, response=planted)]), "--redacted-copy", str(copy))
    text = copy.read_text(encoding="utf-8")
    assert not [part for part in _substrings(planted) if part in text]
    assert orjson.loads(text)["response"] == "[REDACTED:private_key]"


# ---- class 4: escapes cannot hide anything ----


def _escaped(text: str, chosen: list[bool]) -> str:
    """``text`` as a JSON string body with the chosen characters written as \\uXXXX escapes
    (and slashes as \\/)."""
    out = []
    for char, escape in zip(text, chosen, strict=True):
        if escape:
            out.append("\\/" if char == "/" and len(out) % 2 else f"\\u{ord(char):04x}")
        else:
            out.append(orjson.dumps(char).decode()[1:-1])
    return "".join(out)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.sampled_from(sorted(PLANTED_BY_KIND)), st.data())
def test_a_secret_written_with_json_escapes_is_found_and_redacted(tmp_path_factory, kind, data):
    case = Case(tmp_path_factory.mktemp("escaped"))
    planted = PLANTED_BY_KIND[kind]
    chosen = data.draw(st.lists(st.booleans(), min_size=len(planted), max_size=len(planted)))
    body = _escaped(planted, chosen)
    field = data.draw(st.sampled_from(["prompt", "response", "metadata"]))
    row = trace(0)
    if field == "metadata":
        row["metadata"] = {"n": "PLACE"}
    else:
        row[field] = "PLACE"
    line = orjson.dumps(row).replace(b"PLACE", f"see {body} now".encode())
    assert planted in _all_text(orjson.loads(line))  # the escapes decode to the secret
    copy = case.root / "copy.jsonl"
    _, report = report_of(case, line + b"\n", "--redacted-copy", str(copy))
    found = [f for f in report["findings"] if f["code"].endswith("_DETECTED")]
    assert found and kind in found[0]["message"], report["findings"]
    raw = copy.read_text(encoding="utf-8")
    readable = _all_text(orjson.loads(raw))
    for part in _substrings(SECRET_PART[kind]):
        assert part not in readable and part not in raw


# ---- class 9: leakage normalisation is defined and complete ----


@pytest.mark.parametrize(
    "disguise",
    [
        lambda text: text.replace("limit", "li\u200bmit"),  # zero-width space
        lambda text: text.replace("limit", "li\u200dmit"),  # zero-width joiner
        lambda text: text.replace("limit", "li\u200cmit"),  # zero-width non-joiner
        lambda text: text.replace("limit", "li\u2060mit"),  # word joiner
        lambda text: text.replace("limit", "li\u00admit"),  # soft hyphen
        lambda text: "\ufeff" + text,  # byte order mark
        lambda text: text.replace("card", "\uff43\uff41\uff52\uff44"),  # full-width (NFKC)
        lambda text: text.upper().replace("S", "\u017f"),  # long s (case folding)
        lambda text: text.replace(" ", "\u00a0\u2003 "),  # other spaces, collapsed
    ],
)
def test_disguised_copies_of_a_training_row_are_leakage(case, disguise):
    prompt = "What is my card limit? (shared)"
    rows = [trace(0, split="train", prompt=prompt), trace(1, split="test", prompt=disguise(prompt))]
    result, report = report_of(case, jsonl(rows))
    assert result.exit_code == 1
    leak = located(report, "DATASET_CROSS_SPLIT_DUPLICATE")
    assert [f["location"].rsplit(":", 1)[1] for f in leak] == ["2"]


def test_the_separator_cannot_be_forged_by_a_nul_inside_a_text(case):
    rows = [
        trace(0, split="train", prompt="a\x00b", response="c"),
        trace(1, split="test", prompt="a", response="b\x00c"),
        trace(2, split="test", prompt="a\x00b\x00c", response="d"),
        trace(3, split="train", prompt="a\x00b", response="c\x00d"),
    ]
    result, report = report_of(case, jsonl(rows))
    assert result.exit_code == 0, report["findings"]
    assert not located(report, "DATASET_CROSS_SPLIT_DUPLICATE")


# ---- class 10: times follow RFC 3339 ----


@pytest.mark.parametrize(
    "stamp",
    [
        "2024-05-01T09:00:00Z",
        "2024-05-01t09:00:00z",
        "2024-05-01 09:00:00Z",
        "2024-05-01T09:00:00.123456789+02:00",
        "2024-05-01T09:00:00-00:00",
        "2016-12-31T23:59:60Z",
        "2016-12-31T18:59:60-05:00",
    ],
)
def test_every_rfc3339_date_time_is_accepted(case, stamp):
    result, report = report_of(case, jsonl([trace(0, observed_at=stamp)]))
    assert result.exit_code == 0, report["findings"]


@pytest.mark.parametrize(
    "stamp",
    [
        "2024-05-01T09:00:00",  # no offset
        "2024-05-01T09:00:00+0200",  # ISO 8601 basic offset
        "2024-05-01T09:00:00+02",
        "2024-05-01T09:00Z",  # no seconds
        "2024-05-01T09:00:00,5Z",  # comma fraction
        "2024-W18-3T09:00:00Z",  # week date
        "2024-02-30T09:00:00Z",  # no such day
        "2024-05-01T24:00:00Z",
        "2024-05-01T09:58:60Z",  # a leap second only ends a minute
        "2024-05-01T09:00:00+24:00",
        "\uff12\uff10\uff12\uff14-05-01T09:00:00Z",  # full-width digits
    ],
)
def test_what_rfc3339_does_not_allow_is_a_located_finding(case, stamp):
    result, report = report_of(case, jsonl([trace(0, observed_at=stamp)]))
    assert result.exit_code == 1
    (finding,) = located(report, "DATASET_INVALID_TIMESTAMP")
    assert finding["field"] == "observed_at"


# ---- class 7: nothing from the data is echoed unsafely ----


@pytest.mark.parametrize("field", ["split", "label", "severity", "expected_decision", "vertical"])
@pytest.mark.parametrize("planted", PLANTED)
def test_a_secret_in_a_reported_value_is_never_echoed(case, field, planted):
    rows = [trace(0), trace(1, **{field: f"x {planted}"}), trace(2, trace_id=planted, split="bad")]
    for args in ((), ("--format", "json")):
        result, report = report_of(case, jsonl(rows), *args)
        assert result.exit_code == 1
        for counts in ("split_counts", "label_counts", "sector_counts"):
            assert all(planted not in key for key in report[counts])
        named = [f for f in report["findings"] if f["location"].endswith(":3")]
        assert named and all(f["trace_id"] != planted for f in named)


@pytest.mark.parametrize(
    "hostile",
    [
        "t-1\nREADY  forged.jsonl: 0 rows",
        "t-1\r\x1b[32mREADY\x1b[0m",
        "t-1\u2028READY",
        "t\x00\x07",
    ],
)
def test_control_characters_in_echoed_values_are_escaped(case, hostile):
    rows = [trace(0), trace(1, trace_id=hostile, split=hostile, label=hostile)]
    for args in ((), ("--format", "json")):
        result, _ = report_of(case, jsonl(rows), *args)
        assert result.exit_code == 1
        lines = result.output.splitlines()
        assert lines[0].startswith("BLOCKED") or lines[0].startswith("{")
        assert not any(line.startswith("READY") for line in lines)
        assert "\x1b" not in result.output and "\r" not in result.output
        assert "\u2028" not in result.output and "\x00" not in result.output


def test_echoed_values_are_cut_to_a_documented_length(case):
    long_split = "s" * 5000
    _, report = report_of(case, jsonl([trace(0, split=long_split, trace_id="t" * 1000)]))
    (finding,) = located(report, "DATASET_SPLIT_NOT_ALLOWED")
    assert "s" * 64 + "\u2026" in finding["message"] and "s" * 65 not in finding["message"]
    assert finding["trace_id"] == "t" * 256 + "\u2026"
    assert list(report["split_counts"]) == ["s" * 64 + "\u2026"]


# ---- class 8: the workspace is consistent or refused ----

_BASE_TOML = WORKSPACE_TOML


@pytest.mark.parametrize(
    ("extra", "words", "line"),
    [
        ('required_splits = ["trian"]\n', ["required_splits", "trian"], 7),
        ('[workspace.as_of]\ntraining_splits = ["trian"]\n', ["training_splits", "trian"], 8),
        (
            '[workspace.as_of]\nevaluation_splits = ["tset"]\n',
            ["evaluation_splits", "tset"],
            None,
        ),
        (
            "[workspace.as_of.split_windows.holdout]\nend = 2024-01-01T00:00:00Z\n",
            ["split_windows", "holdout"],
            None,
        ),
        ('[workspace.as_of]\ntemporal_split = "off"\n', ["temporal_split", "boolean"], 8),
        ("[workspace.as_of]\ntemporal_split = 0\n", ["temporal_split", "boolean"], 8),
        ("[workspace.as_of]\ntemporal_splt = true\n", ["'temporal_splt'", "'temporal_split'"], 8),
        ("[workspace.asof]\ntemporal_split = true\n", ["'asof'", "'as_of'"], 7),
        ("secrets_polcy = 'redact'\n", ["'secrets_polcy'", "'secrets_policy'"], 7),
        (
            "[workspace.as_of.split_windows.train]\nstrat = 2024-01-01T00:00:00Z\n",
            ["'strat'", "'start'"],
            8,
        ),
    ],
)
def test_an_inconsistent_or_mistyped_workspace_is_refused(case, extra, words, line):
    case.workspace.write_text(_BASE_TOML + extra, encoding="utf-8")
    case.before = case.snapshot()
    result = case.run()
    assert result.exit_code == 2, result.output
    message = one_line(result).removeprefix("error: ")
    assert all(word in message for word in words), message
    assert message.startswith(str(case.workspace))
    if line is not None:
        assert message.startswith(f"{case.workspace}:{line}:"), message
    case.assert_inputs_intact()


def test_a_mistyped_workspace_table_is_named(case):
    case.workspace.write_text(_BASE_TOML.replace("[workspace]", "[worksapce]"), encoding="utf-8")
    case.before = case.snapshot()
    message = one_line(case.run()).removeprefix("error: ")
    assert "no [workspace] table; found [worksapce]; did you mean [workspace]?" in message
    assert message.startswith(f"{case.workspace}:1:")


# ---- class 11: nothing is skipped silently ----


def test_files_in_a_shard_directory_that_are_not_shards_are_listed(case):
    for name in ("notes.txt", "c.json", "d.jsonl.bak", ".hidden.jsonl", "e.JSONL"):
        (case.shards / name).write_bytes(jsonl([trace(9)]))
    (case.shards / "nested").mkdir()
    (case.shards / "nested" / "f.jsonl").write_bytes(jsonl([trace(10)]))
    out = case.root / "r.json"
    result = case.run("-o", str(out), traces=case.shards)
    assert result.exit_code == 0, result.output  # warnings only
    report = orjson.loads(out.read_bytes())
    ignored = [f for f in report["findings"] if f["code"] == "DATASET_FILE_IGNORED"]
    assert sorted(Path(f["location"]).name for f in ignored) == sorted(
        ["notes.txt", "c.json", "d.jsonl.bak", ".hidden.jsonl", "e.JSONL", "nested"]
    )
    assert all(f["severity"] == "warning" for f in ignored)
    assert report["row_count"] == 6


def test_a_shard_linking_outside_its_directory_is_an_error_unless_followed(case):
    outside = case.root / "elsewhere.jsonl"
    outside.write_bytes(jsonl([trace(20), trace(21)]))
    (case.shards / "c.jsonl").symlink_to(outside)
    (case.shards / "d.jsonl").symlink_to(case.shards / "a.jsonl")  # inside: read
    out = case.root / "r.json"
    result = case.run("-o", str(out), traces=case.shards)
    assert result.exit_code == 1, result.output
    report = orjson.loads(out.read_bytes())
    (finding,) = [f for f in report["findings"] if f["code"] == "DATASET_SHARD_OUTSIDE_DIRECTORY"]
    assert finding["location"].endswith("c.jsonl") and "--follow-symlinks" in finding["message"]
    assert report["row_count"] == 9  # a, b and d
    result = case.run("-o", str(out), "--follow-symlinks", traces=case.shards)
    report = orjson.loads(out.read_bytes())
    assert not [f for f in report["findings"] if f["code"] == "DATASET_SHARD_OUTSIDE_DIRECTORY"]
    assert report["row_count"] == 11


def test_keys_that_redact_alike_keep_every_value(case):
    other = "john.roe" + "@" + "example.org"
    row = trace(0, metadata={EMAIL: "first", other: "second", "plain": "third"})
    copy = case.root / "copy.jsonl"
    report_of(case, jsonl([row]), "--redacted-copy", str(copy))
    metadata = orjson.loads(copy.read_bytes())["metadata"]
    assert sorted(metadata.values()) == ["first", "second", "third"]
    assert set(metadata) == {"[REDACTED:email]", "[REDACTED:email]#2", "plain"}
