"""Scan scopes: which files (or git blobs) a verification reads.

* ``tracked`` (default): the git-tracked files of the root, read from the working tree;
* ``staged``: the added/modified files of the index, read from the index (what will be committed);
* ``since``: the files changed between a revision and the working tree, and the commit objects
  (messages, authors) of the commits between the revision and ``HEAD``;
* ``history``: every blob reachable from any ref, each with the commits that hold it, and the
  git metadata: every commit object (message, author and committer names and e-mails), every
  annotated tag object (tag name, tagger, message), every ref name (branches, tags, notes,
  remote-tracking refs); notes are blobs reachable from ``refs/notes/*`` and are scanned as such;
* ``push``: exactly the objects a ``git push`` of given refs sends (``git rev-list --objects``
  of the pushed commits minus what the remote already has): blobs, commits, tag objects, and
  the names of the refs pushed;
* ``commit_msg``: a commit message file (the ``commit-msg`` hook), without the comment lines
  and the verbose diff git strips, and the author and committer identities git will record;
* ``all_files``: every file under the root outside git, honouring ``.gitignore`` files.

Symlinks are never followed: git stores a link as its target path, and so do we (the target
text is scanned, the file it points to is not).
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from customer_model_factory.errors import ConfigError, InputError

if TYPE_CHECKING:
    import pathspec

__all__ = [
    "GIT_SCOPES",
    "ZERO_SHA",
    "PushUpdate",
    "Scope",
    "ScopeName",
    "SourceItem",
    "collect_items",
    "escape_display",
    "git_blob_reader",
    "is_shallow",
    "parse_push_lines",
    "path_spec",
    "repository_root",
    "resolve_ref",
]

ScopeName = Literal["tracked", "staged", "since", "history", "push", "commit_msg", "all_files"]
GIT_SCOPES: Final = ("history",)
"""Scopes that read the whole git history (so a shallow clone is refused). A push needs no more
than the commits it sends, which a shallow clone holds."""
ZERO_SHA: Final = "0" * 40
_GIT_TIMEOUT_S: Final = 600
_SHA_RE: Final = r"^[0-9a-f]{40}([0-9a-f]{24})?$"
_SCISSORS: Final = " ------------------------ >8 ------------------------"


class PushUpdate(BaseModel):
    """One line of what ``git push`` feeds its ``pre-push`` hook on stdin."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    local_ref: str = Field(description="The local ref pushed ('(delete)' for a deletion).")
    local_sha: str = Field(pattern=_SHA_RE, description="Its commit; zeros for a deletion.")
    remote_ref: str = Field(description="The ref it updates on the remote.")
    remote_sha: str = Field(pattern=_SHA_RE, description="The remote's commit; zeros if new.")


@dataclass(frozen=True)
class Scope:
    """What to scan: a scope name and its arguments.

    ``rev`` is the revision of ``since``; ``push`` the ref updates of ``push`` (with ``remote``,
    whose remote-tracking refs are taken as already published); ``message_file`` the file of
    ``commit_msg``.
    """

    name: ScopeName = "tracked"
    rev: str | None = None
    push: tuple[PushUpdate, ...] = ()
    remote: str | None = None
    message_file: Path | None = None


@dataclass(frozen=True, slots=True)
class SourceItem:
    """One file to scan: its repository-relative POSIX path and where its bytes come from.

    Exactly one of ``fs_path`` (a working-tree file) and ``blob`` (a git object id) is set;
    ``size`` is -1 when not known before reading; ``link`` marks a symlink whose target text is
    the content; ``commits`` lists the commits holding the blob (``history`` scope only).
    Git metadata (``metadata`` set) is a commit or tag object read by ``blob`` id, or text held
    in ``data`` (ref names, a commit message); its ``path`` is ``git:commit/<id>``,
    ``git:tag/<id>``, ``git:refs`` or ``git:commit-message``.
    """

    path: str
    fs_path: str | None = None
    blob: str | None = None
    size: int = 0
    link: bool = False
    commits: tuple[str, ...] = field(default=())
    data: bytes | None = None
    metadata: bool = False


_CONTROL: Final = {
    **{code: f"\\x{code:02x}" for code in (*range(32), 0x7F)},
    ord("\n"): "\\n",
    ord("\r"): "\\r",
    ord("\t"): "\\t",
    ord("\\"): "\\\\",
}


