"""``cmf plugins new``: names, where a pack may be written, and what the scaffold contains.

The slow end-to-end test (install the scaffolded pack, run its own tests) is
``tests/e2e/test_pack_scaffold.py``; here the pack is loaded in-process with ``--plugin``.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from customer_model_factory.cli import app
from customer_model_factory.errors import InputError
from customer_model_factory.plugin_api import CMF_PLUGIN_API, HASHED_IDENTIFIER_RE
from customer_model_factory.plugins.scaffold import (
    benchmark_traces,
    pack_names,
    scaffold_pack,
    template_files,
)

_REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory outside any git work tree (tmp_path is not under the repository)."""
    assert not str(tmp_path.resolve()).startswith(str(_REPO))
    return tmp_path


@pytest.fixture
def on_path() -> Iterator[list[str]]:
    """Put scaffolded ``src`` directories on sys.path; forget their modules afterwards."""
    added: list[str] = []
    before = set(sys.modules)
    yield added
    for entry in added:
        sys.path.remove(entry)
    for name in set(sys.modules) - before:
        del sys.modules[name]


# ---- names ----


def test_names_are_derived_from_name_and_sector() -> None:
    names = pack_names("acme-health-pack", "acme-health")
    assert (names.module, names.code_infix, names.class_prefix) == (
        "acme_health_pack",
        "ACME_HEALTH",
        "AcmeHealth",
    )


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("..", "NAME '..' is not valid"),
        ("../evil", "NAME '../evil' is not valid"),
        ("acme/pack", "is not valid"),
        ("Acme-Pack", "did you mean 'acme-pack'?"),
        ("acme_pack", "did you mean 'acme-pack'?"),
        ("acme.pack", "did you mean 'acme-pack'?"),
        ("acme--pack", "is not valid"),
        ("-acme", "is not valid"),
        ("acme-", "is not valid"),
        ("1acme", "starting with a letter"),
        ("", "is not valid"),
        ("acme\npack", "'acme\\npack'"),
        ("a" * 51, "at most 50"),
        ("customer-model-factory", "the core's own name"),
        ("json", "already importable"),
        ("pytest", "already importable"),
        ("import", "Python cannot import"),
    ],
)
def test_bad_names_are_refused_in_one_line(name: str, message: str) -> None:
    with pytest.raises(InputError) as raised:
        pack_names(name, "acme-health")
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(
    ("sector", "message"),
    [
        ("acme health", "did you mean 'acme-health'?"),
        ("Acme-Health", "did you mean 'acme-health'?"),
        ("acme.health", "did you mean 'acme-health'?"),
        ("../x", "ID '../x' is not valid"),
        ("acme_health", "did you mean 'acme-health'?"),
        ("", "ID '' is not valid"),
        ("a" * 41, "at most 40"),
    ],
)
def test_bad_sector_ids_are_refused(sector: str, message: str) -> None:
    with pytest.raises(InputError, match=re.escape(message)):
        pack_names("acme-pack", sector)


# ---- where a pack may be written ----


def test_a_target_inside_the_core_work_tree_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    inside = _REPO / "tests" / "never-written"
    with pytest.raises(InputError, match="inside the customer-model-factory work tree"):
        scaffold_pack("acme-pack", "acme", inside)
    monkeypatch.chdir(_REPO)
    with pytest.raises(InputError, match="--force-inside"):
        scaffold_pack("acme-pack", "acme")
    assert not inside.exists()
    assert not (_REPO / "acme-pack").exists()


def test_a_symlink_into_the_work_tree_is_refused(outside: Path) -> None:
    link = outside / "link"
    link.symlink_to(_REPO / "tests")
    with pytest.raises(InputError, match="inside the customer-model-factory work tree"):
        scaffold_pack("acme-pack", "acme", link)
    (outside / "acme-link").symlink_to(outside / "elsewhere", target_is_directory=True)
    with pytest.raises(InputError, match="symbolic link"):
        scaffold_pack("acme-link", "acme", outside)


