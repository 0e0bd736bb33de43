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

Calibrated scores (``calibration="auto"``, the default: ``"sigmoid"`` for the networks, none for HGB;
``"sigmoid"``, ``"isotonic"``; ``None`` = the raw member output)
    Each member's raw probability goes through a :class:`~excess.nn.calibration.ScoreCalibrator` fitted,
    class-balanced, on scores of rows not trained on: a network's early-stopping validation rows
    (``validation_fraction``; they also chose its epochs); for HGB, which trains on all its rows, two-fold
    cross-fitted scores (two extra ensembles, each fitted on one half and scoring the other: about twice
    the training time; as scikit-learn's ``CalibratedClassifierCV(ensemble=False)``). The members
    themselves are trained exactly as with ``calibration=None``. ``"auto"`` leaves HGB raw: on a 16k-track
    toy (``benchmarks/electron_calibration.py``) its class-balanced expected calibration error was 0.0033
    raw and 0.0147 after cross-fitted Platt scaling (the half-sample fold ensembles are less sharp than the
    full one). ``predict_proba`` is then P(electron | inputs, category) for **equal electron and
    other-track priors** in each category (training and calibration are class-balanced). ``prior=f`` (a
    float in (0, 1), also settable after fitting with ``set_params``) returns it for an electron fraction
    ``f`` instead (odds times f / (1 - f)). Both maps are strictly increasing (the isotonic steps' ties
    broken by the raw score), so the ROC and the efficiency at fixed fake rate within a member are
    unchanged; across categories the calibrated scores are comparable, which changes the combined ROC.
Optional pT-binned training (``pt_bins``, edges in GeV of the fitted track ``pt``; default ``None``)
    One member per (category, pT bin), keyed ``"<category>:pt<i>"``; the outer bins are open (a track below
    the first edge uses the first bin's member, above the last edge the last's). A (category, bin) with
    fewer than ``min_tracks`` electrons or other tracks is an error naming it; with ``pt_bins_merge=True``
    such a bin is instead joined to its lower neighbour (the first bin to its upper one) until every bin
    of the category has enough, the member then keyed ``"<category>:pt<i>-<j>"`` (bins i to j). Soft
    electrons without a calorimeter cluster (``trt_nocalo``) sit almost all below 1-2 GeV, so fine bins
    usually need the merge there.

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
from ..nn.calibration import CALIBRATIONS, ScoreCalibrator, logit, prior_shift

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


def _bin_key(cat: str, r: tuple[int, int]) -> str:
    return f"{cat}:pt{r[0]}" if r[1] - r[0] == 1 else f"{cat}:pt{r[0]}-{r[1] - 1}"


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
        calibration: str | None = "auto",
        prior: float | None = None,
        pt_bins: tuple[float, ...] | None = None,
        pt_bins_merge: bool = False,
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
        self.calibration = calibration
        self.prior = prior
        self.pt_bins = pt_bins
        self.pt_bins_merge = pt_bins_merge

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

    def _edges(self) -> np.ndarray | None:
        if self.pt_bins is None:
            return None
        e = np.asarray(self.pt_bins, dtype=float).ravel()
        if e.size < 2 or not np.all(np.isfinite(e)) or np.any(np.diff(e) <= 0):
            raise ConfigError(f"pt_bins must be at least two increasing finite edges in GeV, got {self.pt_bins!r}")
        return e

    def _groups(self) -> dict[str, tuple[str, tuple[int, int] | None]]:
        """Member key -> (category or ``"all"``, the range ``[i0, i1)`` of pT bins it covers, or None)."""
        cats = ("all",) if self.model == "inclusive" else CATEGORIES
        e = self._edges()
        if e is None:
            return {c: (c, None) for c in cats}
        return {_bin_key(c, (b, b + 1)): (c, (b, b + 1)) for c in cats for b in range(e.size - 1)}

    def _merged_groups(self, X: pd.DataFrame, y: np.ndarray) -> dict:
        """``pt_bins_merge``: per category, join a bin short of either class to its lower neighbour (the
        first bin to its upper one) until every bin has ``min_tracks`` of each class."""
        plan = self._groups()
        if self._edges() is None or not self.pt_bins_merge:
            return plan
        out = {}
        for cat in dict.fromkeys(c for c, _ in plan.values()):
            ranges = [r for c, r in plan.values() if c == cat]
            while len(ranges) > 1:
                short = [j for j, r in enumerate(ranges) if min(self._counts(X, y, cat, r)) < self.min_tracks]
                if not short:
                    break
                j = short[0]
                k = j - 1 if j > 0 else j + 1
                lo, hi = min(j, k), max(j, k)
                ranges[lo:hi + 1] = [(ranges[lo][0], ranges[hi][1])]
            out.update({_bin_key(cat, r): (cat, r) for r in ranges})
        return out

    def _counts(self, X, y, cat, r) -> tuple[int, int]:
        yy = y[self._rows(X, None, spec=(cat, r))]
        return int(yy.sum()), int((yy == 0).sum())

    def _group_name(self, group: str) -> str:
        cat, r = self.groups_[group]
        if r is None:
            return f"category {cat!r}"
        e = self._edges()
        return (f"category {cat!r}, pT bin{'s' if r[1] - r[0] > 1 else ''} {r[0] if r[1] - r[0] == 1 else r} "
                f"[{e[r[0]]:g}, {e[r[1]]:g}) GeV (outer bins open)")

    def _matrix(self, tracks: pd.DataFrame, group: str) -> np.ndarray:
        cat = self.groups_[group][0]
        if cat == "all":
            return inclusive_matrix(tracks)
        return tracks[list(category_features(cat))].to_numpy(dtype=float)

    def _rows(self, tracks: pd.DataFrame, group: str | None, *, spec=None) -> np.ndarray:
        cat, r = self.groups_[group] if spec is None else spec
        rows = (np.ones(len(tracks), dtype=bool) if cat == "all"
                else (tracks["category"].astype(str) == cat).to_numpy())
        if r is not None:
            e = self._edges()
            idx = np.clip(np.searchsorted(e, tracks["pt"].to_numpy(dtype=float), side="right") - 1, 0, e.size - 2)
            rows = rows & (idx >= r[0]) & (idx < r[1])
        return rows

    def _raw(self, group: str, matrix: np.ndarray) -> np.ndarray:
        return self.members_[group].predict_proba(matrix)[:, 1]

    def _calibrated(self, group: str, raw: np.ndarray) -> np.ndarray:
        cal = getattr(self, "calibrators_", {}).get(group)
        return raw if cal is None else cal.predict(raw)

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
        if self.calibration is not None and self.calibration not in (*CALIBRATIONS, "auto"):
            raise ConfigError(f"calibration must be one of auto, {', '.join(CALIBRATIONS)} or None, "
                              f"got {self.calibration!r}")
        method = self._calibration_method()
        if self.prior is not None:
            prior_shift(0.5, self.prior)  # validates the prior
        groups = self._merged_groups(X, y)
        rng = check_random_state(self.random_state)
        seeds = spawn_seeds(rng, max(len(CATEGORIES), len(groups)) + 1)
        self.members_, self.features_, self.n_train_, self.calibrators_ = {}, {}, {}, {}
        self.groups_ = groups
        rows_of = {group: self._rows(X, group) for group in groups}
        for group, rows in rows_of.items():  # every member's rows checked before any training
            n_sig, n_bkg = int(y[rows].sum()), int((y[rows] == 0).sum())
            if min(n_sig, n_bkg) < self.min_tracks:
                hint = "; use fewer or wider pt_bins, or pt_bins_merge" if self.pt_bins is not None else ""
                raise InputError(f"{self._group_name(group)} has {n_sig} electron and {n_bkg} other tracks; need at "
                                 f"least {self.min_tracks} of each to train (an empty or tiny category{hint})")
        for i, (group, (cat, _)) in enumerate(groups.items()):
            rows = rows_of[group]
            yy = y[rows]
            n_sig, n_bkg = int(yy.sum()), int((yy == 0).sum())
            M = self._matrix(X[rows] if not rows.all() else X, group)
            ww = None if w is None else w[rows]
            est = self._member(seeds[i])
            est.fit(M, yy, sample_weight=ww)  # the member exactly as without calibration
            if method is not None:
                if self.model == "hgb":  # trees: two-fold cross-fitted scores (each from a fold not trained on it)
                    raw, ca = self._cross_fitted(M, yy, ww, seeds[i]), slice(None)
                else:  # networks: their early-stopping rows (never trained on)
                    ca = est.validation_indices_
                    if ca is None or np.unique(yy[ca]).size < 2:
                        raise InputError(f"{self._group_name(group)}: no held-out rows of both classes to calibrate "
                                         f"on (validation_fraction={self.validation_fraction})")
                    raw = est.predict_proba(M[ca])[:, 1]
                self.calibrators_[group] = ScoreCalibrator(method).fit(
                    raw, yy[ca], None if ww is None else ww[ca])
            self.members_[group] = est
            self.features_[group] = (list(ALL_FEATURES) + [f"is_{c}" for c in CATEGORIES] if cat == "all"
                                     else list(category_features(cat)))
            self.n_train_[group] = {"electrons": n_sig, "others": n_bkg}
        self.classes_ = np.array([0, 1])
        return self

    def _calibration_method(self) -> str | None:
        if self.calibration == "auto":  # HGB's class-balanced log-loss boosting is calibrated already
            return None if self.model == "hgb" else "sigmoid"
        return self.calibration

    def _cross_fitted(self, M, y, w, seed) -> np.ndarray:
        """Scores of each row from a member fitted on the other half of the rows (stratified 2-fold)."""
        from ..nn.training import stratified_split

        rng = np.random.default_rng([seed, 1])
        a, b = stratified_split(y, 0.5, rng)
        out = np.empty(y.size)
        for tr, te in ((a, b), (b, a)):
            f = self._member(int(rng.integers(2**31 - 1))).fit(M[tr], y[tr], None if w is None else w[tr])
            out[te] = f.predict_proba(M[te])[:, 1]
        return out

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        if not hasattr(self, "members_"):
            raise NotFittedError("ElectronTagger is not fitted")
        check_tracks(X)
        p = np.full(len(X), np.nan)
        for group in self.members_:
            rows = self._rows(X, group)
            if rows.any():
                p[rows] = self._calibrated(group, self._raw(group, self._matrix(X[rows] if not rows.all() else X,
                                                                                group)))
        if np.isnan(p).any():
            raise InputError(f"{int(np.isnan(p).sum())} track(s) fall in a category without a trained model")
        if self.prior is not None:
            p = prior_shift(p, self.prior)
        return np.column_stack([1 - p, p])

    def decision_function(self, X: pd.DataFrame) -> np.ndarray:
        return logit(self.predict_proba(X)[:, 1])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(np.int64)

    def member_predict(self, group: str, matrix: np.ndarray) -> np.ndarray:
        """Probability (calibrated, at equal priors) of the ``group`` member on its own feature matrix (SHAP)."""
        return self._calibrated(group, self._raw(group, matrix))

    # state_dict-style persistence (excess.nn.io): network weights, or the HGB trees as node arrays
    def _get_state(self):
        tensors, meta = {}, {"groups": {}}
        for group, est in self.members_.items():
            t, m = est._get_state()
            tensors.update({f"{group}/{k}": v for k, v in t.items()})
            cat, r = self.groups_[group]
            meta["groups"][group] = {"meta": m, "features": self.features_[group], "n_train": self.n_train_[group],
                                     "params": {k: v for k, v in est.get_params().items() if k != "device"},
                                     "category": cat, "pt_bins": None if r is None else list(r)}
            if group in self.calibrators_:
                t, m = self.calibrators_[group].get_state()
                tensors.update({f"calibration:{group}/{k}": v for k, v in t.items()})
                meta["groups"][group]["calibration"] = m
        return tensors, meta

    def _set_state(self, tensors, meta):
        from ..nn.classifiers import HGBEnsemble, MLPClassifier

        self.members_, self.features_, self.n_train_, self.calibrators_, self.groups_ = {}, {}, {}, {}, {}
        for group, g in meta["groups"].items():
            r = g.get("pt_bins")  # older files: keyed by category, no pT bins
            self.groups_[group] = (g.get("category", group), None if r is None else tuple(r))
            if "calibration" in g:
                pre = f"calibration:{group}/"
                self.calibrators_[group] = ScoreCalibrator.from_state(
                    {k[len(pre):]: v for k, v in tensors.items() if k.startswith(pre)}, g["calibration"])
            params = {k: tuple(v) if isinstance(v, list) else v for k, v in g["params"].items()}
            est = HGBEnsemble(**params) if self.model == "hgb" else MLPClassifier(**params, device=self.device)
            prefix = f"{group}/"
            est._set_state({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}, g["meta"])
            self.members_[group] = est
            self.features_[group] = list(g["features"])
            self.n_train_[group] = g["n_train"]
        self.classes_ = np.array([0, 1])
