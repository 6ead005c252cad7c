"""The public API: ``__all__`` is sorted, complete, documented and tested."""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import pytest

import customer_model_factory

TESTS = Path(__file__).resolve().parents[1]


def _isort_key(name: str) -> tuple[int, str]:
    """ruff's RUF022 order: SCREAMING_CASE, then CamelCase, then everything else."""
    if name.isupper():
        return (0, name)
    if name[:1].isupper():
        return (1, name)
    return (2, name)


def test_all_is_sorted_and_unique():
    names = customer_model_factory.__all__
    assert list(names) == sorted(set(names), key=_isort_key)


def test_every_exported_name_resolves():
    for name in customer_model_factory.__all__:
        assert getattr(customer_model_factory, name) is not None, name
    assert sorted(dir(customer_model_factory)) == sorted(customer_model_factory.__all__)


def test_lazy_table_matches_all():
    lazy = set(customer_model_factory._LAZY)
    assert lazy == set(customer_model_factory.__all__) - {"__version__"}
    for name, module in customer_model_factory._LAZY.items():
        source = importlib.import_module(f"customer_model_factory.{module}")
        assert name in source.__all__, f"{name} is not in {module}.__all__"


def test_every_exported_class_and_function_has_a_docstring():
    for name in customer_model_factory.__all__:
        value = getattr(customer_model_factory, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert inspect.getdoc(value), f"{name} has no docstring"


def test_every_exported_name_is_used_by_a_test():
    corpus = "\n".join(
        path.read_text(encoding="utf-8")
        for path in TESTS.rglob("test_*.py")
        if path.name != Path(__file__).name
    )
    missing = [
        name
        for name in customer_model_factory.__all__
        if not re.search(rf"\b{re.escape(name)}\b", corpus)
    ]
    assert missing == [], f"exported names no test uses: {missing}"


def _only_a_docstring(path: Path) -> bool:
    import ast

    body = ast.parse(path.read_text()).body
    return len(body) == 1 and isinstance(body[0], ast.Expr)


def test_module_all_lists_are_sorted():
    package = Path(customer_model_factory.__file__).parent
    for path in sorted(package.rglob("*.py")):
        module_name = ".".join(path.relative_to(package.parent).with_suffix("").parts)
        module_name = module_name.removesuffix(".__init__")
        if module_name.endswith("__main__"):
            continue
        module = importlib.import_module(module_name)
        exported = getattr(module, "__all__", None)
        if exported is None and path.name == "__init__.py" and _only_a_docstring(path):
            continue  # a package that only groups subpackages defines no names
        assert exported is not None, f"{module_name} has no __all__"
        assert list(exported) == sorted(exported, key=_isort_key), f"{module_name}: unsorted"


def test_unknown_attribute_raises_attribute_error():
    with pytest.raises(AttributeError, match="no_such_name"):
        customer_model_factory.no_such_name  # noqa: B018
