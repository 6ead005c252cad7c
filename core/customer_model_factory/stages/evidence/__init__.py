"""Stage 6: the customer-reviewable evidence pack (build, export, verify).

The models live in :mod:`.models`.
"""

__all__: list[str] = []
