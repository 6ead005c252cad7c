"""Output-path guard shared by the stage commands: no output ever overwrites an input."""

from __future__ import annotations

from pathlib import Path

from customer_model_factory.errors import InputError
from customer_model_factory.io import same_file

__all__ = ["printable", "refuse_overwrite"]


def refuse_overwrite(outputs: dict[str, Path | None], inputs: list[Path | None]) -> None:
    """Raise :class:`InputError` (exit 2) when an output path names an input or another output
    (the same file through a symbolic link or a hard link included)."""
    given = [(name, path) for name, path in outputs.items() if path is not None]
    for name, output in given:
        for source in inputs:
            if source is not None and same_file(output, source):
                raise InputError(f"{name} {output} is also an input; write it elsewhere")
    for index, (name, output) in enumerate(given):
        for other_name, other in given[index + 1 :]:
            if same_file(output, other):
                raise InputError(f"{name} and {other_name} name the same file {output}")


def printable(text: str) -> str:
    """``text`` with every non-printable character (newline, escape, line separator...) escaped,
    so a value read from input can never forge a line or a terminal sequence in text output."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
