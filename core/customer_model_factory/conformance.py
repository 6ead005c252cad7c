"""Checks that the docs, examples, schemas, CLI, public API and finding codes stay aligned.

Two entry points, each behind a thin script in ``tools/`` and run by CI:

- :func:`docs_freeze_problems` (``tools/verify_docs_freeze.py``): every ``cmf`` command and
  option written in the README and the docs exists; every published schema is described in a
  hand-written docs page and its committed file is fresh; every example is documented and
  starts.
- :func:`compliance_problems` (``tools/verify_compliance.py``): every public symbol (the package
  root's ``__all__``) has a docstring, a test that names it and an API page; every finding code
  used in the source is registered, and every registered code is explained in a hand-written
  docs page.

Both read the tree under ``root`` (source by AST, docs and tests as text), so they judge that
tree, not whatever version happens to be installed; only the CLI's command tree and the schema
catalog come from the imported package.
"""

from __future__ import annotations

import ast
import re
import shlex
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Final

from pydantic import BaseModel, ConfigDict

__all__ = ["ConformanceProblem", "compliance_problems", "docs_freeze_problems"]

_PACKAGE: Final = "customer_model_factory"
_FENCE: Final = re.compile(r"^(```+|~~~+)\s*([\w-]*)", re.MULTILINE)
_INLINE_CMF: Final = re.compile(r"`(cmf [^`\n]+)`")
_SHELL_LANGS: Final = frozenset({"", "bash", "sh", "shell", "console", "text"})
_CODE_LITERAL: Final = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$")


class ConformanceProblem(BaseModel):
    """One way the tree has drifted: which check, where, and what is wrong."""

    model_config = ConfigDict(frozen=True)

    check: str
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message} [{self.check}]"


def _hand_written_pages(root: Path) -> list[Path]:
    docs = root / "docs"
    pages = [p for p in sorted(docs.rglob("*.md")) if "reference" not in p.relative_to(docs).parts]
    readme = root / "README.md"
    return [readme, *pages] if readme.exists() else pages


def _rel(root: Path, path: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


# --- docs freeze -------------------------------------------------------------------------------


def _shell_lines(text: str) -> Iterator[tuple[int, str]]:
    """(line number, logical command line) of every shell-like fenced block and inline span."""
    lines = text.splitlines()
    fence: str | None = None
    keep = False
    pending: list[str] = []
    start = 0
    for number, line in enumerate(lines, start=1):
        match = _FENCE.match(line.strip())
        if fence is None and match:
            fence, keep = match.group(1), match.group(2).lower() in _SHELL_LANGS
            continue
        if fence is not None and line.strip().startswith(fence):
            fence = None
            continue
        if fence is None:
            for span in _INLINE_CMF.finditer(line):
                yield number, span.group(1)
            continue
        if not keep:
            continue
        stripped = line.strip().removeprefix("$ ")
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1])
            continue
        pending.append(stripped)
        yield start, " ".join(pending)
        pending = []


def _command_tree() -> object:
    import typer  # noqa: PLC0415

    from customer_model_factory.cli._app import app  # noqa: PLC0415

    return typer.main.get_command(app)


def _options(command: object) -> dict[str, object]:
    """Option string → its click parameter, ``--help``/``-h`` included."""
    found: dict[str, object] = {"--help": None, "-h": None}
    for param in getattr(command, "params", ()):
        for name in (*getattr(param, "opts", ()), *getattr(param, "secondary_opts", ())):
            if name.startswith("-"):
                found[name] = param
    return found


def _takes_value(param: object) -> bool:
    return (
        param is not None
        and not getattr(param, "is_flag", True)
        and not getattr(param, "count", False)
    )


def _check_command(line: str, tree: object) -> str | None:
    """Why a documented ``cmf ...`` line names no real command or option, or ``None``."""
    code = line.split(" #", 1)[0]
    try:
        tokens = shlex.split(code, comments=False)
    except ValueError:
        tokens = code.split()
    if not tokens or tokens[0] != "cmf":
        return None
    root_options = _options(tree)
    command = tree
    path = ["cmf"]
    skip = False
    for raw in tokens[1:]:
        if skip:
            skip = False
            continue
        if raw in {"|", "&&", ";", "||"} or raw.startswith((">", "2>", "|")):
            break
        token = raw.strip("[](){}")  # a synopsis: [--option VALUE] ...
        if not token or token == "..." or token.startswith("<") or token.isupper():
            continue
        known = {**root_options, **_options(command)}
        if token.startswith("-") and token != "-":
            name, has_value = token.split("=", 1)[0], "=" in token
            if name not in known:
                return f"`{' '.join(path)}` has no option {name}"
            skip = not has_value and _takes_value(known[name])
            continue
        subcommands = getattr(command, "commands", None)
        if subcommands is None:
            continue  # an argument of a leaf command
        if token not in subcommands:
            return f"`{' '.join(path)}` has no command {token!r}"
        command = subcommands[token]
        path.append(token)
    return None


