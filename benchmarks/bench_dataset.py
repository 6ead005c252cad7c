"""`validate_customer_trace_dataset` with all rules on, against orjson alone parsing the same file.

The synthetic dataset (1,000,000 traces, 100–600-character prompts; 50,000 with ``--quick``) is
written once under ``benchmarks/data/`` and reused. It is realistic rather than clean: about one
row in 200 carries a planted secret or personal datum, a duplicate or a bad binding, and 5 % of the
rows name a sector served by an in-process sector pack that also registers a retrieval schema.
The workspace turns every rule on: required splits, label map, label cut-off, per-split time
windows and a temporal split.

Reference: ``for line in file: orjson.loads(line)`` in this process (page cache warm), run just
before each measured run; the figure is the pair whose ratio is the median over the pairs (five;
one with ``--quick``), so a machine whose speed drifts during the benchmark moves both sides of
each ratio alike. Every pair's ratio is recorded (``pair_ratios``). Measured: the call's
wall time inside a child process (imports excluded), and the peak of the summed RSS of that child
and its worker processes (sampled every 20 ms; the single largest process's ``ru_maxrss`` is
reported too), the worst over the runs. Targets: ratio ≤ 3, peak RSS ≤ 1.5 GB; rows/s is
reported.
"""

from __future__ import annotations

import contextlib
import json
import random
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from _common import BenchResult, median_pair

NAME = "dataset"
TARGET_RATIO = 3.0
TARGET_RSS_BYTES = 1_500_000_000
DATA_DIR = Path(__file__).resolve().parent / "data"
FULL_ROWS = 1_000_000
QUICK_ROWS = 50_000

_WORDS = [
    "the",
    "a",
    "my",
    "account",
    "transfer",
    "password",
    "reset",
    "policy",
    "refund",
    "card",
    "limit",
    "customer",
    "agent",
    "please",
    "help",
    "me",
    "with",
    "order",
    "why",
    "is",
    "blocked",
    "review",
    "escalate",
    "claim",
    "fraud",
    "risk",
    "loan",
    "balance",
    "statement",
    "interest",
    "mortgage",
    "payment",
    "late",
    "fee",
    "dispute",
    "merchant",
    "branch",
    "online",
    "banking",
    "login",
    "device",
    "new",
    "address",
    "change",
    "beneficiary",
    "wire",
    "international",
    "limit",
    "increase",
    "overdraft",
    "savings",
    "rate",
]

WORKSPACE_TOML = """\
[workspace]
customer_id = "acme"
workspace_id = "ws-bench"
tenant_id = "acme-eu"
data_classification = "confidential"
allowed_splits = ["train", "validation", "test"]
required_splits = ["train", "validation", "test"]
regulation_mappings = ["eu-ai-act"]

[workspace.label_map]
harmful = "unsafe"
policy_violation = "unsafe"
benign = "safe"

[workspace.as_of]
label_cutoff = 2025-12-31T23:59:59Z
temporal_split = true

[workspace.as_of.split_windows.train]
start = 2023-01-01T00:00:00Z
end = 2024-07-01T00:00:00Z

[workspace.as_of.split_windows.validation]
start = 2024-07-01T00:00:00Z
end = 2024-10-01T00:00:00Z

[workspace.as_of.split_windows.test]
start = 2024-10-01T00:00:00Z
end = 2025-01-01T00:00:00Z
"""

# The sector pack and retrieval schema the benchmark registers in the child process.
_PLUGIN = """
from customer_model_factory import hookimpl, RetrievalSchema, SectorPack

class BenchSector:
    CMF_PLUGIN_API = 1

    @hookimpl
    def cmf_sector_packs(self):
        return [SectorPack(id="bench-banking", version="1", title="Bench banking",
                           jurisdiction="EU")]

    @hookimpl
    def cmf_retrieval_schemas(self):
        return [RetrievalSchema(id="kb", version="1", json_schema={
            "type": "object", "required": ["schema", "ref"],
            "properties": {"ref": {"type": "string", "pattern": "^doc-[0-9]+$"}}})]

    @hookimpl
    def cmf_validate_sector_metadata(self, sector_id, metadata):
        if sector_id == "bench-banking" and metadata.get("product") == "forbidden":
            return []
        return []
"""


