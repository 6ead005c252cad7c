"""Plugins fail closed in every stage run, shown with installed distributions (a ``.dist-info``
with an ``entry_points.txt`` on ``sys.path``, exactly what ``pip install`` leaves), not only with
in-process registration.

A pack that fails to import, targets another major plugin API, or raises in ``cmf_sector_packs``
blocks ``cmf dataset validate`` (exit 1, a ``PLUGIN_*`` finding in the report) unless the operator
disables it (then the run is ready and the report records the disabled plugin). Two packs claiming
one sector block the run naming both distributions until the operator chooses one, whose rules
then run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import orjson
import pytest

WORKSPACE = """\
[workspace]
customer_id = "acme"
workspace_id = "ws-1"
tenant_id = "acme-eu"
data_classification = "confidential"
required_splits = ["train"]
"""

_GOOD_PACK = """
from customer_model_factory.plugin_api import Finding, SectorPack, hookimpl

CMF_PLUGIN_API = "{api}"


@hookimpl
def cmf_sector_packs():
    return [SectorPack(id="lending", version="2.1", title="Lending", jurisdiction="EU")]


@hookimpl
def cmf_validate_sector_metadata(sector_id, trace, metadata):
    if metadata.get("product") == "{forbidden}":
        code = "SECTOR_{marker}_PRODUCT"
        return [Finding(code=code, severity="error", message="blocked product")]
    return []
"""

_BROKEN_IMPORT = "raise RuntimeError('the pack cannot import its private tables')\n"

_RAISING_PACKS = """
from customer_model_factory.plugin_api import hookimpl

CMF_PLUGIN_API = "1.1"


@hookimpl
def cmf_sector_packs():
    raise LookupError("sector registry unreachable")
