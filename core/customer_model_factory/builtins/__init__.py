"""The core's built-in plugins: registered through the same hooks as any sector pack.

As pytest's default plugins are, built-ins are plugin modules the manager registers before the
installed entry points, so every stage has one path for built-in and pack contributions alike, and
``cmf plugins list --all`` shows them.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Final

__all__ = ["BUILTIN_PLUGIN_MODULES", "plugin_modules"]

BUILTIN_PLUGIN_MODULES: Final[tuple[str, ...]] = (
    "customer_model_factory.builtins.lanes",
    "customer_model_factory.builtins.profiles",
)
"""The modules of the built-in plugins, each with ``PLUGIN_NAME`` and ``CMF_PLUGIN_API``."""


def plugin_modules() -> list[ModuleType]:
    """Import and return the built-in plugin modules."""
    return [importlib.import_module(name) for name in BUILTIN_PLUGIN_MODULES]
