"""Verifying a chain of linked manifests: every link followed, the first broken one named."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from customer_model_factory.chain import resolve_store_uri, verify_manifest_chain
from customer_model_factory.manifest import BoundManifest, InputLink


class RootManifest(BoundManifest):
    KIND = "test-chain-root"
    HASH_FIELD = "root_hash"
    root_hash: str = ""
    note: str = "root"


class MiddleManifest(BoundManifest):
    KIND = "test-chain-middle"
    HASH_FIELD = "middle_hash"
    middle_hash: str = ""


class LeafManifest(BoundManifest):
    KIND = "test-chain-leaf"
    HASH_FIELD = "leaf_hash"
    leaf_hash: str = ""


_BINDING = {"customer_id": "c", "workspace_id": "w", "tenant_id": "t"}


def _chain(tmp_path: Path, *, with_uri: bool = True) -> dict[str, Path]:
    data = tmp_path / "weights.bin"
    data.write_bytes(b"\x00weights\x01")
    data_link = InputLink(
        kind="model-weights",
        hash="sha256:" + hashlib.sha256(data.read_bytes()).hexdigest(),
        uri="weights.bin" if with_uri else None,
    )
    root = RootManifest.seal(**_BINDING)
    root_path = root.write(tmp_path / "root.json")
    middle = MiddleManifest.seal(
        **_BINDING, inputs=[root.link("root.json" if with_uri else None), data_link]
    )
    middle_path = middle.write(tmp_path / "middle.json")
    leaf = LeafManifest.seal(**_BINDING, inputs=[middle.link(f"file://{middle_path}")])
    leaf_path = leaf.write(tmp_path / "leaf.json")
    return {"root": root_path, "middle": middle_path, "leaf": leaf_path, "data": data}


@pytest.mark.parametrize("with_uri", [True, False])
def test_a_whole_chain_verifies(tmp_path: Path, with_uri: bool) -> None:
    paths = _chain(tmp_path, with_uri=with_uri)
    report = verify_manifest_chain([paths["leaf"]])
    assert report.ready and report.exit_code == 0, report.first_problem
    assert {link.kind for link in report.links} == {
        "test-chain-middle",
        "model-weights",
        "test-chain-root",
    }
    assert all(link.status == "ok" for link in report.links)
    assert len(report.manifests) == 3


def test_one_edited_byte_upstream_is_tampering_naming_the_link(tmp_path: Path) -> None:
    paths = _chain(tmp_path)
    raw = paths["root"].read_bytes()
    paths["root"].write_bytes(raw.replace(b'"root"', b'"ROOT"'))
    report = verify_manifest_chain([paths["leaf"]])
    assert report.exit_code == 2 and not report.ready
    assert "input test-chain-root" in report.first_problem
    assert str(paths["middle"]) in report.first_problem


def test_a_resealed_upstream_does_not_match_its_link(tmp_path: Path) -> None:
    paths = _chain(tmp_path)
    RootManifest.seal(**_BINDING, note="rebuilt").write(paths["root"])
    report = verify_manifest_chain([paths["leaf"]])
    assert report.exit_code == 2
    assert "not the linked one" in report.first_problem


def test_an_edited_plain_artefact_is_tampering(tmp_path: Path) -> None:
    paths = _chain(tmp_path)
    paths["data"].write_bytes(b"other weights")
    report = verify_manifest_chain([paths["leaf"]])
    assert report.exit_code == 2
    assert "input model-weights" in report.first_problem


@pytest.mark.parametrize("with_uri", [True, False])
def test_a_deleted_upstream_is_a_missing_link(tmp_path: Path, with_uri: bool) -> None:
    paths = _chain(tmp_path, with_uri=with_uri)
    paths["root"].unlink()
    report = verify_manifest_chain([paths["leaf"]])
    assert report.exit_code == 1 and not report.ready
    assert "input test-chain-root" in report.first_problem and "not found" in report.first_problem


def test_links_are_found_by_hash_in_search_directories(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    paths = _chain(tmp_path / "a", with_uri=False)
    elsewhere = tmp_path / "b"
    elsewhere.mkdir()
    moved = elsewhere / "root-copy.json"
    paths["root"].rename(moved)
    assert verify_manifest_chain([paths["leaf"]]).exit_code == 1
    assert verify_manifest_chain([paths["leaf"]], search=[elsewhere]).exit_code == 0


def test_without_follow_only_the_files_are_verified(tmp_path: Path) -> None:
    paths = _chain(tmp_path)
    paths["root"].unlink()
    report = verify_manifest_chain([paths["leaf"]], follow=False)
    assert report.exit_code == 0 and report.links == ()


def test_a_tampered_start_file_is_exit_2(tmp_path: Path) -> None:
    paths = _chain(tmp_path)
    payload = json.loads(paths["leaf"].read_text())
    payload["tenant_id"] = "other"
    paths["leaf"].write_text(json.dumps(payload))
    report = verify_manifest_chain([paths["leaf"]])
    assert report.exit_code == 2 and "leaf_hash mismatch" in report.first_problem


def test_store_uris_resolve_inside_the_home_only(tmp_path: Path) -> None:
    digest = "ab" * 32
    assert resolve_store_uri(f"cmf://sha256/{digest}", tmp_path) == (
        tmp_path / "objects" / "sha256" / "ab" / digest[2:]
    )
    assert resolve_store_uri("cmf://sha256/../../etc/passwd", tmp_path) is None
    assert resolve_store_uri(f"cmf://sha256/{digest}", None) is None
    assert resolve_store_uri(f"https://sha256/{digest}", tmp_path) is None


def test_a_chain_thousands_of_links_long_is_walked_without_recursion(tmp_path: Path) -> None:
    previous = RootManifest.seal(**_BINDING)
    first = previous.write(tmp_path / "m0.json")
    for index in range(1, 1100):  # past the default recursion limit of 1000
        previous = MiddleManifest.seal(**_BINDING, inputs=[previous.link(f"m{index - 1}.json")])
        previous.write(tmp_path / f"m{index}.json")
    report = verify_manifest_chain([tmp_path / "m1099.json"])
    assert report.ready and len(report.manifests) == 1100
    first.unlink()
    report = verify_manifest_chain([tmp_path / "m1099.json"])
    assert report.exit_code == 1 and "m1.json: input test-chain-root" in report.first_problem
