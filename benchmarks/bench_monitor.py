"""`build_monitoring` (the library of ``cmf monitor``) against orjson alone parsing the same log.

The synthetic decision log (1,000,000 decisions; 50,000 with ``--quick``) is written once under
``benchmarks/data/`` and reused. Its lines look like a runtime's: UUID trace ids, RFC 3339 times
with microseconds, scores spread over [0, 1], input lengths 20–4,000 characters; one line in
10,000 is malformed (a NaN score, a missing field), so the slow path is exercised too. A review
file and an incident file of a few hundred lines name traces of the log.

Reference: ``for line in file: orjson.loads(line)`` in this process (page cache warm), run just
before each measured run; the figure is the pair whose ratio is the median over the pairs (five;
one with ``--quick``); the CPU-time ratio of the same pair is reported too (``cpu_ratio``: steadier
on a shared machine). Measured: the wall time of ``build_monitoring`` in this process (runtime
package load, review and incident files, one streaming pass over the log, metrics, sealing).
Target: ratio ≤ 3.
"""

from __future__ import annotations

import datetime as dt
import random
import sys
import time
import uuid
from pathlib import Path

from _common import BenchResult, median_pair

NAME = "monitor"
TARGET_RATIO = 3.0
DATA_DIR = Path(__file__).resolve().parent / "data"
FULL_ROWS = 1_000_000
QUICK_ROWS = 50_000


def _package(directory: Path):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from stage_monitoring_support import write_runtime

    return write_runtime(directory)


def generate(path: Path, package, rows: int, seed: int = 11) -> list[str]:
    """Write ``rows`` decisions to ``path``; return a few trace ids (for the queue files)."""
    import orjson

    rng = random.Random(seed)
    start = dt.datetime(2026, 5, 18, tzinfo=dt.UTC)
    tmp = path.with_suffix(".tmp")
    picked: list[str] = []
    version = package.runtime_config.package_version
    with open(tmp, "wb") as handle:
        for index in range(rows):
            score = rng.random() ** 1.5
            band = (
                "block"
                if score >= 0.8
                else "abstain"
                if score >= 0.6
                else "escalate"
                if score >= 0.5
                else "approve"
            )
            trace_id = str(uuid.UUID(int=rng.getrandbits(128)))
            moment = start + dt.timedelta(microseconds=index * 86_400 + rng.randint(0, 999))
            row = {
                "trace_id": trace_id,
                "decided_at": moment.isoformat(timespec="microseconds").replace("+00:00", "Z"),
                "score": score,
                "decision": band,
                "reason": band,
                "latency_ms": rng.lognormvariate(1.5, 0.4),
                "input_chars": rng.randint(20, 4000),
                "package_version": version,
                "runtime_id": package.runtime_id,
                "runtime_hash": package.runtime_hash,
            }
            if index % 10_000 == 5_000:
                handle.write(orjson.dumps(row).replace(b'"score":', b'"score":NaN,"x":') + b"\n")
                continue
            if index % 2_500 == 0:
                picked.append(trace_id)
            handle.write(orjson.dumps(row) + b"\n")
    tmp.replace(path)
    return picked


def _inputs(rows: int) -> tuple[Path, Path, Path, Path]:
    import orjson

    directory = DATA_DIR / f"monitor-{rows}"
    runtime = directory / "runtime"
    package = _package(runtime)
    log = directory / "decisions.jsonl"
    reviews = directory / "reviews.jsonl"
    incidents = directory / "incidents.jsonl"
    stamp = directory / "runtime_hash.txt"
    if not log.exists() or not stamp.exists() or stamp.read_text() != package.runtime_hash:
        print(f"generating {rows} decisions into {log} (once) ...", file=sys.stderr)
        picked = generate(log, package, rows)
        with open(reviews, "wb") as handle:
            for index, trace_id in enumerate(picked):
                handle.write(
                    orjson.dumps(
                        {
                            "trace_id": trace_id,
                            "reviewed_at": "2026-06-01T00:00:00Z",
                            "outcome": "false_positive" if index % 3 else "confirmed",
                        }
                    )
                    + b"\n"
                )
        with open(incidents, "wb") as handle:
            for index, trace_id in enumerate(picked[:50]):
                handle.write(
                    orjson.dumps(
                        {
                            "incident_id": f"INC-{index}",
                            "trace_id": trace_id,
                            "reported_at": "2026-06-01T00:00:00+02:00",
                            "severity": ("low", "medium", "high", "critical")[index % 4],
                        }
                    )
                    + b"\n"
                )
        stamp.write_text(package.runtime_hash)
    return runtime, log, reviews, incidents


def _reference_seconds(path: Path) -> tuple[float, float]:
    """Wall and CPU seconds of parsing every line with orjson."""
    import orjson

    loads = orjson.loads
    cpu = time.process_time()
    start = time.perf_counter()
    with open(path, "rb") as handle:
        for line in handle:
            try:  # noqa: SIM105 - a with-statement per line would slow the reference down
                loads(line)
            except orjson.JSONDecodeError:
                pass
    return time.perf_counter() - start, time.process_time() - cpu


def run(quick: bool = False) -> list[BenchResult]:
    from customer_model_factory.context import RunContext
    from customer_model_factory.stages.monitoring.build import MonitorRequest, build_monitoring

    rows = QUICK_ROWS if quick else FULL_ROWS
    runtime, log, reviews, incidents = _inputs(rows)
    request = MonitorRequest(
        runtime=runtime, decision_log=log, reviews=reviews, incidents=incidents
    )
    context = RunContext()
    _reference_seconds(log)  # warm the page cache
    pairs = []
    manifest = None
    for _ in range(1 if quick else 5):
        reference = _reference_seconds(log)
        cpu = time.process_time()
        start = time.perf_counter()
        manifest = build_monitoring(request, context)
        pairs.append((reference, (time.perf_counter() - start, time.process_time() - cpu)))
    (reference, reference_cpu), (seconds, cpu_seconds) = median_pair(
        pairs, lambda pair: pair[1][0] / pair[0][0]
    )
    assert manifest is not None
    return [
        BenchResult(
            name="monitor.build",
            description=f"build_monitoring over a {rows}-decision log with review and incident "
            "files (one streaming pass, in process)",
            reference="orjson.loads over every line of the same log, same run",
            reference_s=reference,
            measured_s=seconds,
            target_ratio=TARGET_RATIO,
            checks={
                "every decision counted": manifest.metrics.total_decisions
                + len([f for f in manifest.findings if f.code.startswith("MONITOR_LOG_")])
                == rows
            },
            extra={
                "rows": rows,
                "rows_per_s": round(rows / seconds),
                "file_mb": round(log.stat().st_size / 1e6, 1),
                "health": manifest.health_status,
                "cpu_ratio": round(cpu_seconds / reference_cpu, 3),
                "pair_ratios": sorted(round(run[0] / ref[0], 3) for ref, run in pairs),
            },
        )
    ]
