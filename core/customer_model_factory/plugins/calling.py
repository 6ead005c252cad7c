"""Calling hooks one implementation at a time, so a plugin that raises cannot hide the others.

pluggy stops at the first implementation that raises (and declined to change that, pluggy#419),
so every ``cmf_`` hook is called through :func:`call_each`, which mirrors pluggy's own call loop
(LIFO order) but catches ``Exception`` per implementation and turns it into a
``PLUGIN_HOOK_FAILED`` error finding naming the plugin and the hook. ``owner`` restricts a call to
one plugin (sector dispatch calls only the pack that owns the sector).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any, Final

import pluggy

from customer_model_factory.findings import Finding

__all__ = ["call_each", "describe_error", "hook_failed", "invalid_contribution", "one_line"]

_MAX_MESSAGE: Final = 300


def one_line(text: str) -> str:
    """Fold ``text`` onto one line of at most 300 characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= _MAX_MESSAGE else flat[: _MAX_MESSAGE - 3] + "..."


def describe_error(error: BaseException) -> str:
    """``Type: message`` on one line."""
    message = one_line(str(error))
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def hook_failed(plugin: str, hook: str, error: BaseException, **where: Any) -> Finding:
    """The ``PLUGIN_HOOK_FAILED`` finding of an implementation that raised."""
    return Finding(
        code="PLUGIN_HOOK_FAILED",
        severity="error",
        message=f"plugin {plugin!r} hook {hook} raised {describe_error(error)}",
        **where,
    )


def invalid_contribution(plugin: str, hook: str, problem: str) -> Finding:
    """The ``PLUGIN_INVALID_CONTRIBUTION`` finding of a result that does not validate."""
    return Finding(
        code="PLUGIN_INVALID_CONTRIBUTION",
        severity="error",
        message=f"plugin {plugin!r} hook {hook}: {one_line(problem)}",
    )


def _trace(line: str) -> None:
    sys.stderr.write(f"cmf-plugins: {line}\n")


def call_each(
    caller: pluggy.HookCaller,
    kwargs: Mapping[str, Any],
    *,
    trace: bool = False,
    owner: str | None = None,
) -> tuple[list[tuple[str, Any]], list[Finding]]:
    """Call each implementation of ``caller`` in pluggy's order (LIFO), isolating failures.

    :param kwargs: the hook's arguments by name; each implementation gets the subset it takes.
    :param trace: log each call to stderr.
    :param owner: call only the implementation of this plugin.
    :returns: ``([(plugin name, non-None result), ...], [PLUGIN_HOOK_FAILED findings])``.
    """
    results: list[tuple[str, Any]] = []
    findings: list[Finding] = []
    for impl in reversed(caller.get_hookimpls()):
        if impl.wrapper or impl.hookwrapper:
            continue  # rejected at registration; kept out of isolated calls regardless
        if owner is not None and impl.plugin_name != owner:
            continue
        args = [kwargs[name] for name in impl.argnames]
        if trace:
            _trace(f"call {caller.name} on {impl.plugin_name} ({', '.join(impl.argnames)})")
        try:
            value = impl.function(*args)
        except Exception as error:
            if trace:
                _trace(f"  {caller.name} on {impl.plugin_name} raised {describe_error(error)}")
            findings.append(hook_failed(impl.plugin_name, caller.name, error))
            continue
        if trace:
            _trace(f"  {caller.name} on {impl.plugin_name} returned {type(value).__name__}")
        if value is not None:
            results.append((impl.plugin_name, value))
    return results, findings
