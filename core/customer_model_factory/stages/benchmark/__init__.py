"""Stage 3a: benchmark a trained scorer on raw per-trace results anyone can recompute."""

__all__ = []
