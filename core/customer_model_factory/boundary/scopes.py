"""Scan scopes: which files (or git blobs) a verification reads.

* ``tracked`` (default): the git-tracked files of the root, read from the working tree;
* ``staged``: the added/modified files of the index, read from the index (what will be committed);
* ``since``: the files changed between a revision and the working tree;
* ``history``: every blob reachable from any ref, each with the commits that hold it;
* ``all_files``: every file under the root outside git, honouring ``.gitignore`` files.

Symlinks are never followed: git stores a link as its target path, and so do we (the target
text is scanned, the file it points to is not).
"""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal

from customer_model_factory.errors import ConfigError, InputError

if TYPE_CHECKING:
    import pathspec

__all__ = [
    "Scope",
    "ScopeName",
    "SourceItem",
    "collect_items",
    "git_blob_reader",
    "path_spec",
]

ScopeName = Literal["tracked", "staged", "since", "history", "all_files"]
_GIT_TIMEOUT_S: Final = 600


@dataclass(frozen=True)
class Scope:
    """What to scan: a scope name and, for ``since``, the revision."""

    name: ScopeName = "tracked"
    rev: str | None = None


@dataclass(frozen=True, slots=True)
class SourceItem:
    """One file to scan: its repository-relative POSIX path and where its bytes come from.

    Exactly one of ``fs_path`` (a working-tree file) and ``blob`` (a git object id) is set;
    ``size`` is -1 when not known before reading; ``link`` marks a symlink whose target text is
    the content; ``commits`` lists the commits holding the blob (``history`` scope only).
    """

    path: str
    fs_path: str | None = None
    blob: str | None = None
    size: int = 0
    link: bool = False
    commits: tuple[str, ...] = field(default=())


def path_spec(lines: Sequence[str]) -> pathspec.PathSpec:
    """Compile gitignore-style globs (``**/x/**``, ``*private*``, ``build/``)."""
    import pathspec  # noqa: PLC0415

    try:
        return pathspec.PathSpec.from_lines("gitignore", lines)
    except (KeyError, LookupError):  # pathspec < 0.12.2 knows only "gitwildmatch"
        return pathspec.PathSpec.from_lines("gitwildmatch", lines)


def _git(root: Path, *args: str) -> bytes:
    try:
        completed = subprocess.run(
            ["git", "-C", str(root), *args],
            check=False,
            capture_output=True,
            timeout=_GIT_TIMEOUT_S,
        )
    except FileNotFoundError:
        raise ConfigError("git is not installed; use --all-files outside git") from None
    if completed.returncode != 0:
        message = completed.stderr.decode("utf-8", "replace").strip().splitlines()
        raise InputError(f"git {args[0]} failed: {message[-1] if message else 'unknown error'}")
    return completed.stdout


def _ensure_repo(root: Path) -> Path:
    if not root.is_dir():
        raise InputError("scan root is not a directory", path=root)
    top = _git(root, "rev-parse", "--show-toplevel").decode().strip()
    return Path(top)


def _split_z(output: bytes) -> list[str]:
    return [part.decode("utf-8", "surrogateescape") for part in output.split(b"\0") if part]


def _fs_item(root: Path, relative: str) -> SourceItem | None:
    path = os.path.join(root, relative)
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        # Tracked but deleted in the working tree: nothing to publish.
        return None
    if stat.S_ISLNK(info.st_mode):
        return SourceItem(relative, fs_path=path, size=info.st_size, link=True)
    if not stat.S_ISREG(info.st_mode):
        return None
    return SourceItem(relative, fs_path=path, size=info.st_size)


def _tracked(root: Path) -> list[SourceItem]:
    # Modes come from the index, so no file needs a stat here: a tracked file deleted from the
    # working tree is skipped when it cannot be read.
    items: list[SourceItem] = []
    seen: set[str] = set()
    for entry in _git(root, "ls-files", "-z", "--stage").split(b"\0"):
        if not entry:
            continue
        meta, _, name_bytes = entry.partition(b"\t")
        mode = meta[:6]
        name = name_bytes.decode("utf-8", "surrogateescape")
        if mode == b"160000" or name in seen:  # a submodule commit; a conflicted path's stages
            continue
        seen.add(name)
        items.append(
            SourceItem(name, fs_path=os.path.join(root, name), size=-1, link=mode == b"120000")
        )
    return sorted(items, key=lambda item: item.path)


def _staged(root: Path) -> list[SourceItem]:
    changed = set(
        _split_z(_git(root, "diff", "--cached", "--name-only", "-z", "--diff-filter=ACMRT"))
    )
    items: list[SourceItem] = []
    for entry in _git(root, "ls-files", "-z", "--stage").split(b"\0"):
        if not entry:
            continue
        meta, _, name_bytes = entry.partition(b"\t")
        name = name_bytes.decode("utf-8", "surrogateescape")
        if name not in changed:
            continue
        mode, blob, _stage = meta.decode().split()
        if mode == "160000":  # a submodule commit, not content
            continue
        items.append(SourceItem(name, blob=blob, link=mode == "120000"))
    return sorted(items, key=lambda item: item.path)


