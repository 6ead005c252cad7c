"""The contract between the dataset stage's fast engine and its rules.

The rules (:mod:`customer_model_factory.stages.dataset.rules`) are the reference: every row
checked by :meth:`RowRules.check` as a dict. The engine takes a row decoded by msgspec through
:meth:`_RowChecker.check_typed` when it can prove the row's shape rules pass, and otherwise falls
back to the rules' dict path; whichever way each row goes, the report (findings, counts, hashes)
must be byte-identical to checking every row as a dict. Malformed input is part of the contract:
whatever the reference reports as a located finding, the engine reports identically.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from customer_model_factory import hookimpl
from customer_model_factory.contributions import SectorPack
from customer_model_factory.findings import Finding
from customer_model_factory.stages.dataset import (
    CustomerWorkspace,
    engine,
    rules,
    validate_customer_trace_dataset,
)
from customer_model_factory.testing import fresh_plugin_manager


class _Bank:
    """A sector pack whose verdict depends on the metadata and on a field only the dict holds."""

    CMF_PLUGIN_API = "1.1"

    @hookimpl
    def cmf_sector_packs(self):
        return [
            SectorPack(
                id="bank",
                version="1",
                title="Bank",
                jurisdiction="EU",
                finding_codes={"SECTOR_TEST_BANK_PRODUCT": "The product is not allowed."},
            )
        ]

    @hookimpl
    def cmf_validate_sector_metadata(self, sector_id, trace, metadata):
        # "desk" is a field the rules never read: only the whole row carries it.
        if metadata.get("product") == "forbidden" or trace.get("desk") == "offshore":
            return [
                Finding(
                    code="SECTOR_TEST_BANK_PRODUCT",
                    severity="error",
                    message="product is not allowed",
                    field="metadata.product",
                )
            ]
        return []


def _manager():
    manager = fresh_plugin_manager()
    manager.register(_Bank(), name="bank")
    return manager


WORKSPACE = {
    "customer_id": "acme",
    "workspace_id": "ws-1",
    "tenant_id": "acme-eu",
    "data_classification": "confidential",
    "allowed_splits": ["train", "validation", "test"],
    "label_map": {"benign": "safe", "harmful": "unsafe"},
    "as_of": {
        "label_cutoff": "2024-06-30T00:00:00Z",
        "temporal_split": True,
        "split_windows": {"train": {"end": "2024-04-01T00:00:00Z"}},
    },
}

# Values a field may take: the common one first, then every kind of trouble.
FIELD_VALUES: dict[str, list[Any]] = {
    "trace_id": ["t-{i}", "t-0", "", "  ", 7, None, "x" * 70],
    "customer_id": ["acme", "other", 3, None],
    "tenant_id": ["acme-eu", "acme-us", None],
    "workspace_id": ["ws-1", "ws-2", "", None],
    "split": ["train", "test", "validation", "holdout", None, ["train"]],
    "prompt": [
        "How do I pay, case {i}?",
        "Same prompt",
        "  Spaced\tout  ",
        "Çà et là {i}",
        "",
        5,
        "Same  prompt",
        "SAME\tPROMPT",
    ],
    "response": ["Use the app.", "USE THE APP.", " ", None],
    "expected_decision": ["approve", "block", "escalate", "maybe", None],
    "severity": ["low", "high", "critical", "extreme", None],
    "label": ["benign", "harmful", "unknown", None],
    "source_refs": [["kb://a"], ["kb://b", "kb://c"], [], [" "], "kb://a", [{"x": 1}], None],
    "policy_refs": [["policy://v1"], ["policy://v{i}"], None, [7]],
    "reviewer_role": ["analyst", None, 1],
    "observed_at": [
        "2024-03-01T10:00:00Z",
        "2024-09-01T10:00:00Z",
        "2024-03-01T10:00:00",
        "2024-03-01",
        "2024-03-01T10:00:00.5+02:00",
        "not a time",
        12,
        None,
    ],
    "event_time": [
        "2024-02-01T00:00:00Z",
        None,
        "2024-05-01T00:00:00Z",
        "bad",
        "2024-02-01",
        "2024-01-15T00:00:00Z",
    ],
    "contains_pii": [None, False, True, 1],
    "contains_secret": [None, False, True],
    "redaction_status": [None, "redacted", "not_required", "hmm"],
    "vertical": [None, "", " ", "unknown-sector", "bank"],
    "metadata": [
        None,
        {"a": 1},
        [1],
        "m",
        {"sector_class": "retail", "knowledge_class": "faq", "jurisdiction": "EU"},
        {
            "sector_class": "retail",
            "knowledge_class": "faq",
            "jurisdiction": "EU",
            "product": "forbidden",
        },
    ],
}


def _row(index: int, choices: dict[str, int]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for name, values in FIELD_VALUES.items():
        value = values[choices.get(name, 0) % len(values)]
        if isinstance(value, str):
            value = value.replace("{i}", str(index))
        elif isinstance(value, list):
            value = [v.replace("{i}", str(index)) if isinstance(v, str) else v for v in value]
        if value is not None or name in ("trace_id", "prompt"):
            row[name] = value
    if choices.get("desk"):
        row["desk"] = "offshore"
        if value is None and choices.get(name, 0) % 2:
            row[name] = None  # explicit null as well as a missing field
    return row


# Most rows clean (so the fast path is taken), some with one or two fields off the common path.
row_choices = st.dictionaries(
    st.sampled_from(sorted(FIELD_VALUES)), st.sampled_from(range(8)), max_size=2
)
datasets = st.lists(st.one_of(st.just({}), st.just({}), row_choices), min_size=1, max_size=40)


def _report(
    path: Path, typed: bool, monkeypatch: pytest.MonkeyPatch, vertical: str | None = None
) -> bytes:
    if not typed:
        monkeypatch.setattr(engine, "_typed_decoder", lambda *_: None)
    report = validate_customer_trace_dataset(
        path,
        CustomerWorkspace.model_validate(WORKSPACE),
        vertical=vertical,
        pm=_manager(),
        workers=1,
    )
    monkeypatch.undo()
    return report.model_dump_json().encode()


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(datasets)
def test_typed_path_report_equals_the_dict_path_report(tmp_path, monkeypatch, rows):
    path = tmp_path / "traces.jsonl"
    path.write_bytes(
        b"".join(orjson.dumps(_row(index, choices)) + b"\n" for index, choices in enumerate(rows))
    )
    assert _report(path, True, monkeypatch) == _report(path, False, monkeypatch)


@pytest.mark.parametrize(
    ("field", "choice"),
    [(name, choice) for name, values in FIELD_VALUES.items() for choice in range(len(values) + 1)]
    + [("desk", 1)],
)
@pytest.mark.parametrize("vertical", [None, "bank"])
def test_every_single_deviation_is_judged_alike_on_both_paths(
    tmp_path, monkeypatch, field, choice, vertical
):
    # Clean rows around one row that differs in one field (the last choice: an explicit null).
    # Evaluation rows older than the newest training row (a temporal finding) on both paths.
    early_test = {"split": 1, "event_time": 5}
    rows = [_row(0, {}), _row(1, early_test), _row(2, {}), _row(3, early_test)]
    odd = _row(4, {field: choice})
    if choice == len(FIELD_VALUES.get(field, ())):
        odd[field] = None
    # A prompt the odd row may repeat once whitespace is collapsed and case folded.
    rows += [odd, _row(5, {"prompt": 1}), {**odd, "trace_id": "t-6"}]
    path = tmp_path / "traces.jsonl"
    path.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
    typed = _report(path, True, monkeypatch, vertical)
    assert typed == _report(path, False, monkeypatch, vertical)


def test_the_common_row_takes_the_typed_path(tmp_path, monkeypatch):
    taken: list[bool] = []
    original = engine._RowChecker.check_typed

    def counting(self, row, line, spaced, raw):
        result = original(self, row, line, spaced, raw)
        taken.append(result)
        return result

    monkeypatch.setattr(engine._RowChecker, "check_typed", counting)
    path = tmp_path / "traces.jsonl"
    path.write_bytes(b"".join(orjson.dumps(_row(i, {})) + b"\n" for i in range(50)))
    validate_customer_trace_dataset(
        path, CustomerWorkspace.model_validate(WORKSPACE), pm=fresh_plugin_manager(), workers=1
    )
    # The first row of a signature and of each reference is judged on the dict path.
    assert sum(1 for result in taken if result) >= 45


_TEXT = st.text(
    alphabet=st.sampled_from("aB \t\n\r\x0b\x0c\x1c\x1f\x00.Z9"), min_size=1, max_size=12
)


@settings(max_examples=500, deadline=None)
@given(_TEXT, _TEXT, st.booleans())
@example(prompt="9", response="9 \x00", escaped=False)  # a NUL inside a text is no separator
@example(prompt="a  z \x00b", response="x", escaped=False)  # no strip around a NUL
@example(prompt="a  b", response="x", escaped=True)  # spaces written as \u0020
def test_the_ascii_leakage_key_equals_full_normalisation(prompt, response, escaped):
    import re

    # Whether the block scan's marker fires on this row's raw JSON, as it does in a real run;
    # a writer may escape spaces, which hides a run of them from the raw bytes.
    raw = orjson.dumps([prompt, response])
    if escaped:
        raw = raw.replace(b" ", b"\\u0020")
    assert orjson.loads(raw) == [prompt, response]
    spaced = bool(re.search(engine._WHITESPACE_MARKER, raw))
    # The byte-translation key collapses whitespace only when the marker or an edge space says
    # so; it is always the key that NFKC + case folding + collapsing gives.
    assert engine._fold(prompt, response, spaced=spaced) == rules.leakage_key(prompt, response)


# ---- malformed input: whatever the rules report, the engine reports identically ----

HOSTILE_LINES = [
    b"",
    b"   ",
    b"not json",
    b"[1, 2]",
    b"42",
    b'"a string"',
    b"null",
    b'{"a": NaN}',
    b"\xff\xfe{\x00}",
    b'{"trace_id": "\xc3\x28"}',
    b'{"prompt": "\\ud800", "trace_id": "t-s"}',
    b'{"trace_id": "t-d", "trace_id": "t-e"}',
    b"[" * 300 + b"]" * 300,
    b'{"metadata": ' + b'{"a": ' * 200 + b"1" + b"}" * 201,
    b'{"trace_id": "t-n", "severity": 1e999}',
    b'{"trace_id": "t-b", "contains_pii": 123456789012345678901234567890}',
    b"{",
    b'{"trace_id": "t-u"',
    b"\x00",
    b"\xef\xbb\xbf{}",
    b'{"trace_id": "t-esc", "prompt": "\\u0041\\u004b\\u0049\\u0041"}',
    # Clean rows but for a field the rules do not read: the typed decoder skips such a field
    # unchecked, so the engine must leave these to the reference decoder.
    *(
        orjson.dumps(_row(90 + index, {}))[:-1] + b', "extra": ' + tail + b"}"
        for index, tail in enumerate(
            [b"1e999", b"-1E+0400", b"1" * 400, b'"\xc3\x28"', b'"\xff"', b'"\\udc00"']
        )
    ),
    orjson.dumps(_row(97, {}))[:-1] + b', "\x80": 1}',
]


def _mutate(line: bytes, position: int, insert: bytes, cut: bool) -> bytes:
    position %= len(line) + 1
    return line[:position] if cut else line[:position] + insert + line[position:]


hostile_rows = st.one_of(
    row_choices.map(lambda choices: ("row", choices)),
    st.sampled_from(HOSTILE_LINES).map(lambda line: ("line", line)),
    st.tuples(row_choices, st.integers(0, 2000), st.binary(max_size=4), st.booleans()).map(
        lambda args: ("mutated", args)
    ),
)


def _hostile_bytes(items: list[tuple[str, Any]]) -> bytes:
    lines = []
    for index, (kind, value) in enumerate(items):
        if kind == "row":
            lines.append(orjson.dumps(_row(index, value)))
        elif kind == "line":
            lines.append(value)
        else:
            choices, position, insert, cut = value
            lines.append(_mutate(orjson.dumps(_row(index, choices)), position, insert, cut))
    return b"\n".join(lines) + b"\n"


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(hostile_rows, min_size=1, max_size=25), st.sampled_from([None, "bank"]))
@example(items=[("line", line) for line in HOSTILE_LINES], vertical=None)
def test_malformed_lines_are_reported_alike_by_the_engine_and_the_rules(
    tmp_path, monkeypatch, items, vertical
):
    path = tmp_path / "traces.jsonl"
    path.write_bytes(_hostile_bytes(items))
    # Neither path raises (an exception would be exit 3): every bad line is a finding.
    typed = _report(path, True, monkeypatch, vertical)
    assert typed == _report(path, False, monkeypatch, vertical)
    report = orjson.loads(typed)
    assert all(
        finding["location"]
        for finding in report["findings"]
        if finding["code"].startswith("DATASET_JSONL_")
    )


GOLDEN = Path(__file__).resolve().parents[1] / "data" / "dataset_golden"


@pytest.mark.parametrize("vertical", [None, "bank"])
@pytest.mark.parametrize("workers", [1, 2])
def test_reports_are_byte_identical_to_the_recorded_ones(tmp_path, monkeypatch, vertical, workers):
    # Recorded before the stage was split into rules and engine (same input, same bytes), then
    # again only where behaviour changed on purpose: a repeated key is DATASET_DUPLICATE_KEY, a
    # lone surrogate escape is named as such, and reports gained kind, inputs and sector_owners.
    (tmp_path / "traces.jsonl").write_bytes((GOLDEN / "traces.jsonl").read_bytes())
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(engine, "_MIN_RANGE_BYTES", 4096)  # several ranges with two workers
    report = validate_customer_trace_dataset(
        "traces.jsonl",
        CustomerWorkspace.model_validate(WORKSPACE),
        vertical=vertical,
        pm=_manager(),
        workers=workers,
    )
    expected = (GOLDEN / f"report-{vertical or 'plain'}.json").read_bytes()
    assert report.to_json_bytes() == expected
