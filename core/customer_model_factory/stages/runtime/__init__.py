"""Stage 7: the runtime package, and the reference runtime that scores with it.

* :mod:`.models`: the pinned contracts (``CustomerRuntimePackage``, ``DecisionRecord``).
* :mod:`.build`: ``cmf runtime build`` (:class:`RuntimeRequest`, :func:`build_runtime_package`,
  :func:`write_runtime_package`).
* :mod:`.score`: the reference runtime (:func:`load_runtime`, :func:`score_file`).
* :mod:`.policy`: the decision bands and the citation rule.
* :mod:`.decision_log`: safe appends to a decision log.
* :mod:`.payload`: the ``POST /v1/score`` body (:func:`build_score_payload`).
* :mod:`.serve`: ``cmf serve`` on the standard library's HTTP server (:func:`make_server`).

Names are imported on first use, so importing the package stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "LoadedRuntime",
    "RuntimeRequest",
    "ScoreOutcome",
    "build_runtime_package",
    "build_score_payload",
    "check_score_payload",
    "load_runtime",
    "load_runtime_package",
    "make_server",
    "score_file",
    "write_runtime_package",
]

_LAZY = {
    "LoadedRuntime": "score",
    "RuntimeRequest": "build",
    "ScoreOutcome": "score",
    "build_runtime_package": "build",
    "build_score_payload": "payload",
    "check_score_payload": "payload",
    "load_runtime": "score",
    "load_runtime_package": "payload",
    "make_server": "serve",
    "score_file": "score",
    "write_runtime_package": "build",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


def __dir__() -> list[str]:
    return sorted(__all__)
