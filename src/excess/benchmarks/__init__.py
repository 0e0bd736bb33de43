"""Benchmark harnesses of the anomaly methods and of the search (above the method packages).

* :mod:`excess.benchmarks.sic`: max SIC of every anomaly method on LHCO-like data at several signal
  injections (:func:`run_sic_benchmark`; ``excess benchmark sic``, ``benchmarks/sic.py``);
* :mod:`excess.benchmarks.background_only`: no fake excess without signal
  (:func:`background_only_check`; ``benchmarks/sic.py --bkg-only-check``);
* :mod:`excess.benchmarks.common`: what both share: loading and splitting the samples, the cached
  sideband flows.

They read files, split samples, train and plot; the methods (:mod:`excess.anomaly`) and the
statistics (:mod:`excess.stats`) know nothing of them.
"""

from .background_only import background_only_check
from .sic import LHCO_S_OVER_B, SICBenchmarkConfig, SICBenchmarkResult, run_sic_benchmark, summarize, summary_markdown

__all__ = [
    "SICBenchmarkConfig",
    "SICBenchmarkResult",
    "run_sic_benchmark",
    "summarize",
    "summary_markdown",
    "background_only_check",
    "LHCO_S_OVER_B",
]
