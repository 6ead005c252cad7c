"""The operator switches of the plugin system, read from the environment in this one place.

Comma-separated lists, one variable per concern::

    CMF_PLUGINS=mod_a,path/to/b.py     extra plugin modules (or .py files) to load
    CMF_LOAD_PLUGINS=name,...          allowlist of entry points (set but empty: load none)
    CMF_DISABLE_PLUGINS=name,...       blocklist (entry-point, distribution or module names)
    CMF_TRACE_PLUGINS=1                log every hook call to stderr
    CMF_SECTOR_OWNERS=sector=dist,...  which pack owns a sector two packs claim

The CLI's ``--plugin``, ``--disable-plugin`` and ``--sector-owner`` options add to these; the
result is one frozen :class:`PluginSwitches` the :class:`~customer_model_factory.context.RunContext`
carries. Library code never reads ``os.environ`` itself.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Final

from customer_model_factory.errors import ConfigError

__all__ = [
    "ENV_DISABLE_PLUGINS",
    "ENV_LOAD_PLUGINS",
    "ENV_PLUGINS",
    "ENV_SECTOR_OWNERS",
    "ENV_TRACE_PLUGINS",
    "PluginSwitches",
    "parse_sector_owners",
]

ENV_PLUGINS: Final = "CMF_PLUGINS"
ENV_LOAD_PLUGINS: Final = "CMF_LOAD_PLUGINS"
ENV_DISABLE_PLUGINS: Final = "CMF_DISABLE_PLUGINS"
ENV_TRACE_PLUGINS: Final = "CMF_TRACE_PLUGINS"
ENV_SECTOR_OWNERS: Final = "CMF_SECTOR_OWNERS"


def _split(value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() not in ("", "0", "false", "no", "off")


def parse_sector_owners(items: Iterable[str], *, source: str) -> dict[str, str]:
    """Parse ``SECTOR=DISTRIBUTION`` choices.

    :raises ConfigError: an item without ``=``, or one sector given two owners.
    """
    owners: dict[str, str] = {}
    for item in items:
        sector, sep, owner = item.partition("=")
        sector, owner = sector.strip(), owner.strip()
        if not sep or not sector or not owner:
            raise ConfigError(f"sector owner {item!r} is not SECTOR=DISTRIBUTION", path=source)
        if owners.get(sector, owner) != owner:
            raise ConfigError(f"sector {sector!r} is given two owners", path=source)
        owners[sector] = owner
    return owners


@dataclass(frozen=True)
class PluginSwitches:
    """What the operator asked of the plugin system.

    :param extra_modules: plugin modules or ``.py`` files to load besides the entry points.
    :param allow: when not ``None``, only these entry points (or distributions) load.
    :param disabled: plugins (entry-point, distribution or module names) not to load.
    :param trace: log every hook call to stderr.
    :param sector_owners: sector id → the distribution (or plugin name) chosen to own it.
    :param entry_points: load installed entry points (tests turn this off).
    :param builtins: register the core's built-in plugins.
    """

    extra_modules: tuple[str, ...] = ()
    allow: tuple[str, ...] | None = None
    disabled: tuple[str, ...] = ()
    trace: bool = False
    sector_owners: Mapping[str, str] = field(default_factory=dict)
    entry_points: bool = True
    builtins: bool = True

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> PluginSwitches:
        """Read the ``CMF_*`` switches (default: ``os.environ``)."""
        env = os.environ if environ is None else environ
        return cls(
            extra_modules=_split(env.get(ENV_PLUGINS)),
            allow=_split(env[ENV_LOAD_PLUGINS]) if ENV_LOAD_PLUGINS in env else None,
            disabled=_split(env.get(ENV_DISABLE_PLUGINS)),
            trace=_truthy(env.get(ENV_TRACE_PLUGINS)),
            sector_owners=parse_sector_owners(
                _split(env.get(ENV_SECTOR_OWNERS)), source=ENV_SECTOR_OWNERS
            ),
        )

    def adding(
        self,
        *,
        extra_modules: Iterable[str] = (),
        disabled: Iterable[str] = (),
        sector_owners: Mapping[str, str] | None = None,
    ) -> PluginSwitches:
        """Return these switches with more modules, disabled plugins or sector owners."""
        owners = dict(self.sector_owners)
        for sector, owner in (sector_owners or {}).items():
            if owners.get(sector, owner) != owner:
                raise ConfigError(
                    f"sector {sector!r} is given two owners ({owners[sector]!r} and {owner!r})"
                )
            owners[sector] = owner
        return replace(
            self,
            extra_modules=tuple(dict.fromkeys([*self.extra_modules, *extra_modules])),
            disabled=tuple(dict.fromkeys([*self.disabled, *disabled])),
            sector_owners=owners,
        )
