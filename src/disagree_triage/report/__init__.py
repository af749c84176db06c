"""The report stage: where and how the models disagree, as counts (`counts`) and as one HTML
page (`html`, imported only when a page is written: it reads displaCy's colours).

    >>> from disagree_triage.report import build_report  # doctest: +SKIP
"""

from .counts import Agreement, RankedExample, Report, build_report, pair_spans, pattern_of, percent

__all__ = [
    "Agreement",
    "RankedExample",
    "Report",
    "build_report",
    "pair_spans",
    "pattern_of",
    "percent",
]
