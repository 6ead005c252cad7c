"""Atomic writes, the streaming JSONL reader and strict UTF-8 reads."""

from __future__ import annotations

import os
import re

import pytest

from customer_model_factory.errors import DataFormatError
from customer_model_factory.io import (
    JsonlReader,
    atomic_write_bytes,
    atomic_writer,
    diagnose_jsonl_line,
    json_type_name,
    list_jsonl_shards,
    read_text_strict,
)

# ---- atomic writes ----


def test_atomic_write_replaces_the_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "out" / "report.json"
    atomic_write_bytes(target, b"first")
    atomic_write_bytes(target, b"second")
    assert target.read_bytes() == b"second"
    assert sorted(p.name for p in target.parent.iterdir()) == ["report.json"]


def test_failing_serializer_leaves_the_previous_file_intact(tmp_path):
    target = tmp_path / "report.json"
    target.write_bytes(b"previous content")

    def explode() -> bytes:
        raise RuntimeError("serializer failed midway")

    with pytest.raises(RuntimeError, match="midway"):
        atomic_write_bytes(target, explode)
    assert target.read_bytes() == b"previous content"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_write_interrupted_after_partial_output_is_never_visible(tmp_path):
    target = tmp_path / "copy.jsonl"
    target.write_bytes(b"old\n")
    seen_during_write = []

    def interrupted_write() -> None:
        with atomic_writer(target) as handle:
            handle.write(b"half of the new")
            seen_during_write.append(target.read_bytes())
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted_write()
    assert seen_during_write == [b"old\n"]
    assert target.read_bytes() == b"old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["copy.jsonl"]


def test_atomic_write_sets_permissions(tmp_path):
    target = tmp_path / "x"
    with atomic_writer(target, mode=0o600) as handle:
        handle.write(b"x")
    assert (os.stat(target).st_mode & 0o777) == 0o600


# ---- JSONL reader ----


def _read(path, **kwargs):
    reader = JsonlReader(path, **kwargs)
    rows = list(reader)
    return reader, rows


def _kinds(reader):
    return [(p.path.name, p.line, p.kind) for p in reader.problems]


