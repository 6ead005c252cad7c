"""Test helpers for sector-pack authors: a pytest plugin.

Enable it in the pack's ``tests/conftest.py``::

    pytest_plugins = ["customer_model_factory.testing"]

It is deliberately not registered through a ``pytest11`` entry point, so installing the core
changes nobody's test session. It provides:

* the ``plugin_manager`` fixture: a fresh manager with the built-ins only (no installed entry
  points, no ``CMF_*`` switches), so a test sees exactly the plugins it registers;
* :func:`registered`: a context manager registering a plugin for the duration of a block
  (``finally: unregister``);
* :func:`check_plugin_contributions`: calls every hook of one plugin and fails the test, listing
  every problem, unless its contributions all validate.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from customer_model_factory.findings import Finding
from customer_model_factory.plugins import (
    CMFPluginManager,
    PluginSwitches,
    check_plugins,
    create_plugin_manager,
)

__all__ = [
    "check_plugin_contributions",
    "fresh_plugin_manager",
    "plugin_manager",
    "registered",
]


def fresh_plugin_manager() -> CMFPluginManager:
    """Return a new plugin manager holding only the core's built-ins."""
    return create_plugin_manager(PluginSwitches(entry_points=False))


@contextlib.contextmanager
def registered(
    plugin: Any, pm: CMFPluginManager | None = None, *, name: str | None = None
) -> Iterator[CMFPluginManager]:
    """Register ``plugin`` on ``pm`` (default: a fresh manager) for the duration of the block.

    :returns: a context manager yielding the manager the plugin is registered on.
    """
    manager = fresh_plugin_manager() if pm is None else pm
    registered_name = manager.register(plugin, name)
    try:
        yield manager
    finally:
        if registered_name is not None:
            manager.unregister(name=registered_name)


def check_plugin_contributions(plugin: Any, *, name: str | None = None) -> list[Finding]:
    """Register ``plugin`` alone on a fresh manager and validate everything it contributes.

    Sector packs, retrieval schemas (valid JSON Schemas), benchmark packages, lanes, objective
    profiles, proprietary identifiers (hash format) and each sector's evidence mappings are
    collected, and the validation and release-check hooks are called with samples (the pack's
    own benchmark traces); duplicates of built-in ids count as problems.

    :returns: the non-error findings (warnings, info), for further assertions.
    :raises AssertionError: listing every error finding, when one is found.
    """
    with registered(plugin, name=name) as manager:
        report = check_plugins(manager)
    errors = [finding for finding in report.findings if finding.severity == "error"]
    if errors:
        listing = "\n".join(f"  {finding.code}: {finding.message}" for finding in errors)
        raise AssertionError(f"plugin contributions do not validate:\n{listing}")
    return list(report.findings)


@pytest.fixture
def plugin_manager() -> CMFPluginManager:
    """A fresh plugin manager with the built-ins only, discarded after the test."""
    return fresh_plugin_manager()
