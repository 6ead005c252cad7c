"""Stage 3b: calibrate thresholds on the validation split and select a model."""

__all__ = []
