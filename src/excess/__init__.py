"""excess: model-agnostic searches for new physics with machine learning.

Public API (imported lazily so that ``import excess`` and ``excess --help`` stay instant)::

    excess.read_events(path)                      # event tables: generated, LHCO, CATHODE, chunk dirs
    excess.generate_dijet(out, n, process=...)    # Pythia 8 + FastJet, chunked and resumable
    excess.inject_signal(bkg, sig, n_signal=...)  # analysis datasets with truth labels
    excess.make_method(name, **params)            # anomaly methods (cwola, cathode, ranode, ...)
    excess.cross_val_scores(method, X, m, sr=...) # out-of-fold anomaly scores
    excess.run_scan(events, method=...)           # sliding-window bump hunt with significances
    excess.run_search(config)                     # the complete workflow into a run directory
"""

from __future__ import annotations

import importlib

from ._version import __version__
from .errors import ConfigError, ExcessError, FitError, GenerationError, InputError, NotFittedError

_LAZY = {
    "read_events": "excess.data.io",
    "write_events": "excess.data.io",
    "generate_dijet": "excess.data.generate",
    "inject_signal": "excess.data.mix",
    "make_method": "excess.anomaly",
    "cross_val_scores": "excess.anomaly",
    "run_scan": "excess.search",
    "run_search": "excess.workflow",
    "load_config": "excess.config",
}

__all__ = [
    "__version__",
    "ExcessError",
    "InputError",
    "ConfigError",
    "GenerationError",
    "FitError",
    "NotFittedError",
    *_LAZY,
]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'excess' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
