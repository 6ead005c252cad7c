"""The raw-results file: a fast canonical writer, checked against the RFC 8785 reference."""

from __future__ import annotations

import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from customer_model_factory.canonical import canonical_json
from customer_model_factory.stages.benchmark.metrics import RawResult
from customer_model_factory.stages.benchmark.models import (
    es_number,
    parse_raw_results,
    render_raw_results,
)


@settings(max_examples=2000)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_es_number_equals_the_rfc8785_reference(value):
    assert es_number(value) == rfc8785.dumps(value).decode()


_TEXT = st.text(min_size=1, max_size=12)
_RESULT = st.builds(
    RawResult,
    trace_id=_TEXT,
    label=st.one_of(st.sampled_from(["unsafe", "safe"]), _TEXT.filter(str.strip)),
    is_unsafe=st.booleans(),
    severity=st.sampled_from(["low", "medium", "high", "critical"]),
    sector=st.one_of(st.none(), _TEXT),
    score=st.floats(min_value=0.0, max_value=1.0),
    decision=st.sampled_from(["approve", "block", "abstain", "escalate"]),
    latency_ms=st.floats(min_value=0.0, max_value=1e9),
)


@settings(max_examples=300)
@given(st.lists(_RESULT, max_size=6))
def test_the_fast_writer_equals_canonical_json_line_by_line(results):
    ordered = sorted(results, key=lambda r: r.trace_id)
    reference = b"".join(canonical_json(r.model_dump(mode="json")) + b"\n" for r in ordered)
    rendered = render_raw_results(results)
    assert rendered == reference
    assert parse_raw_results(rendered, source="raw") == ordered


def test_a_boolean_label_is_written_as_a_json_boolean():
    result = RawResult(
        trace_id="t\n1", label=True, is_unsafe=True, severity="high", sector=None,
        score=1.0, decision="block", latency_ms=0.0,
    )  # fmt: skip
    line = render_raw_results([result])
    assert line == canonical_json(result.model_dump(mode="json")) + b"\n"
    assert b'"label":true' in line and b'"score":1,' in line and b'"t\\n1"' in line
