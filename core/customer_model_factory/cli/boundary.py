"""``cmf boundary``: prove that no proprietary identifier leaked into the public tree."""

from __future__ import annotations

import datetime as dt
import enum
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from customer_model_factory.cli._output import OutputOption, command_group, emit

__all__ = ["app"]

app = command_group(
    "Verify that no proprietary identifier, private schema or pack module leaked into the public "
    "tree (exit 0 clean, 1 leaks found or content not scanned, 2 bad configuration or input)."
)


class ReportFormat(enum.StrEnum):
    """How the verification report is rendered."""

    text = "text"
    json = "json"
    sarif = "sarif"


class EngineChoice(enum.StrEnum):
    """The plaintext matching engine (auto = the fastest importable)."""

    auto = "auto"
    hyperscan = "hyperscan"
    ahocorasick = "ahocorasick"
    re = "re"


def _scope(
    *,
    staged: bool,
    since: str | None,
    history: bool,
    all_files: bool,
    commit_msg: Path | None,
    push: bool,
) -> str:
    chosen = [
        name
        for name, on in (
            ("staged", staged),
            ("since", since is not None),
            ("history", history),
            ("all_files", all_files),
            ("commit_msg", commit_msg is not None),
            ("push", push),
        )
        if on
    ]
    if len(chosen) > 1:
        raise typer.BadParameter(
            "choose one of --staged, --since, --history, --all-files, --commit-msg, "
            "--push/--pre-push",
            param_hint="scope",
        )
    return chosen[0] if chosen else "tracked"


def _pre_push_updates() -> tuple[object, ...]:
    """The ref updates of a pre-push hook: git's stdin lines, else pre-commit's variables."""
    from customer_model_factory.boundary import PushUpdate, parse_push_lines  # noqa: PLC0415
    from customer_model_factory.boundary.scopes import ZERO_SHA  # noqa: PLC0415

    if not sys.stdin.isatty():
        text = sys.stdin.read()
        if text.strip():
            return tuple(parse_push_lines(text))
    to_ref = os.environ.get("PRE_COMMIT_TO_REF")
    if to_ref:
        # pre-commit runs pre-push hooks without git's stdin and says what is pushed here.
        from pydantic import ValidationError  # noqa: PLC0415

        from customer_model_factory.errors import InputError  # noqa: PLC0415

        local = os.environ.get("PRE_COMMIT_LOCAL_BRANCH") or to_ref
        remote_ref = os.environ.get("PRE_COMMIT_REMOTE_BRANCH") or local
        try:
            return (
                PushUpdate(
                    local_ref=local,
                    local_sha=to_ref,
                    remote_ref=remote_ref,
                    remote_sha=os.environ.get("PRE_COMMIT_FROM_REF") or ZERO_SHA,
                ),
            )
        except ValidationError:
            raise InputError(
                "PRE_COMMIT_TO_REF / PRE_COMMIT_FROM_REF are not 40-hex-digit object ids"
            ) from None
    return ()