def _since(root: Path, rev: str) -> list[SourceItem]:
    _git(root, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    names = _split_z(_git(root, "diff", "--name-only", "-z", "--diff-filter=ACMRT", rev, "--"))
    items = (_fs_item(root, name) for name in sorted(set(names)))
    return [item for item in items if item is not None]


def _history(root: Path) -> tuple[list[SourceItem], dict[str, tuple[str, ...]]]:
    """Every blob reachable from any ref, with the commits holding it; and every path name."""
    holders: dict[str, set[str]] = {}
    paths: dict[str, str] = {}
    links: set[str] = set()
    path_owners: dict[str, set[str]] = {}
    for commit in _git(root, "rev-list", "--all").decode().split():
        for entry in _git(root, "ls-tree", "-r", "-z", "--full-tree", commit).split(b"\0"):
            if not entry:
                continue
            meta, _, name_bytes = entry.partition(b"\t")
            mode, kind, blob = meta.decode().split()
            if kind != "blob":
                continue
            name = name_bytes.decode("utf-8", "surrogateescape")
            holders.setdefault(blob, set()).add(commit)
            path_owners.setdefault(name, set()).add(commit)
            # A blob stored under several names is reported under the first in sorted order.
            paths[blob] = min(paths.get(blob, name), name)
            if mode == "120000":
                links.add(blob)
    items = sorted(
        (
            SourceItem(paths[blob], blob=blob, link=blob in links, commits=tuple(sorted(owners)))
            for blob, owners in holders.items()
        ),
        key=lambda item: (item.path, item.blob or ""),
    )
    return items, {name: tuple(sorted(commits)) for name, commits in path_owners.items()}


def _all_files(root: Path) -> list[SourceItem]:
    if not root.is_dir():
        raise InputError("scan root is not a directory", path=root)
    items: list[SourceItem] = []
    specs: list[tuple[str, pathspec.PathSpec]] = []

    def ignored(relative: str, is_dir: bool) -> bool:
        probe = relative + "/" if is_dir else relative
        for base, spec in specs:
            if probe.startswith(base) and spec.match_file(probe[len(base) :]):
                return True
        return False

    stack = [(str(root), "")]
    while stack:
        directory, prefix = stack.pop()
        with os.scandir(directory) as scan:
            entries = sorted(scan, key=lambda entry: entry.name)
        for entry in entries:
            if entry.name == ".gitignore" and entry.is_file(follow_symlinks=False):
                with open(entry.path, encoding="utf-8", errors="replace") as handle:
                    specs.append((prefix, path_spec(handle.read().splitlines())))
        for entry in entries:
            relative = prefix + entry.name
            # DirEntry answers from the directory listing: no extra syscall per file.
            if entry.is_dir(follow_symlinks=False):
                if entry.name != ".git" and not (specs and ignored(relative, True)):
                    stack.append((entry.path, relative + "/"))
                continue
            if specs and ignored(relative, False):
                continue
            if entry.is_symlink():
                # A link (to a file or a directory) is its target text, never followed.
                items.append(SourceItem(relative, fs_path=entry.path, size=-1, link=True))
            elif entry.is_file(follow_symlinks=False):
                items.append(SourceItem(relative, fs_path=entry.path, size=-1))
    return sorted(items, key=lambda item: item.path)


def collect_items(
    root: Path, scope: Scope
) -> tuple[Path, list[SourceItem], dict[str, tuple[str, ...]]]:
    """Return the root actually scanned, the items of ``scope``, and the path names to check.

    The path names map each path to the commits that hold it (empty outside ``history``).

    :raises InputError: the root is not a git work tree (except for ``all_files``), or git fails
        (an unknown revision, say).
    """
    if scope.name == "all_files":
        root = root.resolve()
        items = _all_files(root)
        return root, items, {item.path: () for item in items}
    root = _ensure_repo(root)
    if scope.name == "tracked":
        items = _tracked(root)
    elif scope.name == "staged":
        items = _staged(root)
    elif scope.name == "since":
        if not scope.rev:
            raise InputError("--since needs a revision")
        items = _since(root, scope.rev)
    else:
        items, names = _history(root)
        return root, items, names
    return root, items, {item.path: () for item in items}


def git_blob_reader(root: Path, blobs: Sequence[str]) -> Iterator[tuple[str, bytes]]:
    """Yield ``(blob id, content)`` for each blob, through one ``git cat-file --batch`` process."""
    if not blobs:
        return
    process = subprocess.Popen(
        ["git", "-C", str(root), "cat-file", "--batch"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    try:
        for blob in blobs:
            process.stdin.write(blob.encode() + b"\n")
            process.stdin.flush()
            header = process.stdout.readline().split()
            if len(header) < 3 or header[1] != b"blob":
                raise InputError(f"git object {blob} is not a readable blob")
            size = int(header[2])
            content = process.stdout.read(size)
            process.stdout.read(1)  # the newline after each object
            yield blob, content
    finally:
        process.stdin.close()
        process.stdout.close()
        process.wait(timeout=_GIT_TIMEOUT_S)
