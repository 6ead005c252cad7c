"""Stage 9: the risk register, every risk decision checked against the current evidence.

The models live in :mod:`.models`; the risks file, the checks and the entry point
(``RiskRequest``, ``build_risk_register``) in :mod:`.build`.
"""

__all__: list[str] = []
