"""The dataset contract: every rule triggered by a real file, and not triggered by a clean one."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

import customer_model_factory.stages.dataset.engine as dataset_module
from customer_model_factory import hookimpl
from customer_model_factory.canonical import content_hash
from customer_model_factory.contributions import RetrievalSchema, SectorPack
from customer_model_factory.errors import ConfigError, DataFormatError
from customer_model_factory.findings import FINDING_CODES, Finding
from customer_model_factory.manifest import verify_manifest_file
from customer_model_factory.stages.dataset import (
    CustomerDatasetValidationReport,
    CustomerTrace,
    CustomerWorkspace,
    validate_customer_trace_dataset,
)
from customer_model_factory.testing import fresh_plugin_manager, registered

AWS_KEY = "AK" + "IA" + "TESTONLY" + "7QX2PL3M"
EMAIL = "jane.doe" + "@" + "example.org"

WORKSPACE = {
    "customer_id": "acme",
    "workspace_id": "ws-1",
    "tenant_id": "acme-eu",
    "data_classification": "confidential",
}


def trace(index: int = 0, **overrides: Any) -> dict[str, Any]:
    """A clean trace; ``overrides`` set fields, ``None`` deletes one."""
    row: dict[str, Any] = {
        "trace_id": f"t-{index}",
        "customer_id": "acme",
        "tenant_id": "acme-eu",
        "workspace_id": "ws-1",
        "split": ("train", "validation", "test")[index % 3],
        "prompt": f"How do I raise my card limit, case {index}?",
        "response": "You can raise it in the app under Cards.",
        "expected_decision": "approve",
        "severity": "low",
        "label": "safe",
        "source_refs": ["kb://cards/limits"],
        "policy_refs": ["policy://acme/v1"],
        "reviewer_role": "analyst",
        "observed_at": "2024-03-01T10:00:00Z",
    }
    for key, value in overrides.items():
        if value is None:
            row.pop(key, None)
        else:
            row[key] = value
    return row


def clean_rows(count: int = 6) -> list[dict[str, Any]]:
    return [trace(index) for index in range(count)]


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
    return path


def workspace(**overrides: Any) -> CustomerWorkspace:
    return CustomerWorkspace.model_validate({**WORKSPACE, **overrides})


@pytest.fixture
def pm():
    return fresh_plugin_manager()


def validate(tmp_path: Path, rows: list[Any], pm, ws: CustomerWorkspace | None = None, **kw):
    path = write_jsonl(tmp_path / "traces.jsonl", rows)
    return validate_customer_trace_dataset(path, ws or workspace(), pm=pm, workers=1, **kw)


def codes(report: CustomerDatasetValidationReport) -> Counter[str]:
    return Counter(finding.code for finding in report.findings)


def only(report: CustomerDatasetValidationReport, code: str) -> Finding:
    matching = [finding for finding in report.findings if finding.code == code]
    assert len(matching) == 1, report.findings
    return matching[0]


# ---- a clean dataset ----


def test_clean_dataset_is_ready_with_counts(tmp_path, pm):
    report = validate(tmp_path, clean_rows(), pm)
    assert report.ready, report.findings
    assert report.findings == ()
    assert report.row_count == 6
    assert report.split_counts == {"test": 2, "train": 2, "validation": 2}
    assert report.label_counts == {"safe": 6}
    assert report.label_class_counts == {"safe": 6}
    assert report.severity_counts == {"low": 6, "medium": 0, "high": 0, "critical": 0}
    assert report.decision_counts == {"approve": 6}
    assert report.high_risk_count == 0
    assert report.finding_counts == {"error": 0, "warning": 0, "info": 0}


def test_reference_schema_file_validates_given_a_matching_workspace(tmp_path, pm, committed_schema):
    # The reference schema's split enum is train/eval/test and labels are free strings.
    rows = [
        {
            "trace_id": f"ref-{i}",
            "customer_id": "acme",
            "tenant_id": "acme-eu",
            "split": split,
            "prompt": f"prompt {i}",
            "response": "response",
            "expected_decision": decision,
            "severity": severity,
            "label": label,
            "source_refs": ["doc-1"],
            "policy_refs": ["pol-1"],
            "reviewer_role": "reviewer",
            "observed_at": "2025-01-02T03:04:05+01:00",
            "contains_pii": False,
            "contains_secret": False,
            "redaction_status": "not_required",
            "metadata": {"anything": [1, 2]},
            "an_extra_field": "additionalProperties is true",
        }
        for i, (split, decision, severity, label) in enumerate(
            [
                ("train", "block", "high", "toxic"),
                ("eval", "approve", "low", "benign"),
                ("test", "escalate", "critical", "toxic"),
            ]
        )
    ]
    ws = workspace(
        allowed_splits=["train", "eval", "test"],
        label_map={"toxic": "unsafe", "benign": "safe"},
    )
    report = validate(tmp_path, rows, pm, ws)
    assert report.ready, report.findings
    for row in rows:
        CustomerTrace.model_validate(row)
        committed_schema("trace", row)


def test_checking_pauses_the_cyclic_collector_and_restores_it(tmp_path, pm):
    import gc

    seen: list[bool] = []

    class Watch:
        CMF_PLUGIN_API = "1.1"

        @hookimpl
        def cmf_sector_packs(self):
            return [SectorPack(id="watch", version="1", title="Watch", jurisdiction="EU")]

        @hookimpl
        def cmf_validate_sector_metadata(self, sector_id, metadata):
            seen.append(gc.isenabled())
            return []

    pm.register(Watch(), name="watch")
    rows = [trace(i, vertical="watch") for i in range(3)]
    assert gc.isenabled()
    validate(tmp_path, rows, pm)
    assert seen and not any(seen)
    assert gc.isenabled()
    gc.disable()
    try:
        validate(tmp_path, rows, pm)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_workers_do_not_change_the_report(tmp_path, pm, monkeypatch):
    monkeypatch.setattr(dataset_module, "_MIN_RANGE_BYTES", 2000)  # many ranges
    rows = [trace(i) for i in range(400)]
    rows[10] = trace(10, customer_id="other")
    rows[350] = trace(350, trace_id="t-3")  # duplicate id across ranges
    rows[399] = trace(399, prompt=rows[1]["prompt"], split="test")  # leakage across ranges
    path = write_jsonl(tmp_path / "traces.jsonl", rows)
    one = validate_customer_trace_dataset(path, workspace(), pm=pm, workers=1)
    two = validate_customer_trace_dataset(path, workspace(), pm=pm, workers=2)
    assert not one.ready
    assert {"DATASET_CUSTOMER_ID_MISMATCH", "DATASET_DUPLICATE_TRACE_ID"} <= set(codes(one))
    assert one.findings == two.findings
    assert one.report_hash == two.report_hash


# ---- required fields, types, enums ----


@pytest.mark.parametrize(
    "field",
    [
        "trace_id",
        "customer_id",
        "tenant_id",
        "split",
        "prompt",
        "response",
        "expected_decision",
        "severity",
        "label",
        "source_refs",
        "policy_refs",
        "reviewer_role",
        "observed_at",
    ],
)
def test_missing_required_field_is_located(tmp_path, pm, field):
    rows = [*clean_rows(3), trace(9, **{field: None})]
    report = validate(tmp_path, rows, pm)
    finding = only(report, "DATASET_MISSING_REQUIRED_FIELD")
    assert finding.field == field
    assert finding.location.endswith("traces.jsonl:4")
    assert not report.ready


@pytest.mark.parametrize("field", ["trace_id", "prompt", "label", "reviewer_role", "customer_id"])
def test_blank_required_field(tmp_path, pm, field):
    report = validate(tmp_path, [*clean_rows(3), trace(9, **{field: "   "})], pm)
    assert only(report, "DATASET_BLANK_REQUIRED_FIELD").field == field


def test_workspace_can_relax_and_extend_required_fields(tmp_path, pm):
    fields = [f for f in CustomerTrace.model_fields if f in trace()] + ["event_time"]
    fields.remove("reviewer_role")
    ws = workspace(required_fields=fields)
    rows = [trace(i, reviewer_role=None, event_time="2024-01-01T00:00:00Z") for i in range(3)]
    rows.append(trace(7))  # lacks event_time
    report = validate(tmp_path, rows, pm, ws)
    finding = only(report, "DATASET_MISSING_REQUIRED_FIELD")
    assert finding.field == "event_time"


def test_wrong_types_are_reported(tmp_path, pm):
    rows = [
        *clean_rows(3),
        trace(10, prompt=42),
        trace(11, metadata=["not", "an", "object"]),
        trace(12, contains_pii="yes"),
        trace(13, contains_secret=1),
        trace(14, split=["train"]),
    ]
    report = validate(tmp_path, rows, pm)
    fields = sorted(f.field for f in report.findings if f.code == "DATASET_FIELD_TYPE")
    assert fields == ["contains_pii", "contains_secret", "metadata", "prompt", "split"]


def test_boolean_flags_are_not_confused_with_numbers(tmp_path, pm):
    # True == 1 in Python: the cached verdict of a clean signature must not accept 1.
    rows = [trace(0, contains_pii=False), trace(1, contains_pii=0), trace(2)]
    report = validate(tmp_path, rows, pm)
    assert only(report, "DATASET_FIELD_TYPE").location.endswith(":2")


def test_a_numeric_flag_never_takes_over_the_verdict_of_a_boolean_one(tmp_path, pm):
    # 1 hashes like True: its verdict must neither replace the cached one of true (the third
    # row would be told its flag is no boolean) nor drop the rows counted under it.
    rows = [trace(0, contains_pii=True), trace(1, contains_pii=1), trace(2, contains_pii=True)]
    report = validate(tmp_path, rows, pm)
    assert only(report, "DATASET_FIELD_TYPE").location.endswith(":2")
    assert codes(report)["DATASET_UNREDACTED_PII"] == 2
    assert sum(report.split_counts.values()) == report.row_count == 3


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("expected_decision", "allow", "DATASET_DECISION_NOT_ALLOWED"),
        ("severity", "severe", "DATASET_SEVERITY_NOT_ALLOWED"),
        ("redaction_status", "done", "DATASET_REDACTION_STATUS_NOT_ALLOWED"),
        ("split", "holdout", "DATASET_SPLIT_NOT_ALLOWED"),
        ("label", "maybe", "DATASET_UNKNOWN_LABEL"),
    ],
)
def test_enum_violations(tmp_path, pm, field, value, code):
    report = validate(tmp_path, [*clean_rows(3), trace(5, **{field: value})], pm)
    finding = only(report, code)
    assert finding.field == field
    assert finding.trace_id == "t-5"
    assert finding.location.endswith(":4")


def test_invalid_timestamps(tmp_path, pm):
    rows = [
        *clean_rows(3),
        trace(5, observed_at="2024-03-01"),  # no time, no offset
        trace(6, observed_at="2024-03-01T10:00:00"),  # no offset
        trace(7, observed_at="yesterday"),
        trace(8, event_time="2024-13-01T00:00:00Z"),
    ]
    report = validate(tmp_path, rows, pm)
    assert codes(report)["DATASET_INVALID_TIMESTAMP"] == 4


# ---- identity, uniqueness, splits ----


@pytest.mark.parametrize(
    ("field", "code"),
    [
        ("customer_id", "DATASET_CUSTOMER_ID_MISMATCH"),
        ("tenant_id", "DATASET_TENANT_ID_MISMATCH"),
        ("workspace_id", "DATASET_WORKSPACE_ID_MISMATCH"),
    ],
)
def test_binding_must_equal_the_workspace(tmp_path, pm, field, code):
    report = validate(tmp_path, [*clean_rows(3), trace(5, **{field: "intruder"})], pm)
    assert only(report, code).field == field


def test_workspace_id_is_optional(tmp_path, pm):
    assert validate(tmp_path, [trace(i, workspace_id=None) for i in range(3)], pm).ready


def test_duplicate_trace_id_names_the_first_use(tmp_path, pm):
    rows = [*clean_rows(3), trace(7, trace_id="t-1")]
    finding = only(validate(tmp_path, rows, pm), "DATASET_DUPLICATE_TRACE_ID")
    assert finding.location.endswith(":4")
    assert "traces.jsonl:2" in finding.message


def test_long_trace_ids_are_compared_by_digest(tmp_path, pm):
    long_id = "x" * 500
    rows = [*clean_rows(3), trace(7, trace_id=long_id), trace(8, trace_id=long_id)]
    assert only(validate(tmp_path, rows, pm), "DATASET_DUPLICATE_TRACE_ID").location.endswith(":5")


def test_required_split_missing(tmp_path, pm):
    ws = workspace(required_splits=["train", "test"])
    rows = [trace(0), trace(1)]  # train and validation only
    finding = only(validate(tmp_path, rows, pm, ws), "DATASET_SPLIT_MISSING")
    assert "'test'" in finding.message
    assert validate(tmp_path, clean_rows(3), pm, ws).ready


# ---- labels and decisions ----


def test_silent_unsafe_pass_is_an_error_and_mapped_labels_count(tmp_path, pm):
    ws = workspace(label_map={"toxic": "unsafe", "fine": "safe"})
    rows = [
        trace(0, label="fine"),
        trace(1, label="toxic", expected_decision="block", severity="high"),
        trace(2, label="toxic", expected_decision="approve", severity="high"),
    ]
    report = validate(tmp_path, rows, pm, ws)
    assert only(report, "DATASET_SILENT_UNSAFE_PASS").trace_id == "t-2"
    assert report.label_class_counts == {"safe": 1, "unsafe": 2}
    assert report.label_counts == {"fine": 1, "toxic": 2}
    assert report.high_risk_count == 2


def test_high_risk_approve_is_a_warning(tmp_path, pm):
    rows = [*clean_rows(3), trace(5, severity="critical")]
    report = validate(tmp_path, rows, pm)
    finding = only(report, "DATASET_HIGH_RISK_APPROVE_LABEL")
    assert finding.severity == "warning"
    assert report.ready


@pytest.mark.parametrize("decision", ["block", "abstain", "escalate"])
def test_unsafe_trace_that_is_not_approved_is_fine(tmp_path, pm, decision):
    rows = [*clean_rows(3), trace(5, label="unsafe", expected_decision=decision)]
    assert validate(tmp_path, rows, pm).ready


# ---- references and retrieval schemas ----


@pytest.mark.parametrize("value", [[], "kb://one", [""], ["  "], [1], [None], {"schema": "kb"}])
def test_malformed_reference_lists(tmp_path, pm, value):
    report = validate(tmp_path, [*clean_rows(3), trace(5, policy_refs=value)], pm)
    bad = [f for f in report.findings if f.field == "policy_refs"]
    assert len(bad) == 1
    assert bad[0].code in {
        "DATASET_INVALID_REFERENCE_LIST",
        "DATASET_BLANK_REQUIRED_FIELD",
    }


class _KnowledgeBase:
    CMF_PLUGIN_API = "1.1"

    @hookimpl
    def cmf_retrieval_schemas(self):
        return [
            RetrievalSchema(
                id="kb",
                version="1",
                json_schema={
                    "type": "object",
                    "required": ["schema", "ref"],
                    "properties": {"ref": {"type": "string", "pattern": "^doc-[0-9]+$"}},
                },
            )
        ]


def test_source_refs_naming_a_retrieval_schema_are_checked_against_it(tmp_path):
    rows = [
        trace(0, source_refs=["kb:doc-1", "https://example.org/page"]),
        trace(1, source_refs=[{"schema": "kb", "ref": "doc-22"}]),
        trace(2, source_refs=["kb:page-1"]),
        trace(3, source_refs=[{"schema": "kb", "ref": 5}]),
        trace(4, source_refs=[{"schema": "nope", "ref": "x"}]),
    ]
    with registered(_KnowledgeBase()) as manager:
        report = validate(tmp_path, rows, manager)
    violations = [f for f in report.findings if f.code == "DATASET_RETRIEVAL_SCHEMA_VIOLATION"]
    assert [f.trace_id for f in violations] == ["t-2", "t-3"]
    assert only(report, "DATASET_RETRIEVAL_SCHEMA_UNKNOWN").trace_id == "t-4"


def test_rows_citing_documents_never_seen_before_stay_on_the_typed_path(tmp_path, monkeypatch):
    # Every row cites its own document: each reference is judged (once) where the row is
    # checked, so only the rows the typed path cannot prove (a new signature, a bad reference)
    # are decoded as dicts. The bad reference is still reported, on its own row.
    from customer_model_factory.stages.dataset import engine

    slow: list[int] = []
    check = engine._RowChecker.check

    def counted(self, row, line, *args, **kwargs):
        slow.append(line)
        return check(self, row, line, *args, **kwargs)

    monkeypatch.setattr(engine._RowChecker, "check", counted)
    rows = [trace(index, source_refs=[f"kb:doc-{index}"]) for index in range(60)]
    rows[40]["source_refs"] = ["kb:page-40"]
    with registered(_KnowledgeBase()) as manager:
        report = validate(tmp_path, rows, manager)
    assert only(report, "DATASET_RETRIEVAL_SCHEMA_VIOLATION").trace_id == "t-40"
    assert slow == [1, 2, 3, 41]  # the three splits' first rows, then the bad reference


def test_without_the_schema_plugin_prefixed_strings_are_plain_refs(tmp_path, pm):
    assert validate(tmp_path, [trace(0, source_refs=["kb:page-1"])], pm).ready


# ---- leakage and duplicates ----


def test_cross_split_leakage_uses_the_normalised_text(tmp_path, pm):
    base = trace(0, split="train", prompt="Reset  my\tPASSWORD now", response="No.")
    twin = trace(1, split="test", prompt=" reset my password NOW ", response="no.")
    report = validate(tmp_path, [base, twin, trace(2), trace(4)], pm)
    finding = only(report, "DATASET_CROSS_SPLIT_DUPLICATE")
    assert finding.trace_id == "t-1"
    assert "'train'" in finding.message
    assert "'test'" in finding.message


@pytest.mark.parametrize(
    "spelled", [b"reset \\u0020my card", b"reset\\u0020\\u0020my card", b"reset\\u0020 my card"]
)
def test_escaped_spaces_collapse_like_raw_ones(tmp_path, pm, spelled):
    base = orjson.dumps(trace(0, split="train", prompt="Reset my card", response="No."))
    twin = orjson.dumps(trace(1, split="test", prompt="PLACEHOLDER", response="no."))
    twin = twin.replace(b"PLACEHOLDER", spelled)
    rows = [base, twin, orjson.dumps(trace(2)), orjson.dumps(trace(4))]
    path = tmp_path / "traces.jsonl"
    path.write_bytes(b"\n".join(rows) + b"\n")
    report = validate_customer_trace_dataset(path, workspace(), pm=pm, workers=1)
    assert only(report, "DATASET_CROSS_SPLIT_DUPLICATE").trace_id == "t-1"


def test_nfkc_makes_compatibility_forms_equal(tmp_path, pm):
    rows = [
        trace(0, split="train", prompt="ｆｕｌｌ width Ǆ", response="ok"),
        trace(1, split="test", prompt="full WIDTH dž", response="OK"),
    ]
    only(validate(tmp_path, rows, pm), "DATASET_CROSS_SPLIT_DUPLICATE")


def test_prompt_and_response_boundary_is_kept(tmp_path, pm):
    rows = [
        trace(0, split="train", prompt="a b", response="c"),
        trace(1, split="test", prompt="a", response="b c"),
    ]
    assert "DATASET_CROSS_SPLIT_DUPLICATE" not in codes(validate(tmp_path, rows, pm))


def test_leakage_finding_names_the_row_even_when_its_trace_id_is_blank(tmp_path, pm):
    base = trace(0, split="train", prompt="same words", response="same answer")
    blank = trace(1, split="test", trace_id="  ", prompt="Same words", response="same ANSWER")
    report = validate(tmp_path, [base, blank, trace(2), trace(4)], pm)
    finding = only(report, "DATASET_CROSS_SPLIT_DUPLICATE")
    assert finding.trace_id == "  "
    assert finding.location.endswith(":2")


def test_repeats_are_found_by_value_whatever_the_hashes() -> None:
    """Equal hashes only nominate candidates: the values decide (forced collisions included)."""
    import numpy as np
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from customer_model_factory.stages.dataset.engine import _repeated

    def naive(values: list[Any]) -> list[tuple[int, int]]:
        first: dict[Any, int] = {}
        out = []
        for index, value in enumerate(values):
            if value in first:
                out.append((index, first[value]))
            else:
                first[value] = index
        return out

    @settings(max_examples=200, deadline=None)
    @given(
        st.lists(st.sampled_from(["a", "b", "c", b"a", "ab", ""]), max_size=40),
        st.sampled_from(["python", "constant", "few"]),
    )
    def check(values: list[Any], hashing: str) -> None:
        if hashing == "python":
            hashes = np.array([hash(v) for v in values], dtype=np.int64)
        elif hashing == "constant":
            hashes = np.zeros(len(values), dtype=np.int64)
        else:
            hashes = np.array([len(v) % 2 for v in values], dtype=np.int64)
        assert _repeated(hashes, values.__getitem__) == naive(values)

    check()


def test_duplicate_within_a_split_is_a_warning(tmp_path, pm):
    rows = [trace(0), trace(3, prompt=trace(0)["prompt"].upper()), trace(1), trace(2)]
    report = validate(tmp_path, rows, pm)
    assert only(report, "DATASET_DUPLICATE_IN_SPLIT").severity == "warning"
    assert report.ready


# ---- as-of leakage ----


def test_label_observed_after_the_cutoff(tmp_path, pm):
    ws = workspace(as_of={"label_cutoff": "2024-06-30T23:59:59Z"})
    # 01:00+02:00 is 23:00Z the day before: compared as instants, not as strings.
    rows = [*clean_rows(3), trace(5, observed_at="2024-07-01T01:00:00+02:00")]
    report = validate(tmp_path, rows, pm, ws)
    assert "DATASET_LABEL_AFTER_CUTOFF" not in codes(report)
    rows[-1] = trace(5, observed_at="2024-07-01T00:00:01Z")
    assert only(validate(tmp_path, rows, pm, ws), "DATASET_LABEL_AFTER_CUTOFF").trace_id == "t-5"


def test_event_time_outside_its_split_window_and_missing(tmp_path, pm):
    ws = workspace(
        as_of={
            "split_windows": {
                "train": {"end": "2024-01-01T00:00:00Z"},
                "test": {"start": "2024-01-01T00:00:00Z"},
            }
        }
    )
    rows = [
        trace(0, split="train", event_time="2023-05-01T00:00:00Z"),
        trace(1, split="train", event_time="2024-01-01T00:00:00Z"),  # end is exclusive
        trace(2, split="test", event_time="2024-02-01T00:00:00Z"),
        trace(3, split="test"),  # no event_time
        trace(4, split="validation"),  # no window: not needed
    ]
    report = validate(tmp_path, rows, pm, ws)
    assert only(report, "DATASET_EVENT_OUTSIDE_WINDOW").trace_id == "t-1"
    assert only(report, "DATASET_EVENT_TIME_MISSING").trace_id == "t-3"


def test_temporal_split_rejects_evaluation_rows_older_than_training(tmp_path, pm):
    ws = workspace(as_of={"temporal_split": True})
    rows = [
        trace(0, split="train", event_time="2024-01-10T00:00:00Z"),
        trace(3, split="train", event_time="2024-03-01T00:00:00Z"),
        trace(1, split="validation", event_time="2024-02-01T00:00:00Z"),
        trace(2, split="test", event_time="2024-04-01T00:00:00Z"),
    ]
    report = validate(tmp_path, rows, pm, ws)
    finding = only(report, "DATASET_TEMPORAL_ORDER")
    assert finding.trace_id == "t-1"
    assert "2024-03-01T00:00:00Z" in finding.message
    rows[1] = trace(3, split="train", event_time="2024-01-20T00:00:00Z")
    assert validate(tmp_path, rows, pm, ws).ready


# ---- secrets and personal data ----


def test_detected_secret_and_pii_are_errors_and_never_echoed(tmp_path, pm):
    rows = [
        *clean_rows(3),
        trace(5, prompt=f"my key is {AWS_KEY} ok"),
        trace(6, metadata={"notes": f"mail me at {EMAIL}"}),
    ]
    report = validate(tmp_path, rows, pm)
    secret = only(report, "DATASET_SECRET_DETECTED")
    pii = only(report, "DATASET_PII_DETECTED")
    assert (secret.field, secret.severity) == ("prompt", "error")
    assert (pii.field, pii.trace_id) == ("metadata.notes", "t-6")
    text = report.model_dump_json()
    assert AWS_KEY not in text
    assert EMAIL not in text
    assert "aws_access_key" in secret.message


def test_secret_hidden_behind_json_escapes_is_still_found(tmp_path, pm):
    path = tmp_path / "traces.jsonl"
    row = trace(5, prompt="PLACEHOLDER")
    line = json.dumps(row).replace("PLACEHOLDER", "key:\\n" + AWS_KEY)
    path.write_text(line + "\n", encoding="utf-8")
    report = validate_customer_trace_dataset(path, workspace(), pm=pm, workers=1)
    assert only(report, "DATASET_SECRET_DETECTED").field == "prompt"


@pytest.mark.parametrize(
    ("flag", "code"),
    [("contains_secret", "DATASET_UNREDACTED_SECRET"), ("contains_pii", "DATASET_UNREDACTED_PII")],
)
def test_self_declared_secrets_need_redaction(tmp_path, pm, flag, code):
    rows = [
        *clean_rows(3),
        trace(5, **{flag: True, "redaction_status": "pending"}),
        trace(6, **{flag: True, "redaction_status": "redacted"}),
        trace(7, **{flag: False}),
    ]
    assert only(validate(tmp_path, rows, pm), code).trace_id == "t-5"


def test_redacted_copy_under_redact_policy_is_ready(tmp_path, pm):
    rows = [
        *clean_rows(3),
        trace(5, prompt=f"key {AWS_KEY} and {EMAIL}", contains_secret=True),
    ]
    copy_path = tmp_path / "out" / "redacted.jsonl"
    ws = workspace(secrets_policy="redact")
    report = validate(tmp_path, rows, pm, ws, redacted_copy=copy_path)
    assert report.ready, report.findings
    assert {f.severity for f in report.findings} == {"warning"}
    copy = copy_path.read_bytes()
    assert AWS_KEY.encode() not in copy
    assert EMAIL.encode() not in copy
    redacted = [orjson.loads(line) for line in copy.splitlines()]
    assert len(redacted) == 4
    assert redacted[3]["prompt"] == "key [REDACTED:aws_access_key] and [REDACTED:email]"
    assert redacted[3]["redaction_status"] == "redacted"
    assert redacted[:3] == rows[:3]
    assert report.redacted_copy is not None
    assert report.redacted_copy.rows_redacted == 1
    assert report.redacted_copy.redactions == 2
    assert report.redacted_copy.sha256 == "sha256:" + __import__("hashlib").sha256(copy).hexdigest()
    # The copy itself now validates clean.
    again = validate_customer_trace_dataset(copy_path, workspace(), pm=pm, workers=1)
    assert again.ready, again.findings


def test_redacted_copy_under_fail_policy_is_not_ready(tmp_path, pm):
    rows = [*clean_rows(3), trace(5, prompt=f"key {AWS_KEY}")]
    copy_path = tmp_path / "redacted.jsonl"
    report = validate(tmp_path, rows, pm, redacted_copy=copy_path)
    assert not report.ready
    assert only(report, "DATASET_SECRET_DETECTED").severity == "error"
    assert AWS_KEY.encode() not in copy_path.read_bytes()


# ---- sector metadata ----


class _Bank:
    CMF_PLUGIN_API = "1.1"

    @hookimpl
    def cmf_sector_packs(self):
        return [
            SectorPack(
                id="test-bank",
                version="1",
                title="Test bank",
                jurisdiction="EU",
                finding_codes={"SECTOR_TEST_BANK_PRODUCT": "The product is not allowed."},
            )
        ]

    @hookimpl
    def cmf_validate_sector_metadata(self, sector_id, metadata):
        if metadata.get("product") == "forbidden":
            return [
                Finding(
                    code="SECTOR_TEST_BANK_PRODUCT",
                    severity="error",
                    message="product is not allowed",
                    field="metadata.product",
                )
            ]
        return []


GOOD_METADATA = {
    "sector_class": "retail",
    "knowledge_class": "policy",
    "jurisdiction": "EU",
}


def test_sector_rules_run_for_rows_with_a_vertical(tmp_path):
    rows = [
        trace(0),  # no vertical: no sector check
        trace(1, vertical="test-bank", metadata=GOOD_METADATA),
        trace(2, vertical="test-bank", metadata={**GOOD_METADATA, "product": "forbidden"}),
        trace(3, vertical="test-bank", metadata={"sector_class": "retail"}),
        trace(4, vertical="unknown-sector", metadata=GOOD_METADATA),
        trace(
            5,
            vertical="test-bank",
            metadata={**GOOD_METADATA, "requires_escalation": True},
        ),
    ]
    with registered(_Bank()) as manager:
        report = validate(tmp_path, rows, manager)
    by_trace = {(f.trace_id, f.code) for f in report.findings}
    assert ("t-2", "SECTOR_TEST_BANK_PRODUCT") in by_trace
    assert ("t-4", "SECTOR_UNKNOWN") in by_trace
    assert not any(tid in {"t-0", "t-1"} for tid, _ in by_trace)
    assert any(tid == "t-3" and code.startswith("SECTOR_") for tid, code in by_trace)
    assert any(tid == "t-5" and code.startswith("SECTOR_") for tid, code in by_trace)
    assert all(f.location for f in report.findings)
    assert report.sector_counts == {"test-bank": 4, "unknown-sector": 1}


def test_forced_vertical_checks_every_row(tmp_path):
    rows = [trace(0, metadata=GOOD_METADATA), trace(1), trace(2, vertical="other")]
    with registered(_Bank()) as manager:
        report = validate(tmp_path, rows, manager, vertical="test-bank")
    assert report.vertical == "test-bank"
    assert report.sector_counts == {"test-bank": 3}
    assert only(report, "DATASET_VERTICAL_MISMATCH").trace_id == "t-2"
    assert {f.trace_id for f in report.findings if f.code.startswith("SECTOR_")} == {
        "t-1",
        "t-2",
    }


# ---- malformed JSONL: located findings, the rest still checked ----


@pytest.mark.parametrize(
    ("content", "code", "line"),
    [
        (b'{"trace_id": "a"\n', "DATASET_JSONL_INVALID_JSON", 4),
        (b"\xff\xfe not utf-8\n", "DATASET_JSONL_INVALID_UTF8", 4),
        (b'{"x": NaN}\n', "DATASET_JSONL_NAN_LITERAL", 4),
        (b"[1, 2]\n", "DATASET_JSONL_NOT_OBJECT", 4),
        (b'{"truncated": ', "DATASET_JSONL_TRUNCATED_LINE", 4),
    ],
)
def test_bad_lines_become_located_findings_and_the_rest_is_checked(
    tmp_path, pm, content, code, line
):
    path = tmp_path / "traces.jsonl"
    good = b"".join(orjson.dumps(row) + b"\n" for row in clean_rows(3))
    later = orjson.dumps(trace(9, customer_id="intruder")) + b"\n"
    path.write_bytes(good + content + (b"" if code.endswith("TRUNCATED_LINE") else later))
    report = validate_customer_trace_dataset(path, workspace(), pm=pm, workers=1)
    finding = only(report, code)
    assert finding.location == f"{path}:{line}"
    assert finding.severity == "error"
    if not code.endswith("TRUNCATED_LINE"):
        assert only(report, "DATASET_CUSTOMER_ID_MISMATCH").location == f"{path}:{line + 1}"


def test_bom_is_reported_and_the_first_row_still_read(tmp_path, pm):
    path = tmp_path / "traces.jsonl"
    write_jsonl(path, clean_rows(3))
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    report = validate_customer_trace_dataset(path, workspace(), pm=pm, workers=1)
    assert only(report, "DATASET_JSONL_BOM").location == f"{path}:1"
    assert report.row_count == 3


def test_json_array_file_is_one_finding(tmp_path, pm):
    path = tmp_path / "traces.jsonl"
    path.write_text(json.dumps(clean_rows(3), indent=1), encoding="utf-8")
    report = validate_customer_trace_dataset(path, workspace(), pm=pm, workers=1)
    assert codes(report) == Counter({"DATASET_JSONL_JSON_ARRAY": 1, "DATASET_NO_ROWS": 1})


def test_a_huge_line_is_skipped_without_reading_it_whole(tmp_path, pm):
    path = tmp_path / "traces.jsonl"
    huge = orjson.dumps(trace(8, prompt="x" * (50 << 20))) + b"\n"
    rows = b"".join(orjson.dumps(row) + b"\n" for row in clean_rows(2))
    path.write_bytes(rows + huge + orjson.dumps(trace(2)) + b"\n")
    report = validate_customer_trace_dataset(path, workspace(), pm=pm, workers=1)
    assert only(report, "DATASET_JSONL_LINE_TOO_LONG").location == f"{path}:3"
    assert report.row_count == 3
    assert report.shards[0].line_count == 4


def test_blank_lines_are_ignored_and_crlf_is_accepted(tmp_path, pm):
    path = tmp_path / "traces.jsonl"
    body = b"\r\n".join(orjson.dumps(row) for row in clean_rows(3))
    path.write_bytes(b"\n" + body + b"\r\n\r\n")
    report = validate_customer_trace_dataset(path, workspace(), pm=pm, workers=1)
    assert report.ready, report.findings
    assert report.row_count == 3


# ---- whole-source problems raise (exit 2) ----


def test_missing_empty_and_shardless_sources_raise(tmp_path, pm):
    with pytest.raises(DataFormatError, match="file not found"):
        validate_customer_trace_dataset(tmp_path / "nope.jsonl", workspace(), pm=pm)
    (tmp_path / "empty.jsonl").write_bytes(b"")
    with pytest.raises(DataFormatError, match="empty"):
        validate_customer_trace_dataset(tmp_path / "empty.jsonl", workspace(), pm=pm)
    (tmp_path / "dir").mkdir()
    with pytest.raises(DataFormatError, match=r"no \*\.jsonl shard"):
        validate_customer_trace_dataset(tmp_path / "dir", workspace(), pm=pm)


# ---- shards, hashes, manifest ----


def test_shards_are_read_in_sorted_order_and_hashed_as_documented(tmp_path, pm):
    import hashlib

    shards = tmp_path / "shards"
    shards.mkdir()
    write_jsonl(shards / "b.jsonl", [trace(3), trace(4), trace(5, customer_id="x")])
    write_jsonl(shards / "a.jsonl", [trace(0), trace(1), trace(2)])
    (shards / "ignored.txt").write_text("not a shard")
    report = validate_customer_trace_dataset(shards, workspace(), pm=pm, workers=1)
    assert [s.name for s in report.shards] == [str(shards / "a.jsonl"), str(shards / "b.jsonl")]
    whole = (shards / "a.jsonl").read_bytes() + (shards / "b.jsonl").read_bytes()
    assert report.dataset_hash == "sha256:" + hashlib.sha256(whole).hexdigest()
    assert (
        report.shards[0].sha256
        == "sha256:" + hashlib.sha256((shards / "a.jsonl").read_bytes()).hexdigest()
    )
    assert only(report, "DATASET_CUSTOMER_ID_MISMATCH").location == f"{shards / 'b.jsonl'}:3"


def test_report_is_a_verifiable_manifest(tmp_path, pm, committed_schema):
    report = validate(tmp_path, [*clean_rows(3), trace(9, label="odd")], pm)
    payload = report.payload()
    stored = payload.pop("report_hash")
    assert stored == content_hash(payload) == report.report_hash
    path = report.write(tmp_path / "report.json")
    assert verify_manifest_file(path).ok
    assert CustomerDatasetValidationReport.load(path) == report
    committed_schema("dataset-report", json.loads(path.read_text()))


def test_report_is_deterministic(tmp_path, pm):
    rows = [*clean_rows(3), trace(9, label="odd"), trace(10, customer_id="x")]
    first = validate(tmp_path, rows, pm)
    second = validate(tmp_path, rows, pm)
    assert first.to_json_bytes() == second.to_json_bytes()


def test_in_memory_rows_are_validated_and_hashed_canonically(pm):
    rows = [*clean_rows(3), trace(9, customer_id="x")]
    report = validate_customer_trace_dataset(rows, workspace(), pm=pm)
    assert report.source == "<rows>"
    assert only(report, "DATASET_CUSTOMER_ID_MISMATCH").location == "<rows>:4"
    import hashlib

    from customer_model_factory.canonical import canonical_json

    digest = hashlib.sha256(b"".join(canonical_json(row) + b"\n" for row in rows)).hexdigest()
    assert report.dataset_hash == "sha256:" + digest
    with pytest.raises(DataFormatError):
        validate_customer_trace_dataset([], workspace(), pm=pm)


def test_every_emitted_code_is_registered(tmp_path, pm):
    import re

    import customer_model_factory.stages.dataset as stage

    source = "".join(path.read_text() for path in Path(stage.__file__).parent.glob("*.py"))
    codes = set(re.findall(r'"(DATASET_[A-Z_]+)"', source))
    assert len(codes) > 30
    for code in codes:
        assert code in FINDING_CODES, code


# ---- workspace ----


def test_workspace_from_toml_table_and_whole_file(tmp_path):
    table = tmp_path / "factory.toml"
    table.write_text(
        """
