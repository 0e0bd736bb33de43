"""Binary classifiers used by the weakly supervised methods.

* :class:`HGBEnsemble` — an ensemble of scikit-learn ``HistGradientBoostingClassifier`` members with
  different seeds (and therefore different early-stopping validation splits). Strong and fast on CPU
  and robust to uninformative extra features (the tree-based AD results of Finke et al. 2023).
* :class:`MLPClassifier` — a torch MLP with class-balanced BCE, early stopping on a validation split
  and best-epoch ensembling (the average of the ``n_best`` lowest-validation-loss epochs, as CATHODE).

Both follow scikit-learn: ``fit(X, y, sample_weight=None)``, ``predict_proba`` (n, 2),
``decision_function`` (log-odds). :func:`make_classifier` picks one by name.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from .._util import check_random_state, spawn_seeds
from ..errors import ConfigError, InputError, NotFittedError

__all__ = ["HGBEnsemble", "MLPClassifier", "make_classifier", "CLASSIFIERS", "MLP_PREPROCESSINGS", "balanced_weights"]

CLASSIFIERS = ("hgb", "mlp")
MLP_PREPROCESSINGS = ("standard", "quantile")


def balanced_weights(y: np.ndarray, sample_weight: np.ndarray | None = None) -> np.ndarray:
    """Per-event weights giving both classes the same total weight (mean weight 1)."""
    y = np.asarray(y).astype(bool)
    w = np.ones(y.size) if sample_weight is None else np.asarray(sample_weight, dtype=float).copy()
    total = w.sum()
    for c in (False, True):
        tot = w[y == c].sum()
        if tot <= 0:
            raise InputError("both classes need events with positive weight")
        w[y == c] *= 0.5 * total / tot
    return w * (y.size / total)


def _check_xy(X, y):
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    if X.ndim != 2 or y.shape != (X.shape[0],):
        raise InputError(f"X must be (n, d) and y (n,), got {X.shape} and {y.shape}")
    if not np.all(np.isfinite(X)):
        raise InputError("X contains NaN or infinite values")
    if set(np.unique(y).tolist()) != {0, 1}:
        raise InputError(f"y must contain both classes 0 and 1, got {np.unique(y).tolist()}")
    return X, y.astype(np.int64)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return np.log(p) - np.log1p(-p)


class HGBEnsemble(ClassifierMixin, BaseEstimator):
    """Average of ``n_members`` gradient-boosted tree classifiers (class-balanced).

    Parameters mirror :class:`sklearn.ensemble.HistGradientBoostingClassifier`; each member uses its own
    seed and early-stopping split (``validation_fraction``).
    """

    def __init__(
        self,
        n_members: int = 5,
        max_iter: int = 200,
        learning_rate: float = 0.1,
        max_leaf_nodes: int = 31,
        min_samples_leaf: int = 20,
        l2_regularization: float = 0.0,
        validation_fraction: float = 0.2,
        n_iter_no_change: int = 10,
        balance: bool = True,
        random_state=None,
    ):
        self.n_members = n_members
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.balance = balance
        self.random_state = random_state

    def fit(self, X, y, sample_weight=None):
        from sklearn.ensemble import HistGradientBoostingClassifier

        X, y = _check_xy(X, y)
        if self.n_members < 1:
            raise ConfigError(f"n_members must be >= 1, got {self.n_members}")
        w = balanced_weights(y, sample_weight) if self.balance else sample_weight
        seeds = spawn_seeds(check_random_state(self.random_state), self.n_members)
        self.members_ = []
        for s in seeds:
            clf = HistGradientBoostingClassifier(
                max_iter=self.max_iter,
                learning_rate=self.learning_rate,
                max_leaf_nodes=self.max_leaf_nodes,
                min_samples_leaf=self.min_samples_leaf,
                l2_regularization=self.l2_regularization,
                early_stopping=self.validation_fraction > 0,
                validation_fraction=self.validation_fraction if self.validation_fraction > 0 else None,
                n_iter_no_change=self.n_iter_no_change,
                random_state=s,
            )
            self.members_.append(clf.fit(X, y, sample_weight=w))
        self.classes_ = np.array([0, 1])
        self.n_features_in_ = X.shape[1]
        return self

    def predict_proba(self, X) -> np.ndarray:
        if not hasattr(self, "members_"):
            raise NotFittedError("HGBEnsemble is not fitted")
        X = np.asarray(X, dtype=np.float64)
        p = np.mean([m.predict_proba(X)[:, 1] for m in self.members_], axis=0)
        return np.column_stack([1 - p, p])

    def decision_function(self, X) -> np.ndarray:
        return _logit(self.predict_proba(X)[:, 1])

    def predict(self, X) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(np.int64)

    # state_dict persistence (excess.nn.io): every tree's nodes as flat tensors, no pickled objects
    def _get_state(self) -> tuple[dict, dict]:
        import torch

        if not hasattr(self, "members_"):
            raise AttributeError("members_")
        tensors = {}
        for i, m in enumerate(self.members_):
            trees = _TreeArrays.from_sklearn(m)
            tensors.update({f"member{i}/{k}": torch.from_numpy(np.ascontiguousarray(v))
                            for k, v in trees.arrays().items()})
        return tensors, {"n_members": len(self.members_), "n_features_in": int(self.n_features_in_)}

    def _set_state(self, tensors: dict, meta: dict) -> None:
        self.members_ = []
        for i in range(int(meta["n_members"])):
            pre = f"member{i}/"
            self.members_.append(_TreeArrays(**{k[len(pre):]: v.numpy() for k, v in tensors.items()
                                                 if k.startswith(pre)}))
        self.classes_ = np.array([0, 1])
        self.n_features_in_ = int(meta["n_features_in"])


class _TreeArrays:
    """A fitted binary ``HistGradientBoostingClassifier`` as flat node arrays, predicting with numpy.

    The export reads the public-by-convention node records of scikit-learn's ``TreePredictor``
    (``feature_idx``, ``num_threshold``, ``missing_go_to_left``, ``left``, ``right``, ``is_leaf``, ``value``;
    leaf values already include the learning rate) and ``_baseline_prediction``; the prediction follows
    scikit-learn's rule (NaN goes where ``missing_go_to_left`` says, else ``x <= threshold`` goes left) and
    returns ``sigmoid(baseline + sum of leaf values)``. Categorical splits are not supported.
    """

    _KEYS = ("feature", "threshold", "missing_left", "left", "right", "is_leaf", "value", "offsets", "baseline")

    def __init__(self, feature, threshold, missing_left, left, right, is_leaf, value, offsets, baseline):
        self.feature, self.threshold = np.asarray(feature, np.int64), np.asarray(threshold, np.float64)
        self.missing_left, self.is_leaf = np.asarray(missing_left, bool), np.asarray(is_leaf, bool)
        self.left, self.right = np.asarray(left, np.int64), np.asarray(right, np.int64)
        self.value, self.offsets = np.asarray(value, np.float64), np.asarray(offsets, np.int64)
        self.baseline = float(np.asarray(baseline).reshape(-1)[0])

    @classmethod
    def from_sklearn(cls, clf) -> _TreeArrays:
        preds = [it[0] for it in clf._predictors]  # binary: one tree per iteration
        if getattr(clf, "n_trees_per_iteration_", 1) != 1:
            raise ConfigError("only binary HistGradientBoosting members can be saved")
        nodes, offsets, start = [], [], 0
        for tp in preds:
            nd = tp.nodes
            if "is_categorical" in nd.dtype.names and nd["is_categorical"].any():
                raise ConfigError("HGB members with categorical splits cannot be saved")
            nodes.append(nd)
            offsets.append(start)
            start += len(nd)
        nd = np.concatenate(nodes) if nodes else np.zeros(0, dtype=preds[0].nodes.dtype if preds else float)
        off = np.asarray(offsets, np.int64)
        shift = np.repeat(off, [len(x) for x in nodes]) if nodes else np.zeros(0, np.int64)
        return cls(nd["feature_idx"], nd["num_threshold"], nd["missing_go_to_left"],
                   nd["left"].astype(np.int64) + shift, nd["right"].astype(np.int64) + shift, nd["is_leaf"],
                   nd["value"], off,
                   np.asarray(clf._baseline_prediction, np.float64).reshape(-1)[:1])

    def arrays(self) -> dict:
        return {"feature": self.feature, "threshold": self.threshold,
                "missing_left": self.missing_left.astype(np.uint8),
                "left": self.left, "right": self.right, "is_leaf": self.is_leaf.astype(np.uint8), "value": self.value,
                "offsets": self.offsets, "baseline": np.array([self.baseline])}

    def raw_predict(self, X, chunk: int = 8192) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        out = np.full(X.shape[0], self.baseline)
        if self.offsets.size == 0:
            return out
        for lo in range(0, X.shape[0], chunk):
            x = X[lo:lo + chunk]
            rows = np.arange(x.shape[0])[:, None]
            idx = np.broadcast_to(self.offsets[None, :], (x.shape[0], self.offsets.size)).copy()
            active = ~self.is_leaf[idx]
            while active.any():
                r, c = np.nonzero(active)
                node = idx[r, c]
                v = x[rows[r, 0], self.feature[node]]
                go_left = np.where(np.isnan(v), self.missing_left[node], v <= self.threshold[node])
                nxt = np.where(go_left, self.left[node], self.right[node])
                idx[r, c] = nxt
                active[r, c] = ~self.is_leaf[nxt]
            out[lo:lo + chunk] += self.value[idx].sum(axis=1)
        return out

    def predict_proba(self, X) -> np.ndarray:
        p = 1.0 / (1.0 + np.exp(-self.raw_predict(X)))
        return np.column_stack([1 - p, p])


class MLPClassifier(ClassifierMixin, BaseEstimator):
    """Torch MLP classifier with early stopping and best-epoch ensembling.

    The loss is class-balanced BCE; the prediction averages the probabilities of the ``n_best`` epochs with
    lowest validation loss. ``dropout`` (> 0) adds dropout after each hidden layer (active in training only).

    ``preprocessing`` maps the inputs before the network, fitted on the training rows:

    * ``"standard"`` (default): subtract the mean, divide by the standard deviation.
    * ``"quantile"``: each input through its empirical CDF and ``Phi^-1``
      (:class:`~excess.nn.preprocessing.QuantileScaler`; constant inputs map to 0). Use it when inputs are
      heavy-tailed: a standardised input whose standard deviation is set by a few far outliers (impact
      parameters in mm with secondary tracks at 10 mm, ratios with small denominators) squeezes the bulk,
      where the classes differ, into a sliver near 0 that a ReLU network with dropout does not resolve in a
      few hundred steps; the quantile map spreads every input's bulk over unit scale and bounds the outliers
      (values beyond the training range map to the edge), and is invariant under any monotone change of
      the input's units.

    ``min_epoch_steps`` (> 0): an epoch shows the training rows as many times as needed for at least that
    many optimizer steps, so a small training set is not trained for only ``epochs x ceil(n / batch_size)``
    steps (a few dozen for a thousand rows at batch 512); ``epochs`` and ``patience`` then count such
    epochs. 0 (default) keeps one pass per epoch.

    ``max_steps`` (None: no budget): the opposite bound, for large training sets: at most
    ``ceil(max_steps / steps_per_epoch)`` of the ``epochs`` (:func:`~excess.nn.training.fit_torch`).
    """

    def __init__(
        self,
        hidden: tuple[int, ...] = (64, 64, 64),
        epochs: int = 100,
        batch_size: int = 256,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        patience: int = 10,
        n_best: int = 5,
        validation_fraction: float = 0.2,
        balance: bool = True,
        random_state=None,
        device: str = "auto",
        dropout: float = 0.0,
        preprocessing: str = "standard",
        min_epoch_steps: int = 0,
        max_steps: int | None = None,
    ):
        self.hidden = hidden
        self.dropout = dropout
        self.preprocessing = preprocessing
        self.min_epoch_steps = min_epoch_steps
        self.max_steps = max_steps
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.patience = patience
        self.n_best = n_best
        self.validation_fraction = validation_fraction
        self.balance = balance
        self.random_state = random_state
        self.device = device

    def _build(self, d: int):
        import torch

        from .mlp import mlp

        return mlp((d, *self.hidden, 1), "relu", dropout=self.dropout, dtype=torch.float64)

    def fit(self, X, y, sample_weight=None, *, validation=None):
        """Train on ``X``, ``y``; ``validation=(X_val, y_val)`` replaces the internal split (``validation_fraction``)
        as the early-stopping set (class-balanced like the training rows when ``balance``)."""
        import torch

        from .device import resolve_device
        from .training import fit_torch, reset_parameters, stratified_split, torch_generator

        device = resolve_device(self.device)
        if self.preprocessing not in MLP_PREPROCESSINGS:
            raise ConfigError(f"preprocessing must be one of {', '.join(MLP_PREPROCESSINGS)}, "
                              f"got {self.preprocessing!r}")
        if int(self.min_epoch_steps) < 0:
            raise ConfigError(f"min_epoch_steps must be >= 0, got {self.min_epoch_steps}")
        X, y = _check_xy(X, y)
        rng = check_random_state(self.random_state)
        seed_init, seed_loop = spawn_seeds(rng, 2)
        self._fit_inputs(X)
        w = balanced_weights(y, sample_weight) if self.balance else (
            np.ones(y.size) if sample_weight is None else np.asarray(sample_weight, float))
        if validation is None:  # stratified split so both classes are in the validation set
            tr, va = stratified_split(y, self.validation_fraction, rng)
            self.validation_indices_ = va  # rows never trained on (early stopping only): a calibration set
        else:
            tr, va = np.arange(y.size), np.arange(0)
            self.validation_indices_ = None
            Xv, yv = _check_xy(*validation)
            wv = balanced_weights(yv) if self.balance else np.ones(yv.size)
        steps = -(-tr.size // self.batch_size)
        if self.min_epoch_steps and tr.size and steps < self.min_epoch_steps:  # small set: more passes per epoch
            tr = np.tile(tr, -(-int(self.min_epoch_steps) * self.batch_size // tr.size))
        Xs = torch.from_numpy(self._inputs(X))
        yt = torch.from_numpy(y.astype(np.float64))
        wt = torch.from_numpy(w)
        net = self._build(X.shape[1])
        reset_parameters(net, torch_generator(seed_init))

        def loss_fn(net, xb, yb, wb):
            logit = net(xb).squeeze(-1)
            return (torch.nn.functional.binary_cross_entropy_with_logits(logit, yb, reduction="none") * wb).mean()

        val = (Xs[va], yt[va], wt[va]) if va.size else None
        if validation is not None:
            val = (torch.from_numpy(self._inputs(Xv)), torch.from_numpy(yv.astype(np.float64)),
                   torch.from_numpy(wv))
        res = fit_torch(
            net, loss_fn, (Xs[tr], yt[tr], wt[tr]), val,
            epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, weight_decay=self.weight_decay,
            patience=self.patience, n_best=self.n_best, generator=torch_generator(seed_loop), desc="mlp",
            device=device, max_steps=self.max_steps,
        )
        self.states_ = [s for _, _, s in res.best_states]
        self.history_ = res.to_dict()
        self.classes_ = np.array([0, 1])
        self.n_features_in_ = X.shape[1]
        self._net = net
        return self

    def predict_proba(self, X) -> np.ndarray:
        import torch

        from .device import resolve_device
        from .training import batched_eval

        if not hasattr(self, "states_"):
            raise NotFittedError("MLPClassifier is not fitted")
        X = np.asarray(X, dtype=np.float64)
        xt = torch.from_numpy(self._inputs(X))
        device = resolve_device(self.device)
        net = (getattr(self, "_net", None) or self._build(self.n_features_in_)).to(device)
        net.eval()  # dropout off when predicting
        ps = []
        for s in self.states_:
            net.load_state_dict(s)
            ps.append(torch.sigmoid(batched_eval(net, (xt,), device=device)).squeeze(-1).numpy())
        p = np.mean(ps, axis=0)
        return np.column_stack([1 - p, p])

    def decision_function(self, X) -> np.ndarray:
        return _logit(self.predict_proba(X)[:, 1])

    def predict(self, X) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(np.int64)

    # input preprocessing: "standard" (mean_, scale_) or "quantile" (quantile_ on the non-constant columns,
    # then mean_ = 0, scale_ = 1; constant columns map to 0)
    def _fit_inputs(self, X: np.ndarray) -> None:
        from .preprocessing import QuantileScaler

        self.quantile_, self.varying_ = None, None
        if self.preprocessing == "quantile":
            self.varying_ = X.max(axis=0) > X.min(axis=0)
            if self.varying_.any():
                self.quantile_ = QuantileScaler().fit(X[:, self.varying_])
            self.mean_, self.scale_ = np.zeros(X.shape[1]), np.ones(X.shape[1])
            return
        self.mean_ = X.mean(axis=0)
        self.scale_ = X.std(axis=0)
        self.scale_[self.scale_ == 0] = 1.0

    def _inputs(self, X: np.ndarray) -> np.ndarray:
        if getattr(self, "varying_", None) is None:
            return (X - self.mean_) / self.scale_
        Z = np.zeros_like(X)
        if self.quantile_ is not None:
            Z[:, self.varying_] = self.quantile_.transform(X[:, self.varying_])[0]
        return Z

    # state_dict-style persistence (see excess.nn.io)
    def _get_state(self) -> tuple[dict, dict]:
        tensors = {f"epoch{i}.{k}": v for i, s in enumerate(self.states_) for k, v in s.items()}
        meta = {"mean": self.mean_.tolist(), "scale": self.scale_.tolist(), "n_states": len(self.states_),
                "n_features_in": self.n_features_in_}
        if getattr(self, "varying_", None) is not None:
            meta["quantile"] = {"varying": self.varying_.tolist(),
                                "state": None if self.quantile_ is None else self.quantile_.get_state()}
        return tensors, meta

    def _set_state(self, tensors: dict, meta: dict) -> None:
        from .preprocessing import QuantileScaler

        self.mean_ = np.asarray(meta["mean"])
        self.scale_ = np.asarray(meta["scale"])
        self.quantile_, self.varying_ = None, None
        if "quantile" in meta:  # models saved before the option have standardised inputs
            self.varying_ = np.asarray(meta["quantile"]["varying"], dtype=bool)
            st = meta["quantile"]["state"]
            self.quantile_ = None if st is None else QuantileScaler.from_state(st)
        self.n_features_in_ = int(meta["n_features_in"])
        self.states_ = []
        for i in range(int(meta["n_states"])):
            p = f"epoch{i}."
            self.states_.append({k[len(p):]: v for k, v in tensors.items() if k.startswith(p)})
        self.classes_ = np.array([0, 1])
        self._net = self._build(self.n_features_in_)


def make_classifier(spec: str | BaseEstimator = "hgb", *, random_state=None, **params) -> BaseEstimator:
    """A classifier by name (``"hgb"`` or ``"mlp"``) or a given estimator (cloned, seed set)."""
    from sklearn.base import clone

    if isinstance(spec, BaseEstimator):
        est = clone(spec)
        if params:
            est.set_params(**params)
    elif spec == "hgb":
        est = HGBEnsemble(**params)
    elif spec == "mlp":
        est = MLPClassifier(**params)
    else:
        raise ConfigError(f"unknown classifier {spec!r}; known: {', '.join(CLASSIFIERS)} (or an estimator instance)")
    if "random_state" in est.get_params(deep=False):
        est.set_params(random_state=random_state)
    return est
