"""The review queue and the incident queue: small JSONL files read before the decision log.

A review file holds one :class:`~.models.ReviewRecord` a line (a human's verdict on a flagged
decision); an incident file one :class:`~.models.IncidentRecord` a line (an unsafe output that
was approved). Both are evidence, so a malformed line is an error finding at ``file:line``
(monitoring health ``evidence_blocked``), like a malformed decision-log line. An empty file
(0 bytes) is an empty queue.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Generic, TypeVar

from pydantic import ValidationError

from customer_model_factory.canonical import sha256_file
from customer_model_factory.errors import DataFormatError
from customer_model_factory.findings import Finding
from customer_model_factory.io import JsonlReader
from customer_model_factory.stages.dataset.models import parse_rfc3339
from customer_model_factory.stages.monitoring.models import IncidentRecord, ReviewRecord

__all__ = ["QueueFile", "read_incidents", "read_reviews"]

_Record = TypeVar("_Record", ReviewRecord, IncidentRecord)
_TIME_FIELD: Final = {ReviewRecord: "reviewed_at", IncidentRecord: "reported_at"}


@dataclass
class QueueFile(Generic[_Record]):
    """The valid records of a queue file, each with its line, and the findings of the others."""

    path: Path
    digest: str = ""
    records: list[tuple[int, _Record, dt.datetime]] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)


def _read(path: Path, model: type[_Record], code: str) -> QueueFile[_Record]:
    queue: QueueFile[_Record] = QueueFile(path)
    if path.is_dir():
        raise DataFormatError("is a directory; give a JSONL file", path=path)
    if not path.exists():
        raise DataFormatError("file not found", path=path)
    if not path.is_file():
        raise DataFormatError("is not a regular file", path=path)
    before = sha256_file(path)
    if path.stat().st_size == 0:
        queue.digest = before
        return queue
    reader = JsonlReader(path)
    for row in reader:
        try:
            record = model.model_validate(row.value, strict=True)
        except ValidationError as error:
            first = error.errors()[0]
            extra = first["type"] == "extra_forbidden"
            queue.findings.append(
                Finding(
                    code=code,
                    severity="error",
                    message=f"a field that is not a {model.__name__} field"
                    if extra
                    else str(first["msg"]),
                    field=None if extra else ".".join(str(p) for p in first["loc"]) or None,
                    location=f"{path}:{row.line}",
                )
            )
            continue
        name = _TIME_FIELD[model]
        instant = parse_rfc3339(getattr(record, name))
        if instant is None:
            queue.findings.append(
                Finding(
                    code=code,
                    severity="error",
                    message="is not an RFC 3339 date-time with an offset",
                    field=name,
                    location=f"{path}:{row.line}",
                )
            )
            continue
        queue.records.append((row.line, record, instant))
    for problem in reader.problems:
        queue.findings.append(
            Finding(code=code, severity="error", message=problem.message, location=problem.location)
        )
    queue.digest = sha256_file(path)
    if queue.digest != before:
        raise DataFormatError("the file changed while it was read; read it again", path=path)
    return queue


def read_reviews(path: str | Path) -> QueueFile[ReviewRecord]:
    """Read a review file (``MONITOR_REVIEW_LINE_INVALID`` for each bad line).

    :raises DataFormatError: the file is missing or a directory.
    """
    return _read(Path(path), ReviewRecord, "MONITOR_REVIEW_LINE_INVALID")


def read_incidents(path: str | Path) -> QueueFile[IncidentRecord]:
    """Read an incident file (``MONITOR_INCIDENT_LINE_INVALID`` for each bad line).

    :raises DataFormatError: the file is missing or a directory.
    """
    return _read(Path(path), IncidentRecord, "MONITOR_INCIDENT_LINE_INVALID")
