"""The pack's tests use the core's helpers for pack authors (fixture ``plugin_manager``)."""

pytest_plugins = ["customer_model_factory.testing"]
