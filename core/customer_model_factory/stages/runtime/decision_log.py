"""Appending to a decision log safely: complete lines, one write per batch, fsynced, locked.

A decision log is JSONL that several writers may append to (``cmf score`` runs, ``cmf serve``
threads). :func:`append_lines` takes an exclusive ``flock`` on the log, refuses a log that ends
in the middle of a line (a writer outside this library was interrupted: appending would glue a
new record onto the broken one), writes the whole batch with ``write`` calls on an ``O_APPEND``
descriptor (looping only if the kernel wrote less), fsyncs, and releases the lock. The log is
opened with ``O_NOFOLLOW`` and must be a regular file: a symbolic link is refused, so a log path
planted as a link to an input (or anything else) is never written through.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

import orjson

from customer_model_factory.errors import StageInputError

try:  # POSIX; elsewhere the O_APPEND write is the only guard
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["append_lines", "check_log_path"]


def _invalid(message: str, path: Path) -> StageInputError:
    return StageInputError(message, code="RUNTIME_DECISION_LOG_INVALID", path=path)


def holds_decisions(path: str | Path) -> bool:
    """Whether an existing regular file is empty or starts with a decision record (a JSON object
    with ``decided_at`` and ``runtime_hash``): what a runtime may append to or rewrite."""
    with open(path, "rb") as handle:
        first = handle.readline(1 << 20)
    if not first:
        return True
    try:
        record = orjson.loads(first)
    except orjson.JSONDecodeError:
        return False
    return isinstance(record, dict) and {"decided_at", "runtime_hash"} <= record.keys()


def check_log_path(path: str | Path) -> Path:
    """Refuse a decision log path that is a symbolic link, not a regular file, or a file that
    holds something else than decisions (when it exists).

    :raises StageInputError: ``RUNTIME_DECISION_LOG_INVALID``.
    """
    target = Path(path)
    try:
        info = target.lstat()
    except FileNotFoundError:
        return target
    if stat.S_ISLNK(info.st_mode):
        raise _invalid("the decision log is a symbolic link; name the file itself", target)
    if not stat.S_ISREG(info.st_mode):
        raise _invalid("the decision log is not a regular file", target)
    if not holds_decisions(target):
        raise _invalid(
            "the decision log's first line is not a decision record: it is another file; name "
            "a new or an existing decision log",
            target,
        )
    return target


def _open(path: Path) -> int:
    flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
    flags |= getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags, 0o640)
    except OSError as error:
        if Path(path).is_symlink():
            raise _invalid(
                "the decision log is a symbolic link; name the file itself", path
            ) from None
        raise _invalid(f"cannot open the decision log: {error.strerror}", path) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise _invalid("the decision log is not a regular file", path)
    return fd


def append_lines(path: str | Path, data: bytes) -> int:
    """Append complete JSONL lines to a decision log; return the bytes written.

    :param data: whole lines, each ending in ``\\n`` (empty: nothing is written).
    :raises StageInputError: ``RUNTIME_DECISION_LOG_INVALID``: a symbolic link, not a regular
        file, a log ending in the middle of a line, or an I/O error.
    :raises ValueError: ``data`` does not end with a newline.
    """
    if not data:
        return 0
    if not data.endswith(b"\n"):
        raise ValueError("a decision log batch must end with a newline")
    target = Path(path)
    check_log_path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = _open(target)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            raise _invalid(
                "the decision log ends in the middle of a line (an interrupted writer); repair "
                "it before appending",
                target,
            )
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    except OSError as error:
        raise _invalid(f"cannot append to the decision log: {error.strerror}", target) from None
    finally:
        with contextlib.suppress(OSError):
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    return len(data)
