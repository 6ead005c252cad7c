"""Stage 3b: calibrate thresholds on the validation split, select a model, publish its bundle.

The models live in :mod:`.models`, the selection in :mod:`.select`, publishing in
:mod:`.publish`; nothing is imported here, so the benchmark stage can use :mod:`.calibration`
without importing the selection models that are built on its own.
"""

__all__: list[str] = []
