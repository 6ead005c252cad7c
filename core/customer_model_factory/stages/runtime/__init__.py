"""Stage 7: the runtime package, and the reference runtime that scores with it.

The models live in :mod:`.models`.
"""

__all__: list[str] = []