[workspace]
customer_id = "acme"
workspace_id = "ws-1"
tenant_id = "acme-eu"
data_classification = "restricted"
required_splits = ["train"]
secrets_policy = "redact"

[workspace.label_map]
toxic = "unsafe"

[workspace.as_of]
label_cutoff = 2024-12-31T23:59:59Z
temporal_split = true

[workspace.as_of.split_windows.train]
end = "2024-06-01T00:00:00+02:00"
""",
        encoding="utf-8",
    )
    ws = CustomerWorkspace.from_toml(table)
    assert ws.label_map == {"toxic": "unsafe"}
    assert ws.as_of.temporal_split
    assert ws.as_of.split_windows["train"].end.isoformat() == "2024-05-31T22:00:00+00:00"
    whole = tmp_path / "workspace.toml"
    whole.write_text(
        'customer_id = "a"\nworkspace_id = "w"\ntenant_id = "t"\ndata_classification = "public"\n',
        encoding="utf-8",
    )
    assert CustomerWorkspace.from_toml(whole).allowed_splits == ("train", "validation", "test")


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("customer_id = ", "invalid TOML"),
        ('customer_id = "a"\n', "workspace_id"),
        (
            'customer_id = "a"\nworkspace_id = "w"\ntenant_id = "t"\n'
            'data_classification = "secret"\n',
            "data_classification",
        ),
        (
            'customer_id = "a"\nworkspace_id = "w"\ntenant_id = "t"\n'
            'data_classification = "public"\nrequired_splits = ["holdout"]\n',
            "required_splits",
        ),
        (
            'customer_id = "a"\nworkspace_id = "w"\ntenant_id = "t"\n'
            'data_classification = "public"\n[as_of]\nlabel_cutoff = "2024-01-01T00:00:00"\n',
            "offset",
        ),
        (
            'customer_id = "a"\nworkspace_id = "w"\ntenant_id = "t"\n'
            'data_classification = "public"\nsurprise = 1\n',
            "surprise",
        ),
    ],
)
def test_bad_workspace_is_one_located_config_error(tmp_path, text, match):
    path = tmp_path / "ws.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=match) as caught:
        CustomerWorkspace.from_toml(path)
    assert str(path) in str(caught.value)
    assert "\n" not in str(caught.value)


def test_missing_workspace_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        CustomerWorkspace.from_toml(tmp_path / "nope.toml")


# ---- internals that must agree with their portable fallbacks ----


def test_block_scanner_engines_flag_the_same_lines():
    from customer_model_factory.detectors import DETECTORS as DEFAULT_DETECTORS
    from customer_model_factory.detectors import DetectorSet
    from customer_model_factory.stages.dataset.engine import (
        _BlockScanner,
        _lines_of_matches,
    )

    rows = [
        trace(0),
        trace(1, prompt=f"key {AWS_KEY}"),
        trace(2, prompt="two  spaces"),
        trace(3, prompt="tab\there"),
        trace(4, metadata={"mail": EMAIL}),
        trace(5),
    ]
    block = b"".join(orjson.dumps(row) + b"\n" for row in rows)
    lines = block.split(b"\n")[:-1]
    results = []
    fired = {}
    for engine in ("hyperscan", "re"):
        candidates, markers = _BlockScanner(DetectorSet(engine=engine)).scan(block)
        fired[engine], spaced = _lines_of_matches(candidates, markers, lines)
        results.append((set(fired[engine]), spaced))
    assert results[0] == results[1] == ({1, 4}, {2, 3})
    # Hyperscan says which detector fired, so only that one is confirmed; `re` cannot.
    kinds = [detector.kind for detector in DEFAULT_DETECTORS]
    assert {kinds[i] for i in fired["hyperscan"][1]} == {"aws_access_key"}
    assert {kinds[i] for i in fired["hyperscan"][4]} == {"email"}
    assert fired["re"] == {1: None, 4: None}


def test_whitespace_runs_and_escapes_normalise_like_single_spaces(tmp_path, pm):
    rows = [
        trace(0, split="train", prompt="reset my password", response="no"),
        trace(1, split="test", prompt="reset\tmy\r\npassword", response="no"),
        trace(2, split="validation", prompt="reset my  password", response="no"),
    ]
    report = validate(tmp_path, rows, pm)
    assert codes(report)["DATASET_CROSS_SPLIT_DUPLICATE"] == 2


def test_a_secret_in_an_object_key_is_redacted_in_the_key(tmp_path, pm):
    rows = [*clean_rows(3), trace(5, metadata={AWS_KEY: "value"})]
    copy_path = tmp_path / "redacted.jsonl"
    report = validate(
        tmp_path, rows, pm, workspace(secrets_policy="redact"), redacted_copy=copy_path
    )
    finding = only(report, "DATASET_SECRET_DETECTED")
    assert finding.field == "metadata.[REDACTED:key]"
    assert AWS_KEY not in report.model_dump_json()
    last = orjson.loads(copy_path.read_bytes().splitlines()[-1])
    assert last["metadata"] == {"[REDACTED:aws_access_key]": "value"}


def test_a_secret_used_as_trace_id_or_top_level_key_is_not_repeated(tmp_path, pm):
    rows = [*clean_rows(3), trace(5, trace_id=EMAIL), {**trace(6), AWS_KEY: 1}]
    report = validate(tmp_path, rows, pm)
    text = report.model_dump_json()
    assert EMAIL not in text
    assert AWS_KEY not in text
    assert {f.field for f in report.findings if f.code.endswith("_DETECTED")} == {
        "trace_id",
        "[REDACTED:key]",
    }


@pytest.mark.parametrize("block", [97, 700, 1500, 4096])
def test_block_size_does_not_change_the_report(tmp_path, pm, monkeypatch, block):
    """Blocks that end inside a line (read again with the next block), lines longer than a
    block (carried over), CRLF, blank and broken lines and matches near block edges."""
    lines = [b"\xef\xbb\xbf" + orjson.dumps(trace(0))]
    for i in range(1, 60):
        row = trace(i, prompt=("word " * (i * 7 % 90)) + "end")
        if i % 11 == 0:
            row["prompt"] = f"my key is {AWS_KEY} and mail {EMAIL}"
        line = orjson.dumps(row)
        if i % 13 == 0:
            line = b'{"broken": '
        if i % 17 == 0:
            line += b"\r"
        lines.append(line)
        if i % 19 == 0:
            lines.append(b"")
    path = tmp_path / "traces.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    expected = validate_customer_trace_dataset(path, workspace(), pm=pm, workers=1)
    assert {"DATASET_SECRET_DETECTED", "DATASET_JSONL_INVALID_JSON"} <= set(codes(expected))
    monkeypatch.setattr(dataset_module, "_BLOCK_BYTES", block)
    for workers in (1, 2):
        monkeypatch.setattr(dataset_module, "_MIN_RANGE_BYTES", 3000)
        report = validate_customer_trace_dataset(path, workspace(), pm=pm, workers=workers)
        assert report.to_json_bytes() == expected.to_json_bytes()


@pytest.mark.parametrize("block", [97, 1000, 8 << 20])
def test_repeated_keys_are_found_whatever_the_block_and_path(tmp_path, pm, monkeypatch, block):
    lines = [orjson.dumps(trace(i)) for i in range(30)]
    lines[3] = orjson.dumps(trace(3, prompt='he said \\":" then left'))  # `":` inside a string
    lines[5] = lines[5][:-1] + b', "split": "test"}'
    lines[9] = lines[9][:-1] + b', "metadata": {"a": {"b": 1, "b": 2}}}'
    lines[12] = orjson.dumps(trace(12, prompt='x \\": y'))[:-1] + b', "label": "safe"}'
    lines[20] = b'{"trace_id" : "t-20", "trace_id": "t-20b"}'
    path = tmp_path / "traces.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    monkeypatch.setattr(dataset_module, "_BLOCK_BYTES", block)
    found = []
    for typed in (True, False):
        if not typed:
            monkeypatch.setattr(dataset_module, "_typed_decoder", lambda *_: None)
        report = validate_customer_trace_dataset(path, workspace(), pm=pm, workers=1)
        found.append(
            sorted(
                (f.location.rsplit(":", 1)[1], f.field)
                for f in report.findings
                if f.code == "DATASET_DUPLICATE_KEY"
            )
        )
    assert (
        found[0]
        == found[1]
        == [
            ("10", "metadata.a.b"),
            ("13", "label"),
            ("21", "trace_id"),
            ("6", "split"),
        ]
    )


@pytest.mark.parametrize("block", [64, 1000, 4096])
@pytest.mark.parametrize("terminated", [True, False])
def test_a_gzip_shard_reports_what_its_text_does(tmp_path, pm, monkeypatch, block, terminated):
    import gzip

    lines = [orjson.dumps(trace(i, prompt=("word " * (i * 7 % 90)) + "end")) for i in range(40)]
    lines[7] = b'{"broken": '
    lines[20] = orjson.dumps(trace(20, prompt=f"my key is {AWS_KEY}"))
    lines[-1] = b'{"trace_id": "t-cut"'  # cut short: truncated only when unterminated
    data = b"\n".join(lines) + (b"\n" if terminated else b"")
    (tmp_path / "plain").mkdir()
    (tmp_path / "packed").mkdir()
    (tmp_path / "plain" / "a.jsonl").write_bytes(data)
    (tmp_path / "packed" / "a.jsonl.gz").write_bytes(gzip.compress(data))
    expected = validate_customer_trace_dataset(tmp_path / "plain", workspace(), pm=pm, workers=1)
    monkeypatch.setattr(dataset_module, "_BLOCK_BYTES", block)
    report = validate_customer_trace_dataset(tmp_path / "packed", workspace(), pm=pm, workers=2)
    assert [
        (f.code, f.message, f.location.replace(".jsonl.gz", ".jsonl").replace("packed", "plain"))
        for f in report.findings
    ] == [(f.code, f.message, f.location) for f in expected.findings]
    assert report.row_count == expected.row_count
    assert report.shards[0].line_count == expected.shards[0].line_count == 40


def test_workers_agree_on_shards_with_bad_lines_at_range_edges(tmp_path, pm, monkeypatch):
    monkeypatch.setattr(dataset_module, "_MIN_RANGE_BYTES", 1500)  # many ranges
    shards = tmp_path / "shards"
    shards.mkdir()
    for name, offset in (("a.jsonl", 0), ("b.jsonl", 300)):
        lines = [orjson.dumps(trace(offset + i)) for i in range(300)]
        lines[150] = b'{"broken": '
        lines[151] = orjson.dumps(trace(offset + 151, trace_id="t-7"))
        (shards / name).write_bytes(b"\n".join(lines) + b"\n")
    one = validate_customer_trace_dataset(shards, workspace(), pm=pm, workers=1)
    two = validate_customer_trace_dataset(shards, workspace(), pm=pm, workers=2)
    assert one.to_json_bytes() == two.to_json_bytes()
    assert codes(one)["DATASET_JSONL_INVALID_JSON"] == 2
    assert codes(one)["DATASET_DUPLICATE_TRACE_ID"] == 2
    assert [s.line_count for s in one.shards] == [300, 300]


def test_ranges_cover_every_shard_line_aligned(tmp_path, monkeypatch):
    import itertools

    from hypothesis import given, settings
    from hypothesis import strategies as st

    monkeypatch.setattr(dataset_module, "_MIN_RANGE_BYTES", 64)

    @settings(max_examples=100, deadline=None)
    @given(
        st.lists(st.lists(st.integers(0, 90), min_size=1, max_size=60), min_size=1, max_size=3),
        st.integers(1, 4),
    )
    def check(shard_lines: list[list[int]], workers: int) -> None:
        shards = []
        for number, lengths in enumerate(shard_lines):
            path = tmp_path / f"s{number}.jsonl"
            path.write_bytes(b"".join(b"x" * n + b"\n" for n in lengths))
            shards.append(path)
        ranges = dataset_module._plan_ranges(shards, workers)
        assert [r.index for r in ranges] == list(range(len(ranges)))
        for number, path in enumerate(shards):
            own = [r for r in ranges if r.shard == number]
            data = path.read_bytes()
            assert own[0].start == 0 and own[0].is_first and own[-1].is_last
            assert own[-1].end == len(data)
            assert all(a.end == b.start for a, b in itertools.pairwise(own))
            assert all(data[r.start - 1 : r.start] == b"\n" for r in own[1:])
            if workers == 1:
                assert len(own) == 1

    check()
    path = tmp_path / "even.jsonl"
    path.write_bytes((b"x" * 49 + b"\n") * 100)
    sizes = [r.end - r.start for r in dataset_module._plan_ranges([path], 2)]
    # A quarter of what remains each time, down to the minimum: large first, small last.
    assert 1250 <= sizes[0] <= 1300 and sizes[-2] <= 100 and len(sizes) > 8
    assert all(a >= b for a, b in itertools.pairwise(sizes[:-1]))


def test_invalid_workspace_field_is_located_at_its_toml_line(tmp_path):
    path = tmp_path / "workspace.toml"
    path.write_text(
        '[workspace]\ncustomer_id = "acme"\ntenant_id = "t"\n\nworkspace_id = 3\n'
        'data_classification = "internal"\n'
    )
    with pytest.raises(ConfigError) as info:
        CustomerWorkspace.from_toml(path)
    assert (info.value.line, info.value.field) == (5, "workspace_id")
    assert str(info.value).startswith(f"{path}:5: field 'workspace_id'")
    path.write_text('[workspace]\ncustomer_id = "acme"\nworkspace_id = "w"\n')
    with pytest.raises(ConfigError) as info:
        CustomerWorkspace.from_toml(path)
    assert (info.value.line, info.value.field) == (None, "tenant_id")
