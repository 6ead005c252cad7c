"""Exporting an evidence pack (directory and deterministic archive) and verifying it, including
tampered packs and hostile archives."""

from __future__ import annotations

import gzip
import io
import os
import shutil
import tarfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from customer_model_factory.errors import ArtefactError, BlockedError, InputError
from customer_model_factory.stages.evidence.export import (
    PREDICATE_TYPE,
    STATEMENT_TYPE,
    export_evidence_pack,
    render_sha256sums,
    safe_extract,
    verify_evidence_pack,
)
from customer_model_factory.stages.evidence.models import CustomerEvidencePackManifest

from ..stage_deploy_evidence_support import Chain, build_chain, reseal, write_evidence

pytest.importorskip("cmf_example_retail_banking", reason="the example pack is not installed")


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Chain, Path, Path, Path]:
    root = tmp_path_factory.mktemp("evidence-export")
    chain = build_chain(root)
    manifest = write_evidence(chain, root)
    directory, archive = root / "pack", root / "pack.tar.gz"
    export_evidence_pack(manifest, directory, chain.context())
    export_evidence_pack(manifest, archive, chain.context())
    return chain, manifest, directory, archive


@pytest.fixture
def pack_copy(exported, tmp_path) -> Path:
    return Path(shutil.copytree(exported[2], tmp_path / "pack"))


def _problems(outcome) -> list[tuple[str, str]]:
    return [(p.check, p.path) for p in outcome.problems]


def test_both_forms_verify_clean(exported):
    _, _, directory, archive = exported
    for source in (directory, archive):
        outcome = verify_evidence_pack(source)
        assert outcome.ok and outcome.exit_code == 0, outcome.problems
        assert outcome.files_checked >= 20 and outcome.links_checked > 0


def test_the_pack_holds_every_artefact_at_its_path(exported):
    _, manifest_path, directory, _ = exported
    manifest = CustomerEvidencePackManifest.load(manifest_path)
    for artefact in manifest.artefact_files:
        assert (directory / artefact.path).stat().st_size == artefact.size_bytes
    assert (directory / "evidence_pack.json").read_bytes() == manifest.to_json_bytes()
    names = sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file())
    listed = [
        line.split("  ", 1)[1] for line in (directory / "SHA256SUMS").read_text().splitlines()
    ]
    assert listed == sorted(set(names) - {"SHA256SUMS"})


def test_the_archive_is_byte_deterministic(exported, tmp_path):
    chain, manifest, _, archive = exported
    again = tmp_path / "again.tar.gz"
    export_evidence_pack(manifest, again, chain.context())
    assert again.read_bytes() == archive.read_bytes()
    data = archive.read_bytes()
    assert data[4:8] == b"\0\0\0\0"  # gzip header mtime 0
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == sorted(m.name for m in members)
    assert all(m.isreg() and m.mtime == 0 and m.uid == m.gid == 0 for m in members)
    assert all(m.mode == 0o644 and m.uname == m.gname == "" for m in members)


def test_the_statement_is_in_toto_v1_with_every_artefact_as_subject(exported):
    import json

    _, manifest_path, directory, _ = exported
    statement = json.loads((directory / "statement.intoto.json").read_text())
    manifest = CustomerEvidencePackManifest.load(manifest_path)
    assert statement["_type"] == STATEMENT_TYPE
    assert statement["predicateType"] == PREDICATE_TYPE
    names = {s["name"] for s in statement["subject"]}
    assert names == {a.path for a in manifest.artefact_files} | {"evidence_pack.json"}
    chain = {entry["kind"] for entry in statement["predicate"]["chain"]}
    assert {"deployment", "selection-report", "benchmark-result", "evidence-pack"} <= chain
    assert statement["predicate"]["evidence_hash"] == manifest.evidence_hash


def test_a_tampered_artefact_is_a_mismatch_naming_the_file(pack_copy):
    target = pack_copy / "artefacts" / "audit_log.jsonl"
    target.write_bytes(target.read_bytes() + b'{"forged": true}\n')
    outcome = verify_evidence_pack(pack_copy)
    assert outcome.exit_code == 1
    assert ("sha256sums", "artefacts/audit_log.jsonl") in _problems(outcome)
    assert ("artefact", "artefacts/audit_log.jsonl") in _problems(outcome)


