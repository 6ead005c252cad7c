"""The version of customer-model-factory (read by hatch at build time)."""

__all__ = ["__version__"]

__version__ = "0.2.0"
