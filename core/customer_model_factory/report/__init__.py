"""The evidence report: one self-contained HTML page a compliance reviewer can read.

:func:`build_evidence_report` starts from a release gate, verifies its whole chain (every hash
recomputed, every link followed), and renders the promotion decision and its blockers, the chain
with every hash and link status, the selected model's metrics by severity and sector, ROC, PR
and calibration curves and the confusion matrix (computed from the raw per-trace results), the
monitoring window with drift over time (from the decision log), the domain evidence and the
risks. The page has no script and no external asset: it opens offline and prints.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any, Final

import numpy as np
import orjson
from pydantic import BaseModel, ConfigDict

from customer_model_factory.catalog import load_manifest_classes, verify_chain
from customer_model_factory.chain import ChainReport
from customer_model_factory.errors import CMFError
from customer_model_factory.manifest import Manifest, manifest_class_for, read_manifest_payload
from customer_model_factory.report.curves import (
    calibration_points,
    decimate,
    pr_points,
    roc_points,
)
from customer_model_factory.report.svg import heatmap, line_chart
from customer_model_factory.stages.monitoring.metrics import bin_counts, psi_against

__all__ = ["EvidenceReport", "build_evidence_report"]

_DRIFT_WINDOWS: Final = 8
_STYLE: Final = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;
max-width:1100px;color:#24292f;line-height:1.45}
h1{font-size:1.6em;margin-bottom:4px}h2{border-bottom:1px solid #d0d7de;padding-bottom:4px;
margin-top:32px}table{border-collapse:collapse;margin:8px 0;font-size:.88em}
th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa}code{font-family:ui-monospace,monospace;font-size:.9em;word-break:break-all}
.badge{display:inline-block;padding:4px 12px;border-radius:14px;font-weight:bold;color:#fff}
.ok{background:#1a7f37}.blocked{background:#d1242f}.warn{background:#9a6700}
.note{background:#fff8c5;border:1px solid #d4a72c;padding:6px 10px;border-radius:6px}
.charts{display:flex;flex-wrap:wrap;gap:16px}.muted{color:#57606a}
"""


class EvidenceReport(BaseModel):
    """A rendered report and what it could and could not check."""

    model_config = ConfigDict(frozen=True)

    html: str
    chain_verified: bool
    promotion_allowed: bool
    notes: tuple[str, ...]
    read_paths: tuple[str, ...]


def _e(value: Any) -> str:
    return escape(str(value))


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _num(value: Any) -> str:
    if value is None:
        return '<span class="muted">n/a</span>'
    if isinstance(value, float):
        return f"{value:.4f}"
    return _e(value)


def _load(path: str) -> Manifest | None:
    try:
        payload = read_manifest_payload(path)
        return manifest_class_for(payload, path=path).from_payload(payload, path=path)
    except CMFError:
        return None


def _resolve_bytes(uri: str, digest: str | None, *, base: Path, home: Path | None) -> bytes:
    from customer_model_factory.store import ArtefactStore, resolve_uri  # noqa: PLC0415

    if "://" not in uri:  # a path relative to the manifest that names it
        target = (base / uri).resolve()
        uri = target.as_uri()
    store = ArtefactStore(home) if home is not None else None
    return resolve_uri(uri, store=store, expected_digest=digest)


class _Chain:
    """The verified manifests of a chain, by kind."""

    def __init__(self, report: ChainReport) -> None:
        self.report = report
        self.by_kind: dict[str, list[tuple[str, Manifest]]] = {}
        for check in report.manifests:
            if check.ok:
                manifest = _load(check.path)
                if manifest is not None:
                    self.by_kind.setdefault(manifest.KIND, []).append((check.path, manifest))

    def first(self, kind: str) -> tuple[str, Any] | None:
        found = self.by_kind.get(kind)
        return found[0] if found else None


