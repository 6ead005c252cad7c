"""Typed exceptions of customer-model-factory.

Every error the library raises on purpose derives from :class:`CMFError` and carries the exit code
the CLI uses for it, so only the CLI turns errors into output::

    CMFError (exit 3: internal)
    ├── InputError (exit 2: bad input or usage)
    │   ├── ConfigError            a workspace, config, denylist or allowlist is malformed
    │   ├── DataFormatError        a data file cannot be read as its format (JSON, JSONL, TOML)
    │   ├── ManifestIntegrityError a manifest's recomputed hash differs from the stored one
    │   ├── SchemaVersionError     a manifest declares a schema version this release cannot read
    │   ├── CanonicalizationError  a value has no canonical JSON form (NaN, Infinity, non-str key)
    │   ├── ArtefactError          an artefact URI is malformed or unsafe, or names nothing stored
    │   │   └── ArtefactIntegrityError  an artefact's bytes differ from its recorded digest
    │   ├── LedgerError            a run ledger request is illegal (unknown run, illegal transition)
    │   ├── StageInputError        a stage refuses its input (train split, no claim boundary, ...)
    │   └── TrainingError          a training request is refused (lane, report, traces, URIs)
    ├── PluginError (exit 2)       a plugin cannot be loaded or declares an incompatible API
    ├── PipelineStageError         a pipeline step failed: the step's error, with its exit code
    └── BlockedError (exit 1)      the input was checked and a gate blocked it
        ├── PublishError           a run cannot be published (its gate receipt is not PASS)
        │   └── PublishConflictError  other content is already published under that version
        ├── CalibrationError       a calibration set is too small or no threshold meets the goal
        └── TrainingFailedError    a training lane raised while fitting or saving

Errors carry their context (file, line, field, expected and actual hash, plugin) as attributes;
``str(error)`` is the one line the CLI prints.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Final

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_BLOCKED",
    "EXIT_INTERNAL",
    "EXIT_OK",
    "ArtefactError",
    "ArtefactIntegrityError",
    "BlockedError",
    "CMFError",
    "CalibrationError",
    "CanonicalizationError",
    "ConfigError",
    "DataFormatError",
    "InputError",
    "LedgerError",
    "ManifestIntegrityError",
    "PipelineStageError",
    "PluginError",
    "PublishConflictError",
    "PublishError",
    "SchemaVersionError",
    "StageInputError",
    "TrainingError",
    "TrainingFailedError",
]

EXIT_OK: Final = 0
EXIT_BLOCKED: Final = 1
EXIT_BAD_INPUT: Final = 2
EXIT_INTERNAL: Final = 3


def _where(path: str | Path | None, line: int | None) -> str:
    if path is None:
        return ""
    return f"{path}:{line}: " if line is not None else f"{path}: "


class CMFError(Exception):
    """Base class of every error customer-model-factory raises on purpose.

    :param message: one line saying what is wrong, never echoing a secret.
    :param path: the file concerned, when there is one.
    :param line: the 1-based line in ``path``, when there is one.
    :param field: the field concerned, when there is one.
    """

    exit_code: ClassVar[int] = EXIT_INTERNAL

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.message = message
        self.path = str(path) if path is not None else None
        self.line = line
        self.field = field
        super().__init__(self._render())

    def _render(self) -> str:
        field = f"field '{self.field}': " if self.field else ""
        return f"{_where(self.path, self.line)}{field}{self.message}"


class InputError(CMFError):
    """The input or the command line is wrong (exit 2)."""

    exit_code: ClassVar[int] = EXIT_BAD_INPUT


class ConfigError(InputError):
    """A workspace, pipeline config, denylist or allowlist file is malformed or inconsistent."""


class DataFormatError(InputError):
    """A data file cannot be read in its declared format (missing, empty, not JSONL, ...)."""


class CanonicalizationError(InputError):
    """A value has no canonical JSON form: NaN, Infinity, a non-string key or an unknown type."""


class ManifestIntegrityError(InputError):
    """A manifest's recomputed hash differs from the hash written in it.

    :param path: the manifest file.
    :param hash_field: the name of the hash field (``dataset_hash``, ``manifest_hash``, ...).
    :param expected: the hash stored in the file.
    :param actual: the hash recomputed from the file's content.
    """

    def __init__(
        self, *, path: str | Path | None, hash_field: str, expected: str, actual: str
    ) -> None:
        self.hash_field = hash_field
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"{hash_field} mismatch: stored {expected}, recomputed {actual} (the file was "
            "modified after it was written)",
            path=path,
        )


class SchemaVersionError(InputError):
    """A manifest declares a ``schema_version`` this release does not read.

    :param found: the version in the file.
    :param supported: the versions this release reads.
    """

    def __init__(
        self, *, path: str | Path | None, found: object, supported: tuple[str, ...]
    ) -> None:
        self.found = found
        self.supported = supported
        super().__init__(
            f"unknown schema_version {found!r}; this release reads {', '.join(supported)}",
            path=path,
            field="schema_version",
        )


class PluginError(InputError):
    """A plugin cannot be loaded, or it targets a plugin API this release does not provide.

    :param plugin: the plugin or distribution name.
    """

    def __init__(self, message: str, *, plugin: str | None = None) -> None:
        self.plugin = plugin
        super().__init__(f"plugin {plugin!r}: {message}" if plugin else message)


class BlockedError(CMFError):
    """The input was checked and a gate blocked it (exit 1)."""

    exit_code: ClassVar[int] = EXIT_BLOCKED


class ArtefactError(InputError):
    """An artefact URI is malformed or unsafe, or names an object that is not stored (exit 2).

    :param code: the finding code a stage records for it.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str = "TRAIN_ARTEFACT_UNAVAILABLE",
        path: str | Path | None = None,
    ) -> None:
        self.code = code
        super().__init__(message, path=path)


