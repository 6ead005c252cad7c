"""Stage 3a: benchmark a trained scorer on raw per-trace results anyone can recompute.

The metrics live in :mod:`.metrics`, the thresholds calibrated on the validation split in
:mod:`.calibration`, the result manifest in :mod:`.models`, the entry points (``run_benchmark``,
``import_benchmark``, ``verify_benchmark``) in :mod:`.run`.
"""

__all__: list[str] = []