def _documented_commands(root: Path, tree: object) -> list[ConformanceProblem]:
    problems: list[ConformanceProblem] = []
    for page in _hand_written_pages(root):
        for number, line in _shell_lines(page.read_text(encoding="utf-8")):
            why = _check_command(line.strip(), tree)
            if why:
                problems.append(
                    ConformanceProblem(
                        check="documented-command",
                        where=f"{_rel(root, page)}:{number}",
                        message=why,
                    )
                )
    return problems


def _schema_docs(root: Path) -> list[ConformanceProblem]:
    from customer_model_factory.catalog import SCHEMA_MODELS, check_schemas  # noqa: PLC0415

    problems = [
        ConformanceProblem(check="schema-fresh", where="schemas", message=message)
        for message in check_schemas(root / "schemas")
    ]
    text = "\n".join(
        page.read_text(encoding="utf-8") for page in _hand_written_pages(root) if page.exists()
    )
    for name in SCHEMA_MODELS:
        if f"`{name}`" not in text and f"customer-model-factory-{name}.schema.json" not in text:
            problems.append(
                ConformanceProblem(
                    check="schema-documented",
                    where=f"schemas/customer-model-factory-{name}.schema.json",
                    message=f"schema {name!r} is described by no hand-written docs page",
                )
            )
    return problems


def _examples(root: Path) -> list[ConformanceProblem]:
    problems: list[ConformanceProblem] = []
    directory = root / "examples"
    text = "\n".join(page.read_text(encoding="utf-8") for page in _hand_written_pages(root))
    examples = sorted(directory.glob("*.py")) if directory.is_dir() else []
    for example in examples:
        where = _rel(root, example)
        if f"examples/{example.name}" not in text:
            problems.append(
                ConformanceProblem(
                    check="example-documented", where=where, message="no docs page shows it"
                )
            )
        run = subprocess.run(  # the repository's own example, run with --help
            [sys.executable, str(example), "--help"],
            capture_output=True,
            cwd=root,
            timeout=120,
            check=False,
        )
        if run.returncode != 0:
            last = (run.stderr.decode(errors="replace").strip().splitlines() or ["no output"])[-1]
            problems.append(
                ConformanceProblem(
                    check="example-runs",
                    where=where,
                    message=f"`python {where} --help` exits {run.returncode}: {last[:160]}",
                )
            )
    for page in _hand_written_pages(root):
        for match in re.finditer(r"examples/([\w-]+\.py)", page.read_text(encoding="utf-8")):
            if not (directory / match.group(1)).exists():
                problems.append(
                    ConformanceProblem(
                        check="example-exists",
                        where=_rel(root, page),
                        message=f"documents examples/{match.group(1)}, which does not exist",
                    )
                )
    return problems


def docs_freeze_problems(root: str | Path) -> list[ConformanceProblem]:
    """Every way the README, docs, examples, schemas and CLI of ``root`` have drifted apart."""
    base = Path(root)
    tree = _command_tree()
    return [*_documented_commands(base, tree), *_schema_docs(base), *_examples(base)]


# --- compliance --------------------------------------------------------------------------------


def _module_file(root: Path, module: str) -> Path | None:
    parts = module.split(".")
    base = root / "core" / Path(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _definition(root: Path, module: str, name: str, depth: int = 0) -> tuple[str, bool] | None:
    """``(module, has_docstring)`` of where ``name`` is defined, following re-exports."""
    path = _module_file(root, module)
    if path is None or depth > 6:
        return None
    tree = _parse(path)
    body = list(tree.body)
    for index, node in enumerate(body):
        if (
            isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and node.name == name
        ):
            return module, ast.get_docstring(node) is not None
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, ast.AnnAssign):
            targets = [node.target]
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            following = body[index + 1] if index + 1 < len(body) else None
            documented = (
                isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)
            )
            return module, documented
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                if (alias.asname or alias.name) == name and node.module.startswith(_PACKAGE):
                    found = _definition(root, node.module, alias.name, depth + 1)
                    if found:
                        return found
    return None


def _public_names(root: Path) -> list[str]:
    init = _module_file(root, _PACKAGE)
    if init is None:
        return []
    for node in _parse(init).body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets)
            and isinstance(node.value, ast.List | ast.Tuple)
        ):
            return [
                elt.value
                for elt in node.value.elts
                if isinstance(elt, ast.Constant) and isinstance(elt.value, str)
            ]
    return []


