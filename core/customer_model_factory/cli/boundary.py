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
    "tree (exit 0 clean, 1 leaks found, 2 bad configuration or input)."
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
    staged: bool, since: str | None, history: bool, all_files: bool
) -> tuple[str, str | None]:
    chosen = [
        name
        for name, on in (
            ("staged", staged),
            ("since", since is not None),
            ("history", history),
            ("all_files", all_files),
        )
        if on
    ]
    if len(chosen) > 1:
        raise typer.BadParameter(
            "choose one of --staged, --since, --history, --all-files", param_hint="scope"
        )
    return (chosen[0] if chosen else "tracked"), since


def _progress_enabled(choice: bool | None) -> bool:
    if choice is not None:
        return choice
    return sys.stderr.isatty() and not os.environ.get("CI")


@app.command("verify")
def verify_command(  # noqa: PLR0917
    root: Annotated[
        Path, typer.Option("--root", help="Repository (or directory) to verify.", file_okay=False)
    ] = Path(),
    staged: Annotated[
        bool, typer.Option("--staged", help="Scan the staged content (pre-commit).")
    ] = False,
    since: Annotated[
        str | None,
        typer.Option("--since", metavar="REV", help="Scan the files changed since this revision."),
    ] = None,
    history: Annotated[
        bool, typer.Option("--history", help="Scan every blob reachable in git history.")
    ] = False,
    all_files: Annotated[
        bool,
        typer.Option("--all-files", help="Scan every file, outside git, honouring .gitignore."),
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
            help="Hashed denylist (default: boundary-denylist.json at the root when present).",
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
            "--max-file-size", min=1, help="Files above this many bytes are reported, not scanned."
        ),
    ] = 10 * 1024 * 1024,
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
    from customer_model_factory.boundary import (  # noqa: PLC0415
        Scope,
        VerifyOptions,
        gather_rules,
        load_allowlist,
        verify,
    )
    from customer_model_factory.boundary.reporters import render_report  # noqa: PLC0415
    from customer_model_factory.boundary.scanner import collect_pack_identifiers  # noqa: PLC0415
    from customer_model_factory.errors import InputError  # noqa: PLC0415

    scope_name, rev = _scope(staged, since, history, all_files)
    try:
        judged_on = dt.date.fromisoformat(today) if today else None
    except ValueError:
        raise InputError(f"--today {today!r} is not a YYYY-MM-DD date") from None
    identifiers, plugin_findings = collect_pack_identifiers() if plugins else ([], [])
    rules = gather_rules(
        root,
        identifiers=identifiers,
        denylists=denylist or [],
        hashed_denylists=hashed_denylist or None,
        path_globs=path_glob or [],
        schema_ids=schema_id or [],
        separator_insensitive=separator_insensitive,
        denylist_digests=denylist_digest or [],
    )
    options = VerifyOptions(
        root=root,
        scope=Scope(scope_name, rev),  # type: ignore[arg-type]
        engine=engine.value,  # type: ignore[arg-type]
        max_file_size=max_file_size,
        jobs=jobs,
        show_matches=show_matches,
        exclude=tuple(exclude or ()),
        today=judged_on,
        confusables=confusables,
        max_decode_depth=max_decode_depth,
    )
    loaded_allowlist = load_allowlist(allowlist) if allowlist is not None else None
    if _progress_enabled(progress):
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

            report = verify(
                rules,
                options,
                allowlist=loaded_allowlist,
                extra_findings=plugin_findings,
                progress=on_progress,
            )
    else:
        report = verify(rules, options, allowlist=loaded_allowlist, extra_findings=plugin_findings)
    emit(render_report(report, fmt.value), output)
    if output is not None:
        typer.echo(render_report(report, "text").splitlines()[-1], err=True)
    if not report.clean:
        raise typer.Exit(1)


def _stderr_console() -> object:
    from rich.console import Console  # noqa: PLC0415

    return Console(stderr=True)


@app.command("hash-denylist")
def hash_denylist_command(  # noqa: PLR0917 - typer maps each parameter to an option
    identifiers: Annotated[
        Path,
        typer.Argument(
            help="Plaintext identifiers, one a line ('identifier  # label'); keep it private.",
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
    import secrets  # noqa: PLC0415

    from customer_model_factory.boundary import make_hashed_denylist  # noqa: PLC0415
    from customer_model_factory.boundary.guessability import (  # noqa: PLC0415
        guessability_warnings,
    )
    from customer_model_factory.boundary.rules import read_identifier_lines  # noqa: PLC0415

    names, labels = read_identifier_lines(identifiers)
    for warning in guessability_warnings(identifiers, names):
        typer.echo(warning, err=True)
    denylist = make_hashed_denylist(
        names,
        salt or secrets.token_hex(16),
        separator_insensitive=separator_insensitive,
        labels=labels,
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
