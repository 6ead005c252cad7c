"""The dataset stage's outputs: never over an input, checked before the pass, published together.

``cmf dataset validate`` may write two files: the report (``-o``) and the redacted copy
(``--redacted-copy``). :func:`~.validate.validate_dataset_to_files`, what the command does:

1. :func:`check_outputs` refuses, with exit 2 and before any input is read, an output that is or
   resolves to (symlink, hard link, ``..``) the trace file, a shard of the trace directory, the
   workspace file or the other output, and an output that cannot be written (a directory or a
   file in the way, a directory that cannot be written).
2. The pass writes the copy to a staged file next to its destination; the report is staged the
   same way. Nothing is published until both are complete.
3. Both are then published under an exclusive lock on their directories, so two runs writing
   the same outputs never leave a report and a copy from different runs; if publishing fails,
   every output is put back as it was before the run.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from customer_model_factory.errors import InputError
from customer_model_factory.io import atomic_writer, list_jsonl_shards

__all__ = ["OutputError", "check_outputs", "copy_writer", "staged_outputs"]


class OutputError(InputError):
    """An output would overwrite an input, or cannot be written (exit 2)."""


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_dev, stat.st_ino


def check_outputs(
    source: str | Path,
    workspace_file: str | Path | None,
    outputs: dict[str, str | Path | None],
) -> None:
    """Refuse outputs that would overwrite an input or each other, or that cannot be written.

    :param source: the trace file or shard directory.
    :param workspace_file: the workspace TOML, when there is one.
    :param outputs: option name (``--output``) → path, ``None`` when not given.
    :raises OutputError: naming the option, the path and the input it would overwrite.
    """
    root = Path(source)
    inputs: list[tuple[str, Path]] = []
    if root.is_dir():
        inputs += [("a shard of the trace directory", shard) for shard in _shards(root)]
    else:
        inputs.append(("the trace file", root))
    if workspace_file is not None:
        inputs.append(("the workspace file", Path(workspace_file)))
    seen: list[tuple[str, Path]] = []
    for option, value in outputs.items():
        if value is None:
            continue
        target = Path(value)
        for what, other in [*inputs, *((f"the {name} output", path) for name, path in seen)]:
            if _same_file(target, other):
                raise OutputError(
                    f"{option} {target} is {what} ({other}); an output never overwrites an input",
                    path=target,
                )
        _check_writable(option, target)
        seen.append((option, target))


def _shards(root: Path) -> list[Path]:
    try:
        return list_jsonl_shards(root)
    except InputError:
        return []  # the pass reports it; no shard can be overwritten


def _same_file(target: Path, other: Path) -> bool:
    """Whether writing ``target`` would replace ``other``: the same path once symlinks and
    ``..`` are resolved, or the same file (a hard link)."""
    if target.resolve() == other.resolve():
        return True
    mine = _identity(target)
    return mine is not None and mine == _identity(other)


def _check_writable(option: str, target: Path) -> None:
    if target.is_dir():
        raise OutputError(f"{option} {target} is a directory", path=target)
    if target.exists() and not target.is_file():
        raise OutputError(f"{option} {target} is not a regular file", path=target)
    parent = target.parent
    ancestor = parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise OutputError(f"{option} {target}: {ancestor} is a file, not a directory", path=target)
    try:
        parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise OutputError(f"{option} {target} cannot be written: {reason}", path=target) from None


# ---- staging: outputs written during the run, published together at its end ----


class _Staging:
    """Outputs written to temporary files next to their destinations, published together."""

    def __init__(self, targets: list[Path]) -> None:
        self.targets = targets
        self.staged: dict[Path, Path] = {}

    def open(self, target: Path) -> tuple[IO[bytes], Path]:
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        self.staged[target] = Path(name)
        return os.fdopen(fd, "wb"), Path(name)

    def write(self, target: Path, data: bytes) -> None:
        handle, _ = self.open(target)
        with handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())

    def discard(self) -> None:
        for temporary in self.staged.values():
            with contextlib.suppress(OSError):
                temporary.unlink()
        self.staged.clear()

    def publish(self) -> None:
        """Replace every destination by its staged file, all or none."""
        directories = sorted({target.parent.resolve() for target in self.staged})
        with contextlib.ExitStack() as locks:
            for directory in directories:
                locks.enter_context(_locked(directory))
            backups: dict[Path, Path | None] = {}
            try:
                for target, temporary in self.staged.items():
                    backups[target] = _backup(target)
                    os.chmod(temporary, 0o644)
                    os.replace(temporary, target)
            except OSError as error:
                for target, backup in backups.items():
                    with contextlib.suppress(OSError):
                        if backup is not None:
                            os.replace(backup, target)
                            # A no-op when the target was never replaced (the same file).
                            backup.unlink(missing_ok=True)
                        else:
                            target.unlink()
                self.discard()
                reason = error.strerror or type(error).__name__
                raise OutputError(
                    f"the outputs could not be published ({reason}); none was changed",
                    path=getattr(error, "filename", None),
                ) from None
            for backup in backups.values():
                if backup is not None:
                    with contextlib.suppress(OSError):
                        backup.unlink()
        for directory in directories:
            with contextlib.suppress(OSError):
                fd = os.open(directory, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        self.staged.clear()


def _backup(target: Path) -> Path | None:
    """A hard link to the current destination, to put it back if publishing fails."""
    if not target.exists():
        return None
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".bak", dir=target.parent)
    os.close(fd)
    backup = Path(name)
    try:
        backup.unlink()
        os.link(target, backup)
    except OSError:
        # A file system without hard links: a copy serves as well.
        shutil.copy2(target, backup)
    return backup


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """An exclusive advisory lock on a directory (where ``flock`` exists)."""
    try:
        import fcntl  # noqa: PLC0415
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


_STAGING: contextvars.ContextVar[_Staging | None] = contextvars.ContextVar(
    "cmf_dataset_staging", default=None
)


@contextlib.contextmanager
def copy_writer(path: str | Path) -> Iterator[IO[bytes]]:
    """Where the redacted copy is written: a staged file when :func:`validate_dataset_to_files`
    publishes the outputs together, else an atomic write of its own."""
    staging = _STAGING.get()
    target = Path(path)
    if staging is None or target not in staging.targets:
        with atomic_writer(target) as handle:
            yield handle
        return
    handle, _ = staging.open(target)
    with handle:
        yield handle
        handle.flush()
        os.fsync(handle.fileno())


@contextlib.contextmanager
def staged_outputs(targets: list[Path]) -> Iterator[_Staging]:
    """Stage every output written in the block (the copy through :func:`copy_writer`, others
    with ``.write``); publish them together when the block ends without error, else discard."""
    staging = _Staging(targets)
    token = _STAGING.set(staging)
    try:
        yield staging
        staging.publish()
    except BaseException:
        staging.discard()
        raise
    finally:
        _STAGING.reset(token)
