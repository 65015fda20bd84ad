"""The evaluation stage: retrieval, classification, long-tail tiers, probes and efficiency, with a report.

``evaluate`` (``weaklabel eval``, in :mod:`.stage`) runs it all and writes ``metrics.json``,
``queries.parquet`` and ``report.html``; the modules hold the parts, each usable alone on numpy arrays:
``weaklabel.search`` (exact blocked top-k), ``retrieval`` (relevance definitions and metrics),
``classification``, ``weaklabel.tiers``, ``probes``, ``efficiency`` and ``report``.

The names below are imported on first use, so that ``import weaklabel.eval.retrieval`` does not pull
in torch with the evaluator.
"""

from importlib import import_module
from typing import Any

_EXPORTS = {"Neighbours": "..search", "exact_search": "..search", "check_vocabulary": ".stage",
            "evaluate": ".stage", "format_table": ".report"}

__all__ = ["Neighbours", "check_vocabulary", "evaluate", "exact_search", "format_table"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
