"""excess.search: the bump hunt around anomaly scores.

Windows x folds of out-of-fold anomaly scores (features decorrelated from mjj where the method
needs it), cuts at fixed background efficiencies, the selected background predicted from the
sidebands (inclusive dijet fit x efficiency fit by default, or the dijet fit of the selection),
local significance (profile likelihood) and global significance (background-only
pseudo-experiments). Entry point: :func:`run_scan`.
"""

from .analysis import analyse_window
from .results import Characterisation, CutResult, ScanResult, WindowResult
from .scan import DEFAULT_EFFICIENCIES, DEFAULT_FEATURES, run_scan
from .store import ResumeStore

__all__ = [
    "run_scan",
    "analyse_window",
    "ScanResult",
    "WindowResult",
    "CutResult",
    "Characterisation",
    "ResumeStore",
    "DEFAULT_EFFICIENCIES",
    "DEFAULT_FEATURES",
]