def _planted(rng: random.Random, index: int) -> str:
    """Text carrying a secret or personal datum, built from pieces (no live-looking literal)."""
    choice = (index // 200) % 4
    if choice == 0:
        return "my email is user" + str(index) + "@" + "example.org please help"
    if choice == 1:
        return (
            "key "
            + "AK"
            + "IA"
            + "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(16))
        )
    if choice == 2:
        return "card 4111 1111 " + "1111 1111 is blocked"
    return "call me on +44 20 7946 " + f"{index % 10000:04d}"


def generate(path: Path, rows: int, seed: int = 7) -> None:
    """Write ``rows`` synthetic traces to ``path`` (atomically, via a temporary file)."""
    import orjson

    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    train_span = (1672531200, 1719792000)  # 2023-01-01 .. 2024-07-01
    windows = {
        "train": train_span,
        "validation": (1719792000, 1727740800),
        "test": (1727740800, 1735689600),
    }
    with open(tmp, "wb") as handle:
        for index in range(rows):
            split = rng.choices(("train", "validation", "test"), (8, 1, 1))[0]
            length = rng.randint(100, 600)
            words: list[str] = []
            size = 0
            while size < length:
                word = rng.choice(_WORDS)
                words.append(word)
                size += len(word) + 1
            prompt = " ".join(words)[:length].strip() or "help"
            unsafe = rng.random() < 0.3
            label = rng.choice(("harmful", "policy_violation")) if unsafe else "benign"
            decision = rng.choice(("block", "escalate", "abstain")) if unsafe else "approve"
            severity = rng.choice(("high", "critical", "medium")) if unsafe else "low"
            start, end = windows[split]
            event = rng.randint(start, end - 1)
            row = {
                "trace_id": f"trace-{index:09d}",
                "customer_id": "acme",
                "tenant_id": "acme-eu",
                "workspace_id": "ws-bench",
                "split": split,
                "prompt": prompt,
                "response": "I cannot help with that request."
                if unsafe
                else "Here is how to do that safely: " + " ".join(rng.choices(_WORDS, k=12)),
                "expected_decision": decision,
                "severity": severity,
                "label": label,
                "source_refs": ["kb:doc-" + str(index % 5000)],
                "policy_refs": ["policy://acme/guardrail/v3"],
                "reviewer_role": rng.choice(("analyst", "senior_analyst", "compliance")),
                "observed_at": time.strftime(
                    "%Y-%m-%dT%H:%M:%SZ", time.gmtime(event + rng.randint(0, 86400 * 30))
                ),
                "event_time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(event)),
                "contains_pii": False,
                "contains_secret": False,
                "redaction_status": "not_required",
            }
            if index % 20 == 0:
                row["vertical"] = "bench-banking"
                row["metadata"] = {
                    "sector_class": "retail",
                    "knowledge_class": "policy",
                    "jurisdiction": "EU",
                    "requires_citation": True,
                    "evidence_refs": ["kb:doc-1"],
                }
            if index % 200 == 17:
                row["prompt"] = prompt[:80] + " " + _planted(rng, index)
            if index % 1000 == 503:
                row["customer_id"] = "other"
            handle.write(orjson.dumps(row) + b"\n")
    tmp.replace(path)


def dataset_path(rows: int) -> Path:
    """The cached dataset of ``rows`` traces, generated when missing."""
    path = DATA_DIR / f"traces-{rows}.jsonl"
    if not path.exists():
        print(f"generating {rows} traces into {path} (once) ...", file=sys.stderr)
        generate(path, rows)
    return path


def _reference_seconds(path: Path) -> float:
    import orjson

    loads = orjson.loads
    start = time.perf_counter()
    with open(path, "rb") as handle:
        for line in handle:
            loads(line)
    return time.perf_counter() - start


_CHILD = """
import json, resource, sys, time
sys.path.insert(0, {bench_dir!r})
{plugin}
from customer_model_factory.dataset import CustomerWorkspace, validate_customer_trace_dataset
from customer_model_factory.plugins import create_plugin_manager
pm = create_plugin_manager()
pm.register(BenchSector(), name="bench-sector")
workspace = CustomerWorkspace.from_toml({workspace!r})
start = time.perf_counter()
report = validate_customer_trace_dataset({data!r}, workspace, pm=pm)
seconds = time.perf_counter() - start
own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
print(json.dumps({{"seconds": seconds, "rss": max(own, kids), "rows": report.row_count,
                  "findings": report.finding_counts, "ready": report.ready}}))
"""


def _measure(path: Path, workspace: Path) -> dict[str, float]:
    """Run the validation in a child process; sample the RSS of the child and its workers
    together every 20 ms (the peak of the sum is the figure checked against 1.5 GB)."""
    import psutil

    code = _CHILD.format(
        bench_dir=str(Path(__file__).resolve().parent),
        plugin=textwrap.dedent(_PLUGIN),
        workspace=str(workspace),
        data=str(path),
    )
    start = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    watched = psutil.Process(child.pid)
    peak_sum = 0
    while child.poll() is None:
        try:
            total = watched.memory_info().rss
            for worker in watched.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    total += worker.memory_info().rss
        except psutil.Error:
            break
        peak_sum = max(peak_sum, total)
        time.sleep(0.02)
    stdout, stderr = child.communicate()
    wall = time.perf_counter() - start
    if child.returncode != 0:
        raise RuntimeError(f"benchmark child failed:\n{stderr}")
    result = json.loads(stdout.strip().splitlines()[-1])
    result["wall"] = wall
    result["rss_sum"] = max(peak_sum, result["rss"])
    return result


def run(quick: bool = False) -> list[BenchResult]:
    rows = QUICK_ROWS if quick else FULL_ROWS
    path = dataset_path(rows)
    workspace = DATA_DIR / "bench-workspace.toml"
    workspace.write_text(WORKSPACE_TOML, encoding="utf-8")
    _reference_seconds(path)  # warm the page cache
    pairs = [
        (_reference_seconds(path), _measure(path, workspace)) for _ in range(1 if quick else 5)
    ]
    # The pair whose ratio is the median is the one reported; memory is the worst of all runs.
    reference, measured = median_pair(pairs, lambda pair: pair[1]["seconds"] / pair[0])
    seconds = measured["seconds"]
    rss = max(int(run["rss_sum"]) for _, run in pairs)
    return [
        BenchResult(
            name="dataset.validate",
            description=(
                f"validate_customer_trace_dataset on {rows} traces, all rules on "
                "(in a child process; time of the call, import excluded)"
            ),
            reference="orjson.loads over every line of the same file, same run",
            reference_s=reference,
            measured_s=seconds,
            target_ratio=TARGET_RATIO,
            checks={"peak RSS (all processes) <= 1.5 GB": rss <= TARGET_RSS_BYTES},
            extra={
                "rows": measured["rows"],
                "rows_per_s": round(measured["rows"] / seconds),
                "peak_rss_mb": round(rss / 1e6, 1),
                "peak_rss_single_process_mb": round(max(run["rss"] for _, run in pairs) / 1e6, 1),
                "child_wall_s": round(measured["wall"], 3),
                "file_mb": round(path.stat().st_size / 1e6, 1),
                "findings": measured["findings"],
                "pair_ratios": sorted(round(run["seconds"] / ref, 3) for ref, run in pairs),
            },
        )
    ]