def escape_display(text: str) -> str:
    """Return ``text`` safe to print on one line: control characters, backslashes and bytes
    that were not UTF-8 (surrogate escapes) written as escapes (``a\\nb``, ``\\xff``)."""
    if text.isprintable() and "\\" not in text:
        return text
    out: list[str] = []
    for char in text:
        code = ord(char)
        if code in _CONTROL:
            out.append(_CONTROL[code])
        elif 0xDC80 <= code <= 0xDCFF:
            out.append(f"\\x{code - 0xDC00:02x}")
        elif not char.isprintable() and char != " ":
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
        else:
            out.append(char)
    return "".join(out)


def path_spec(lines: Sequence[str], *, source: str = "glob") -> pathspec.PathSpec:
    """Compile gitignore-style globs (``**/x/**``, ``*private*``, ``build/``).

    :param source: names where the globs come from in an error (never the glob itself, which
        may come from a private denylist).
    :raises ConfigError: a glob is invalid.
    """
    try:
        return _compile(lines)
    except (ValueError, TypeError, re.error) as error:
        number = next((i for i, line in enumerate(lines, start=1) if not _compiles(line)), None)
        where = f" (entry {number})" if number is not None and len(lines) > 1 else ""
        raise ConfigError(f"{source}{where}: invalid glob ({type(error).__name__})") from None


def _compile(lines: Sequence[str]) -> pathspec.PathSpec:
    import pathspec  # noqa: PLC0415

    try:
        return pathspec.PathSpec.from_lines("gitignore", lines)
    except (KeyError, LookupError):  # pathspec < 0.12.2 knows only "gitwildmatch"
        return pathspec.PathSpec.from_lines("gitwildmatch", lines)


def _compiles(line: str) -> bool:
    try:
        _compile([line])
    except (ValueError, TypeError, re.error):
        return False
    return True


