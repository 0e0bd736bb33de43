"""ANTELOPE: anomaly detection in a particle-flow latent space, for semi-visible jets, with an mT bump hunt.

* :mod:`~excess.antelope.sets` -- track sets: validation, the >= 3-track selection, preprocessing;
* :mod:`~excess.antelope.models` -- the supervised PFN, ANTELOPE's VAE, the chain (:class:`Antelope`);
* :mod:`~excess.antelope.evaluate` -- AUC / SIC over the signal grid and seeds (PFN, ANTELOPE, high-level AE);
* :mod:`~excess.antelope.search` -- the bump hunt in mT with :func:`excess.search.run_scan`;
* ``make_method("antelope")`` (:mod:`excess.anomaly.antelope`) -- the estimator of the anomaly API.

Importing this package does not import torch.
"""

from .models import SCORES, Antelope, AntelopeVAE, PFNClassifier, loss_score
from .sets import FEATURES, MIN_TRACKS, TRACK_COLUMNS, TrackPreprocessor, check_sets, n_tracks, track_selection

__all__ = ["Antelope", "AntelopeVAE", "PFNClassifier", "loss_score", "SCORES", "TrackPreprocessor", "check_sets",
           "n_tracks", "track_selection", "FEATURES", "MIN_TRACKS", "TRACK_COLUMNS"]
