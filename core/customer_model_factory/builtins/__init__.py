"""Built-in lanes and objective profiles, registered as plugins like any pack's."""

__all__ = []