def test_valid_rows_are_yielded_with_line_numbers(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_bytes(b'{"a": 1}\n\n{"a": 2}\r\n{"a": 3}')
    reader, rows = _read(path)
    assert [(r.line, r.value) for r in rows] == [(1, {"a": 1}), (3, {"a": 2}), (4, {"a": 3})]
    assert rows[1].raw == b'{"a": 2}'
    assert reader.problems == []


def test_truncated_last_line_is_located_and_earlier_rows_survive(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_bytes(b'{"a": 1}\n{"a": 2, "b": "cut')
    reader, rows = _read(path)
    assert [r.value for r in rows] == [{"a": 1}]
    assert _kinds(reader) == [("t.jsonl", 2, "truncated_line")]
    assert reader.problems[0].location == f"{path}:2"


def test_invalid_utf8_is_located_and_the_read_goes_on(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_bytes(b'{"a": "ok"}\n{"a": "\xff\xfe"}\n{"a": "after"}\n')
    reader, rows = _read(path)
    assert [r.value["a"] for r in rows] == ["ok", "after"]
    assert _kinds(reader) == [("t.jsonl", 2, "invalid_utf8")]
    assert "column 8" in reader.problems[0].message


def test_bom_is_reported_and_the_row_still_read(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"a": 1}\n{"a": 2}\n')
    reader, rows = _read(path)
    assert [r.value for r in rows] == [{"a": 1}, {"a": 2}]
    assert _kinds(reader) == [("t.jsonl", 1, "bom")]


@pytest.mark.parametrize("content", [b'[{"a": 1}, {"a": 2}]\n', b'[\n  {"a": 1},\n  {"a": 2}\n]\n'])
def test_top_level_json_array_is_reported_once(tmp_path, content):
    path = tmp_path / "t.jsonl"
    path.write_bytes(content)
    reader, rows = _read(path)
    assert rows == []
    assert _kinds(reader) == [("t.jsonl", 1, "json_array")]


def test_non_object_rows_are_reported(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_bytes(b'{"a": 1}\n"text"\n42\nnull\n[1]\n')
    reader, rows = _read(path)
    assert len(rows) == 1
    assert _kinds(reader) == [
        ("t.jsonl", 2, "not_object"),
        ("t.jsonl", 3, "not_object"),
        ("t.jsonl", 4, "not_object"),
        ("t.jsonl", 5, "not_object"),
    ]
    assert "string" in reader.problems[0].message


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity"])
def test_nan_and_infinity_literals_are_reported(tmp_path, literal):
    path = tmp_path / "t.jsonl"
    path.write_bytes(b'{"score": ' + literal + b"}\n" + b'{"score": 1}\n')
    reader, rows = _read(path)
    assert [r.value for r in rows] == [{"score": 1}]
    assert _kinds(reader) == [("t.jsonl", 1, "nan_literal")]


def test_line_above_the_size_limit_is_reported_without_being_parsed(tmp_path):
    path = tmp_path / "t.jsonl"
    big = b'{"prompt": "' + b"x" * 5000 + b'"}\n'
    path.write_bytes(b'{"a": 1}\n' + big + b'{"a": 2}\n')
    reader, rows = _read(path, max_line_bytes=1000)
    assert [r.value for r in rows] == [{"a": 1}, {"a": 2}]
    assert _kinds(reader) == [("t.jsonl", 2, "line_too_long")]


def test_invalid_json_in_the_middle_is_located(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_bytes(b'{"a": 1}\n{"a": }\n{"a": 3}\n')
    reader, rows = _read(path)
    assert len(rows) == 2
    assert _kinds(reader) == [("t.jsonl", 2, "invalid_json")]


def test_on_problem_callback_sees_each_problem(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_bytes(b'1\n{"a": 1}\n2\n')
    seen = []
    list(JsonlReader(path, on_problem=seen.append))
    assert [p.line for p in seen] == [1, 3]


def test_directory_shards_are_read_in_sorted_order(tmp_path):
    (tmp_path / "b.jsonl").write_bytes(b'{"n": "b1"}\n')
    (tmp_path / "a.jsonl").write_bytes(b'{"n": "a1"}\n{"n": "a2"}\n')
    (tmp_path / "notes.txt").write_bytes(b"ignored")
    rows = list(JsonlReader(tmp_path))
    assert [(r.path.name, r.line, r.value["n"]) for r in rows] == [
        ("a.jsonl", 1, "a1"),
        ("a.jsonl", 2, "a2"),
        ("b.jsonl", 1, "b1"),
    ]


def _missing(root):
    return root / "missing.jsonl"


def _empty_file(root):
    (root / "empty.jsonl").write_bytes(b"")
    return root / "empty.jsonl"


def _empty_shard_directory(root):
    (root / "d").mkdir()
    (root / "d" / "readme.txt").write_text("no shards here")
    return root / "d"


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (_missing, "file not found"),
        (_empty_file, "file is empty"),
        (_empty_shard_directory, "directory holds no *.jsonl shard"),
    ],
)
def test_unreadable_sources_raise_a_located_error(tmp_path, setup, message):
    source = setup(tmp_path)
    with pytest.raises(DataFormatError, match=re.escape(message)) as info:
        list_jsonl_shards(source)
    assert str(source) in str(info.value)
    assert info.value.exit_code == 2


def test_read_text_strict_locates_invalid_utf8(tmp_path):
    path = tmp_path / "w.toml"
    path.write_bytes(b"a = 1\nb = '\xff'\n")
    with pytest.raises(DataFormatError) as info:
        read_text_strict(path)
    assert str(info.value).startswith(f"{path}:2: invalid UTF-8")


def test_read_text_strict_reads_utf8(tmp_path):
    path = tmp_path / "ok.toml"
    path.write_text("name = 'é'\n", encoding="utf-8")
    assert read_text_strict(path) == "name = 'é'\n"
    with pytest.raises(DataFormatError, match="file not found"):
        read_text_strict(tmp_path / "nope.toml")


@pytest.mark.parametrize(
    ("raw", "last", "kind"),
    [
        (b'{"a": "\xff"}', False, "invalid_utf8"),
        (b'{"a": NaN}', False, "nan_literal"),
        (b'{"a": 1', True, "truncated_line"),
        (b'{"a": 1', False, "invalid_json"),
    ],
)
def test_diagnose_names_the_problem_of_a_rejected_line(raw, last, kind):
    assert diagnose_jsonl_line(raw, last_without_newline=last)[0] == kind


def test_json_type_names():
    names = [json_type_name(v) for v in (None, True, 1, 1.5, "s", [], {})]
    assert names == ["null", "boolean", "number", "number", "string", "array", "object"]
