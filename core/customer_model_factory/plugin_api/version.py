"""The plugin API version and the rule that decides whether a pack loads.

Versions are ``MAJOR.MINOR``. A pack declares the version it targets as ``CMF_PLUGIN_API =
"1.0"`` in its entry-point module. A pack targeting ``X.x`` loads on a core providing ``X.y``
when ``y >= x``: minor versions only add (new hooks, new optional arguments, new contract fields).
A different major version, or a newer minor one, is refused with a message that names the core
releases that provide what the pack needs.

The integer form of API 1.0 (``CMF_PLUGIN_API = 1``) still loads, with a ``PLUGIN_DEPRECATED``
warning; it will stop loading with API 2.0.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = [
    "API_HISTORY",
    "CMF_PLUGIN_API",
    "ApiVersion",
    "api_compatibility_problem",
    "parse_api_version",
]

CMF_PLUGIN_API: Final = "1.2"
"""The plugin API this release of the core provides."""

API_HISTORY: Final[dict[str, str]] = {
    "1.0": "0.1.0",
    "1.1": "0.2.0",
    "1.2": "0.3.0",
}
"""Plugin API version → the first core release that provides it."""

ApiVersion = tuple[int, int]
_VERSION_RE: Final = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)$")


def parse_api_version(value: object) -> tuple[ApiVersion | None, bool]:
    """Parse a declared ``CMF_PLUGIN_API``.

    :returns: ``((major, minor), deprecated_form)``, or ``(None, False)`` when it is not a
        version at all. ``deprecated_form`` is true for the integer form of API 1.0.
    """
    if isinstance(value, bool):
        return None, False
    if isinstance(value, int):
        return ((value, 0), True) if value == 1 else (None, False)
    if isinstance(value, str):
        match = _VERSION_RE.match(value.strip())
        if match:
            return (int(match.group(1)), int(match.group(2))), False
    return None, False


def _provided() -> ApiVersion:
    version, _ = parse_api_version(CMF_PLUGIN_API)
    assert version is not None
    return version


def _releases_for_major(major: int) -> str | None:
    firsts = [release for api, release in API_HISTORY.items() if api.startswith(f"{major}.")]
    return firsts[0] if firsts else None


def api_compatibility_problem(declared: object, *, core_version: str) -> str | None:
    """Return why a pack declaring ``declared`` cannot load on this core, or ``None``.

    The message is actionable: it says which core release supports the pack.
    """
    provided = _provided()
    here = f"this core (customer-model-factory {core_version}) provides plugin API {CMF_PLUGIN_API}"
    if declared is None:
        return (
            f'declares no CMF_PLUGIN_API; {here}: add `CMF_PLUGIN_API = "{CMF_PLUGIN_API}"` to '
            "the entry-point module"
        )
    version, _ = parse_api_version(declared)
    if version is None:
        return (
            f"declares CMF_PLUGIN_API {declared!r}, which is not MAJOR.MINOR; {here}: declare "
            f'"{CMF_PLUGIN_API}"'
        )
    major, minor = version
    text = f"{major}.{minor}"
    if major != provided[0]:
        first = _releases_for_major(major)
        where = (
            f"customer-model-factory {first} and later releases of API {major}.x support it"
            if first is not None
            else f"no released core provides API {major}.x yet"
        )
        return (
            f"targets plugin API {text} (major {major}); {here}: {where}; or install a release of "
            f"the pack that targets API {provided[0]}.x"
        )
    if minor > provided[1]:
        first = API_HISTORY.get(text)
        where = (
            f"upgrade to customer-model-factory {first} or later"
            if first is not None
            else f"upgrade to a core release providing API {text} or later"
        )
        return f"targets plugin API {text}, newer than {CMF_PLUGIN_API}; {here}: {where}"
    return None
