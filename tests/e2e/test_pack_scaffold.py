"""A new pack author's path, end to end and offline: ``cmf plugins new`` into a temporary
directory, ``pip install -e`` into a virtual environment that sees the installed core, the pack's
own tests pass unchanged, the pack shows in ``cmf plugins list`` and its rule blocks a bad row in
``cmf dataset validate``.

The pack goes into its own virtual environment (``--system-site-packages``, so the core and its
dependencies are importable), never into the environment running this suite: no other test can
see it, and deleting the directory removes it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from customer_model_factory.plugins.scaffold import scaffold_pack

pytestmark = pytest.mark.slow

_TIMEOUT = 300


def _run(args: list[str], *, cwd: Path) -> subprocess.CompletedProcess[str]:
    environ = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("CMF_", "PYTEST_", "PIP_"))
    }
    # Offline: no index is ever asked.
    environ["PIP_NO_INDEX"] = "1"
    environ["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return subprocess.run(
        args,
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        check=False,
        timeout=_TIMEOUT,
    )


def _venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def test_a_scaffolded_pack_installs_passes_its_tests_and_blocks_a_bad_row(
    tmp_path: Path,
) -> None:
    pytest.importorskip(
        "hatchling", reason="the dev extra installs hatchling (pip install -e '.[dev]')"
    )
    pack = scaffold_pack("acme-claims-pack", "acme-claims", tmp_path).root

    venv = tmp_path / "venv"
    made = _run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
        cwd=tmp_path,
    )
    assert made.returncode == 0, made.stderr
    python = str(_venv_python(venv))
    installed = _run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            python,
            "install",
            "--no-deps",
            "--no-build-isolation",
            "-e",
            str(pack),
        ],
        cwd=tmp_path,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr

    tests = _run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=pack)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert " passed" in tests.stdout and "failed" not in tests.stdout

    listed = _run(
        [python, "-m", "customer_model_factory", "plugins", "list", "--format", "json"],
        cwd=tmp_path,
    )
    assert listed.returncode == 0, listed.stderr
    (info,) = [item for item in json.loads(listed.stdout) if item["name"] == "acme-claims"]
    assert info["distribution"] == "acme-claims-pack"
    assert info["status"] == "ok"
    assert info["contributions"]["sectors"] == ["acme-claims"]
    assert "cmf_validate_sector_metadata" in info["hooks"]

    data = pack / "src" / "acme_claims_pack" / "data"
    workspace = str(data / "workspace.toml")
    clean = _run(
        [
            python,
            "-m",
            "customer_model_factory",
            "dataset",
            "validate",
            str(data / "benchmark_traces.jsonl"),
            "-w",
            workspace,
        ],
        cwd=tmp_path,
    )
    assert clean.returncode == 0, clean.stdout + clean.stderr

    rows = [json.loads(line) for line in (data / "benchmark_traces.jsonl").read_text().splitlines()]
    rows[2]["metadata"]["topic"] = "advice"
    rows[2]["metadata"]["requires_citation"] = False
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    blocked = _run(
        [python, "-m", "customer_model_factory", "dataset", "validate", str(bad), "-w", workspace],
        cwd=tmp_path,
    )
    assert blocked.returncode == 1, blocked.stdout + blocked.stderr
    assert "bad.jsonl:3: error SECTOR_ACME_CLAIMS_CITATION_REQUIRED" in blocked.stdout

    # The environment running this suite never saw the pack.
    from importlib.metadata import entry_points

    assert "acme_claims_pack.plugin" not in {
        entry_point.value for entry_point in entry_points(group="customer_model_factory")
    }