def test_a_tampered_artefact_with_rewritten_sums_and_statement_is_still_caught(pack_copy):
    import hashlib
    import json

    target = pack_copy / "model" / "files" / "config.json"
    target.write_bytes(target.read_bytes().replace(b"1", b"2", 1))
    digests = {}
    for path in sorted(pack_copy.rglob("*")):
        relative = path.relative_to(pack_copy).as_posix()
        if path.is_file() and relative != "SHA256SUMS":
            digests[relative] = "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    statement = json.loads((pack_copy / "statement.intoto.json").read_text())
    for subject in statement["subject"]:
        subject["digest"]["sha256"] = digests[subject["name"]].removeprefix("sha256:")
    (pack_copy / "statement.intoto.json").write_text(json.dumps(statement))
    digests["statement.intoto.json"] = (
        "sha256:" + hashlib.sha256((pack_copy / "statement.intoto.json").read_bytes()).hexdigest()
    )
    (pack_copy / "SHA256SUMS").write_bytes(render_sha256sums(digests))
    outcome = verify_evidence_pack(pack_copy)
    assert outcome.exit_code == 1
    assert ("artefact", "model/files/config.json") in _problems(outcome)


def test_a_renamed_file_is_missing_and_unlisted(pack_copy):
    (pack_copy / "artefacts" / "telemetry.json").rename(pack_copy / "artefacts" / "t.json")
    outcome = verify_evidence_pack(pack_copy)
    assert outcome.exit_code == 1
    problems = _problems(outcome)
    assert ("sha256sums", "artefacts/telemetry.json") in problems
    assert ("sha256sums", "artefacts/t.json") in problems
    assert ("artefact", "artefacts/telemetry.json") in problems


def test_an_extra_file_is_an_error(pack_copy):
    (pack_copy / "notes.txt").write_text("added later\n")
    outcome = verify_evidence_pack(pack_copy)
    assert outcome.exit_code == 1
    assert _problems(outcome) == [("sha256sums", "notes.txt")]


def test_a_tampered_manifest_is_a_mismatch(pack_copy):
    path = pack_copy / "evidence_pack.json"
    path.write_text(path.read_text().replace('"confidential"', '"internal"'))
    outcome = verify_evidence_pack(pack_copy)
    assert outcome.exit_code == 1
    assert ("manifest", "evidence_pack.json") in _problems(outcome)


