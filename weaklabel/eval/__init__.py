"""The evaluation stage: retrieval, classification, long-tail tiers, probes and efficiency, with a report.

``evaluate`` (``weaklabel eval``) runs it all and writes ``metrics.json``, ``queries.parquet`` and ``report.html``; the
modules hold the parts, each usable alone on numpy arrays: ``search`` (exact blocked top-k),
``retrieval`` (relevance definitions and metrics), ``classification``, ``tiers``, ``probes``,
``efficiency`` and ``report``.
"""

from ..search import Neighbours, exact_search
from .evaluate import check_vocabulary, evaluate
from .report import format_table

__all__ = ["Neighbours", "check_vocabulary", "evaluate", "exact_search", "format_table"]
