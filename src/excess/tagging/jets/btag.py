"""Track-based b-taggers (b / c / light) as scikit-learn-style estimators on :func:`excess.data.btag.load_btag` inputs.

Inputs ``X`` ``(n_jets, n_tracks, 5)``: per track the lifetime-signed transverse and longitudinal impact-parameter
significances ``S_d0``, ``S_z0``, the pT fraction of the jet, Delta R(track, jet) and the track grade (0/1/2),
zero-padded (``pt_frac == 0`` marks padding) and ordered by decreasing ``|S_d0|``
(:data:`excess.data.btag.BTAG_FEATURES`). Labels ``y`` are the truth flavours 0 (light), 4 (c), 5 (b).

* :class:`IPLikelihoodTagger` -- an IP3D-like baseline: per-flavour templates of ``(S_d0, S_z0)`` per track
  grade (2-d histograms), and the jet log-likelihood ``sum_tracks log p_f(track)`` for each flavour; the class
  probabilities are ``softmax_f`` of it (equal priors), so ``log(p_b / p_l)`` is IP3D's log-likelihood ratio.
* :class:`RNNIPTagger` -- a GRU over the tracks in ``|S_d0|`` order (ATLAS RNNIP, ATL-PHYS-PUB-2017-003), the
  last hidden state into a dense head with three outputs.
* :class:`DeepSetBTagger` -- a particle-flow (deep-set) network, :func:`excess.nn.sets.particle_flow_network`,
  on the same per-track inputs (DIPS-like).

The networks see ``sign(S) log(1 + |S|)`` for both significances (tails of hundreds compressed), ``log(pt_frac)``,
``Delta R / 0.4`` and the grade one-hot. Training: class-balanced cross entropy through
:func:`excess.nn.training.fit_torch` with a stratified validation split and early stopping.

Every tagger has ``predict_proba`` ``(n, 3)`` in the order of ``classes_ = [0, 4, 5]`` and
:meth:`discriminant`, the b-tagging discriminant (ATLAS DL1-style)::

    D_b = log( p_b / (f_c p_c + (1 - f_c) p_light) ),   f_c = 0.07 by default (:data:`F_C`)

(the c fraction of the background hypothesis; ATLAS used 0.018-0.08 for its taggers, 0.07 is within that
range and tilts the discriminant only a little towards c rejection). Save and load through :mod:`excess.nn.io`.
"""

from __future__ import annotations

import functools

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from ..._util import check_random_state, spawn_seeds
from ...data.btag import FLAVOURS, GRADES, check_btag_inputs
from ...errors import ConfigError, InputError, NotFittedError
from ...nn.estimators import TorchStateMixin

__all__ = ["F_C", "b_discriminant", "IPLikelihoodTagger", "RNNIPTagger", "DeepSetBTagger", "BTAGGERS",
           "make_btagger", "network_inputs"]

#: default c fraction of the background in :func:`b_discriminant`
F_C = 0.07
CLASSES = np.array([FLAVOURS["light"], FLAVOURS["c"], FLAVOURS["b"]])


def b_discriminant(proba, f_c: float = F_C) -> np.ndarray:
    """``D_b = log(p_b / (f_c p_c + (1 - f_c) p_l))`` from probabilities ``(n, 3)`` ordered light, c, b."""
    p = np.asarray(proba, dtype=float)
    if p.ndim != 2 or p.shape[1] != 3:
        raise InputError(f"proba must have shape (n, 3) ordered (light, c, b), got {p.shape}")
    if not 0 <= f_c <= 1:
        raise ConfigError(f"f_c must be in [0, 1], got {f_c}")
    eps = 1e-12
    return np.log(p[:, 2] + eps) - np.log(f_c * p[:, 1] + (1 - f_c) * p[:, 0] + eps)


def _class_index(y) -> np.ndarray:
    return np.searchsorted(CLASSES, y)


def _check_fit(X, y, name="training jets"):
    X, y = check_btag_inputs(X, y, name=name)
    missing = [k for k, v in FLAVOURS.items() if not np.any(y == v)]
    if missing:
        raise InputError(f"{name}: training needs b, c and light jets; none of {missing}")
    return X, y


class _BTagger(ClassifierMixin, BaseEstimator):
    def discriminant(self, X, f_c: float = F_C) -> np.ndarray:
        """The b-tagging discriminant ``D_b`` (:func:`b_discriminant`)."""
        return b_discriminant(self.predict_proba(X), f_c)

    def decision_function(self, X) -> np.ndarray:
        """``D_b`` at the default ``f_c``: larger is more b-like."""
        return self.discriminant(X)

    def predict(self, X) -> np.ndarray:
        return CLASSES[np.argmax(self.predict_proba(X), axis=1)]


# --------------------------------------------------------------------------------------------------
# IP3D-like likelihood baseline