def test_force_inside_writes_inside_a_core_tree(outside: Path) -> None:
    fake_core = outside / "clone"
    (fake_core / ".git").mkdir(parents=True)
    (fake_core / "pyproject.toml").write_text('[project]\nname = "customer-model-factory"\n')
    with pytest.raises(InputError, match="work tree"):
        scaffold_pack("acme-pack", "acme", fake_core / "packs")
    result = scaffold_pack("acme-pack", "acme", fake_core / "packs", force_inside=True)
    assert (result.root / "pyproject.toml").is_file()


def test_another_git_repository_is_fine(outside: Path) -> None:
    (outside / "private" / ".git").mkdir(parents=True)
    result = scaffold_pack("acme-pack", "acme", outside / "private")
    assert result.root == outside / "private" / "acme-pack"


def test_an_existing_non_empty_target_is_never_touched(outside: Path) -> None:
    target = outside / "acme-pack"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="already exists and is not empty; nothing was written"):
        scaffold_pack("acme-pack", "acme", outside)
    assert [path.name for path in target.iterdir()] == ["notes.txt"]
    assert sorted(path.name for path in outside.iterdir()) == ["acme-pack"]


def test_scaffolding_twice_refuses_the_second_time_and_keeps_the_first(outside: Path) -> None:
    first = scaffold_pack("acme-pack", "acme", outside)
    before = {path: path.read_bytes() for path in first.root.rglob("*") if path.is_file()}
    with pytest.raises(InputError, match="already exists"):
        scaffold_pack("acme-pack", "acme", outside)
    after = {path: path.read_bytes() for path in first.root.rglob("*") if path.is_file()}
    assert after == before
    assert sorted(path.name for path in outside.iterdir()) == ["acme-pack"]


def test_an_empty_target_directory_is_filled(outside: Path) -> None:
    (outside / "acme-pack").mkdir()
    result = scaffold_pack("acme-pack", "acme", outside)
    assert (result.root / "README.md").is_file()


def test_an_output_dir_that_is_a_file_is_refused(outside: Path) -> None:
    (outside / "file").write_text("x")
    with pytest.raises(InputError, match="not a directory"):
        scaffold_pack("acme-pack", "acme", outside / "file")


def test_a_missing_output_dir_is_created(outside: Path) -> None:
    result = scaffold_pack("acme-pack", "acme", outside / "a" / "b")
    assert result.root.is_dir()


# ---- what the pack holds ----


def test_the_wheel_ships_every_template() -> None:
    wheel = pytest.importorskip("hatchling.builders.wheel", reason="the dev extra brings hatchling")
    builder = wheel.WheelBuilder(str(_REPO))
    shipped = {item.distribution_path for item in builder.recurse_included_files()}
    templates = {
        f"customer_model_factory/templates/pack/{relative}" for relative, _ in template_files()
    }
    assert templates <= shipped
    assert len(templates) >= 12


def test_every_template_placeholder_is_known_and_every_file_is_rendered(outside: Path) -> None:
    result = scaffold_pack("acme-health-pack", "acme-health", outside)
    written = {
        path.relative_to(result.root).as_posix()
        for path in result.root.rglob("*")
        if path.is_file()
    }
    assert written == set(result.files)
    assert len(template_files()) + 1 == len(written)  # + the benchmark traces
    for relative in written:
        text = (result.root / relative).read_text(encoding="utf-8")
        assert "{{" not in text and "}}" not in text, relative
        assert "__module__" not in relative
    assert ".gitignore" in written
    for relative in written:
        if relative.endswith(".py"):
            ast.parse((result.root / relative).read_text(encoding="utf-8"), relative)


@pytest.mark.parametrize(
    ("name", "sector"),
    [("acme-health-pack", "acme-health"), ("p" * 50, "s" * 40), ("a-b", "c")],
)
def test_the_pack_is_lint_clean_under_its_own_ruff_settings(
    outside: Path, name: str, sector: str
) -> None:
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (the dev extra brings it)")
    root = scaffold_pack(name, sector, outside).root
    for args in (["check", "--no-cache", "."], ["format", "--no-cache", "--check", "."]):
        completed = subprocess.run(
            [ruff, *args], cwd=root, capture_output=True, text=True, check=False
        )
        assert completed.returncode == 0, completed.stdout + completed.stderr


