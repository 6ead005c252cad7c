"""Stage 10: the release gate.

The models live in :mod:`.models`, the core's declarative release domains in :mod:`.domains`,
the entry point (``ReleaseRequest``, ``assemble_release``) in :mod:`.build`.
"""

__all__: list[str] = []