class IPLikelihoodTagger(_BTagger):
    """Per-track likelihood of the signed IP significances, per flavour and track grade (IP3D-like).

    ``d0_edges``/``z0_edges`` are the bin edges of the 2-d templates (values outside are put in the edge bins);
    ``smoothing`` is a pseudo-count added to every bin (no empty bins). Deterministic: no ``random_state``.
    """

    def __init__(self, d0_edges=(-40, -10, -5, -3, -2, -1, -0.5, 0, 0.5, 1, 1.5, 2, 3, 4, 6, 8, 12, 20, 40, 100),
                 z0_edges=(-40, -10, -4, -2, -1, 0, 1, 2, 4, 10, 40), smoothing: float = 1.0, max_tracks: int | None = None):
        self.d0_edges = d0_edges
        self.z0_edges = z0_edges
        self.smoothing = smoothing
        self.max_tracks = max_tracks

    def _bins(self, X):
        e0, e1 = np.asarray(self.d0_edges, float), np.asarray(self.z0_edges, float)
        i = np.clip(np.searchsorted(e0, X[..., 0], side="right") - 1, 0, e0.size - 2)
        j = np.clip(np.searchsorted(e1, X[..., 1], side="right") - 1, 0, e1.size - 2)
        g = X[..., 4].astype(np.int64)
        mask = X[..., 2] > 0
        if self.max_tracks is not None:
            mask = mask & (np.arange(X.shape[1]) < self.max_tracks)[None, :]
        return g, i, j, mask

    def fit(self, X, y):
        X, y = _check_fit(X, y)
        if self.smoothing <= 0:
            raise ConfigError(f"smoothing must be > 0, got {self.smoothing}")
        for edges, nm in ((self.d0_edges, "d0_edges"), (self.z0_edges, "z0_edges")):
            if len(edges) < 2 or np.any(np.diff(edges) <= 0):
                raise ConfigError(f"{nm} must be increasing with >= 2 entries")
        g, i, j, mask = self._bins(X)
        n0, n1 = len(self.d0_edges) - 1, len(self.z0_edges) - 1
        logp = np.zeros((3, GRADES, n0, n1))
        for c, lab in enumerate(CLASSES):
            m = mask & (y == lab)[:, None]
            h = np.zeros((GRADES, n0, n1))
            np.add.at(h, (g[m], i[m], j[m]), 1.0)
            h += self.smoothing
            logp[c] = np.log(h / h.sum(axis=(1, 2), keepdims=True))
        self.log_templates_ = logp
        self.classes_ = CLASSES.copy()
        return self

    def log_likelihood(self, X) -> np.ndarray:
        """``(n, 3)`` sums over tracks of ``log p_f(S_d0, S_z0 | grade)`` for light, c, b."""
        if not hasattr(self, "log_templates_"):
            raise NotFittedError("IPLikelihoodTagger is not fitted")
        X, _ = check_btag_inputs(X, name="jets")
        g, i, j, mask = self._bins(X)
        lt = self.log_templates_
        return np.stack([(lt[c][g, i, j] * mask).sum(axis=1) for c in range(3)], axis=1)

    def predict_proba(self, X) -> np.ndarray:
        ll = self.log_likelihood(X)
        ll = ll - ll.max(axis=1, keepdims=True)
        p = np.exp(ll)
        return p / p.sum(axis=1, keepdims=True)

    def _get_state(self):
        import torch

        return {"log_templates": torch.from_numpy(np.ascontiguousarray(self.log_templates_))}, {}

    def _set_state(self, tensors, meta):
        self.log_templates_ = tensors["log_templates"].double().numpy()
        self.classes_ = CLASSES.copy()


# --------------------------------------------------------------------------------------------------
# networks