class ArtefactIntegrityError(ArtefactError):
    """An artefact's bytes no longer match the digest it is stored or referenced under (exit 2).

    :param digest: the expected digest (``sha256:<hex>``).
    :param actual: the digest of the bytes actually read.
    """

    def __init__(self, *, digest: str, actual: str, path: str | Path | None = None) -> None:
        self.digest = digest
        self.actual = actual
        super().__init__(
            f"artefact {digest} is corrupted: its bytes hash to {actual}",
            code="TRAIN_ARTEFACT_DIGEST_MISMATCH",
            path=path,
        )


class LedgerError(InputError):
    """A run ledger request is illegal: an unknown run, an illegal state transition (exit 2).

    :param code: the finding code a stage records for it.
    :param run_id: the run concerned, when there is one.
    """

    def __init__(self, message: str, *, code: str, run_id: str | None = None) -> None:
        self.code = code
        self.run_id = run_id
        super().__init__(f"run {run_id}: {message}" if run_id else message)


class StageInputError(InputError):
    """A stage refuses its input for a reason that has a finding code (exit 2): a benchmark on
    the training split, no claim boundary, a calibration result of another model, ...

    :param code: the finding code (``BENCH_*``, ``SELECT_*``); it starts the message.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str,
        path: str | Path | None = None,
        field: str | None = None,
    ) -> None:
        self.code = code
        super().__init__(f"{code}: {message}", path=path, field=field)


class PublishError(BlockedError):
    """A run cannot be published: its gate receipt is missing or FAIL (exit 1).

    :param code: the finding code a stage records for it.
    :param run_id: the run concerned.
    """

    def __init__(self, message: str, *, code: str, run_id: str | None = None) -> None:
        self.code = code
        self.run_id = run_id
        super().__init__(f"run {run_id}: {message}" if run_id else message)


class PublishConflictError(PublishError):
    """Other content is already published under a ``(bundle_id, version)`` (exit 1).

    :param bundle_id: the bundle.
    :param version: the version already taken.
    :param existing: the digest published under it.
    :param offered: the digest refused.
    """

    def __init__(self, *, bundle_id: str, version: str, existing: str, offered: str) -> None:
        self.bundle_id = bundle_id
        self.version = version
        self.existing = existing
        self.offered = offered
        super().__init__(
            f"bundle {bundle_id!r} version {version!r} is already published as {existing}; "
            f"refusing other content {offered} (publish it under a new version)",
            code="TRAIN_PUBLISH_CONFLICT",
        )


class CalibrationError(BlockedError):
    """A calibration set is too small, or no threshold satisfies the objective (exit 1).

    :param code: the finding code a stage records for it.
    """

    def __init__(self, message: str, *, code: str) -> None:
        self.code = code
        super().__init__(message)


class TrainingError(InputError):
    """A training request is refused before anything is trained (exit 2).

    :param code: the ``TRAIN_*`` finding code (``TRAIN_LANE_UNKNOWN``, ...).
    """

    def __init__(
        self,
        message: str,
        *,
        code: str,
        path: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.code = code
        super().__init__(message, path=path, line=line, field=field)


class TrainingFailedError(BlockedError):
    """A training lane raised while fitting or saving; the run stays resumable (exit 1).

    :param code: the finding code (``TRAIN_LANE_FAILED``).
    :param run_id: the run concerned.
    """

    def __init__(self, message: str, *, code: str, run_id: str | None = None) -> None:
        self.code = code
        self.run_id = run_id
        super().__init__(f"run {run_id}: {message}" if run_id else message)


class PipelineStageError(CMFError):
    """A step of ``cmf pipeline run`` raised: the step's error, named, with the same exit code.

    :param step: the step that failed (``dataset``, ``train``, ...).
    :param error: the error it raised.
    """

    def __init__(self, step: str, error: CMFError) -> None:
        self.step = step
        self.error = error
        self.exit_code = error.exit_code  # type: ignore[misc]
        self.code = getattr(error, "code", None)
        super().__init__(f"step {step}: {error}")
