"""Moved to :mod:`customer_model_factory.plugin_api.contracts`; this path keeps working."""

from customer_model_factory.plugin_api.contracts import *  # noqa: F403
from customer_model_factory.plugin_api.contracts import __all__  # noqa: F401
