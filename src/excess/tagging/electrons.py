"""Low-pT electron taggers: per-category DNNs (the study's), one inclusive network, an HGB baseline.

A track table (a :class:`pandas.DataFrame` with the features of :mod:`excess.data.tracks` and a
``category`` column naming one of :data:`~excess.data.tracks.CATEGORIES`) goes in; a per-track score
comes out. The estimators follow scikit-learn: ``__init__`` stores the arguments, ``fit(X, y)`` returns
``self``, learned state ends in ``_``, ``random_state`` is resolved in ``fit``; ``predict_proba`` gives
(n, 2) probabilities and ``decision_function`` the log-odds.

``model="dnn"``
    One :class:`~excess.nn.classifiers.MLPClassifier` per category on that category's features: 2 x 128,
    ReLU, dropout 0.5, Adam 1e-3, batch 512, class-balanced cross-entropy (the study's network; the
    single-logit BCE equals the two-class categorical cross-entropy). Two training settings are not the
    study's (both switchable): the inputs go through a quantile map to Gaussian margins
    (``preprocessing="quantile"``; ``"standard"`` is mean/std scaling) and an epoch is at least
    ``min_epoch_steps=50`` optimizer steps. With mean/std scaling the heavy-tailed track inputs (``d0``,
    ``d0_sig``, ``z0sintheta``: secondaries out to 10 mm and 1000 sigma) had their bulk squeezed into
    ~0.1 units, and a small category (2.4k tracks, 4 batches an epoch) got 80 steps in 20 epochs: the
    network then ranked by ``dpoverp`` alone, below a random tagger at 0.5-1 GeV in ``notrt_nocalo``.
``model="inclusive"``
    One network for all tracks: every feature, absent sub-detector blocks filled with 0, plus the
    one-hot category (the masks).
``model="hgb"``
    One :class:`~excess.nn.classifiers.HGBEnsemble` per category (the boosted-tree baseline).

Saved with :func:`excess.nn.io.save_model` (state_dict + JSON): the networks' weights, or the HGB
trees as flat node arrays (no pickled objects; a loaded HGB predicts with a numpy tree traversal).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin

from .._util import check_random_state, spawn_seeds
from ..data.tracks import CALO_FEATURES, CATEGORIES, TRACK_FEATURES, TRT_FEATURES, category_features
from ..errors import ConfigError, InputError, NotFittedError

__all__ = ["ElectronTagger", "MODELS", "check_tracks", "inclusive_matrix", "ALL_FEATURES"]

MODELS = ("dnn", "inclusive", "hgb")
ALL_FEATURES = TRACK_FEATURES + TRT_FEATURES + CALO_FEATURES


def check_tracks(tracks: pd.DataFrame, *, source: str = "tracks", require_label: bool = False) -> pd.DataFrame:
    """Validate a track table; one clear :class:`InputError` per problem.

    Checks: a ``category`` column with known names, the features each present category needs, no NaN or
    infinite values in them, and (``require_label``) a 0/1 ``label`` column.
    """
    if not isinstance(tracks, pd.DataFrame):
        raise InputError(f"{source}: expected a pandas DataFrame of tracks, got {type(tracks).__name__}")
    if "category" not in tracks.columns:
        raise InputError(f"{source}: missing column 'category' (one of {', '.join(CATEGORIES)})")
    cats = tracks["category"].astype(str)
    unknown = sorted(set(cats) - set(CATEGORIES))
    if unknown:
        raise InputError(f"{source}: unknown category name(s) {unknown}; known: {', '.join(CATEGORIES)}")
    for cat in CATEGORIES:
        rows = (cats == cat).to_numpy()
        if not rows.any():
            continue
        feats = category_features(cat)
        missing = [f for f in feats if f not in tracks.columns]
        if missing:
            raise InputError(f"{source}: missing variable(s) {missing} needed by category {cat!r}")
        vals = tracks.loc[rows, list(feats)].to_numpy(dtype=float)
        bad = ~np.isfinite(vals)
        if bad.any():
            col = feats[int(np.nonzero(bad.any(axis=0))[0][0])]
            raise InputError(f"{source}: {int(bad.any(axis=1).sum())} track(s) of category {cat!r} have NaN or "
                             f"infinite values (first bad column {col!r})")
    if require_label:
        if "label" not in tracks.columns:
            raise InputError(f"{source}: missing column 'label' (1 = electron, 0 = other)")
        lab = np.unique(tracks["label"].to_numpy())
        if not np.all(np.isin(lab, (0, 1))):
            raise InputError(f"{source}: column 'label' must be 0 or 1, got values {lab[:10].tolist()}")
    return tracks


def inclusive_matrix(tracks: pd.DataFrame) -> np.ndarray:
    """All features (absent blocks and NaN filled with 0) followed by the one-hot category."""
    X = np.nan_to_num(tracks.reindex(columns=list(ALL_FEATURES)).to_numpy(dtype=float), nan=0.0)  # absent: 0
    cats = tracks["category"].astype(str).to_numpy()
    onehot = np.stack([(cats == c).astype(float) for c in CATEGORIES], axis=1)
    return np.hstack([X, onehot])


class ElectronTagger(ClassifierMixin, BaseEstimator):
    """Electron-vs-other track classifier by sub-detector category (see the module docstring)."""

    def __init__(
        self,
        model: str = "dnn",
        hidden: tuple[int, ...] = (128, 128),
        dropout: float = 0.5,
        epochs: int = 30,
        batch_size: int = 512,
        lr: float = 1e-3,
        patience: int = 5,
        n_best: int = 1,
        validation_fraction: float = 0.2,
        hgb_members: int = 3,
        min_tracks: int = 20,
        random_state=None,
        device: str = "auto",
        preprocessing: str = "quantile",
        min_epoch_steps: int = 50,
    ):
        self.model = model
        self.hidden = hidden
        self.dropout = dropout
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.patience = patience
        self.n_best = n_best
        self.validation_fraction = validation_fraction
        self.hgb_members = hgb_members
        self.min_tracks = min_tracks
        self.random_state = random_state
        self.device = device
        self.preprocessing = preprocessing
        self.min_epoch_steps = min_epoch_steps

    # ------------------------------------------------------------------------------------------
    def _member(self, seed):
        from ..nn.classifiers import HGBEnsemble, MLPClassifier

        if self.model == "hgb":
            return HGBEnsemble(n_members=self.hgb_members, random_state=seed)
        return MLPClassifier(hidden=tuple(self.hidden), epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
                             patience=self.patience, n_best=self.n_best,
                             validation_fraction=self.validation_fraction, dropout=self.dropout,
                             random_state=seed, device=self.device, preprocessing=self.preprocessing,
                             min_epoch_steps=self.min_epoch_steps)

    def _groups(self) -> tuple[str, ...]:
        return ("all",) if self.model == "inclusive" else CATEGORIES

    def _matrix(self, tracks: pd.DataFrame, group: str) -> np.ndarray:
        if group == "all":
            return inclusive_matrix(tracks)
        return tracks[list(category_features(group))].to_numpy(dtype=float)

    def _rows(self, tracks: pd.DataFrame, group: str) -> np.ndarray:
        if group == "all":
            return np.ones(len(tracks), dtype=bool)
        return (tracks["category"].astype(str) == group).to_numpy()

    def fit(self, X: pd.DataFrame, y=None, sample_weight=None):
        """Fit on the track table ``X`` (labels ``y``, default ``X["label"]``)."""
        if self.model not in MODELS:
            raise ConfigError(f"unknown tagger model {self.model!r}; known: {', '.join(MODELS)}")
        if y is None:
            check_tracks(X, require_label=True)
            y = X["label"].to_numpy()
        else:
            check_tracks(X)
            y = np.asarray(y)
            if y.shape != (len(X),):
                raise InputError(f"y must have one label per track: {y.shape} vs {len(X)} tracks")
        y = y.astype(np.int64)
        w = None if sample_weight is None else np.asarray(sample_weight, dtype=float)
        rng = check_random_state(self.random_state)
        seeds = spawn_seeds(rng, len(CATEGORIES) + 1)
        self.members_, self.features_, self.n_train_ = {}, {}, {}
        for i, group in enumerate(self._groups()):
            rows = self._rows(X, group)
            yy = y[rows]
            n_sig, n_bkg = int(yy.sum()), int((yy == 0).sum())
            if min(n_sig, n_bkg) < self.min_tracks:
                raise InputError(f"category {group!r} has {n_sig} electron and {n_bkg} other tracks; need at least "
                                 f"{self.min_tracks} of each to train (an empty or tiny category)")
            est = self._member(seeds[i])
            est.fit(self._matrix(X[rows] if group != "all" else X, group), yy,
                    sample_weight=None if w is None else w[rows])
            self.members_[group] = est
            self.features_[group] = (list(ALL_FEATURES) + [f"is_{c}" for c in CATEGORIES] if group == "all"
                                     else list(category_features(group)))
            self.n_train_[group] = {"electrons": n_sig, "others": n_bkg}
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        if not hasattr(self, "members_"):
            raise NotFittedError("ElectronTagger is not fitted")
        check_tracks(X)
        p = np.full(len(X), np.nan)
        for group, est in self.members_.items():
            rows = self._rows(X, group)
            if rows.any():
                p[rows] = est.predict_proba(self._matrix(X[rows] if group != "all" else X, group))[:, 1]
        if np.isnan(p).any():
            raise InputError(f"{int(np.isnan(p).sum())} track(s) fall in a category without a trained model")
        return np.column_stack([1 - p, p])

    def decision_function(self, X: pd.DataFrame) -> np.ndarray:
        p = np.clip(self.predict_proba(X)[:, 1], 1e-12, 1 - 1e-12)
        return np.log(p) - np.log1p(-p)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(np.int64)

    def member_predict(self, group: str, matrix: np.ndarray) -> np.ndarray:
        """Probability of the ``group`` member on its own feature matrix (used by SHAP)."""
        return self.members_[group].predict_proba(matrix)[:, 1]

    # state_dict-style persistence (excess.nn.io): network weights, or the HGB trees as node arrays
    def _get_state(self):
        tensors, meta = {}, {"groups": {}}
        for group, est in self.members_.items():
            t, m = est._get_state()
            tensors.update({f"{group}/{k}": v for k, v in t.items()})
            meta["groups"][group] = {"meta": m, "features": self.features_[group], "n_train": self.n_train_[group],
                                     "params": {k: v for k, v in est.get_params().items() if k != "device"}}
        return tensors, meta

    def _set_state(self, tensors, meta):
        from ..nn.classifiers import HGBEnsemble, MLPClassifier

        self.members_, self.features_, self.n_train_ = {}, {}, {}
        for group, g in meta["groups"].items():
            params = {k: tuple(v) if isinstance(v, list) else v for k, v in g["params"].items()}
            est = HGBEnsemble(**params) if self.model == "hgb" else MLPClassifier(**params, device=self.device)
            prefix = f"{group}/"
            est._set_state({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}, g["meta"])
            self.members_[group] = est
            self.features_[group] = list(g["features"])
            self.n_train_[group] = g["n_train"]
        self.classes_ = np.array([0, 1])
