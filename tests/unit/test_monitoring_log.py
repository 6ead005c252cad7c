"""The decision-log reader: the fast path agrees with the pydantic-validated readable path on
every hostile line, and each bad line is one located finding."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from customer_model_factory.errors import DataFormatError
from customer_model_factory.stages.dataset.models import parse_rfc3339
from customer_model_factory.stages.monitoring.log import (
    MAX_LINE_FINDINGS,
    ExpectedRuntime,
    _DecisionLine,
    decision_instant,
    scan_decision_log,
    scan_decision_log_reference,
)
from customer_model_factory.stages.runtime.models import DecisionRecord

from ..stage_monitoring_support import decision, runtime_package, write_jsonl

PACKAGE = runtime_package()
EXPECTED = ExpectedRuntime(
    PACKAGE.runtime_id, PACKAGE.runtime_hash, PACKAGE.runtime_config.package_version
)
REFERENCE = PACKAGE.runtime_config.reference_histograms


def both(path: Path, **kwargs):
    fast = scan_decision_log(path, EXPECTED, REFERENCE, **kwargs)
    slow = scan_decision_log_reference(path, EXPECTED, REFERENCE, **kwargs)
    assert fast.comparable() == slow.comparable()
    return fast


def good(index: int, **over) -> dict:
    return {**decision(PACKAGE, index), **over}


HOSTILE_LINES: list[bytes] = [
    orjson.dumps(good(0)),
    b"",  # blank: skipped
    b"   \r",
    b'{"trace_id": "t", "score": NaN}',  # NaN literal
    orjson.dumps(good(1, score=None)),
    orjson.dumps(good(2, score=1.5)),
    orjson.dumps(good(3, score="0.5")),
    orjson.dumps(good(4, score=True)),
    orjson.dumps(good(5, input_chars=3.0)),
    orjson.dumps(good(6, input_chars=-1)),
    orjson.dumps(good(7, input_chars=2**60)),
    b'{"trace_id":"t","decided_at":"2026-05-18T10:00:00Z","score":0.1,"decision":"approve",'
    b'"reason":"approve","latency_ms":1,"input_chars":100000000000000000000000,'
    b'"package_version":"1.4.0","runtime_id":"rt","runtime_hash":"sha256:' + b"1" * 64 + b'"}',
    orjson.dumps(good(8, decision="allow")),
    orjson.dumps(good(9, latency_ms=-0.5)),
    orjson.dumps(good(10, decided_at="2026-05-18 10:00:00")),  # no offset
    orjson.dumps(good(11, decided_at="2026-02-30T10:00:00Z")),
    orjson.dumps(good(12, decided_at="2026-05-18T24:00:00Z")),
    orjson.dumps(good(13, decided_at="2026-05-18T10:00:00+05:60")),
    orjson.dumps(good(14, decided_at="2026-05-18t10:00:00.123456789z")),  # valid, lower case
    orjson.dumps(good(15, decided_at="2026-06-30T23:59:60Z")),  # leap second: valid
    orjson.dumps(good(16, runtime_hash=PACKAGE.runtime_hash + "\n")),
    orjson.dumps(good(17, trace_id="")),
    orjson.dumps({**good(18), "extra\u202efield": 1}),
    orjson.dumps({k: v for k, v in good(19).items() if k != "reason"}),
    orjson.dumps(good(20, runtime_hash="sha256:" + "9" * 64)),  # another runtime
    orjson.dumps(good(21, package_version="2.0.0")),
    b"[1, 2, 3]",
    b'"just a string"',
    b'{"trace_id": "\xff\xfe"}',
    b'{"trace_id": "\\ud800"}',
    b'{"a": 1} trailing',
    b'{"a": 1, "a": 2}',
    b"\xef\xbb\xbf" + orjson.dumps(good(22)),
    orjson.dumps({**good(23), "decision": "approve", "score": 0.0}),
    b'{"trace_id":"t","decided_at":"2026-05-18T10:00:00Z","score":0.1,"decision":"approve",'
    b'"reason":"approve","latency_ms":1e400,"input_chars":1,'
    b'"package_version":"1.4.0","runtime_id":"rt","runtime_hash":"sha256:' + b"1" * 64 + b'"}',
    orjson.dumps(good(24, latency_ms=1e30)),
    orjson.dumps(good(25, decided_at="yesterday", runtime_hash="sha256:short")),
    orjson.dumps(good(26, runtime_hash="sha256:" + "A" * 64)),
]


def test_fast_and_readable_paths_agree_on_every_hostile_line(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "log.jsonl", HOSTILE_LINES)
    summary = both(path)
    codes = {f.code for f in summary.findings}
    assert {
        "MONITOR_LOG_LINE_INVALID",
        "MONITOR_LOG_FIELD_INVALID",
        "MONITOR_LOG_FOREIGN_RUNTIME",
    } <= codes
    # valid: lines 1, 19 (lowercase t/z, 9 fraction digits), 20 (leap second), 34, 36 (1e30 ms)
    assert summary.decisions == 5
    by_line = {f.location.rsplit(":", 1)[1]: f for f in summary.findings if f.location}
    assert by_line["4"].code == "MONITOR_LOG_LINE_INVALID"  # NaN
    assert "NaN" in by_line["4"].message
    assert by_line["15"].field == "decided_at"
    assert by_line["23"].field is None  # an unknown key is never echoed
    assert by_line["24"].field == "reason"
    assert by_line["37"].field == "runtime_hash"  # the readable rules' first problem
    assert by_line["38"].code == "MONITOR_LOG_FIELD_INVALID"  # not another runtime
    assert all("\u202e" not in f.message for f in summary.findings)


def test_a_trailing_half_line_is_a_truncated_line(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_bytes(orjson.dumps(good(0)) + b"\n" + orjson.dumps(good(1))[:40])
    summary = both(path)
    assert [f.code for f in summary.findings] == ["MONITOR_LOG_TRUNCATED_LINE"]
    assert summary.findings[0].location == f"{path}:2"
    assert summary.decisions == 1


def test_a_complete_last_line_without_newline_is_read(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_bytes(orjson.dumps(good(0)) + b"\n" + orjson.dumps(good(1)))
    summary = both(path)
    assert summary.findings == []
    assert summary.decisions == 2


def test_a_line_too_long_is_reported_not_parsed(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    huge = b'{"trace_id": "' + b"x" * 5000 + b'"}'
    path.write_bytes(orjson.dumps(good(0)) + b"\n" + huge + b"\n" + orjson.dumps(good(1)) + b"\n")
    summary = both(path, max_line_bytes=1000)
    assert [(f.code, f.location) for f in summary.findings] == [
        ("MONITOR_LOG_LINE_INVALID", f"{path}:2")
    ]
    assert summary.decisions == 2


def test_lines_across_block_boundaries_and_a_long_last_line(tmp_path: Path) -> None:
    rows = [orjson.dumps(good(i)) for i in range(6000)]  # > 1 MiB: several blocks
    path = tmp_path / "log.jsonl"
    path.write_bytes(b"\n".join(rows) + b"\n" + b"y" * 3000)
    summary = both(path, max_line_bytes=2000)
    assert summary.decisions == 6000
    assert summary.lines == 6001
    assert [f.location for f in summary.findings] == [f"{path}:6001"]


def test_bad_lines_beyond_the_cap_are_counted_in_one_finding(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "log.jsonl", [b"{bad"] * (MAX_LINE_FINDINGS + 7))
    summary = both(path)
    assert summary.invalid_lines == MAX_LINE_FINDINGS + 7
    assert len(summary.findings) == MAX_LINE_FINDINGS + 1
    assert summary.findings[-1].code == "MONITOR_LOG_FINDINGS_TRUNCATED"


def test_foreign_runtime_lines_are_aggregated_and_left_out(tmp_path: Path) -> None:
    other = runtime_package(runtime_id="rt-other")
    rows = [good(i) for i in range(10)] + [decision(other, i) for i in range(5)]
    summary = both(write_jsonl(tmp_path / "log.jsonl", rows))
    assert summary.decisions == 10
    assert summary.foreign_lines == 5
    fields = sorted(f.field for f in summary.findings)
    assert fields == ["runtime_hash", "runtime_id"]
    assert all(f.location == f"{tmp_path / 'log.jsonl'}:11" for f in summary.findings)


def test_whole_file_problems(tmp_path: Path) -> None:
    gz = tmp_path / "log.jsonl"
    gz.write_bytes(b"\x1f\x8b\x08\x00" + b"\x00" * 40)
    summary = both(gz)
    assert [f.code for f in summary.findings] == ["MONITOR_LOG_UNREADABLE"]
    utf16 = tmp_path / "u16.jsonl"
    utf16.write_bytes(orjson.dumps(good(0)).decode().encode("utf-16"))
    assert [f.code for f in both(utf16).findings] == ["MONITOR_LOG_UNREADABLE"]
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    summary = both(empty)
    assert summary.decisions == 0 and summary.findings == []
    with pytest.raises(DataFormatError, match="file not found"):
        scan_decision_log(tmp_path / "missing.jsonl", EXPECTED, REFERENCE)
    with pytest.raises(DataFormatError, match="directory"):
        scan_decision_log(tmp_path, EXPECTED, REFERENCE)


def test_the_digest_is_that_of_the_bytes(tmp_path: Path) -> None:
    import hashlib

    path = write_jsonl(tmp_path / "log.jsonl", [good(i) for i in range(50)] + [b"{bad"])
    assert both(path).digest == "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def test_window_is_by_instant_not_by_text(tmp_path: Path) -> None:
    rows = [
        good(0, decided_at="2026-05-18T10:00:00+05:00"),  # 05:00Z: the first
        good(1, decided_at="2026-05-18T06:00:00Z"),
        good(2, decided_at="2026-05-18T09:59:59.5-04:00"),  # 13:59:59.5Z: the last
        good(3, decided_at="2026-05-18T12:00:00Z"),
    ]
    summary = both(write_jsonl(tmp_path / "log.jsonl", rows))
    assert summary.first == dt.datetime(2026, 5, 18, 5, tzinfo=dt.UTC)
    assert summary.last == dt.datetime(2026, 5, 18, 13, 59, 59, 500000, tzinfo=dt.UTC)


def test_the_struct_mirrors_the_decision_record() -> None:
    assert list(_DecisionLine.__struct_fields__) == list(DecisionRecord.model_fields)


@settings(max_examples=300)
@given(
    st.one_of(
        st.datetimes(
            min_value=dt.datetime(1, 1, 2),
            max_value=dt.datetime(9999, 12, 30),
            timezones=st.just(dt.UTC),
        ).map(lambda d: d.isoformat().replace("+00:00", "Z")),
        st.datetimes(
            min_value=dt.datetime(1, 1, 2),
            max_value=dt.datetime(9999, 12, 30),
            timezones=st.timezones(),
        ).map(lambda d: d.isoformat(timespec="microseconds")),
        st.from_regex(
            r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?"
            r"([Zz]|[+-][0-9]{2}:[0-9]{2})\Z"
        ),
        st.text(max_size=40),
    )
)
def test_decision_instant_equals_the_rfc3339_parser(text: str) -> None:
    assert decision_instant(text) == parse_rfc3339(text)


def test_decision_instant_on_odd_text() -> None:
    assert decision_instant("2026-05-18T10:00:00\ud800Z") is None
    assert decision_instant("２026-05-18T10:00:00Z") is None  # a full-width digit
    assert decision_instant("2026-05-18T10:00:00+05:60") is None
    assert decision_instant("2026-06-30T23:59:60Z") == dt.datetime(2026, 7, 1, tzinfo=dt.UTC)


row_values = st.fixed_dictionaries(
    {},
    optional={
        "trace_id": st.one_of(st.text(max_size=5), st.integers()),
        "decided_at": st.sampled_from(
            ["2026-05-18T10:00:00Z", "2026-05-18T10:00:00", "x", "2026-05-18T10:00:00.5+01:00"]
        ),
        "score": st.one_of(st.floats(allow_nan=False), st.integers(-2, 2), st.booleans()),
        "decision": st.sampled_from(["approve", "block", "deny", ""]),
        "reason": st.one_of(st.text(max_size=3), st.none()),
        "latency_ms": st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers()),
        "input_chars": st.one_of(st.integers(min_value=-5, max_value=2**70), st.floats()),
        "package_version": st.sampled_from(["1.4.0", "2"]),
        "runtime_id": st.sampled_from([PACKAGE.runtime_id, "other"]),
        "runtime_hash": st.sampled_from([PACKAGE.runtime_hash, "sha256:x"]),
    },
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(row_values, min_size=1, max_size=8))
def test_fast_and_readable_paths_agree_on_generated_rows(tmp_path: Path, rows: list[dict]) -> None:
    lines = []
    for row in rows:
        try:
            lines.append(orjson.dumps(row))
        except TypeError:  # an integer beyond 64 bits: write it as text
            lines.append(str(row).replace("'", '"').encode())
    path = write_jsonl(tmp_path / "log.jsonl", [*lines, orjson.dumps(good(0))])
    both(path)


def test_blank_blocks_and_a_line_spanning_several_blocks(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_bytes(
        b"\n" * (3 << 20)
        + orjson.dumps(good(0))
        + b"\n"
        + b'{"trace_id": "'
        + b"z" * (3 << 20)
        + b'"}\n'
        + orjson.dumps(good(1))
        + b"\n"
    )
    summary = both(path)
    assert summary.decisions == 2
    assert [f.location for f in summary.findings] == [f"{path}:{(3 << 20) + 2}"]
    assert "longer than" in summary.findings[0].message


def test_window_ends_outside_the_utc_calendar(tmp_path: Path) -> None:
    from customer_model_factory.context import RunContext
    from customer_model_factory.stages.monitoring.build import MonitorRequest, build_monitoring

    from ..stage_monitoring_support import write_runtime

    package = write_runtime(tmp_path / "rt")
    rows = [
        decision(package, 0, decided_at="0001-01-01T00:00:00+01:00"),
        decision(package, 1, decided_at="9999-12-31T23:59:59-01:00"),
    ]
    write_jsonl(tmp_path / "log.jsonl", rows)
    manifest = build_monitoring(
        MonitorRequest(runtime=tmp_path / "rt", decision_log=tmp_path / "log.jsonl"),
        RunContext(clock=lambda: dt.datetime(2026, 5, 19, tzinfo=dt.UTC)),
    )
    assert manifest.observation_window == "0001-01-01T00:00:00+01:00/9999-12-31T23:59:59-01:00"
