"""Shared helpers of the benchmarks: timing and the result record every benchmark returns."""

from __future__ import annotations

import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

__all__ = ["BenchResult", "median_pair", "median_seconds", "time_call", "time_command"]

_Pair = TypeVar("_Pair")


@dataclass
class BenchResult:
    """One benchmark's figure, as a ratio to a reference measured in the same run.

    ``ratio = measured_s / reference_s``; ``passed`` is ``ratio <= target_ratio`` and every
    extra check in ``checks`` holding. An ``informational`` figure has no target: it is reported
    beside a targeted one to show what the target leaves out, and never fails the run.
    """

    name: str
    description: str
    reference: str
    reference_s: float
    measured_s: float
    target_ratio: float
    checks: dict[str, bool] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    informational: bool = False

    @property
    def ratio(self) -> float:
        return self.measured_s / self.reference_s if self.reference_s > 0 else float("inf")

    @property
    def passed(self) -> bool:
        if self.informational:
            return all(self.checks.values())
        return self.ratio <= self.target_ratio and all(self.checks.values())

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ratio"] = round(self.ratio, 4)
        data["passed"] = self.passed
        data["reference_s"] = round(self.reference_s, 6)
        data["measured_s"] = round(self.measured_s, 6)
        return data


def time_call(func: Callable[[], Any]) -> float:
    """Wall time of one call, in seconds."""
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def median_seconds(func: Callable[[], Any], repeat: int) -> float:
    """Median wall time of ``repeat`` calls."""
    return statistics.median(time_call(func) for _ in range(repeat))


def median_pair(pairs: Sequence[_Pair], ratio: Callable[[_Pair], float]) -> _Pair:
    """The pair whose ``ratio`` is the median of the pairs' ratios.

    Each pair is a reference run and the measured run right after it, so its ratio compares two
    runs made at the same speed of the machine; on a machine whose speed drifts by a third
    within minutes, the median of those ratios is steadier than a ratio of two medians, which
    may divide a fast moment by a slow one. Use an odd number of pairs: the median is then a
    pair that ran.
    """
    return sorted(pairs, key=ratio)[len(pairs) // 2]


def time_command(argv: Sequence[str], repeat: int, **kwargs: Any) -> float:
    """Median wall time of running a command ``repeat`` times (output discarded)."""

    def once() -> None:
        subprocess.run(
            argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kwargs
        )

    once()  # warm the page cache and bytecode cache
    return median_seconds(once, repeat)
