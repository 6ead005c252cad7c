"""Stage 8: monitoring computed from a runtime's decision log.

The models live in :mod:`.models`; the arithmetic (PSI, p95, cost, thresholds, health) in
:mod:`.metrics`; the streaming decision-log reader in :mod:`.log`; the review and incident files
in :mod:`.queues`; the entry point (``MonitorRequest``, ``build_monitoring``) in :mod:`.build`.
"""

__all__: list[str] = []
