"""Content expansion: every byte string becomes text to match or a stated problem, never an
exception, and each reading finds what it should."""

from __future__ import annotations

import gzip
import io
import zipfile

from hypothesis import given, settings
from hypothesis import strategies as st

from customer_model_factory.boundary.content import (
    ContentLimits,
    _archive_kind,
    expand_content,
    is_compiled_python,
    is_plain_text,
    legacy_text,
    printable_runs,
)

MAGICS = [b"", b"PK\x03\x04", b"PK\x05\x06", b"\x1f\x8b", b"BZh91AY&SY", b"\xfd7zXZ\x00", b"%PDF"]
MAGICS += [
    b"\xff\xfe",
    b"\xfe\xff",
    b"\xff\xfe\x00\x00",
    b"\x00\x00\xfe\xff",
    b"\xa7\r\r\n\0\0\0\0",
]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(MAGICS), st.binary(max_size=2000))
def test_any_bytes_expand_without_raising(magic: bytes, tail: bytes) -> None:
    result = expand_content(magic + tail, ContentLimits(max_member_size=4096, max_total=16384))
    # Only an archive with no member may yield nothing; anything else is a piece or a problem.
    assert result.pieces or result.problems or _archive_kind(magic + tail) is not None
    assert all(isinstance(piece.data, bytes) for piece in result.pieces)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=300))
def test_valid_utf8_text_is_plain_and_has_no_legacy_reading(text: str) -> None:
    data = text.replace("\0", "").encode()
    if not data.startswith((b"\xff\xfe", b"\xfe\xff")) and is_plain_text(data):
        assert legacy_text(data) is None


def test_printable_runs_keep_identifiers_apart_from_binary_bytes() -> None:
    data = b"\x01\x02\xfeacme\x00\x9fbank\x00" + "wide".encode("utf-16-le") + b"\x00\x01"
    data += b"\x05" + "wider".encode("utf-32-le") + b"\x07" + "widest".encode("utf-32-be")
    data += b"\x09" + "tall".encode("utf-16-be")
    runs = printable_runs(data).split(b"\n")
    for word in (b"acme", b"bank", b"wide", b"wider", b"widest", b"tall"):
        assert word in runs, word


def test_nested_archives_are_named_member_by_member() -> None:
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as archive:
        archive.writestr("a/b.txt", "hello\n")
    outer = gzip.compress(inner.getvalue())
    result = expand_content(outer, ContentLimits())
    assert [piece.suffix for piece in result.pieces] == ["!/-!/a/b.txt"]
    assert "!/-!/a/b.txt" in result.member_paths
    assert not result.problems


def test_a_zip_bomb_member_is_a_problem_not_a_read() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("zeros", b"\0" * 5_000_000)
    result = expand_content(buffer.getvalue(), ContentLimits(max_member_size=100_000))
    assert result.problems == [("!/zeros", "member above the 100000-byte limit")]


def test_compiled_python_is_told_by_its_header() -> None:
    assert is_compiled_python(b"\xa7\r\r\n" + b"\0" * 12 + b"\xe3" + b"\0" * 8)
    assert not is_compiled_python(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)


def test_every_stream_of_a_concatenated_gzip_is_read() -> None:
    data = gzip.compress(b"first\n") + gzip.compress(b"second acme\n") + b"\0" * 16
    result = expand_content(data, ContentLimits())
    assert result.pieces[0].data == b"first\nsecond acme\n"
    garbage = gzip.compress(b"first\n") + b"not a stream"
    assert expand_content(garbage, ContentLimits()).problems


def test_a_gzip_stored_name_is_a_member_path() -> None:
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="acme-export.csv", mode="wb", fileobj=buffer, mtime=0) as handle:
        handle.write(b"a,b\n")
    result = expand_content(buffer.getvalue(), ContentLimits())
    assert result.member_paths == ["!/acme-export.csv"]
    assert [piece.suffix for piece in result.pieces] == ["!/acme-export.csv"]


def test_display_escaping_keeps_a_name_on_one_line() -> None:
    from customer_model_factory.boundary.scopes import escape_display

    assert escape_display("docs/plain.md") == "docs/plain.md"
    assert escape_display("a\nb\tc\rd\x1b[31m") == "a\\nb\\tc\\rd\\x1b[31m"
    assert escape_display("back\\slash") == "back\\\\slash"
    assert escape_display("bidi\u202eevil") == "bidi\\u202eevil"
    assert escape_display(b"caf\xe9".decode("utf-8", "surrogateescape")) == "caf\\xe9"
    assert escape_display("Zürich café") == "Zürich café"


def test_tar_owner_names_and_zip_member_comments_are_read() -> None:
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        info = tarfile.TarInfo("a.txt")
        info.size, info.uname, info.gname = 2, "acme-ci", "acme-builders"
        info.pax_headers = {"comment": "built for acme-bank"}
        archive.addfile(info, io.BytesIO(b"x\n"))
    listing = [
        p.data
        for p in expand_content(buffer.getvalue(), ContentLimits()).pieces
        if p.form == "listing"
    ]
    assert b"acme-ci" in listing[0]
    assert b"built for acme-bank" in listing[0]
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("a.txt", "x")
        archive.getinfo("a.txt").comment = b"reviewed by acme"
    pieces = expand_content(zipped.getvalue(), ContentLimits()).pieces
    assert any(p.form == "listing" and b"reviewed by acme" in p.data for p in pieces)
