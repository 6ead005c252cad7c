"""The run context: everything a library entry point needs from its caller, passed explicitly.

The CLI builds one :class:`RunContext` per invocation (from its options and the operator's
``CMF_*`` switches, read once by :meth:`RunContext.from_environ`) and passes it to the one library
call each command makes. Library code never reads state smuggled through ``os.environ`` and never
falls back to a process-wide plugin manager: a Python caller builds its own context::

    from customer_model_factory.context import RunContext

    context = RunContext.from_environ()            # or RunContext(switches=PluginSwitches(...))
    report = validate_customer_trace_dataset("traces.jsonl", workspace, context=context)
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal

from customer_model_factory.plugins.switches import PluginSwitches

if TYPE_CHECKING:
    from customer_model_factory.plugins.manager import CMFPluginManager

__all__ = ["DEFAULT_HOME", "ENV_HOME", "OutputSettings", "RunContext", "utc_now"]

DEFAULT_HOME: Final = Path(".cmf")
"""The factory home when neither ``--home`` nor ``CMF_HOME`` names one."""
ENV_HOME: Final = "CMF_HOME"


def utc_now() -> dt.datetime:
    """The current time in UTC (the default clock)."""
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class OutputSettings:
    """How results are shown: report format, progress display, tracebacks."""

    format: Literal["text", "json"] = "text"
    progress: bool = False
    debug: bool = False


@dataclass
class RunContext:
    """One run's explicit context: plugins, factory home, clock and output preferences.

    :param switches: the operator's plugin switches; the plugin manager is built from them on
        first use (so commands that need no plugin never import one).
    :param home: the factory home (run ledger and artefact store).
    :param clock: returns the current time as an aware datetime; builders take times from here,
        never from ``now()`` themselves, so tests and re-runs are deterministic.
    :param output: how results are rendered.
    """

    switches: PluginSwitches = field(default_factory=PluginSwitches)
    home: Path = DEFAULT_HOME
    clock: Callable[[], dt.datetime] = utc_now
    output: OutputSettings = field(default_factory=OutputSettings)
    _plugin_manager: CMFPluginManager | None = field(default=None, repr=False)

    @classmethod
    def from_environ(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        extra_plugins: tuple[str, ...] = (),
        disabled_plugins: tuple[str, ...] = (),
        sector_owners: Mapping[str, str] | None = None,
        home: Path | None = None,
        output: OutputSettings | None = None,
    ) -> RunContext:
        """Build a context from the operator's environment plus explicit additions.

        The only place outside :mod:`.plugins.switches` that reads the environment
        (``CMF_HOME``).
        """
        env = os.environ if environ is None else environ
        switches = PluginSwitches.from_environ(env).adding(
            extra_modules=extra_plugins, disabled=disabled_plugins, sector_owners=sector_owners
        )
        chosen_home = home if home is not None else Path(env.get(ENV_HOME) or DEFAULT_HOME)
        return cls(switches=switches, home=chosen_home, output=output or OutputSettings())

    @classmethod
    def for_plugin_manager(cls, pm: CMFPluginManager, **kwargs: object) -> RunContext:
        """A context around an existing plugin manager (tests, embedding applications)."""
        context = cls(switches=pm.switches, **kwargs)  # type: ignore[arg-type]
        context._plugin_manager = pm
        return context

    @property
    def plugin_manager(self) -> CMFPluginManager:
        """The run's plugin manager, built from :attr:`switches` on first use."""
        if self._plugin_manager is None:
            from customer_model_factory.plugins.manager import create_plugin_manager  # noqa: PLC0415

            self._plugin_manager = create_plugin_manager(self.switches)
        return self._plugin_manager

    def now(self) -> str:
        """The clock's time as an RFC 3339 UTC string with second precision (``...Z``)."""
        moment = self.clock().astimezone(dt.UTC).replace(microsecond=0)
        return moment.isoformat().replace("+00:00", "Z")
