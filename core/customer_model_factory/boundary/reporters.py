"""Render a :class:`BoundaryReport` as text, JSON or SARIF 2.1.0.

Every rendering is redacted the same way as the report: rules are named by label or hash prefix,
and a matched text appears only when the scan kept it (``--show-matches``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

from customer_model_factory._version import __version__
from customer_model_factory.boundary.scanner import LEAK_CODES, BoundaryReport, Leak
from customer_model_factory.findings import FINDING_CODES, Finding

__all__ = [
    "SARIF_SCHEMA_URI",
    "render_json",
    "render_report",
    "render_sarif",
    "render_text",
    "sarif_document",
]

SARIF_SCHEMA_URI: Final = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
_TOOL_NAME: Final = "cmf-boundary"
_INFO_URI: Final = "https://github.com/customer-model-factory/customer-model-factory"
_LEVELS: Final = {"error": "error", "warning": "warning", "info": "note"}


def _leak_line(leak: Leak) -> str:
    where = leak.path
    if leak.line is not None:
        where += f":{leak.line}:{leak.col}"
    elif leak.col is not None:
        where += f" (path, col {leak.col})"
    text = f"{where}: {leak.code} rule {leak.rule_id} ({leak.rule_kind}, from {leak.origin})"
    if leak.form != "text":
        text += f" read as {leak.form}"
    if leak.decoding:
        text += f", revealed by {leak.decoding} decoding"
    if leak.commits:
        shown = ", ".join(commit[:12] for commit in leak.commits[:5])
        more = f" +{len(leak.commits) - 5}" if len(leak.commits) > 5 else ""
        text += f" in commits {shown}{more}"
    if leak.match is not None:
        text += f": match {leak.match!r}"
    return text


def _json_text(value: Any) -> str:
    import orjson  # noqa: PLC0415

    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode() + "\n"


def render_text(report: BoundaryReport) -> str:
    """One line per leak (``path:line:col``), one per other finding, then a summary line."""
    lines = [_leak_line(leak) for leak in report.leaks]
    lines.extend(
        f"{finding.severity}: {finding.location + ': ' if finding.location else ''}"
        f"{finding.code} {finding.message}"
        for finding in report.findings
        if finding.code not in LEAK_CODES
    )
    kinds = ", ".join(f"{kind} {count}" for kind, count in report.rules.items() if count)
    verdict = "clean" if report.clean else f"{len(report.leaks)} leak(s) found"
    if not report.leaks and not report.clean:
        verdict = "blocked by error findings"
    lines.append(
        f"boundary verify ({report.scope}{' ' + report.rev if report.rev else ''}, engine "
        f"{report.engine}, {report.parallel_workers} worker(s)): {report.files_scanned} files, "
        f"{report.bytes_scanned / 1e6:.1f} MB scanned in {report.elapsed_s:.2f} s; "
        f"{sum(report.decoded.values())} decoded, {len(report.too_large)} too large, "
        f"{len(report.unscanned)} unscanned; "
        f"{sum(report.rules.values())} rules ({kinds or 'none'}) from "
        f"{len(report.rule_origins)} source(s); {report.suppressed} allowlisted; {verdict}"
    )
    return "\n".join(lines) + "\n"


def render_json(report: BoundaryReport) -> str:
    """The report as JSON with sorted keys (schema ``boundary-report``)."""
    return _json_text(report.model_dump(mode="json"))


def _location(path: str, line: int | None, col: int | None) -> dict[str, Any]:
    physical: dict[str, Any] = {"artifactLocation": {"uri": quote(path), "uriBaseId": "%SRCROOT%"}}
    if line is not None:
        physical["region"] = {"startLine": line, "startColumn": col or 1}
    return {"physicalLocation": physical}


def _finding_location(finding: Finding) -> list[dict[str, Any]]:
    if not finding.location:
        return []
    path, _, line = finding.location.rpartition(":")
    if line.isdigit() and path:
        return [_location(path, int(line), None)]
    return [_location(finding.location, None, None)]


def sarif_document(report: BoundaryReport) -> dict[str, Any]:
    """Return the SARIF 2.1.0 log of the report: one run, one result per leak or finding."""
    codes = sorted({f.code for f in report.findings} | {leak.code for leak in report.leaks})
    rules = [
        {
            "id": code,
            "name": "".join(part.capitalize() for part in code.lower().split("_")),
            "shortDescription": {"text": FINDING_CODES.get(code, code)},
            "defaultConfiguration": {"level": "error" if code in LEAK_CODES else "warning"},
        }
        for code in codes
    ]
    index = {code: number for number, code in enumerate(codes)}
    results: list[dict[str, Any]] = []
    for leak in report.leaks:
        message = f"{FINDING_CODES.get(leak.code, leak.code)} Rule {leak.rule_id} ({leak.rule_kind}"
        message += f", from {leak.origin})."
        if leak.decoding:
            message += f" Revealed by {leak.decoding} decoding."
        if leak.match is not None:
            message += f" Match: {leak.match!r}."
        properties: dict[str, Any] = {
            "boundaryRule": leak.rule_id,
            "ruleKind": leak.rule_kind,
            "origin": leak.origin,
            "form": leak.form,
        }
        if leak.commits:
            properties["commits"] = list(leak.commits)
        if leak.decoding:
            properties["decoding"] = leak.decoding
        results.append(
            {
                "ruleId": leak.code,
                "ruleIndex": index[leak.code],
                "level": "error",
                "message": {"text": message},
                "locations": [_location(leak.path, leak.line, leak.col)],
                "partialFingerprints": {
                    "boundaryLeak/v1": f"{leak.path}:{leak.line or 0}:{leak.col or 0}:"
                    f"{leak.rule_id}"
                },
                "properties": properties,
            }
        )
    for finding in report.findings:
        if finding.code in LEAK_CODES:
            continue
        result: dict[str, Any] = {
            "ruleId": finding.code,
            "ruleIndex": index[finding.code],
            "level": _LEVELS[finding.severity],
            "message": {"text": finding.message},
        }
        locations = _finding_location(finding)
        if locations:
            result["locations"] = locations
        results.append(result)
    return {
        "$schema": SARIF_SCHEMA_URI,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": _TOOL_NAME,
                        "version": __version__,
                        "informationUri": _INFO_URI,
                        "rules": rules,
                    }
                },
                "originalUriBaseIds": {"%SRCROOT%": {"uri": _root_uri(report.root)}},
                "results": results,
                "properties": {
                    "scope": report.scope,
                    "engine": report.engine,
                    "filesScanned": report.files_scanned,
                    "decoded": report.decoded,
                    "tooLarge": len(report.too_large),
                    "unscanned": len(report.unscanned),
                    "suppressed": report.suppressed,
                },
            }
        ],
    }


def _root_uri(root: str) -> str:
    uri = Path(root).resolve().as_uri()
    return uri if uri.endswith("/") else uri + "/"


def render_sarif(report: BoundaryReport) -> str:
    """The SARIF 2.1.0 log as JSON text."""
    return _json_text(sarif_document(report))


def render_report(report: BoundaryReport, fmt: str) -> str:
    """Render in ``text``, ``json`` or ``sarif``."""
    if fmt == "json":
        return render_json(report)
    if fmt == "sarif":
        return render_sarif(report)
    return render_text(report)
