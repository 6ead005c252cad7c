"""Stage 3b: select a model from benchmark results and publish its bundle.

The models live in :mod:`.models`, the selection in :mod:`.select`, publishing in
:mod:`.publish`; thresholds are calibrated upstream, by the benchmark stage
(:mod:`customer_model_factory.stages.benchmark.calibration`).
"""

__all__: list[str] = []
