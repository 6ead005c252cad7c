"""Stage 9: the risk and exception register.

The models live in :mod:`.models`.
"""

__all__: list[str] = []