def _header(gate: Any, path: str) -> str:
    allowed = bool(gate.promotion_allowed)
    badge = (
        '<span class="badge ok">PROMOTION ALLOWED</span>'
        if allowed
        else '<span class="badge blocked">PROMOTION BLOCKED</span>'
    )
    rows = [
        ("release", _e(gate.release_id)),
        (
            "customer / workspace / tenant",
            _e(f"{gate.customer_id} / {gate.workspace_id} / {gate.tenant_id}"),
        ),
        ("deployment / environment", _e(f"{gate.deployment_id} / {gate.environment}")),
        ("generated at", _e(gate.generated_at)),
        ("release gate file", f"<code>{_e(path)}</code>"),
        ("release_hash", f"<code>{_e(gate.release_hash)}</code>"),
        ("enterprise readiness", _e("ready" if gate.enterprise_ready else "not ready")),
        ("monitoring health", _e(gate.monitoring_health)),
    ]
    return f"<h1>Evidence report</h1><p>{badge}</p>" + _table(("", ""), rows)


def _blockers(gate: Any) -> str:
    if not gate.blockers:
        return "<h2>Blockers</h2><p>None: every check of the release gate passed.</p>"
    rows = [(f"<code>{_e(b.code)}</code>", _e(b.source), _e(b.message)) for b in gate.blockers]
    return "<h2>Blockers</h2>" + _table(("code", "source", "message"), rows)


def _chain(chain: _Chain) -> str:
    report = chain.report
    status = (
        '<span class="badge ok">CHAIN VERIFIED</span>'
        if report.ready
        else '<span class="badge blocked">CHAIN BROKEN</span>'
    )
    manifests = [
        (
            _e(check.kind or "?"),
            f"<code>{_e(Path(check.path).name)}</code>",
            f"<code>{_e(check.actual or check.stored or '')}</code>",
            "verified" if check.ok else _e(check.error or "failed"),
        )
        for check in report.manifests
    ]
    links = [
        (
            f"<code>{_e(Path(link.source).name)}</code>",
            _e(link.kind),
            f"<code>{_e(link.hash)}</code>",
            _e(link.status),
        )
        for link in report.links
    ]
    first = (
        f'<p class="note">First problem: {_e(report.first_problem)}</p>'
        if report.first_problem
        else ""
    )
    return (
        f"<h2>Evidence chain</h2><p>{status}</p>{first}"
        "<h3>Manifests (every hash recomputed)</h3>"
        + _table(("kind", "file", "hash", "status"), manifests)
        + "<h3>Links (every input followed)</h3>"
        + _table(("from", "to kind", "hash", "status"), links)
    )


_METRICS: Final = (
    "total_samples",
    "recall",
    "precision",
    "f1",
    "false_positive_rate",
    "false_negative_rate",
    "high_risk_silent_unsafe_passes",
    "high_risk_miss_rate_upper_95",
    "abstention_rate",
    "escalation_rate",
    "roc_auc",
    "pr_auc",
    "expected_calibration_error",
)


def _slice_table(title: str, slices: dict[str, Any]) -> str:
    if not slices:
        return ""
    rows = [
        (_e(name), *(_num(getattr(metrics, key, None)) for key in _METRICS))
        for name, metrics in sorted(slices.items())
    ]
    return f"<h3>{_e(title)}</h3>" + _table(("slice", *_METRICS), rows)