def network_inputs(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-track network features ``(n, M, 7)`` (compressed significances, log pT fraction, Delta R / 0.4, grade
    one-hot) and the mask ``(n, M)``; padded rows are zero."""
    mask = X[..., 2] > 0
    f = np.zeros((*X.shape[:2], 4 + GRADES), dtype=np.float32)
    f[..., 0] = np.sign(X[..., 0]) * np.log1p(np.abs(X[..., 0]))
    f[..., 1] = np.sign(X[..., 1]) * np.log1p(np.abs(X[..., 1]))
    f[..., 2] = np.log(np.where(mask, X[..., 2], 1.0))
    f[..., 3] = X[..., 3] / 0.4
    g = np.clip(X[..., 4].astype(np.int64), 0, GRADES - 1)
    f[..., 4:] = np.eye(GRADES, dtype=np.float32)[g]
    f[~mask] = 0.0
    return f, mask


@functools.cache
def _rnn_class():
    import torch

    class TrackRNN(torch.nn.Module):
        """GRU (or LSTM) over tracks; the hidden state after each jet's last real track -> dense head."""

        def __init__(self, n_features, hidden, head, n_out, cell):
            super().__init__()
            from ...nn.mlp import mlp

            rnn = torch.nn.GRU if cell == "gru" else torch.nn.LSTM
            self.rnn = rnn(n_features, hidden, batch_first=True)
            self.head = mlp((hidden, *head, n_out), "relu")

        def forward(self, x, mask):
            lengths = mask.sum(dim=1).clamp(min=1).cpu()
            packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
            _, h = self.rnn(packed)
            if isinstance(h, tuple):  # LSTM: (h, c)
                h = h[0]
            return self.head(h[-1])

    return TrackRNN


class _TorchBTagger(TorchStateMixin, _BTagger):
    _fitted_classes = CLASSES

    def _check_inputs(self, X):
        return check_btag_inputs(X, name="jets")[0]

    def _inputs(self, X):
        return network_inputs(X)

    def _forward(self, net, x, mask):
        return net(x, mask)

    def fit(self, X, y):
        import torch

        from ...nn.device import resolve_device
        from ...nn.training import fit_torch, reset_parameters, stratified_split, torch_generator

        X, y = _check_fit(X, y)
        device = resolve_device(self.device)
        rng = check_random_state(self.random_state)
        seed_init, seed_loop = spawn_seeds(rng, 2)
        ci = _class_index(y)
        tr, va = stratified_split(ci, self.validation_fraction, rng, classes=range(3))
        f, m = self._inputs(X)
        ft, mt = torch.from_numpy(f), torch.from_numpy(m)
        yt = torch.from_numpy(ci.astype(np.int64))
        frac = np.bincount(ci, minlength=3) / ci.size
        weight = torch.tensor(1.0 / (3.0 * frac), dtype=torch.float32)
        net = self._build()
        reset_parameters(net, torch_generator(seed_init))
        wdev = weight.to(device)

        def loss_fn(module, xb, mb, yb):
            return torch.nn.functional.cross_entropy(module(xb, mb), yb, weight=wdev)

        trt, vat = torch.from_numpy(tr), torch.from_numpy(va)
        res = fit_torch(net, loss_fn, [ft[trt], mt[trt], yt[trt]], [ft[vat], mt[vat], yt[vat]] if va.size else None,
                        epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, patience=self.patience,
                        generator=torch_generator(seed_loop), desc=type(self).__name__, device=device)
        self._keep_fitted(net, res)
        return self

    def predict_proba(self, X) -> np.ndarray:
        import torch

        return torch.softmax(self._network_outputs(X).double(), dim=1).numpy()


class RNNIPTagger(_TorchBTagger):
    """RNNIP-like tagger: a GRU (``cell="gru"``) or LSTM over tracks ordered by ``|S_d0|``, then a dense head."""

    def __init__(self, hidden: int = 50, head=(50, 20), cell: str = "gru", epochs: int = 30, batch_size: int = 256,
                 lr: float = 2e-3, patience: int = 5, validation_fraction: float = 0.1, random_state=None,
                 device: str = "auto"):
        self.hidden = hidden
        self.head = head
        self.cell = cell
        self._common_init(epochs, batch_size, lr, patience, validation_fraction, random_state, device)

    def _build(self):
        if self.cell not in ("gru", "lstm"):
            raise ConfigError(f"cell must be 'gru' or 'lstm', got {self.cell!r}")
        return _rnn_class()(4 + GRADES, int(self.hidden), tuple(self.head), 3, self.cell)


class DeepSetBTagger(_TorchBTagger):
    """Deep-set (particle-flow network) tagger on the per-track inputs (DIPS-like)."""

    def __init__(self, phi_sizes=(64, 64, 64), f_sizes=(64, 64), epochs: int = 30, batch_size: int = 256,
                 lr: float = 2e-3, patience: int = 5, validation_fraction: float = 0.1, random_state=None,
                 device: str = "auto"):
        self.phi_sizes = phi_sizes
        self.f_sizes = f_sizes
        self._common_init(epochs, batch_size, lr, patience, validation_fraction, random_state, device)

    def _build(self):
        from ...nn.sets import particle_flow_network

        return particle_flow_network(4 + GRADES, self.phi_sizes, self.f_sizes, 3)


BTAGGERS = {"ip3d": IPLikelihoodTagger, "rnnip": RNNIPTagger, "deepsets": DeepSetBTagger}


def make_btagger(name: str, **params):
    """A b-tagger by name (:data:`BTAGGERS`); ``params`` go to its constructor (``random_state`` is dropped for
    the deterministic ``ip3d``)."""
    if name not in BTAGGERS:
        raise ConfigError(f"unknown b-tagger {name!r}; known: {', '.join(BTAGGERS)}")
    if name == "ip3d":
        params = {k: v for k, v in params.items() if k not in ("random_state", "device")}
    return BTAGGERS[name](**params)