def test_the_pyproject_is_standalone(outside: Path) -> None:
    from customer_model_factory import __version__

    major, minor = (int(part) for part in __version__.split(".")[:2])
    result = scaffold_pack("acme-health-pack", "acme-health", outside)
    pyproject = tomllib.loads((result.root / "pyproject.toml").read_text(encoding="utf-8"))
    project = pyproject["project"]
    assert project["name"] == "acme-health-pack"
    assert project["license"] == "LicenseRef-Proprietary"
    assert (result.root / "LICENSE").read_text().startswith("PROPRIETARY")
    assert f"customer-model-factory>={major}.{minor},<{major + 1}" in project["dependencies"]
    assert project["optional-dependencies"]["test"] == ["customer-model-factory[testing]"]
    assert project["entry-points"]["customer_model_factory"] == {
        "acme-health": "acme_health_pack.plugin"
    }
    assert pyproject["build-system"]["build-backend"] == "hatchling.build"
    text = (result.root / "pyproject.toml").read_text(encoding="utf-8")
    assert "extend" not in text and ".." not in text


def test_the_plugin_targets_this_plugin_api(outside: Path) -> None:
    result = scaffold_pack("acme-health-pack", "acme-health", outside)
    source = (result.root / "src" / "acme_health_pack" / "plugin.py").read_text()
    assert f'CMF_PLUGIN_API: Final = "{CMF_PLUGIN_API}"' in source


def test_identifiers_are_salted_hashes_with_a_fresh_salt_per_pack(outside: Path) -> None:
    first = scaffold_pack("acme-one", "acme", outside)
    second = scaffold_pack("acme-two", "acme", outside)

    def published(root: Path, module: str) -> tuple[str, str]:
        text = (root / "src" / module / "identifiers.py").read_text()
        salt = re.search(r'IDENTIFIER_SALT: Final = "([^"]+)"', text)
        digest = re.search(r'"(sha256:[0-9a-f]{64})"', text)
        assert salt and digest
        return salt.group(1), digest.group(1)

    salt_one, hash_one = published(first.root, "acme_one")
    salt_two, hash_two = published(second.root, "acme_two")
    assert salt_one != salt_two and hash_one != hash_two
    assert HASHED_IDENTIFIER_RE.match(hash_one)


def test_the_benchmark_traces_conform_and_hold_both_classes() -> None:
    traces = benchmark_traces(pack_names("acme-health-pack", "acme-health"))
    assert len({trace["trace_id"] for trace in traces}) == len(traces) >= 20
    assert {trace["label"] for trace in traces} == {"safe", "unsafe"}
    assert all(trace["vertical"] == "acme-health" for trace in traces)
    for trace in traces:
        unsafe = trace["label"] == "unsafe"
        assert (trace["expected_decision"] != "approve") == unsafe


# ---- the CLI, with the pack loaded in-process (--plugin) ----