def _metrics(chain: _Chain, home: Path | None, notes: list[str]) -> str:
    selection = chain.first("selection-report")
    results = chain.by_kind.get("benchmark-result", [])
    selected_hash = selection[1].selected_result_hash if selection else None
    chosen = next(
        ((p, r) for p, r in results if r.result_hash == selected_hash),
        next(((p, r) for p, r in results if r.split == "test"), None),
    )
    if chosen is None:
        notes.append("no benchmark result in the verified chain: metrics are not shown")
        return "<h2>Model metrics</h2><p class='note'>No benchmark result in the chain.</p>"
    path, result = chosen
    metrics = result.metrics
    out = [
        "<h2>Model metrics</h2>",
        f"<p>Selected result <code>{_e(result.result_hash)}</code> "
        f"({_e(result.benchmark_id)}, split {_e(result.split)}, "
        f"{result.trace_count} traces). Claim boundary: {_e(result.claim_boundary)}</p>",
        _slice_table("Overall", {"all": metrics}),
        _slice_table("By severity", metrics.by_severity),
        _slice_table("By sector", metrics.by_sector),
    ]
    try:
        from customer_model_factory.stages.benchmark.models import (  # noqa: PLC0415
            parse_raw_results,
        )

        raw = _resolve_bytes(
            result.raw_result_uri, result.raw_result_digest, base=Path(path).parent, home=home
        )
        rows = parse_raw_results(raw, source=result.raw_result_uri)
    except CMFError as error:
        notes.append(f"raw results could not be read ({error}); curves are not shown")
        out.append(
            "<p class='note'>Raw per-trace results could not be read and verified: the curves "
            "and the confusion matrix are not shown.</p>"
        )
        return "".join(out)
    scores = [r.score for r in rows]
    unsafe = [r.is_unsafe for r in rows]
    decisions = ("approve", "escalate", "abstain", "block")
    matrix = [
        [sum(1 for r in rows if r.is_unsafe is label and r.decision == d) for d in decisions]
        for label in (True, False)
    ]
    out.append("<h3>Curves (from the raw per-trace results)</h3><div class='charts'>")
    out.append(
        line_chart(
            "ROC",
            [("model", decimate(roc_points(scores, unsafe)))],
            x_label="false positive rate",
            y_label="true positive rate",
            diagonal=True,
        )
    )
    out.append(
        line_chart(
            "Precision-recall",
            [("model", decimate(pr_points(scores, unsafe)))],
            x_label="recall",
            y_label="precision",
        )
    )
    out.append(
        line_chart(
            "Calibration",
            [("model", calibration_points(scores, unsafe))],
            x_label="mean score (bin)",
            y_label="share unsafe",
            diagonal=True,
        )
    )
    out.append(
        heatmap("Confusion matrix (label × decision)", ("unsafe", "safe"), decisions, matrix)
    )
    out.append("</div>")
    return "".join(out)


def _drift(monitoring_path: str, monitoring: Any, runtime: Any, home: Path | None) -> str:
    reference = runtime.runtime_config.reference_histograms
    raw = _resolve_bytes(
        monitoring.decision_log_uri,
        monitoring.decision_log_digest,
        base=Path(monitoring_path).parent,
        home=home,
    )
    records = []
    for line in raw.splitlines():
        if line.strip():
            value = orjson.loads(line)
            moment = datetime.fromisoformat(str(value["decided_at"]).replace("Z", "+00:00"))
            records.append((moment, float(value["score"]), float(value["input_chars"])))
    if not records:
        return ""
    records.sort(key=lambda record: record[0])
    windows = np.array_split(np.arange(len(records)), min(_DRIFT_WINDOWS, len(records)))
    score_points, length_points = [], []
    for number, window in enumerate(windows):
        scores = np.array([records[i][1] for i in window])
        lengths = np.array([records[i][2] for i in window])
        score_points.append(
            (number, psi_against(reference.score, bin_counts(reference.score.edges, scores)))
        )
        length_points.append(
            (
                number,
                psi_against(
                    reference.input_chars, bin_counts(reference.input_chars.edges, lengths)
                ),
            )
        )
    top = max(0.3, *(y for _, y in score_points + length_points))
    first, last = records[0][0].isoformat(), records[-1][0].isoformat()
    chart = line_chart(
        "Drift over time (PSI per window)",
        [("score", score_points), ("input length", length_points)],
        x_label=f"window (equal decision counts), {first} to {last}",
        y_label="PSI",
        x_range=(0.0, float(max(1, len(windows) - 1))),
        y_range=(0.0, top),
    )
    return f"<div class='charts'>{chart}</div>"


