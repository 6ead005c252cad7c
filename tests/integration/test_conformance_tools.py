"""tools/verify_docs_freeze.py and tools/verify_compliance.py: pass on this repository and fail on
deliberately broken copies of it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from customer_model_factory.conformance import compliance_problems, docs_freeze_problems

REPO = Path(__file__).resolve().parents[2]


def _tool(name: str, root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "tools" / name), "--root", str(root)],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """A copy of the parts of the repository the two tools read."""
    root = tmp_path / "repo"
    root.mkdir()
    shutil.copy2(REPO / "README.md", root / "README.md")
    for name in ("docs", "schemas", "examples"):
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, root / name)
    shutil.copytree(REPO / "core", root / "core", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(
        REPO / "tests",
        root / "tests",
        ignore=lambda _d, names: [n for n in names if n.endswith((".jsonl", ".json", ".gz"))],
    )
    return root


def _checks(problems: list) -> set[str]:
    return {problem.check for problem in problems}


def test_compliance_passes_on_the_repository() -> None:
    result = _tool("verify_compliance.py", REPO)
    assert result.returncode == 0, result.stdout
    assert "compliance: 0 problem(s)" in result.stderr


def test_a_public_function_without_docstring_fails_compliance(copy: Path) -> None:
    canonical = copy / "core" / "customer_model_factory" / "canonical.py"
    text = canonical.read_text()
    start = text.index("def content_hash(")
    doc_start = text.index('"""', start)
    doc_end = text.index('"""', doc_start + 3) + 3
    canonical.write_text(text[:doc_start] + "pass" + text[doc_end:])
    problems = compliance_problems(copy)
    assert any(p.check == "public-docstring" and p.where.endswith("content_hash") for p in problems)
    result = _tool("verify_compliance.py", copy)
    assert result.returncode == 1 and "content_hash: has no docstring" in result.stdout


def test_an_unregistered_and_an_undocumented_code_fail_compliance(copy: Path) -> None:
    module = copy / "core" / "customer_model_factory" / "stages" / "sector.py"
    module.write_text(module.read_text() + '\n_UNUSED = {"code": "SECTOR_NOT_A_REGISTERED_CODE"}\n')
    page = copy / "docs" / "manifests.md"
    page.write_text(page.read_text().replace("MANIFEST_SCHEMA_VERSION", "a version code"))
    problems = compliance_problems(copy)
    messages = [p.message for p in problems]
    assert any("SECTOR_NOT_A_REGISTERED_CODE is used but not registered" in m for m in messages)
    assert any("MANIFEST_SCHEMA_VERSION is explained in no" in m for m in messages)


def test_a_public_name_no_test_mentions_fails_compliance(copy: Path) -> None:
    for path in (copy / "tests").rglob("*.py"):
        text = path.read_text()
        if "sha256_file" in text:
            path.write_text(text.replace("sha256_file", "sha256_of_file"))
    problems = compliance_problems(copy)
    assert any(p.check == "public-tested" and p.where.endswith(".sha256_file") for p in problems)


def test_an_undocumented_command_option_or_stale_schema_fails_the_docs_freeze(copy: Path) -> None:
    page = copy / "docs" / "dataset.md"
    page.write_text(
        page.read_text()
        + "\n```bash\ncmf dataset frobnicate traces.jsonl\n"
        + "cmf dataset validate traces.jsonl --no-such-flag\n```\n"
    )
    schema = copy / "schemas" / "customer-model-factory-trace.schema.json"
    schema.write_text(schema.read_text().replace('"trace_id"', '"trace_ident"', 1))
    problems = docs_freeze_problems(copy)
    messages = [str(p) for p in problems]
    assert any("has no command 'frobnicate'" in m for m in messages)
    assert any("has no option --no-such-flag" in m for m in messages)
    assert "schema-fresh" in _checks(problems)
    result = _tool("verify_docs_freeze.py", copy)
    assert result.returncode == 1


def test_an_example_that_no_longer_runs_fails_the_docs_freeze(copy: Path) -> None:
    (copy / "examples").mkdir(exist_ok=True)
    (copy / "examples" / "broken.py").write_text("import no_such_module_anywhere\n")
    problems = docs_freeze_problems(copy)
    assert {"example-runs", "example-documented"} <= _checks(problems)


def test_a_documented_example_that_is_missing_fails_the_docs_freeze(copy: Path) -> None:
    page = copy / "docs" / "manifests.md"
    page.write_text(page.read_text() + "\nRun `python examples/gone.py`.\n")
    assert "example-exists" in _checks(docs_freeze_problems(copy))


def test_the_tools_refuse_a_root_that_is_not_a_repository(tmp_path: Path) -> None:
    assert _tool("verify_docs_freeze.py", tmp_path).returncode == 2
    assert _tool("verify_compliance.py", tmp_path).returncode == 2
