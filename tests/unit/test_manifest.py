"""The manifest base class: hashed on write, verified on load."""

from __future__ import annotations

import hashlib
import json

import pytest
import rfc8785
from pydantic import Field, ValidationError

from customer_model_factory.errors import (
    DataFormatError,
    ManifestIntegrityError,
    SchemaVersionError,
)
from customer_model_factory.findings import Finding
from customer_model_factory.manifest import (
    BoundManifest,
    InputLink,
    Manifest,
    manifest_class_for,
    manifest_classes,
    recompute_manifest_hash,
    verify_manifest_file,
)


class SampleManifest(BoundManifest):
    """A manifest of the kind every stage writes, for these tests."""

    KIND = "test-sample"
    HASH_FIELD = "sample_hash"
    SCHEMA_NAME = "sample"
    SCHEMA_VERSIONS = ("1", "2")

    sample_hash: str = ""
    score: float = 0.0
    labels: dict[str, int] = Field(default_factory=dict)


def _build(**overrides) -> SampleManifest:
    fields = {
        "customer_id": "cust-1",
        "workspace_id": "ws-1",
        "tenant_id": "tenant-1",
        "score": 0.25,
        "labels": {"unsafe": 3, "safe": 7},
        "findings": [
            Finding(code="MANIFEST_INVALID", severity="warning", message="b", location="f:10"),
            Finding(code="MANIFEST_INVALID", severity="warning", message="a", location="f:9"),
        ],
    }
    fields.update(overrides)
    return SampleManifest.seal(**fields)


def test_seal_sorts_findings_derives_ready_and_fills_the_hash():
    manifest = _build()
    assert [f.location for f in manifest.findings] == ["f:9", "f:10"]
    assert manifest.ready is True
    assert manifest.schema_version == "2"
    assert manifest.sample_hash.startswith("sha256:")
    blocked = _build(findings=[Finding(code="MANIFEST_INVALID", severity="error", message="x")])
    assert blocked.ready is False


def test_hash_is_recomputable_with_an_independent_rfc8785_implementation(tmp_path):
    path = _build().write(tmp_path / "m.json")
    payload = json.loads(path.read_text())
    stored = payload.pop("sample_hash")
    assert stored == "sha256:" + hashlib.sha256(rfc8785.dumps(payload)).hexdigest()


def test_writing_twice_gives_identical_bytes(tmp_path):
    first = _build().write(tmp_path / "a.json").read_bytes()
    second = _build().write(tmp_path / "b.json").read_bytes()
    assert first == second
    assert first.endswith(b"\n")
    assert SampleManifest.load(tmp_path / "a.json") == _build()


def test_one_edited_byte_is_rejected_with_both_hashes(tmp_path):
    path = _build().write(tmp_path / "m.json")
    original = SampleManifest.load(path).sample_hash
    path.write_bytes(path.read_bytes().replace(b'"cust-1"', b'"cust-2"'))
    with pytest.raises(ManifestIntegrityError) as info:
        SampleManifest.load(path)
    error = info.value
    assert error.expected == original
    assert error.actual != original
    assert str(path) in str(error) and original in str(error) and error.actual in str(error)
    assert error.exit_code == 2


def test_an_added_field_is_caught_by_the_hash(tmp_path):
    path = _build().write(tmp_path / "m.json")
    payload = json.loads(path.read_text())
    payload["injected"] = True
    path.write_text(json.dumps(payload))
    with pytest.raises(ManifestIntegrityError):
        SampleManifest.load(path)


def test_unknown_schema_version_is_an_error_not_a_guess(tmp_path):
    path = _build().write(tmp_path / "m.json")
    payload = json.loads(path.read_text())
    payload["schema_version"] = "99"
    path.write_text(json.dumps(payload))
    with pytest.raises(SchemaVersionError, match="'99'") as info:
        SampleManifest.load(path)
    assert info.value.supported == ("1", "2")


def test_a_consistent_but_invalid_manifest_is_rejected_naming_the_field(tmp_path):
    payload = _build().payload()
    payload["score"] = "high"
    payload.pop("sample_hash")
    payload["sample_hash"] = recompute_manifest_hash({**payload, "sample_hash": ""}, "sample_hash")[
        1
    ]
    path = tmp_path / "m.json"
    path.write_text(json.dumps(payload))
    with pytest.raises(DataFormatError) as info:
        SampleManifest.load(path)
    assert info.value.field == "score"