def test_cli_scaffolds_a_pack_whose_rule_blocks_a_bad_row(
    outside: Path, on_path: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("CMF_PLUGINS", "CMF_LOAD_PLUGINS", "CMF_DISABLE_PLUGINS"):
        monkeypatch.delenv(name, raising=False)
    runner = CliRunner()
    created = runner.invoke(
        app,
        ["plugins", "new", "cli-made-pack", "--sector", "cli-made", "--output-dir", str(outside)],
    )
    assert created.exit_code == 0, created.output
    root = outside / "cli-made-pack"
    assert f"in {root}" in created.output
    src = str(root / "src")
    sys.path.insert(0, src)
    on_path.append(src)
    plugin = ["--plugin", "cli_made_pack.plugin"]

    listed = runner.invoke(app, [*plugin, "plugins", "list", "--format", "json"])
    assert listed.exit_code == 0, listed.output
    (info,) = [item for item in json.loads(listed.output) if item["name"] == "cli_made_pack.plugin"]
    assert info["status"] == "ok"
    assert info["contributions"]["sectors"] == ["cli-made"]

    data = root / "src" / "cli_made_pack" / "data"
    clean = runner.invoke(
        app,
        [
            *plugin,
            "dataset",
            "validate",
            str(data / "benchmark_traces.jsonl"),
            "-w",
            str(data / "workspace.toml"),
        ],
    )
    assert clean.exit_code == 0, clean.output

    rows = [json.loads(line) for line in (data / "benchmark_traces.jsonl").read_text().splitlines()]
    rows[0]["metadata"]["topic"] = "advice"
    rows[0]["metadata"]["requires_citation"] = False
    bad = outside / "bad.jsonl"
    bad.write_text("".join(json.dumps(row) + "\n" for row in rows))
    blocked = runner.invoke(
        app, [*plugin, "dataset", "validate", str(bad), "-w", str(data / "workspace.toml")]
    )
    assert blocked.exit_code == 1, blocked.output
    assert "bad.jsonl:1: error SECTOR_CLI_MADE_CITATION_REQUIRED" in blocked.output

    checked = runner.invoke(app, [*plugin, "plugins", "check"])
    assert checked.exit_code == 0, checked.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["Bad_Name", "--sector", "acme"], "did you mean 'bad-name'?"),
        (["acme-pack", "--sector", "acme health"], "did you mean 'acme-health'?"),
        (["..", "--sector", "acme"], "NAME '..' is not valid"),
    ],
)
def test_cli_refuses_bad_input_with_exit_2_and_one_line(
    outside: Path, args: list[str], message: str
) -> None:
    result = CliRunner().invoke(app, ["plugins", "new", *args, "--output-dir", str(outside)])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
    assert list(outside.iterdir()) == []


def test_cli_refuses_the_repository_as_target(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(_REPO)
    result = CliRunner().invoke(app, ["plugins", "new", "acme-pack", "--sector", "acme"])
    assert result.exit_code == 2
    assert "inside the customer-model-factory work tree" in result.output
    assert not (_REPO / "acme-pack").exists()


def test_a_sector_an_installed_plugin_provides_is_refused(outside: Path) -> None:
    with pytest.raises(InputError, match="already provided by an installed plugin"):
        scaffold_pack("acme-pack", "acme", outside, taken_sectors={"acme"})
    assert list(outside.iterdir()) == []


def test_cli_refuses_a_sector_a_loaded_plugin_provides(outside: Path, tmp_path: Path) -> None:
    loaded = tmp_path / "loaded_sector_plugin.py"
    loaded.write_text(
        "from customer_model_factory import SectorPack, hookimpl\n"
        'CMF_PLUGIN_API = "1.1"\n'
        "@hookimpl\n"
        "def cmf_sector_packs():\n"
        '    return [SectorPack(id="taken", version="1", title="t", jurisdiction="EU")]\n'
    )
    result = CliRunner().invoke(
        app,
        [
            "--plugin",
            str(loaded),
            "plugins",
            "new",
            "fresh-pack",
            "--sector",
            "taken",
            "--output-dir",
            str(outside / "packs"),
        ],
    )
    assert result.exit_code == 2, result.output
    assert "'taken' is already provided by an installed plugin" in result.output
    assert not (outside / "packs").exists()


def test_an_unwritable_output_dir_is_bad_input_not_a_crash(
    outside: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> str:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("tempfile.mkdtemp", refuse)
    with pytest.raises(InputError, match="cannot write the pack: Permission denied"):
        scaffold_pack("acme-pack", "acme", outside)
    result = CliRunner().invoke(
        app, ["plugins", "new", "acme-pack", "--sector", "acme", "--output-dir", str(outside)]
    )
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_no_staging_directory_is_left_behind(outside: Path) -> None:
    scaffold_pack("acme-pack", "acme", outside)
    with pytest.raises(InputError):
        scaffold_pack("acme-pack", "acme", outside)
    assert [entry for entry in os.listdir(outside) if entry.startswith(".")] == []