def _git(root: Path, *args: str) -> bytes:
    try:
        completed = subprocess.run(
            ["git", "-C", str(root), *args],
            check=False,
            stdin=subprocess.DEVNULL,
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


def repository_root(root: Path, scope: Scope) -> Path:
    """Return the directory a scope is scanned from: the git work tree's top for git scopes
    (so a run from a subdirectory reads the root's denylist and allowlist), ``root`` itself for
    ``all_files`` and for a ``commit_msg`` run outside git.

    :raises InputError: ``root`` is not a directory, or not in a git work tree.
    """
    if scope.name == "all_files":
        return root.resolve()
    if scope.name == "commit_msg":
        try:
            return _ensure_repo(root)
        except InputError:
            return root.resolve()
    return _ensure_repo(root)


def is_shallow(root: Path) -> bool:
    """Return whether the repository is a shallow clone (its history is cut off)."""
    return _git(root, "rev-parse", "--is-shallow-repository").strip() == b"true"


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


def _tracked(root: Path, gitlinks: list[str]) -> list[SourceItem]:
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
        if mode == b"160000":  # a submodule: its commit is no content, its path is published
            gitlinks.append(name)
            continue
        if name in seen:  # a conflicted path's stages
            continue
        seen.add(name)
        items.append(
            SourceItem(name, fs_path=os.path.join(root, name), size=-1, link=mode == b"120000")
        )
    return sorted(items, key=lambda item: item.path)


def _staged(root: Path, gitlinks: list[str]) -> list[SourceItem]:
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
        if mode == "160000":  # a submodule commit, not content; its path is checked
            gitlinks.append(name)
            continue
        items.append(SourceItem(name, blob=blob, link=mode == "120000"))
    return sorted(items, key=lambda item: item.path)


def _since(root: Path, rev: str) -> list[SourceItem]:
    try:
        _git(root, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}")
    except InputError:
        raise InputError(
            f"--since: revision {escape_display(rev)!r} could not be resolved to a commit "
            "(a shallow clone or a branch not fetched?)"
        ) from None
    names = _split_z(_git(root, "diff", "--name-only", "-z", "--diff-filter=ACMRT", rev, "--"))
    files = (_fs_item(root, name) for name in sorted(set(names)))
    items = [item for item in files if item is not None]
    # The commits since the revision (a pull request's) publish their messages and authors.
    try:
        commits = _git(root, "rev-list", "--end-of-options", "HEAD", f"^{rev}").decode().split()
    except InputError:
        commits = []  # no commit yet on HEAD: only the working tree changed
    items.extend(
        SourceItem(f"git:commit/{sha}", blob=sha, commits=(sha,), metadata=True) for sha in commits
    )
    return items


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
            name = name_bytes.decode("utf-8", "surrogateescape")
            if kind != "blob":  # a submodule commit: no content, but a published path
                path_owners.setdefault(name, set()).add(commit)
                continue
            holders.setdefault(blob, set()).add(commit)
            path_owners.setdefault(name, set()).add(commit)
            # A blob stored under several names is reported under the first in sorted order.
            paths[blob] = min(paths.get(blob, name), name)
            if mode == "120000":
                links.add(blob)
    items = [
        SourceItem(paths[blob], blob=blob, link=blob in links, commits=tuple(sorted(owners)))
        for blob, owners in holders.items()
    ]
    # A ref (a tag, usually) may name a blob or a tree instead of a commit: git pushes and
    # clones those objects too, though no commit holds them.
    for ref, kind, sha in _non_commit_refs(root):
        if kind == "blob" and sha not in holders:
            holders[sha] = set()
            items.append(SourceItem(f"git:{ref}", blob=sha))
        elif kind == "tree":
            for entry in _git(root, "ls-tree", "-r", "-z", sha).split(b"\0"):
                meta, _, name_bytes = entry.partition(b"\t")
                if not entry or meta.split()[1] != b"blob":
                    continue
                name = f"git:{ref}:" + name_bytes.decode("utf-8", "surrogateescape")
                path_owners.setdefault(name, set())
                blob = meta.split()[2].decode()
                if blob not in holders:
                    holders[blob] = set()
                    items.append(SourceItem(name, blob=blob))
    items.sort(key=lambda item: (item.path, item.blob or ""))
    return items, {name: tuple(sorted(commits)) for name, commits in path_owners.items()}


def _non_commit_refs(root: Path) -> list[tuple[str, str, str]]:
    """``(ref name, object type, object id)`` of each ref whose (fully peeled) object is a blob
    or a tree."""
    found: list[tuple[str, str, str]] = []
    listing = _git(root, "for-each-ref", "--format=%(objecttype) %(*objecttype) %(refname)")
    for line in listing.decode("utf-8", "surrogateescape").splitlines():
        kind, peeled, name = line.split(" ", 2)
        if kind == "commit" or peeled == "commit":
            continue
        target = _git(root, "rev-parse", "--verify", "--quiet", f"{name}^{{}}").decode().strip()
        target_kind = _git(root, "cat-file", "-t", target).decode().strip()
        if target_kind in ("blob", "tree"):
            found.append((name, target_kind, target))
    return found


def _refs_item(names: Sequence[str]) -> SourceItem | None:
    """One in-memory document of ref names, one a line (sorted), reported as ``git:refs``."""
    if not names:
        return None
    text = "\n".join(sorted(set(names))) + "\n"
    return SourceItem("git:refs", data=text.encode("utf-8", "surrogateescape"), metadata=True)


def _git_metadata(root: Path, commits: Sequence[str]) -> list[SourceItem]:
    """Commit and annotated-tag objects, and the ref names, of the whole repository."""
    items = [
        SourceItem(f"git:commit/{commit}", blob=commit, commits=(commit,), metadata=True)
        for commit in commits
    ]
    names: list[str] = []
    tags: set[str] = set()
    listing = _git(root, "for-each-ref", "--format=%(objectname) %(objecttype) %(refname)")
    for line in listing.decode("utf-8", "surrogateescape").splitlines():
        sha, kind, name = line.split(" ", 2)
        names.append(name)
        if kind == "tag":
            tags.add(sha)
    # A tag of a tag: follow each tag object to the tag objects it names.
    pending = sorted(tags)
    while pending:
        nested: list[str] = []
        for sha in pending:
            header = _git(root, "cat-file", "tag", sha).split(b"\n", 2)
            if len(header) > 1 and header[1] == b"type tag":
                target = header[0].partition(b" ")[2].decode()
                if target not in tags:
                    tags.add(target)
                    nested.append(target)
        pending = nested
    items.extend(SourceItem(f"git:tag/{sha}", blob=sha, metadata=True) for sha in sorted(tags))
    refs = _refs_item(names)
    if refs is not None:
        items.append(refs)
    return items


def _object_types(root: Path, shas: Sequence[str]) -> dict[str, str]:
    if not shas:
        return {}
    completed = subprocess.run(
        ["git", "-C", str(root), "cat-file", "--batch-check=%(objectname) %(objecttype)"],
        input="".join(f"{sha}\n" for sha in shas).encode(),
        check=False,
        capture_output=True,
        timeout=_GIT_TIMEOUT_S,
    )
    types: dict[str, str] = {}
    for line in completed.stdout.decode().splitlines():
        parts = line.split()
        if len(parts) == 2:
            types[parts[0]] = parts[1]
    return types


def _has_object(root: Path, sha: str) -> bool:
    return bool(_object_types(root, [sha]).get(sha))


def _changed_paths(root: Path, commits: Sequence[str]) -> dict[str, set[str]]:
    """Map each blob that ``commits`` add or modify to the paths it takes there.

    Read NUL-separated from ``git diff-tree -z`` (``rev-list --objects`` cuts a path at a line
    break, which would hide the rest of a name and misattribute its blob).
    """
    if not commits:
        return {}
    completed = subprocess.run(
        [
            "git",
            "-C",
            str(root),
            "diff-tree",
            "-r",
            "-z",
            "--root",
            "-m",
            "--no-renames",
            "--no-commit-id",
            "--stdin",
        ],
        input="".join(f"{commit}\n" for commit in commits).encode(),
        check=False,
        capture_output=True,
        timeout=_GIT_TIMEOUT_S,
    )
    if completed.returncode != 0:
        raise InputError("git diff-tree failed on the pushed commits")
    changed: dict[str, set[str]] = {}
    parts = completed.stdout.split(b"\0")
    index = 0
    while index < len(parts) - 1:
        meta = parts[index]
        if not meta.startswith(b":"):
            index += 1
            continue
        fields = meta[1:].split()
        name = parts[index + 1].decode("utf-8", "surrogateescape")
        index += 2
        # A submodule's entry names a commit, not a blob, but its path is published too.
        if len(fields) >= 5 and fields[4][:1] != b"D":
            changed.setdefault(fields[3].decode(), set()).add(name)
    return changed


def _push(
    root: Path, updates: Sequence[PushUpdate], remote: str | None
) -> tuple[list[SourceItem], dict[str, tuple[str, ...]]]:
    """What a push of ``updates`` publishes: every object the remote does not have yet."""
    includes = sorted({u.local_sha for u in updates if u.local_sha != ZERO_SHA})
    for sha in includes:
        if not _has_object(root, sha):
            raise InputError(f"pushed commit {sha} is not in this repository")
    excludes = sorted(
        {
            u.remote_sha
            for u in updates
            if u.remote_sha != ZERO_SHA and _has_object(root, u.remote_sha)
        }
    )
    names = [u.remote_ref for u in updates if u.local_sha != ZERO_SHA]
    names += [u.local_ref for u in updates if u.local_sha != ZERO_SHA]
    items: list[SourceItem] = []
    paths: dict[str, tuple[str, ...]] = {}
    if includes:
        remotes = f"--remotes={remote}" if remote else "--remotes"
        listing = _git(root, "rev-list", "--objects", *includes, "--not", *excludes, remotes)
        entries: list[tuple[str, str]] = []
        for line in listing.decode("utf-8", "surrogateescape").splitlines():
            sha, _, name = line.partition(" ")
            entries.append((sha, name))
        types = _object_types(root, [sha for sha, _name in entries])
        commits = [sha for sha, _name in entries if types.get(sha) == "commit"]
        changed = _changed_paths(root, commits)
        for names_of_blob in changed.values():
            paths.update(dict.fromkeys(names_of_blob, ()))
        blob_paths: dict[str, str] = {}
        for sha, name in entries:
            kind = types.get(sha)
            if kind == "commit":
                items.append(
                    SourceItem(f"git:commit/{sha}", blob=sha, commits=(sha,), metadata=True)
                )
            elif kind == "tag":
                items.append(SourceItem(f"git:tag/{sha}", blob=sha, metadata=True))
            elif kind == "blob":
                # The full name from diff-tree; rev-list's (cut at a line break) only for a
                # blob no pushed commit adds (a tag pointing at a blob).
                blob_paths[sha] = min(changed.get(sha) or {name or sha})
        items.extend(SourceItem(path, blob=sha) for sha, path in blob_paths.items())
    refs = _refs_item([name for name in names if name and name != "(delete)"])
    if refs is not None:
        items.append(refs)
    return sorted(items, key=lambda item: (item.path, item.blob or "")), paths


def resolve_ref(root: Path, ref: str) -> tuple[str, str]:
    """Return the full name (``refs/heads/main``) and object id of a ref or revision to push.

    :raises InputError: the ref does not name an object here (the message names the ref).
    """
    try:
        sha = _git(root, "rev-parse", "--verify", "--quiet", "--end-of-options", ref)
    except InputError:
        raise InputError(f"--push: ref {escape_display(ref)!r} could not be resolved") from None
    try:
        name = _git(root, "rev-parse", "--symbolic-full-name", "--end-of-options", ref)
    except InputError:
        name = b""
    full = name.decode("utf-8", "surrogateescape").strip() or ref
    return full, sha.decode().strip()


def parse_push_lines(text: str) -> list[PushUpdate]:
    """Parse what git writes to a ``pre-push`` hook's stdin: one ``<local ref> <local sha>
    <remote ref> <remote sha>`` a line.

    :raises InputError: a line does not have that shape (named by its number).
    """
    from pydantic import ValidationError  # noqa: PLC0415

    updates: list[PushUpdate] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 4:
            raise InputError(
                "pre-push input: expected '<local ref> <sha> <remote ref> <sha>'",
                line=number,
                path="<stdin>",
            )
        try:
            updates.append(
                PushUpdate(
                    local_ref=parts[0], local_sha=parts[1], remote_ref=parts[2], remote_sha=parts[3]
                )
            )
        except ValidationError:
            raise InputError(
                "pre-push input: a sha is not 40 hex digits", line=number, path="<stdin>"
            ) from None
    return updates


def _comment_char(root: Path | None) -> str:
    if root is not None:
        try:
            configured = _git(root, "config", "--get", "core.commentChar").decode().strip()
        except InputError:
            configured = ""
        if configured and configured != "auto":
            return configured
    return "#"


def _commit_message(root: Path, message_file: Path, in_git: bool) -> list[SourceItem]:
    try:
        raw = message_file.read_bytes()
    except OSError as error:
        raise InputError(
            f"commit message file cannot be read: {error.strerror}", path=message_file
        ) from None
    comment = _comment_char(root if in_git else None)
    kept: list[bytes] = []
    scissors = (comment + _SCISSORS).encode()
    for line in raw.split(b"\n"):
        if line.rstrip(b"\r") == scissors:
            break  # git drops the verbose diff below this line
        # A comment line stays as an empty line, so line numbers match the file.
        kept.append(b"" if line.startswith(comment.encode()) else line)
    items = [SourceItem("git:commit-message", data=b"\n".join(kept), metadata=True)]
    if in_git:
        idents = []
        for variable in ("GIT_AUTHOR_IDENT", "GIT_COMMITTER_IDENT"):
            try:
                idents.append(_git(root, "var", variable).strip())
            except InputError:
                continue  # no identity configured: git will refuse the commit itself
        if idents:
            items.append(SourceItem("git:identity", data=b"\n".join(idents), metadata=True))
    return items


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
    if scope.name == "commit_msg":
        if scope.message_file is None:
            raise InputError("--commit-msg needs the message file")
        top = repository_root(root, scope)
        in_git = (top / ".git").exists() or _inside_git(top)
        return top, _commit_message(top, scope.message_file, in_git), {}
    root = _ensure_repo(root)
    if scope.name == "push":
        items, names = _push(root, scope.push, scope.remote)
        return root, items, names
    gitlinks: list[str] = []
    if scope.name == "tracked":
        items = _tracked(root, gitlinks)
    elif scope.name == "staged":
        items = _staged(root, gitlinks)
    elif scope.name == "since":
        if not scope.rev:
            raise InputError("--since needs a revision")
        items = _since(root, scope.rev)
    else:
        items, names = _history(root)
        commits = sorted({commit for item in items for commit in item.commits})
        all_commits = _git(root, "rev-list", "--all").decode().split()
        items.extend(_git_metadata(root, sorted(set(all_commits) | set(commits))))
        return root, items, names
    names = {item.path: () for item in items if not item.metadata}
    names.update(dict.fromkeys(gitlinks, ()))
    return root, items, names


def _inside_git(root: Path) -> bool:
    try:
        _git(root, "rev-parse", "--git-dir")
    except InputError:
        return False
    return True


def git_blob_reader(root: Path, blobs: Sequence[str]) -> Iterator[tuple[str, bytes]]:
    """Yield ``(object id, content)`` for each blob (or commit or tag object), through one
    ``git cat-file --batch`` process."""
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
            if len(header) < 3 or header[1] not in (b"blob", b"commit", b"tag"):
                raise InputError(f"git object {blob} is not a readable blob")
            size = int(header[2])
            content = process.stdout.read(size)
            process.stdout.read(1)  # the newline after each object
            yield blob, content
    finally:
        process.stdin.close()
        process.stdout.close()
        process.wait(timeout=_GIT_TIMEOUT_S)
