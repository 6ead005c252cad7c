"""Moved to :mod:`customer_model_factory.stages.sector`; this path keeps working."""

from customer_model_factory.stages.sector import *  # noqa: F403
from customer_model_factory.stages.sector import __all__  # noqa: F401
