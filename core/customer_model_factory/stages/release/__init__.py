"""Stage 10: the release gate.

The models live in :mod:`.models`.
"""

__all__: list[str] = []
