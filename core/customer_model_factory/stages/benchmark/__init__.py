"""Stage 3a: benchmark a trained scorer on raw per-trace results anyone can recompute.

The metrics live in :mod:`.metrics`, the result manifest in :mod:`.models`, the entry points
(``run_benchmark``, ``import_benchmark``, ``verify_benchmark``) in :mod:`.run`; nothing is
imported here, so the calibration code can use :mod:`.metrics` without a cycle.
"""

__all__: list[str] = []