"""


def _install(site: Path, dist: str, module: str, source: str) -> None:
    """Lay out an installed distribution: its module and its .dist-info with the entry point."""
    (site / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")
    info = site / f"{dist.replace('-', '_')}-1.0.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0.0\n")
    (info / "entry_points.txt").write_text(f"[customer_model_factory]\n{dist} = {module}\n")


def _trace(index: int, **overrides: object) -> dict[str, object]:
    row: dict[str, object] = {
        "trace_id": f"t-{index}",
        "customer_id": "acme",
        "tenant_id": "acme-eu",
        "split": "train",
        "prompt": f"Can I borrow more? ({index})",
        "response": "Your limit is in the app.",
        "expected_decision": "approve",
        "severity": "low",
        "label": "safe",
        "source_refs": ["kb://limits"],
        "policy_refs": ["policy://v1"],
        "reviewer_role": "analyst",
        "observed_at": "2024-05-01T09:00:00Z",
    }
    row.update(overrides)
    return row


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "site").mkdir()
    (tmp_path / "workspace.toml").write_text(WORKSPACE, encoding="utf-8")
    metadata = {"sector_class": "loans", "knowledge_class": "terms", "jurisdiction": "EU"}
    rows = [_trace(i) for i in range(3)]
    rows.append(_trace(3, vertical="lending", metadata={**metadata, "product": "payday"}))
    rows.append(_trace(4, vertical="lending", metadata={**metadata, "product": "mortgage"}))
    (tmp_path / "traces.jsonl").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return tmp_path


def _cmf(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("CMF_") and key != "PYTHONPATH"
    }
    env["PYTHONPATH"] = str(workdir / "site")
    return subprocess.run(
        [sys.executable, "-m", "customer_model_factory", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=workdir,
        env=env,
    )


def _validate(workdir: Path, *root_options: str) -> tuple[int, dict[str, object], str]:
    result = _cmf(
        workdir, *root_options, "dataset", "validate", "traces.jsonl", "-w", "workspace.toml",
        "-o", "report.json", "--format", "json",
    )  # fmt: skip
    assert "Traceback" not in result.stderr
    report = json.loads((workdir / "report.json").read_text())
    return result.returncode, report, result.stdout


def _codes(report: dict[str, object]) -> list[str]:
    return [f["code"] for f in report["findings"]]  # type: ignore[index, union-attr]


def test_a_good_installed_pack_validates_and_is_recorded(workdir: Path) -> None:
    _install(workdir / "site", "lending-pack", "lending_pack", _GOOD_PACK.format(
        api="1.0", forbidden="none", marker="LENDING"))  # fmt: skip
    code, report, _ = _validate(workdir)
    assert code == 0, report["findings"]
    assert report["sector_owners"] == {
        "lending": {
            "plugin": "lending-pack",
            "distribution": "lending-pack",
            "version": "1.0.0",
            "pack_version": "2.1",
        }
    }


@pytest.mark.parametrize(
    ("source", "code"),
    [
        (_BROKEN_IMPORT, "PLUGIN_LOAD_FAILED"),
        (_GOOD_PACK.format(api="2.0", forbidden="none", marker="X"), "PLUGIN_API_MISMATCH"),
        (_GOOD_PACK.format(api="1.7", forbidden="none", marker="X"), "PLUGIN_API_MISMATCH"),
        (_RAISING_PACKS, "PLUGIN_HOOK_FAILED"),
    ],
    ids=["import-fails", "other-major-api", "newer-minor-api", "sector-packs-raises"],
)
def test_a_broken_installed_pack_blocks_the_dataset_until_disabled(
    workdir: Path, source: str, code: str
) -> None:
    _install(workdir / "site", "broken-pack", "broken_pack", source)
    exit_code, report, _ = _validate(workdir)
    assert exit_code == 1
    assert report["ready"] is False
    (finding,) = [f for f in report["findings"] if f["code"] == code]  # type: ignore[union-attr]
    assert finding["severity"] == "error"
    assert "broken-pack" in finding["message"]

    listing = _cmf(workdir, "plugins", "list")
    assert listing.returncode == (0 if code == "PLUGIN_HOOK_FAILED" else 1)
    check = _cmf(workdir, "plugins", "check")
    assert check.returncode == 1 and code in check.stdout

    exit_code, report, _ = _validate(workdir, "--disable-plugin", "broken-pack")
    disabled = [f for f in report["findings"] if f["code"] == "PLUGIN_DISABLED"]  # type: ignore[union-attr]
    assert len(disabled) == 1 and disabled[0]["severity"] == "info"
    assert "broken-pack" in disabled[0]["message"]
    assert code not in _codes(report)
    # The lending rows now name a sector nobody provides: that is the data's problem, not a pass.
    assert _codes(report).count("SECTOR_UNKNOWN") == 2


def test_two_packs_claiming_one_sector_block_until_the_operator_chooses(workdir: Path) -> None:
    site = workdir / "site"
    _install(site, "alpha-lending", "alpha_lending", _GOOD_PACK.format(
        api="1.1", forbidden="payday", marker="ALPHA"))  # fmt: skip
    _install(site, "beta-lending", "beta_lending", _GOOD_PACK.format(
        api="1.1", forbidden="mortgage", marker="BETA"))  # fmt: skip

    exit_code, report, _ = _validate(workdir)
    assert exit_code == 1
    (conflict,) = [f for f in report["findings"] if f["code"] == "PLUGIN_SECTOR_CONFLICT"]  # type: ignore[union-attr]
    assert "alpha-lending" in conflict["message"] and "beta-lending" in conflict["message"]
    assert "SECTOR_ALPHA_PRODUCT" not in _codes(report)
    assert "SECTOR_BETA_PRODUCT" not in _codes(report)
    listing = _cmf(workdir, "plugins", "list")
    assert "PLUGIN_SECTOR_CONFLICT" in listing.stdout

    for chosen, rule, other in (
        ("beta-lending", "SECTOR_BETA_PRODUCT", "SECTOR_ALPHA_PRODUCT"),
        ("alpha-lending", "SECTOR_ALPHA_PRODUCT", "SECTOR_BETA_PRODUCT"),
    ):
        exit_code, report, _ = _validate(workdir, "--sector-owner", f"lending={chosen}")
        codes = _codes(report)
        assert "PLUGIN_SECTOR_CONFLICT" not in codes
        assert codes.count(rule) == 1 and other not in codes  # the chosen pack's rules run
        assert exit_code == 1  # its rule blocks one row
        assert report["sector_owners"]["lending"]["distribution"] == chosen  # type: ignore[index]
        assert "PLUGIN_SECTOR_SHADOWED" in codes
        owner = f"lending={chosen}"
        listed = json.loads(
            _cmf(workdir, "--sector-owner", owner, "plugins", "list", "-f", "json").stdout
        )
        statuses = {p["name"]: p["status"] for p in listed}
        assert statuses[chosen] == "ok"
        assert "shadowed" in statuses.values()
