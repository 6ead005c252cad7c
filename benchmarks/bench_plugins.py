"""Hook dispatch overhead: sector metadata of 100k traces through the plugin vs. a direct call.

Measured: ``stages.sector.validate_sector_trace_metadata`` (the generic sector contract, the
cached owner look-up, the core's check of the metadata model the pack declares, the call into the
example pack's validator, completing its findings).

* ``plugins.dispatch_only`` (the target, ratio <= 1.25: "adds <= 25 %"): the reference calls
  the same generic contract, the same declared-model check and the pack's validator directly, as
  a core without a plugin system would, so the ratio is what going *through the plugin* adds.
* ``plugins.sector_dispatch`` (informational): the reference is the pack's validator alone, so
  the core's own generic sector contract (~0.9 us a trace, run whether or not a pack is
  installed) counts as overhead too.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

from _common import BenchResult, time_call

NAME = "plugins"
TARGET_RATIO = 1.25
_PACK_SRC = Path(__file__).resolve().parents[1] / "plugins_example" / "src"


def _load_pack() -> tuple[object, object, Path]:
    try:
        import cmf_example_retail_banking  # noqa: F401
    except ImportError:  # not installed: use the source tree
        sys.path.insert(0, str(_PACK_SRC))
    from cmf_example_retail_banking import plugin
    from cmf_example_retail_banking._generate import DATA_FILE
    from cmf_example_retail_banking.metadata import validate_retail_banking_metadata

    return plugin, validate_retail_banking_metadata, DATA_FILE


def run(quick: bool = False) -> list[BenchResult]:
    from customer_model_factory.stages.sector import (
        validate_generic_sector_metadata,
        validate_sector_trace_metadata,
    )
    from customer_model_factory.testing import registered

    plugin, _, data_file = _load_pack()
    direct_validator = plugin.cmf_validate_sector_metadata
    sector_id = "example-retail-banking"
    base = [json.loads(line) for line in data_file.read_text(encoding="utf-8").splitlines()]
    count = 10_000 if quick else 100_000
    traces = [base[index % len(base)] for index in range(count)]
    repeat = 3 if quick else 5

    with registered(plugin, name="example-retail-banking") as pm:

        def direct() -> int:
            found = 0
            for trace in traces:
                found += len(direct_validator(sector_id, trace, trace.get("metadata") or {}))
            return found

        # The declared metadata model is enforced by the core (as a core without plugins would
        # enforce its own schema), so the hard-wired reference runs the same check directly.
        model_check = pm.sector_dispatch(sector_id).metadata_problems

        def hard_wired() -> int:
            found = 0
            for trace in traces:
                metadata = trace.get("metadata") or {}
                found += len(validate_generic_sector_metadata(trace))
                found += len(model_check(metadata))
                found += len(direct_validator(sector_id, trace, metadata))
            return found

        def dispatched() -> int:
            found = 0
            for trace in traces:
                found += len(validate_sector_trace_metadata(trace, pm=pm))
            return found

        findings_direct, findings_dispatched = direct(), dispatched()  # warm caches
        # Interleaved, so a burst of load from other processes on the machine hits both sides
        # alike.
        references, wired, measures = [], [], []
        for _ in range(repeat):
            references.append(time_call(direct))
            wired.append(time_call(hard_wired))
            measures.append(time_call(dispatched))
        reference = statistics.median(references)
        hard_wired_s = statistics.median(wired)
        measured = statistics.median(measures)
    return [
        BenchResult(
            name="plugins.sector_dispatch",
            description=(
                f"sector metadata of {count} traces via validate_sector_trace_metadata, "
                f"median of {repeat}"
            ),
            reference="the example pack's validator called directly",
            reference_s=reference,
            measured_s=measured,
            target_ratio=TARGET_RATIO,
            informational=True,
            checks={"same findings both ways": findings_direct == findings_dispatched},
            extra={"traces": count, "per_trace_us": round(measured / count * 1e6, 2)},
        ),
        BenchResult(
            name="plugins.dispatch_only",
            description=(
                f"same {count} traces: dispatch vs. the generic contract, the pack's declared "
                "metadata model and the pack's validator, all called directly"
            ),
            reference=(
                "validate_generic_sector_metadata + the declared model check + the pack's "
                "validator, called directly"
            ),
            reference_s=hard_wired_s,
            measured_s=measured,
            target_ratio=TARGET_RATIO,
            checks={"same findings both ways": findings_direct == findings_dispatched},
        ),
    ]