@app.command("verify")
def verify_command(  # noqa: PLR0917
    ctx: typer.Context,
    root: Annotated[
        Path, typer.Option("--root", help="Repository (or directory) to verify.", file_okay=False)
    ] = Path(),
    staged: Annotated[
        bool, typer.Option("--staged", help="Scan the staged content (pre-commit).")
    ] = False,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            metavar="REV",
            help="Scan the files changed since this revision, and the commits since it.",
        ),
    ] = None,
    history: Annotated[
        bool,
        typer.Option(
            "--history",
            help="Scan every blob reachable in git history, and all git metadata (commits, "
            "authors, tags, ref names, notes).",
        ),
    ] = False,
    all_files: Annotated[
        bool,
        typer.Option("--all-files", help="Scan every file, outside git, honouring .gitignore."),
    ] = False,
    commit_msg: Annotated[
        Path | None,
        typer.Option(
            "--commit-msg",
            metavar="FILE",
            help="Scan a commit message file and the author/committer identity (commit-msg hook).",
            dir_okay=False,
        ),
    ] = None,
    push: Annotated[
        list[str] | None,
        typer.Option(
            "--push",
            metavar="REF",
            help="Scan exactly what pushing REF would publish (repeatable).",
        ),
    ] = None,
    pre_push: Annotated[
        bool,
        typer.Option(
            "--pre-push",
            help="Scan what the push being made publishes (git's pre-push stdin, or pre-commit's "
            "PRE_COMMIT_* variables).",
        ),
    ] = False,
    remote: Annotated[
        str | None,
        typer.Option(
            "--remote",
            metavar="NAME",
            help="With --push/--pre-push: the remote whose refs are already published.",
        ),
    ] = None,
    allow_shallow: Annotated[
        bool,
        typer.Option(
            "--allow-shallow", help="Accept --history on a shallow clone (a warning, not exit 1)."
        ),
    ] = False,
    denylist: Annotated[
        list[Path] | None,
        typer.Option(
            "--denylist",
            metavar="FILE",
            help="Plaintext denylist (keep it outside the public tree).",
            dir_okay=False,
        ),
    ] = None,
    hashed_denylist: Annotated[
        list[Path] | None,
        typer.Option(
            "--hashed-denylist",
            metavar="FILE",
            help="Hashed denylist, in addition to boundary-denylist.json at the repository's top "
            "(always read when present).",
            dir_okay=False,
        ),
    ] = None,
    path_glob: Annotated[
        list[str] | None,
        typer.Option("--path-glob", metavar="GLOB", help="Path glob that must not exist."),
    ] = None,
    schema_id: Annotated[
        list[str] | None,
        typer.Option("--schema-id", metavar="ID", help="Schema $id that must not appear."),
    ] = None,
    separator_insensitive: Annotated[
        bool,
        typer.Option(
            "--separator-insensitive", help="Match --denylist entries ignoring ' -_.' separators."
        ),
    ] = False,
    denylist_digest: Annotated[
        list[str] | None,
        typer.Option(
            "--denylist-digest",
            metavar="sha256:HEX",
            help="Pin the hashed denylist's file digest (repeatable): an edited file is exit 2.",
        ),
    ] = None,
    confusables: Annotated[
        bool,
        typer.Option(
            "--confusables", help="Fold Unicode TR39 confusables (Cyrillic 'а' as Latin 'a')."
        ),
    ] = False,
    max_decode_depth: Annotated[
        int,
        typer.Option(
            "--max-decode-depth",
            min=0,
            max=8,
            help="Nested encodings (percent, escapes, entities, base64) to decode; 0: none.",
        ),
    ] = 3,
    allowlist: Annotated[
        Path | None,
        typer.Option(
            "--allowlist",
            help="Allowlist TOML (default: boundary-allowlist.toml at the root when present).",
            dir_okay=False,
        ),
    ] = None,
    allow_blanket_allowlist: Annotated[
        bool,
        typer.Option(
            "--allow-blanket-allowlist",
            help="Accept an allowlist entry that suppresses every rule in every path.",
        ),
    ] = False,
    exclude: Annotated[
        list[str] | None,
        typer.Option("--exclude", metavar="GLOB", help="gitwildmatch glob of paths not to scan."),
    ] = None,
    plugins: Annotated[
        bool, typer.Option("--plugins/--no-plugins", help="Use the rules of installed packs.")
    ] = True,
    engine: Annotated[
        EngineChoice, typer.Option("--engine", help="Plaintext matching engine.")
    ] = EngineChoice.auto,
    max_file_size: Annotated[
        int,
        typer.Option(
            "--max-file-size",
            min=1,
            help="Files (and archive members) above this many bytes are errors, not scanned.",
        ),
    ] = 10 * 1024 * 1024,
    max_archive_depth: Annotated[
        int,
        typer.Option(
            "--max-archive-depth",
            min=1,
            max=16,
            help="Archives nested deeper are errors, not scanned.",
        ),
    ] = 4,
    jobs: Annotated[
        int | None, typer.Option("--jobs", "-j", min=1, help="Worker processes (default: cores).")
    ] = None,
    show_matches: Annotated[
        bool,
        typer.Option("--show-matches", help="Print matched text (local use only: never in CI)."),
    ] = False,
    today: Annotated[
        str | None,
        typer.Option(
            "--today", metavar="DATE", help="Date allowlist expiries are judged on (YYYY-MM-DD)."
        ),
    ] = None,
    progress: Annotated[
        bool | None,
        typer.Option("--progress/--no-progress", help="Progress bar (default: on a terminal)."),
    ] = None,
    fmt: Annotated[
        ReportFormat, typer.Option("--format", "-f", help="text, json or sarif.")
    ] = ReportFormat.text,
    output: OutputOption = None,
) -> None:
    """Scan the repository for proprietary identifiers; exit 1 when any leaked."""
    from customer_model_factory.boundary import BoundaryRequest, verify_boundary  # noqa: PLC0415
    from customer_model_factory.boundary.reporters import render_report  # noqa: PLC0415
    from customer_model_factory.cli._app import run_context  # noqa: PLC0415
    from customer_model_factory.cli._paths import refuse_overwrite  # noqa: PLC0415
    from customer_model_factory.errors import InputError  # noqa: PLC0415

    scope = _scope(
        staged=staged,
        since=since,
        history=history,
        all_files=all_files,
        commit_msg=commit_msg,
        push=bool(push) or pre_push,
    )
    refuse_overwrite(
        {"--output": output}, [*(denylist or ()), *(hashed_denylist or ()), allowlist, commit_msg]
    )
    try:
        judged_on = dt.date.fromisoformat(today) if today else None
    except ValueError:
        raise InputError(f"--today {today!r} is not a YYYY-MM-DD date") from None
    request = BoundaryRequest(
        root=root,
        scope=scope,  # type: ignore[arg-type]
        since=since,
        push=_pre_push_updates() if pre_push else (),  # type: ignore[arg-type]
        push_refs=tuple(push or ()),
        # pre-commit names the remote of a pre-push run here (git passes it as "$1").
        remote=remote or (os.environ.get("PRE_COMMIT_REMOTE_NAME") if pre_push else None),
        commit_msg=commit_msg,
        denylists=tuple(denylist or ()),
        hashed_denylists=tuple(hashed_denylist or ()),
        path_globs=tuple(path_glob or ()),
        schema_ids=tuple(schema_id or ()),
        separator_insensitive=separator_insensitive,
        allowlist=allowlist,
        allow_blanket_allowlist=allow_blanket_allowlist,
        exclude=tuple(exclude or ()),
        engine=engine.value,  # type: ignore[arg-type]
        max_file_size=max_file_size,
        max_archive_depth=max_archive_depth,
        jobs=jobs,
        show_matches=show_matches,
        today=judged_on,
        allow_shallow=allow_shallow,
        denylist_digests=tuple(denylist_digest or ()),
        confusables=confusables,
        max_decode_depth=max_decode_depth,
    )
    context = run_context(ctx)
    manager = context.plugin_manager if plugins else None
    if context.output.progress if progress is None else progress:
        from rich.progress import (  # noqa: PLC0415
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TimeRemainingColumn,
        )

        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            transient=True,
            # No refresh thread: the scan may fork its workers, which needs a single thread.
            auto_refresh=False,
            console=_stderr_console(),
        ) as bar:
            task = bar.add_task("boundary verify", total=None)

            def on_progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total, refresh=True)

            report = verify_boundary(request, plugin_manager=manager, progress=on_progress)
    else:
        report = verify_boundary(request, plugin_manager=manager)
    emit(render_report(report, fmt.value), output)
    if output is not None:
        typer.echo(render_report(report, "text").splitlines()[-1], err=True)
    raise typer.Exit(report.exit_code)