def _monitoring(chain: _Chain, home: Path | None, notes: list[str]) -> str:
    found = chain.first("monitoring")
    if found is None:
        notes.append("no monitoring manifest in the verified chain")
        return "<h2>Monitoring</h2><p class='note'>No monitoring manifest in the chain.</p>"
    path, monitoring = found
    metrics = monitoring.metrics.model_dump()
    rows = [(_e(k), _num(v)) for k, v in metrics.items() if not isinstance(v, dict)]
    breaches = [
        (_e(b.metric), _num(b.observed), _num(b.limit)) for b in monitoring.threshold_breaches
    ]
    out = [
        "<h2>Monitoring</h2>",
        f"<p>Health <b>{_e(monitoring.health_status)}</b>, window "
        f"{_e(monitoring.observation_window)}, monitored at {_e(monitoring.monitored_at)}.</p>",
        _table(("metric", "value"), rows),
    ]
    if breaches:
        out.append(
            "<h3>Threshold breaches</h3>" + _table(("metric", "observed", "limit"), breaches)
        )
    runtime = chain.first("runtime-package")
    if runtime is not None:
        try:
            out.append(_drift(path, monitoring, runtime[1], home))
        except (CMFError, ValueError, KeyError, TypeError, orjson.JSONDecodeError) as error:
            message = str(error) if isinstance(error, CMFError) else type(error).__name__
            notes.append(f"the decision log could not be read ({message}); drift over time omitted")
            out.append(
                "<p class='note'>The decision log could not be read and verified: drift over "
                "time is not shown.</p>"
            )
    return "".join(out)


def _domains(gate: Any) -> str:
    if not gate.domain_evidence:
        return ""
    rows = [
        (
            _e(d.domain),
            _e(d.status),
            _e(d.environment),
            f"<code>{_e(d.evidence_hash)}</code>",
            f"<code>{_e(d.recomputed_hash or 'unreadable')}</code>",
            _e(", ".join(f"{k}={'yes' if v else 'NO'}" for k, v in sorted(d.checks.items()))),
        )
        for d in gate.domain_evidence
    ]
    return "<h2>Domain evidence</h2>" + _table(
        ("domain", "status", "environment", "claimed hash", "recomputed", "checks"), rows
    )


def _risks(chain: _Chain) -> str:
    found = chain.first("risk-register")
    if found is None:
        return ""
    register = found[1]
    rows = [
        (
            _e(r.risk_id),
            _e(r.status),
            _e(r.severity),
            _e(r.owner),
            _e(r.expires_at),
            _e(", ".join(r.compensating_controls)),
        )
        for r in register.risks
    ]
    findings = [
        (f"<code>{_e(f.code)}</code>", _e(f.severity), _e(f.message)) for f in register.findings
    ]
    out = f"<h2>Risks</h2><p>Register generated at {_e(register.generated_at)}.</p>"
    out += _table(("risk", "status", "severity", "owner", "expires", "controls"), rows)
    if findings:
        out += _table(("code", "severity", "message"), findings)
    return out


def build_evidence_report(
    release_gate: str | Path,
    *,
    search: Iterable[str | Path] = (),
    home: str | Path | None = None,
) -> EvidenceReport:
    """Render the evidence report of a release gate.

    :raises DataFormatError: the release gate cannot be read, is not a release gate, or fails
        validation.
    :raises ManifestIntegrityError: the release gate's own hash does not verify.
    """
    from customer_model_factory.stages.release.models import (  # noqa: PLC0415
        CustomerReleaseGateManifest,
    )

    gate_path = str(release_gate)
    gate = CustomerReleaseGateManifest.load(gate_path)
    load_manifest_classes()
    chain = _Chain(verify_chain([gate_path], search=search, home=home))
    home_path = Path(home) if home is not None else None
    notes: list[str] = []
    body = [
        _header(gate, gate_path),
        _blockers(gate),
        _chain(chain),
        _metrics(chain, home_path, notes),
        _monitoring(chain, home_path, notes),
        _domains(gate),
        _risks(chain),
    ]
    if notes:
        body.insert(
            1,
            "<div class='note'><b>Not everything could be shown:</b><ul>"
            + "".join(f"<li>{_e(n)}</li>" for n in notes)
            + "</ul></div>",
        )
    html = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; "
        "style-src 'unsafe-inline'; img-src data:\">"
        f"<title>Evidence report: {_e(gate.release_id)}</title><style>{_STYLE}</style></head>"
        f"<body>{''.join(body)}<p class='muted'>Generated by customer-model-factory from "
        "verified manifests; every hash shown was recomputed.</p></body></html>\n"
    )
    return EvidenceReport(
        html=html,
        chain_verified=chain.report.ready,
        promotion_allowed=gate.promotion_allowed,
        notes=tuple(notes),
        read_paths=tuple(
            sorted(
                {check.path for check in chain.report.manifests}
                | {link.resolved for link in chain.report.links if link.resolved}
            )
        ),
    )
