"""Describe every hook a plugin can implement, read from the hook specs at run time.

``cmf plugins hooks`` and the docs show what :func:`describe_hooks` returns: for each spec in
:mod:`customer_model_factory.plugin_api.hookspecs`, in the order it is written there (the order of
the factory's stages), its signature, return type, whether it is ``firstresult`` or ``historic``,
the first paragraph of its docstring, the version that added it, and the stage that calls it.

Nothing here is a hand-written list: a spec added to the hookspecs module shows up here at once.
The stage comes from the contribution table (:data:`~customer_model_factory.plugins.table.HOOKS`)
when the hook has an entry, otherwise from the banner comment the spec sits under in the hookspecs
module (``# ---- stage 10: release gate ----``).
"""

from __future__ import annotations

import inspect
import re
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field

from customer_model_factory.plugin_api import hookspecs
from customer_model_factory.plugin_api.hookspecs import PROJECT_NAME

__all__ = ["HookDescription", "describe_hooks"]

_BANNER_RE: Final = re.compile(r"^# -{2,} (?P<title>.+?) -{2,}\s*$")
_STAGE_PREFIX_RE: Final = re.compile(r"^stage \d+[a-z]?: ")
_VERSION_RE: Final = re.compile(r"\.\. versionadded:: (\S+)")
_ROLE_RE: Final = re.compile(r":[a-z]+:`~?\.?(?:[\w.]+\.)?(?P<name>[\w]+)`")


class HookDescription(BaseModel):
    """The contract of one hook, as a pack author needs it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(description="The hook name (prefixed cmf_).")
    stage: str = Field(description="The stage (or tool) that calls the hook.")
    section: str = Field(description="The banner of the hookspecs module the spec sits under.")
    signature: str = Field(description="The spec's parameters and return type, as declared.")
    arguments: tuple[str, ...] = Field(description="Argument names an implementation may take.")
    returns: str = Field(description="The declared return type.")
    firstresult: bool = Field(description="Calling stops at the first non-None result.")
    historic: bool = Field(description="Late-registered plugins are called with past calls.")
    deprecated_arguments: tuple[str, ...] = Field(
        description="Arguments on their way out: an implementation taking one gets a warning."
    )
    summary: str = Field(description="The first paragraph of the spec's docstring.")
    version_added: str | None = Field(description="The plugin API version that added it.")


def _banners() -> list[tuple[int, str]]:
    """``(line number, title)`` of every banner comment of the hookspecs module (none when the
    source is not installed)."""
    try:
        lines, _ = inspect.findsource(hookspecs)
    except OSError:
        return []
    banners: list[tuple[int, str]] = []
    for number, line in enumerate(lines, start=1):
        match = _BANNER_RE.match(line)
        if match:
            banners.append((number, match.group("title")))
    return banners


def _section_of(line: int, banners: list[tuple[int, str]]) -> str:
    section = ""
    for number, title in banners:
        if number > line:
            break
        section = title
    return section


def _stage_from_section(section: str) -> str:
    """``"stage 10: release gate"`` → ``"release gate"``; other banners are kept whole."""
    return _STAGE_PREFIX_RE.sub("", section) or "unknown"


def _first_paragraph(doc: str) -> str:
    """The first paragraph on one line, without reStructuredText markup."""
    text = " ".join(doc.strip().split("\n\n", 1)[0].split())
    return _ROLE_RE.sub(lambda match: match.group("name"), text).replace("``", "")


def _spec_functions() -> list[tuple[int, str, Any]]:
    """``(first line, name, spec)`` of every spec, in source order (definition order, which
    the module namespace keeps, when the source is not installed)."""
    found = []
    for index, (name, value) in enumerate(vars(hookspecs).items()):
        if not name.startswith("cmf_") or not inspect.isfunction(value):
            continue
        if getattr(value, f"{PROJECT_NAME}_spec", None) is None:
            continue
        try:
            line = inspect.getsourcelines(value)[1]
        except OSError:
            line = index
        found.append((line, name, value))
    return sorted(found)


def describe_hooks() -> list[HookDescription]:
    """Return every hook spec's contract, in the order of the hookspecs module (stage order)."""
    from customer_model_factory.plugins.table import HOOKS  # noqa: PLC0415

    stages = {entry.hook: entry.stage for entry in HOOKS}
    banners = _banners()
    described: list[HookDescription] = []
    for line, name, spec in _spec_functions():
        options = getattr(spec, f"{PROJECT_NAME}_spec", {}) or {}
        signature = inspect.signature(spec)
        returns = signature.return_annotation
        returns_text = "None" if returns is inspect.Signature.empty else str(returns)
        section = _section_of(line, banners)
        doc = inspect.getdoc(spec) or ""
        version = _VERSION_RE.search(doc)
        described.append(
            HookDescription(
                name=name,
                stage=stages.get(name) or _stage_from_section(section),
                section=section,
                signature=f"{name}{signature}".replace("'", ""),
                arguments=tuple(signature.parameters),
                returns=returns_text.replace("'", ""),
                firstresult=bool(options.get("firstresult", False)),
                historic=bool(options.get("historic", False)),
                deprecated_arguments=tuple(sorted(options.get("warn_on_impl_args") or {})),
                summary=_first_paragraph(doc),
                version_added=version.group(1) if version else None,
            )
        )
    return described
