"""Stage 8: monitoring computed from a runtime's decision log.

The models live in :mod:`.models`.
"""

__all__: list[str] = []