def test_a_symlink_in_a_directory_pack_is_refused(pack_copy, tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("secret\n")
    (pack_copy / "artefacts" / "telemetry.json").unlink()
    (pack_copy / "artefacts" / "telemetry.json").symlink_to(outside)
    outcome = verify_evidence_pack(pack_copy)
    assert outcome.exit_code == 2
    assert outcome.problems[0].path == "artefacts/telemetry.json"


@pytest.mark.parametrize(
    "sums",
    [b"not a sums line\n", b"ZZ  evidence_pack.json\n", b"%s  ../escape\n" % (b"0" * 64)],
)
def test_a_malformed_sums_file_is_unreadable(pack_copy, sums):
    (pack_copy / "SHA256SUMS").write_bytes(sums)
    assert verify_evidence_pack(pack_copy).exit_code == 2


def test_a_missing_pack_or_a_directory_that_is_no_pack_is_unreadable(tmp_path):
    assert verify_evidence_pack(tmp_path / "absent").exit_code == 2
    assert verify_evidence_pack(tmp_path).exit_code == 2
    (tmp_path / "junk.tar.gz").write_bytes(b"not gzip")
    assert verify_evidence_pack(tmp_path / "junk.tar.gz").exit_code == 2


def test_an_existing_output_is_refused(exported):
    chain, manifest, directory, archive = exported
    for target in (directory, archive):
        with pytest.raises(InputError, match="exists"):
            export_evidence_pack(manifest, target, chain.context())


def test_a_pack_that_is_not_ready_is_not_exported(exported, tmp_path):
    chain, manifest_path, _, _ = exported
    from customer_model_factory.findings import Finding

    manifest = CustomerEvidencePackManifest.load(manifest_path)
    blocked = reseal(
        manifest,
        findings=[Finding(code="EVIDENCE_CONTROL_EVIDENCE_MISSING", severity="error", message="x")],
    )
    with pytest.raises(BlockedError, match="EVIDENCE_NOT_READY"):
        export_evidence_pack(blocked.write(tmp_path / "e.json"), tmp_path / "out", chain.context())
    assert not (tmp_path / "out").exists()


def test_export_without_the_artefacts_in_the_store_fails_and_leaves_nothing(exported, tmp_path):
    from customer_model_factory.context import RunContext

    _, manifest, _, _ = exported
    with pytest.raises(ArtefactError):
        export_evidence_pack(manifest, tmp_path / "out.tar.gz", RunContext(home=tmp_path / "h"))
    assert not (tmp_path / "out.tar.gz").exists()


# ---- hostile archives ----


def _archive(path: Path, *members: tuple[tarfile.TarInfo, bytes | None]) -> Path:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    path.write_bytes(gzip.compress(buffer.getvalue()))
    return path


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    return info


HOSTILE = {
    "dot-dot": [(_member("../evil.txt"), b"x")],
    "nested-dot-dot": [(_member("a/../../evil.txt"), b"x")],
    "absolute": [(_member("/tmp/cmf-evil.txt"), b"x")],
    "symlink": [(_member("link", tarfile.SYMTYPE, "/etc/passwd"), None)],
    "symlink-then-file": [
        (_member("dir", tarfile.SYMTYPE, "/tmp"), None),
        (_member("dir/evil.txt"), b"x"),
    ],
    "hardlink": [(_member("hard", tarfile.LNKTYPE, "/etc/passwd"), None)],
    "device": [(_member("dev", tarfile.CHRTYPE), None)],
    "fifo": [(_member("fifo", tarfile.FIFOTYPE), None)],
    "duplicate": [(_member("SHA256SUMS"), b"a"), (_member("SHA256SUMS"), b"b")],
    "backslash": [(_member("a\\..\\..\\evil"), b"x")],
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hostile_archive_is_refused_and_writes_nothing(name, tmp_path):
    archive = _archive(tmp_path / f"{name}.tar.gz", *HOSTILE[name])
    target = tmp_path / "target"
    target.mkdir()
    with pytest.raises(InputError, match=r"refused|cannot read"):
        safe_extract(archive, target)
    assert list(target.iterdir()) == []
    assert not (tmp_path / "evil.txt").exists()
    outcome = verify_evidence_pack(archive)
    assert outcome.exit_code == 2 and not outcome.ok


def test_an_archive_above_the_size_cap_is_refused(tmp_path):
    archive = _archive(tmp_path / "big.tar.gz", (_member("a"), b"x" * 2000))
    with pytest.raises(InputError, match="more than 1000 bytes"):
        safe_extract(archive, tmp_path / "t", max_bytes=1000)
    with pytest.raises(InputError, match="more than 1 members"):
        safe_extract(
            _archive(tmp_path / "many.tar.gz", (_member("a"), b"1"), (_member("b"), b"2")),
            tmp_path / "t",
            max_members=1,
        )


def test_a_tampered_archive_is_a_mismatch(exported, tmp_path):
    _, _, directory, _ = exported
    copy = Path(shutil.copytree(directory, tmp_path / "pack"))
    (copy / "artefacts" / "rollback.tar.gz").write_bytes(b"other package\n")
    archive = tmp_path / "tampered.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(copy.rglob("*")):
            if path.is_file():
                tar.add(path, arcname=path.relative_to(copy).as_posix())
    outcome = verify_evidence_pack(archive)
    assert outcome.exit_code == 1
    assert ("artefact", "artefacts/rollback.tar.gz") in _problems(outcome)


def test_an_oversized_header_is_refused_before_it_is_read_whole(tmp_path):
    info = _member("a")
    info.pax_headers = {"comment": "x" * (3 << 20)}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(info, io.BytesIO(b""))
    archive = tmp_path / "header.tar.gz"
    archive.write_bytes(gzip.compress(buffer.getvalue()))
    with pytest.raises(InputError, match="unpacks to more than"):
        safe_extract(archive, tmp_path / "t", max_bytes=100, max_members=1)


def test_a_file_name_that_is_not_utf8_is_unreadable(pack_copy):
    os.close(
        os.open(os.path.join(os.fsencode(pack_copy), b"bad-\xff-name"), os.O_CREAT | os.O_WRONLY)
    )
    outcome = verify_evidence_pack(pack_copy)
    assert outcome.exit_code == 2
    assert "\n" not in outcome.problems[0].path
    outcome.model_dump_json()  # renders as JSON (no lone surrogate)


def test_a_member_name_cannot_forge_an_output_line(tmp_path):
    archive = _archive(
        tmp_path / "forge.tar.gz", (_member("x\nok  forged", tarfile.SYMTYPE, "/"), None)
    )
    outcome = verify_evidence_pack(archive)
    assert outcome.exit_code == 2
    assert "\n" not in outcome.problems[0].path
    assert "\\n" in outcome.problems[0].path


def test_an_output_that_cannot_be_written_is_bad_input(exported, tmp_path):
    chain, manifest, _, _ = exported
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="cannot write"):
        export_evidence_pack(manifest, tmp_path / "file" / "pack.tar.gz", chain.context())


@given(st.lists(st.text(min_size=0, max_size=6), min_size=1, max_size=5))
def test_a_path_the_model_accepts_never_leaves_the_pack_root(parts):
    from customer_model_factory.stages.evidence.models import check_pack_path

    path = "/".join(parts)
    try:
        check_pack_path(path)
    except ValueError:
        return
    root = Path("/pack-root")
    joined = Path(os.path.normpath(root / path))
    assert joined != root and root in joined.parents
