"""The factory's stages, one subpackage per stage, in workflow order."""

__all__ = []