def _stderr_console() -> object:
    from rich.console import Console  # noqa: PLC0415

    return Console(stderr=True)


@app.command("hash-denylist")
def hash_denylist_command(  # noqa: PLR0917 - typer maps each parameter to an option
    identifiers: Annotated[
        Path,
        typer.Argument(
            help="Plaintext identifiers in the --denylist format ('identifier  # label', "
            "'path:' and 'schema:' lines); keep it private.",
            dir_okay=False,
        ),
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="The hashed denylist to write.", dir_okay=False)
    ],
    salt: Annotated[
        str | None,
        typer.Option("--salt", help="Salt (default: a fresh random one; at least 8 characters)."),
    ] = None,
    separator_insensitive: Annotated[
        bool,
        typer.Option("--separator-insensitive", help="Hash with ' -_.' separators removed."),
    ] = False,
    max_tokens: Annotated[
        int | None,
        typer.Option(
            "--max-tokens", min=1, max=12, help="Widest word window to hash when scanning."
        ),
    ] = None,
    fingerprints: Annotated[
        bool,
        typer.Option(
            "--fingerprints/--no-fingerprints",
            help="Publish 32-bit fingerprints (polymix64-v1): scans hash few windows with sha256.",
        ),
    ] = True,
) -> None:
    """Hash a plaintext identifier list into a denylist the public repo can commit."""
    from customer_model_factory.boundary import hash_denylist_file  # noqa: PLC0415
    from customer_model_factory.cli._paths import refuse_overwrite  # noqa: PLC0415

    refuse_overwrite({"--output": output}, [identifiers])
    denylist = hash_denylist_file(
        identifiers,
        salt=salt,
        warn=lambda warning: typer.echo(warning, err=True),
        separator_insensitive=separator_insensitive,
        max_tokens=max_tokens,
        fingerprints=fingerprints,
    )
    emit(denylist.model_dump_json(indent=2) + "\n", output)
    typer.echo(f"wrote {output}: {len(denylist.hashes)} hashed identifier(s)", err=True)


@app.command("engines")
def engines_command() -> None:
    """List the matching engines importable here, fastest first (auto picks the first)."""
    from customer_model_factory.boundary import available_engines  # noqa: PLC0415

    for name in available_engines():
        typer.echo(name)
