"""Canonical JSON (RFC 8785) and content hashes."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from customer_model_factory.canonical import (
    canonical_json,
    content_hash,
    sha256_bytes,
    sha256_file,
)
from customer_model_factory.errors import CanonicalizationError

_SAFE_INT = 2**53 - 1
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-_SAFE_INT, max_value=_SAFE_INT)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=25,
)


def _reorder(value):
    """The same JSON value with every object's keys in reverse insertion order."""
    if isinstance(value, dict):
        return {key: _reorder(value[key]) for key in reversed(list(value))}
    if isinstance(value, list):
        return [_reorder(item) for item in value]
    return value


@given(json_values)
def test_canonical_form_does_not_depend_on_key_order(value):
    assert canonical_json(value) == canonical_json(_reorder(value))
    assert content_hash(value) == content_hash(_reorder(value))


@given(json_values)
def test_canonical_form_round_trips_through_a_json_parser(value):
    parsed = orjson.loads(canonical_json(value))
    assert canonical_json(parsed) == canonical_json(value)
    assert _json_equal(parsed, value)


def _json_equal(left, right) -> bool:
    """Equality of JSON values, where every number is an IEEE double (so 2.0 == 2, -0.0 == 0)."""
    if isinstance(left, bool) or isinstance(right, bool):
        return left is right
    if isinstance(left, int | float) and isinstance(right, int | float):
        return float(left) == float(right)
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(_json_equal(left[k], right[k]) for k in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(_json_equal, left, right))
    return left == right


@given(json_values)
def test_canonical_form_is_compact_and_sorted(value):
    text = canonical_json(value).decode("utf-8")
    if isinstance(value, dict):
        keys = list(json.loads(text))
        assert keys == sorted(keys, key=lambda k: k.encode("utf-16-be"))


def test_known_vectors_match_rfc_8785():
    assert canonical_json({"b": 1, "a": [1.5, 2.0, "x", None, True]}) == (
        b'{"a":[1.5,2,"x",null,true],"b":1}'
    )
    assert canonical_json(1e21) == b"1e+21"
    assert canonical_json("é\u2028") == '"é\u2028"'.encode()
    # Keys sort by UTF-16 code units: U+10000 (surrogates D800..) sorts before U+FFFD.
    assert canonical_json({"\ufffd": 1, "\U00010000": 2}) == '{"\U00010000":2,"\ufffd":1}'.encode()


@pytest.mark.parametrize(
    ("value", "where"),
    [
        (float("nan"), "$"),
        ({"a": [1, float("inf")]}, "$.a[1]"),
        ({"a": {1: "x"}}, "$.a"),
        ({"a": {1, 2}}, "$.a"),
        ({"big": 2**60 + 1}, "$.big"),
    ],
)
def test_values_without_a_canonical_form_are_rejected_naming_where(value, where):
    with pytest.raises(CanonicalizationError) as info:
        canonical_json(value)
    assert str(info.value).startswith(where)
    assert info.value.exit_code == 2


def test_content_hash_is_sha256_of_the_canonical_bytes():
    value = {"z": [1, 2], "a": "b"}
    expected = "sha256:" + hashlib.sha256(b'{"a":"b","z":[1,2]}').hexdigest()
    assert content_hash(value) == expected
    assert sha256_bytes(b'{"a":"b","z":[1,2]}') == expected


def test_sha256_file_reads_exact_bytes(tmp_path):
    path = tmp_path / "data.bin"
    payload = bytes(range(256)) * 10_000
    path.write_bytes(payload)
    assert sha256_file(path) == "sha256:" + hashlib.sha256(payload).hexdigest()


@settings(max_examples=10, deadline=None)
@given(json_values)
def test_hash_is_the_same_in_another_process(value):
    code = (
        "import sys, orjson; from customer_model_factory.canonical import content_hash;"
        "print(content_hash(orjson.loads(sys.stdin.buffer.read())))"
    )
    other = subprocess.run(
        [sys.executable, "-c", code],
        input=orjson.dumps(value),
        capture_output=True,
        check=True,
    )
    assert other.stdout.decode().strip() == content_hash(value)


# Keys and strings that stress the fast path's conditions: astral characters (UTF-16 order differs
# from code-point order only against U+E000..U+FFFF), control characters, and escapes.
_tricky_text = st.text(
    alphabet=st.sampled_from(
        ["a", "Z", "\x00", "\x1f", "\x7f", '"', "\\", "é", "\u2028", "\ue000", "\uffff", "😀"]
    ),
    max_size=6,
)
_plain_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-_SAFE_INT, max_value=_SAFE_INT)
    | st.text()
    | _tricky_text,
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.text(max_size=8) | _tricky_text, children, max_size=5)
    ),
    max_leaves=25,
)


@settings(max_examples=400)
@given(_plain_values | json_values)
def test_canonical_form_equals_the_reference_rfc_8785_implementation(value):
    import rfc8785

    # Whichever path canonical_json takes (orjson for integer-only values with BMP keys, the
    # reference otherwise), the bytes are the reference implementation's.
    assert canonical_json(value) == rfc8785.dumps(value)


def test_fast_path_refuses_what_it_cannot_write_exactly():
    import rfc8785

    for value in (
        {"\ue000": 1, "😀": 2},  # UTF-16 order puts the astral key first
        {"x": 1.0, "y": 1e21, "z": -0.0},  # ECMAScript number forms
    ):
        assert canonical_json(value) == rfc8785.dumps(value)
    # An integer beyond 2**53 is written as the double it equals.
    assert (
        canonical_json({"big": 10**20})
        == rfc8785.dumps({"big": 1e20})
        == b'{"big":100000000000000000000}'
    )
    assert canonical_json({"\ue000": 1, "😀": 2}).index("😀".encode()) < 5
