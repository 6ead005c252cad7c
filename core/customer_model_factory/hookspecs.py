"""Moved to :mod:`customer_model_factory.plugin_api.hookspecs`; this path keeps working."""

from customer_model_factory.plugin_api.hookspecs import *  # noqa: F403
from customer_model_factory.plugin_api.hookspecs import __all__  # noqa: F401
