"""Stellar streams in Gaia: the resonant anomaly search on the sky (GaiaCWoLa / Via Machinae).

>>> from excess.astro.streams import read_gaia, search_patch, StreamSearchConfig   # doctest: +SKIP
>>> stars = read_gaia("patch.parquet")                                              # doctest: +SKIP
>>> result = search_patch(stars, center=(148.9, 36.2), config=StreamSearchConfig(method="cathode"))  # doctest: +SKIP

* :mod:`.io` — Gaia tables (CSV, FITS, HDF5, Parquet) with the archive's column names;
* :mod:`.coords` — patch-centred coordinates (phi, lam, mu_phi, mu_lam);
* :mod:`.cuts` — the published selection (G < 20.2, 0.5 <= BP-RP <= 1, |mu| > 2 mas/yr, RUWE < 1.4);
* :mod:`.mock` — seeded mock patches with truth: smooth Milky Way + a gala GD-1-like stream + pygaia DR3 errors;
* :mod:`.search` — sliding SR windows, scores from :mod:`excess.anomaly`, Hough lines, protoclusters;
* :mod:`.evaluate` — purity and completeness against truth; :mod:`.run` — run directory and report.html;
* :mod:`.survey` — several patches of one file (explicit centres or a tiling), protoclusters merged across them;
* :mod:`.threshold` — the line threshold from the null distribution of stream-free runs.

Nothing here imports torch, gala, pygaia or astropy at import time.
"""

from .coords import add_patch_coordinates, from_patch, to_patch
from .cuts import StreamCuts, apply_cuts
from .evaluate import evaluate_search, purity_completeness
from .hough import HoughLine, best_line, hough_transform, line_significance
from .io import GAIA_COLUMNS, read_gaia, write_gaia
from .mock import MockConfig, MockPatch, make_mock_patch
from .run import evaluate_run, run_stream_search, write_stream_report
from .search import (FEATURES, Protocluster, StreamSearchConfig, StreamSearchResult, WindowResult, merge_protoclusters,
                     prepare_patch, search_patch, sliding_windows)
from .survey import SurveyResult, run_stream_survey, search_patches, tile_region
from .threshold import calibrate_threshold, null_line_significances

__all__ = [
    "GAIA_COLUMNS", "read_gaia", "write_gaia",
    "to_patch", "from_patch", "add_patch_coordinates",
    "StreamCuts", "apply_cuts",
    "MockConfig", "MockPatch", "make_mock_patch",
    "FEATURES", "StreamSearchConfig", "StreamSearchResult", "WindowResult", "Protocluster", "search_patch",
    "sliding_windows", "prepare_patch", "merge_protoclusters",
    "HoughLine", "best_line", "hough_transform", "line_significance",
    "purity_completeness", "evaluate_search",
    "run_stream_search", "evaluate_run", "write_stream_report",
    "tile_region", "SurveyResult", "search_patches", "run_stream_survey",
    "null_line_significances", "calibrate_threshold",
]
