"""Stage 4: bind the selected model to a runtime policy and an environment.

The models live in :mod:`.models`.
"""

__all__: list[str] = []