def _words(paths: Iterable[Path]) -> set[str]:
    words: set[str] = set()
    for path in paths:
        words.update(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", path.read_text(encoding="utf-8")))
    return words


def _api_modules(root: Path) -> set[str]:
    modules: set[str] = set()
    for page in sorted((root / "docs").rglob("*.md")):
        modules.update(re.findall(r"^::: *([\w.]+)", page.read_text(encoding="utf-8"), re.M))
    return modules


def _public_api(root: Path) -> list[ConformanceProblem]:
    problems: list[ConformanceProblem] = []
    names = _public_names(root)
    if not names:
        return [
            ConformanceProblem(
                check="public-api", where="core", message=f"no __all__ found in {_PACKAGE}"
            )
        ]
    tests = _words(sorted((root / "tests").rglob("*.py")))
    api_modules = _api_modules(root)
    for name in names:
        if name == "__version__":
            continue
        found = _definition(root, _PACKAGE, name)
        where = f"{_PACKAGE}.{name}"
        if found is None:
            problems.append(
                ConformanceProblem(
                    check="public-docstring", where=where, message="definition not found"
                )
            )
            continue
        module, documented = found
        if not documented:
            problems.append(
                ConformanceProblem(
                    check="public-docstring", where=f"{module}.{name}", message="has no docstring"
                )
            )
        if name not in tests:
            problems.append(
                ConformanceProblem(check="public-tested", where=where, message="no test names it")
            )
        if _PACKAGE not in api_modules and module not in api_modules:
            problems.append(
                ConformanceProblem(
                    check="public-api-page", where=where, message="no API page renders it"
                )
            )
    return problems


def _registered_codes(root: Path) -> set[str]:
    path = _module_file(root, f"{_PACKAGE}.findings")
    codes: set[str] = set()
    if path is None:
        return codes
    for node in ast.walk(_parse(path)):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "_register"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            codes.add(str(node.args[0].value))
    return codes


def _stage_prefixes(root: Path) -> tuple[str, ...]:
    path = _module_file(root, f"{_PACKAGE}.findings")
    if path is None:
        return ()
    for node in _parse(path).body:
        target = node.target if isinstance(node, ast.AnnAssign) else None
        if isinstance(node, ast.Assign):
            target = node.targets[0]
        if isinstance(target, ast.Name) and target.id == "STAGE_PREFIXES" and node.value:
            value = node.value
            if isinstance(value, ast.Tuple):
                return tuple(
                    elt.value
                    for elt in value.elts
                    if isinstance(elt, ast.Constant) and isinstance(elt.value, str)
                )
    return ()


def _used_codes(root: Path, prefixes: tuple[str, ...]) -> dict[str, str]:
    """Code-shaped string literals of the core's source → where one is first used."""
    used: dict[str, str] = {}
    package = root / "core" / _PACKAGE
    trees = {path: _parse(path) for path in sorted(package.rglob("*.py"))}
    # Names of constants and classes look like codes too (RUNTIME_MODES, "PLUGIN_NAME" in an
    # __all__): a literal naming something the package defines is not a finding code.
    defined = {
        node.id
        for tree in trees.values()
        for node in ast.walk(tree)
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)
    }
    for path, tree in trees.items():
        if path.name == "findings.py" and path.parent == package:
            continue
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and _CODE_LITERAL.match(node.value)
                and node.value.startswith(prefixes)
                and node.value not in prefixes
                and node.value not in defined
            ):
                used.setdefault(node.value, f"{_rel(root, path)}:{node.lineno}")
    return used


def _finding_codes(root: Path) -> list[ConformanceProblem]:
    registered = _registered_codes(root)
    prefixes = _stage_prefixes(root)
    problems = [
        ConformanceProblem(
            check="code-registered",
            where=where,
            message=f"finding code {code} is used but not registered in findings.py",
        )
        for code, where in sorted(_used_codes(root, prefixes).items())
        if code not in registered
    ]
    docs = "\n".join(page.read_text(encoding="utf-8") for page in _hand_written_pages(root))
    problems.extend(
        ConformanceProblem(
            check="code-documented",
            where="core/customer_model_factory/findings.py",
            message=f"finding code {code} is explained in no hand-written docs page",
        )
        for code in sorted(registered)
        if code not in docs
    )
    return problems


def compliance_problems(root: str | Path) -> list[ConformanceProblem]:
    """Every public symbol without docstring, test or API page, and every finding code that is
    used but unregistered or registered but undocumented, in the tree under ``root``."""
    base = Path(root)
    return [*_public_api(base), *_finding_codes(base)]
