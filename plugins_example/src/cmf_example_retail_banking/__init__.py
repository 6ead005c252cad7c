"""Example sector pack for customer-model-factory: "example-retail-banking", a fictional bank.

A complete, installable template for a private sector pack. It registers through the entry-point
group ``customer_model_factory`` (see ``pyproject.toml``) with the module
:mod:`cmf_example_retail_banking.plugin`, which implements every ``cmf_*`` hook:

* a pydantic trace metadata model and the rules that turn it into findings (:mod:`.metadata`);
* an evidence mapping to public frameworks (EU AI Act, NIST AI RMF, SR 11-7, ISO, SOC 2);
* a retrieval schema for the bank's document classes;
* a benchmark package of 200 synthetic labelled traces shipped as package data;
* an objective profile, a release check and a small trainable lane (:mod:`.lane`);
* its proprietary identifiers, published only as salted hashes.
"""

from __future__ import annotations

from typing import Final

__all__ = ["BENCHMARK_ID", "SECTOR_ID", "__version__"]

__version__: Final = "0.1.0"
SECTOR_ID: Final = "example-retail-banking"
"""The sector id traces name in their ``vertical`` field."""
BENCHMARK_ID: Final = "example-retail-banking.conduct-v1"
"""The id of the pack's benchmark package."""
