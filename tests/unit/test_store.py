"""The content-addressed artefact store and artefact URIs."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from customer_model_factory.canonical import sha256_bytes
from customer_model_factory.errors import ArtefactError, ArtefactIntegrityError
from customer_model_factory.findings import FINDING_CODES
from customer_model_factory.store import (
    CMF_URI_PREFIX,
    DIGEST_RE,
    ArtefactStore,
    ArtefactUri,
    StoredObject,
    build_cmf_uri,
    build_file_uri,
    parse_artefact_uri,
    read_file_uri,
    resolve_uri,
)


@pytest.fixture
def store(tmp_path: Path) -> ArtefactStore:
    return ArtefactStore(tmp_path / ".cmf")


def test_put_bytes_stores_under_the_sha256_layout(store):
    stored = store.put_bytes(b"weights")
    hex_digest = hashlib.sha256(b"weights").hexdigest()
    assert stored == StoredObject(
        digest=f"sha256:{hex_digest}", size=7, uri=f"{CMF_URI_PREFIX}{hex_digest}"
    )
    path = store.home / "objects" / "sha256" / hex_digest[:2] / hex_digest[2:]
    assert path.read_bytes() == b"weights"
    assert store.path_for(stored.digest) == path
    assert store.contains(stored.digest)
    assert store.get_bytes(stored.digest) == b"weights"


def test_put_is_idempotent_and_leaves_no_temporary_files(store, tmp_path):
    first = store.put_bytes(b"same")
    source = tmp_path / "file.bin"
    source.write_bytes(b"same")
    second = store.put_file(source)
    third = store.put_bytes(b"same")
    assert first == second == third
    files = [p for p in store.root.rglob("*") if p.is_file()]
    assert files == [store.path_for(first.digest)]


def test_put_file_streams_large_files(store, tmp_path):
    source = tmp_path / "big.bin"
    data = os.urandom(3 * (1 << 20) + 17)
    source.write_bytes(data)
    stored = store.put_file(source)
    assert stored.size == len(data)
    assert stored.digest == sha256_bytes(data)
    assert store.get_bytes(stored.digest) == data


def test_put_file_refuses_missing_and_special_files(store, tmp_path):
    with pytest.raises(ArtefactError, match="file not found"):
        store.put_file(tmp_path / "missing")
    with pytest.raises(ArtefactError, match="not a regular file"):
        store.put_file(tmp_path)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(ArtefactError, match="not a regular file"):
        store.put_file(fifo)  # would block forever if it were read
    assert not list(store.root.glob(".put.*"))


def test_a_corrupted_object_is_refused_on_every_read_naming_its_digest(store, tmp_path):
    stored = store.put_bytes(b"original bytes")
    store.path_for(stored.digest).write_bytes(b"tampered bytes")
    with pytest.raises(ArtefactIntegrityError) as caught:
        store.get_bytes(stored.digest)
    assert caught.value.digest == stored.digest
    assert caught.value.actual == sha256_bytes(b"tampered bytes")
    assert stored.digest in str(caught.value)
    assert caught.value.code in FINDING_CODES
    assert caught.value.exit_code == 2
    with pytest.raises(ArtefactIntegrityError):
        store.verify(stored.digest)
    with pytest.raises(ArtefactIntegrityError), store.open(stored.digest) as reader:
        reader.read(3)  # leaving early still checks the rest
    destination = tmp_path / "out.bin"
    with pytest.raises(ArtefactIntegrityError):
        store.copy_to(stored.digest, destination)
    assert not destination.exists()
    with pytest.raises(ArtefactIntegrityError):
        store.resolve(stored.uri)


def test_putting_the_good_bytes_again_repairs_a_corrupted_object(store):
    stored = store.put_bytes(b"good")
    store.path_for(stored.digest).write_bytes(b"bad")
    store.put_bytes(b"good")
    assert store.get_bytes(stored.digest) == b"good"


def test_a_truncated_object_is_refused(store):
    stored = store.put_bytes(b"0123456789")
    store.path_for(stored.digest).write_bytes(b"01234")
    with pytest.raises(ArtefactIntegrityError):
        store.get_bytes(stored.digest)


def test_open_streams_and_copy_to_writes_verified_bytes(store, tmp_path):
    stored = store.put_bytes(b"x" * 5000)
    with store.open(stored.digest) as reader:
        assert reader.read(10) == b"x" * 10
        assert reader.read() == b"x" * 4990
    copy = store.copy_to(stored.digest, tmp_path / "copy.bin")
    assert copy.read_bytes() == b"x" * 5000
    assert store.verify(stored.digest) == stored


def test_missing_objects_and_bad_digests_are_typed_errors(store):
    missing = "sha256:" + "0" * 64
    assert not store.contains(missing)
    with pytest.raises(ArtefactError, match="no object"):
        store.get_bytes(missing)
    for bad in ("sha256:ABC", "md5:" + "0" * 32, "0" * 64, "sha256:" + "0" * 63 + "/", ""):
        with pytest.raises(ArtefactError, match="not a digest"):
            store.path_for(bad)


def test_cmf_uris_round_trip():
    digest = sha256_bytes(b"a")
    uri = build_cmf_uri(digest)
    assert uri == "cmf://sha256/" + digest.removeprefix("sha256:")
    assert parse_artefact_uri(uri) == ArtefactUri(scheme="cmf", digest=digest)
    assert DIGEST_RE.match(digest)


@pytest.mark.parametrize(
    "uri",
    [
        "cmf://sha256/../../etc/passwd",
        "cmf://sha256/" + "0" * 63,
        "cmf://sha256/" + "A" * 64,
        "cmf://sha256/" + "0" * 64 + "/x",
        "cmf://sha256/" + "0" * 64 + "?x=1",
        "cmf://md5/" + "0" * 32,
        "http://example.com/model.npz",
        "s3://bucket/key",
        "file:relative/path",
        "file://host.example/etc/passwd",
        "file:///tmp/../etc/passwd",
        "file:///tmp/./x",
        "file:///tmp/%2e%2e/etc/passwd",
        "file:///tmp/a%2Fb",
        "file:///tmp/a%00b",
        "file:///tmp/a\x00b",
        "file:///tmp/a\nb",
        "file:///tmp/a%0Ab",
        "file:///tmp/%ff",
        "file:///tmp/x?query",
        "file:///tmp/x#fragment",
        "file://",
        "",
    ],
)
def test_unsafe_or_malformed_uris_are_refused(uri):
    with pytest.raises(ArtefactError):
        parse_artefact_uri(uri)


def test_file_uris_round_trip_with_encoding(tmp_path):
    path = tmp_path / "dir with space" / "ünïcode #1.npz"
    path.parent.mkdir()
    path.write_bytes(b"data")
    uri = build_file_uri(path)
    assert uri.startswith("file:///") and " " not in uri and "#" not in uri
    assert parse_artefact_uri(uri) == ArtefactUri(scheme="file", path=str(path))
    assert read_file_uri(uri) == b"data"
    assert read_file_uri(uri, expected_digest=sha256_bytes(b"data")) == b"data"
    assert parse_artefact_uri(uri.replace("file://", "file://localhost")).path == str(path)
    with pytest.raises(ArtefactError, match="absolute"):
        build_file_uri("relative.npz")


def test_file_uri_read_verifies_the_expected_digest(tmp_path):
    path = tmp_path / "m.npz"
    path.write_bytes(b"model")
    with pytest.raises(ArtefactIntegrityError) as caught:
        read_file_uri(build_file_uri(path), expected_digest=sha256_bytes(b"other"))
    assert caught.value.actual == sha256_bytes(b"model")
    with pytest.raises(ArtefactError, match="not a digest"):
        read_file_uri(build_file_uri(path), expected_digest="sha256:nothex")


def test_file_uri_outside_the_allowed_root_is_refused(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    outside = tmp_path / "secret.txt"
    outside.write_bytes(b"secret")
    link = root / "link.txt"
    link.symlink_to(outside)
    inside = root / "ok.txt"
    inside.write_bytes(b"ok")
    assert read_file_uri(build_file_uri(inside), root=root) == b"ok"
    with pytest.raises(ArtefactError, match="outside"):
        read_file_uri(build_file_uri(outside), root=root)
    with pytest.raises(ArtefactError, match="outside"):
        read_file_uri(build_file_uri(link), root=root)  # a symlink out of the root


def test_file_uri_refuses_directories_and_fifos(tmp_path):
    with pytest.raises(ArtefactError, match="not a regular file"):
        read_file_uri(build_file_uri(tmp_path))
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(ArtefactError, match="not a regular file"):
        read_file_uri(build_file_uri(fifo))
    with pytest.raises(ArtefactError, match="file not found"):
        read_file_uri(build_file_uri(tmp_path / "missing"))


def test_resolve_dispatches_on_scheme(store, tmp_path):
    stored = store.put_bytes(b"object")
    assert resolve_uri(stored.uri, store=store) == b"object"
    assert store.resolve(stored.uri, expected_digest=stored.digest) == b"object"
    with pytest.raises(ArtefactError, match="was expected"):
        store.resolve(stored.uri, expected_digest=sha256_bytes(b"other"))
    with pytest.raises(ArtefactError, match="no factory home"):
        resolve_uri(stored.uri)
    path = tmp_path / "f.bin"
    path.write_bytes(b"file")
    assert resolve_uri(build_file_uri(path), expected_digest=sha256_bytes(b"file")) == b"file"


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=4096))
def test_any_bytes_round_trip_through_the_store(tmp_path_factory, data):
    store = ArtefactStore(tmp_path_factory.mktemp("home"))
    stored = store.put_bytes(data)
    assert stored.digest == sha256_bytes(data)
    assert store.resolve(stored.uri) == data


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_parsed_file_uris_never_hold_traversal(text):
    try:
        parsed = parse_artefact_uri("file://" + text)
    except ArtefactError:
        return
    assert parsed.path is not None and parsed.path.startswith("/")
    assert ".." not in parsed.path.split("/") and "\x00" not in parsed.path