def test_ready_must_agree_with_the_findings():
    with pytest.raises(ValidationError, match="ready must be true exactly when"):
        SampleManifest(
            schema_version="1",
            kind="test-sample",
            customer_id="c",
            workspace_id="w",
            tenant_id="t",
            ready=True,
            findings=(Finding(code="MANIFEST_INVALID", severity="error", message="x"),),
        )


def test_failed_write_leaves_the_previous_manifest_intact(tmp_path, monkeypatch):
    path = _build().write(tmp_path / "m.json")
    before = path.read_bytes()

    def fail(self):
        raise RuntimeError("serializer crashed")

    monkeypatch.setattr(SampleManifest, "to_json_bytes", fail)
    with pytest.raises(RuntimeError, match="serializer crashed"):
        _build(score=0.5).write(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


def test_a_manifest_built_without_seal_cannot_be_written(tmp_path):
    forged = _build().model_copy(update={"score": 0.99})
    with pytest.raises(ManifestIntegrityError):
        forged.write(tmp_path / "m.json")
    assert not (tmp_path / "m.json").exists()


def test_load_reports_invalid_json_with_its_line(tmp_path):
    path = tmp_path / "m.json"
    path.write_text('{\n  "a": 1,\n  oops\n}\n')
    with pytest.raises(DataFormatError) as info:
        SampleManifest.load(path)
    assert info.value.line == 3
    with pytest.raises(DataFormatError, match="file not found"):
        SampleManifest.load(tmp_path / "missing.json")


def test_verify_manifest_file_reports_instead_of_raising(tmp_path):
    path = _build().write(tmp_path / "m.json")
    check = verify_manifest_file(path)
    assert check.ok and check.kind == "test-sample" and check.hash_field == "sample_hash"
    path.write_bytes(path.read_bytes().replace(b"0.25", b"0.26"))
    check = verify_manifest_file(path)
    assert not check.ok and check.exit_code == 2
    assert check.stored != check.actual


def test_the_class_is_chosen_by_kind_never_guessed_from_hash_keys(tmp_path):
    assert manifest_classes()["test-sample"] is SampleManifest
    assert manifest_class_for({"kind": "test-sample", "other_hash": "sha256:1"}) is SampleManifest
    with pytest.raises(DataFormatError, match="field 'kind'"):
        manifest_class_for({"sample_hash": "sha256:1"})
    with pytest.raises(DataFormatError, match="unknown manifest kind 'nope'"):
        manifest_class_for({"kind": "nope"})


def test_a_manifest_carrying_an_upstream_hash_verifies(tmp_path):
    upstream = _build()
    downstream = _build(inputs=[upstream.link("m.json")], score=0.5)
    path = downstream.write(tmp_path / "d.json")
    check = verify_manifest_file(path)
    assert check.ok, check.error
    assert downstream.inputs == (
        InputLink(kind="test-sample", hash=upstream.sample_hash, uri="m.json"),
    )


def test_kind_and_inputs_are_inside_the_hashed_payload(tmp_path):
    upstream = _build()
    path = _build(inputs=[upstream.link()]).write(tmp_path / "d.json")
    for edit in (
        lambda p: p.update(kind="other"),
        lambda p: p["inputs"][0].update(hash="sha256:" + "0" * 64),
        lambda p: p.update(inputs=[]),
    ):
        payload = json.loads(path.read_text())
        edit(payload)
        forged = tmp_path / "forged.json"
        forged.write_text(json.dumps(payload))
        assert not verify_manifest_file(forged).ok


def test_a_loaded_manifest_of_another_kind_is_refused(tmp_path):
    class OtherManifest(Manifest):
        KIND = "test-other"
        HASH_FIELD = "other_hash"
        other_hash: str = ""

    path = OtherManifest.seal().write(tmp_path / "o.json")
    with pytest.raises(DataFormatError, match="not 'test-sample'"):
        SampleManifest.load(path)


def test_a_bound_manifest_refuses_an_empty_binding():
    with pytest.raises(ValidationError, match="customer_id"):
        _build(customer_id="")


def test_inputs_are_sorted_and_deduplicated_by_seal():
    first = InputLink(kind="b", hash="sha256:" + "1" * 64)
    second = InputLink(kind="a", hash="sha256:" + "2" * 64)
    manifest = _build(inputs=[first, second, first])
    assert manifest.inputs == (second, first)
