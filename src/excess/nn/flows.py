"""Conditional normalizing flows ``p(x | c)`` built on ``zuko`` (spline NSF or affine MAF).

:class:`ConditionalFlow` is an estimator: ``fit(X, c)`` trains by maximum likelihood with early stopping
on a validation split; ``log_prob(X, c)`` returns the log-density **in the original variables** (the
:class:`~excess.nn.preprocessing.LogitScaler` Jacobian included); ``sample(c)`` draws ``x ~ p(x|c)``
with a seeded generator; ``to_base(X, c)`` / ``from_base(U, c)`` map to and from the base Gaussian
(a conditional Gaussianisation: for data following ``p(x | c)`` the base coordinates are standard normal
and independent of ``c``); ``fit(..., sample_weight=w)`` maximises the weighted likelihood;
``save``/``load`` use state dicts + JSON.

>>> flow = ConditionalFlow(kind="nsf", transforms=4).fit(X_sb, m_sb)   # doctest: +SKIP
>>> x_sr = flow.sample(m_sr, random_state=0)                            # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator

from .._util import check_random_state, spawn_seeds
from ..errors import ConfigError, InputError, NotFittedError
from .preprocessing import PREPROCESSINGS, make_scaler, scaler_from_state

__all__ = ["ConditionalFlow", "build_zuko_flow", "FLOW_KINDS", "FLOW_ACTIVATIONS"]

FLOW_KINDS = ("nsf", "maf")
#: hidden activations of the flows' networks; "relu" is zuko's default. Smooth ones (elu, silu, tanh) give
#: densities with smooth second derivatives, which derivative-based uses (e.g. the Boltzmann equation) need.
FLOW_ACTIVATIONS = ("relu", "elu", "silu", "tanh")


def build_zuko_flow(kind: str, features: int, context: int, transforms: int, hidden, bins: int = 8,
                    activation: str = "relu"):
    """A zuko flow module: ``flow(c)`` is a torch distribution over ``features`` dimensions."""
    import torch
    import zuko

    hidden = tuple(int(h) for h in hidden)
    if activation not in FLOW_ACTIVATIONS:
        raise ConfigError(f"unknown flow activation {activation!r}; known: {', '.join(FLOW_ACTIVATIONS)}")
    # zuko's default (ReLU) is passed as nothing, so that default flows stay exactly as before
    act = {} if activation == "relu" else {
        "activation": {"elu": torch.nn.ELU, "silu": torch.nn.SiLU, "tanh": torch.nn.Tanh}[activation]}
    if kind == "nsf":
        return zuko.flows.NSF(features, context, bins=int(bins), transforms=int(transforms), hidden_features=hidden,
                              **act)
    if kind == "maf":
        return zuko.flows.MAF(features, context, transforms=int(transforms), hidden_features=hidden, **act)
    raise ConfigError(f"unknown flow kind {kind!r}; known: {', '.join(FLOW_KINDS)}")


def _as_context(c, n: int | None = None) -> np.ndarray:
    if c is None and n is not None:  # an unconditional density: zero context columns
        return np.empty((n, 0))
    c = np.asarray(c, dtype=np.float64)
    if c.ndim == 1:
        c = c[:, None]
    if c.ndim != 2:
        raise InputError(f"context must be (n,) or (n, k), got shape {c.shape}")
    if n is not None and c.shape[0] != n:
        raise InputError(f"mismatched lengths: {n} events but {c.shape[0]} context values")
    if not np.all(np.isfinite(c)):
        raise InputError("context contains NaN or infinite values")
    return c


class ConditionalFlow(BaseEstimator):
    """Conditional density estimator ``p(x | c)``: preprocessing + zuko NSF/MAF.

    Parameters
    ----------
    kind : "nsf" (rational-quadratic spline coupling-free autoregressive flow) or "maf" (affine)
    transforms, hidden, bins : architecture (``bins`` for NSF only)
    activation : hidden activation of the flow's networks (:data:`FLOW_ACTIVATIONS`; "relu" is zuko's default)
    preprocessing : "logit" (box + logit + standardise), "quantile" (marginal Gaussianisation through the
        smoothed empirical CDF, :class:`~excess.nn.preprocessing.QuantileScaler`) or "standard"
    epochs, batch_size, lr, lr_schedule, weight_decay, patience, validation_fraction : training
        (``lr_schedule``: "constant" or "cosine" annealing over ``epochs``)
    max_steps : step budget (None: none): at most ``ceil(max_steps / steps_per_epoch)`` of the ``epochs``, so
        that the training cost stops growing with the number of events once an epoch holds many steps
        (:func:`~excess.nn.training.fit_torch`; ``history_["epochs"]`` is the number planned)
    random_state : seed for the split, the initialisation and the batches
    device : where torch trains and evaluates (:mod:`excess.nn.device`; "auto" picks a CUDA GPU when present)
    """

    def __init__(
        self,
        kind: str = "nsf",
        transforms: int = 4,
        hidden: tuple[int, ...] = (64, 64),
        bins: int = 8,
        preprocessing: str = "logit",
        epochs: int = 100,
        batch_size: int = 512,
        lr: float = 1e-3,
        lr_schedule: str = "constant",
        weight_decay: float = 0.0,
        patience: int = 10,
        validation_fraction: float = 0.2,
        random_state=None,
        device: str = "auto",
        activation: str = "relu",
        max_steps: int | None = None,
    ):
        self.kind = kind
        self.transforms = transforms
        self.hidden = hidden
        self.bins = bins
        self.preprocessing = preprocessing
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.lr_schedule = lr_schedule
        self.weight_decay = weight_decay
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.device = device
        self.activation = activation
        self.max_steps = max_steps

    # -- building blocks -------------------------------------------------------------------------
    def _build(self):
        return build_zuko_flow(self.kind, self.n_features_in_, self.n_context_, self.transforms, self.hidden, self.bins,
                               self.activation)

    def context_tensor(self, c):
        """The flow's context: ``c`` (n, n_context) standardised as in training, a float32 tensor."""
        import torch

        return torch.as_tensor((c - self.context_mean_) / self.context_std_, dtype=torch.float32)

    def _device(self):
        """The resolved device, with the flow moved there."""
        from .device import resolve_device

        device = resolve_device(self.device)
        self.flow_.to(device)
        return device

    def to_latent(self, X) -> tuple[np.ndarray, np.ndarray]:
        """Preprocessed variables ``z`` and ``log|dz/dx|`` (the flow models ``p(z | c)``)."""
        self._check()
        return self.scaler_.transform(X)

    # -- estimator API ---------------------------------------------------------------------------
    def fit(self, X, c, sample_weight=None):
        """Maximum likelihood on ``X`` given context ``c``; ``sample_weight`` (n,), non-negative, weights each
        event's log-likelihood (normalised to mean 1; e.g. weights that make the sample flat in ``c``)."""
        import torch

        from .device import resolve_device
        from .training import LR_SCHEDULES, fit_torch, reset_parameters, torch_generator, train_val_split

        device = resolve_device(self.device)
        if self.preprocessing not in PREPROCESSINGS:
            raise ConfigError(f"preprocessing must be one of {', '.join(PREPROCESSINGS)}, got {self.preprocessing!r}")
        if self.lr_schedule not in LR_SCHEDULES:  # before any work; fit_torch checks it too
            raise ConfigError(f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {self.lr_schedule!r}")
        if self.kind not in FLOW_KINDS:
            raise ConfigError(f"unknown flow kind {self.kind!r}; known: {', '.join(FLOW_KINDS)}")
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2:
            raise InputError(f"X must be (n, d), got shape {X.shape}")
        if not np.all(np.isfinite(X)):
            raise InputError("X contains NaN or infinite values")
        c = _as_context(c, X.shape[0])
        if X.shape[0] < 10:
            raise InputError(f"a flow needs at least 10 training events, got {X.shape[0]}")
        w = None
        if sample_weight is not None:
            w = np.asarray(sample_weight, dtype=np.float64)
            if w.shape != (X.shape[0],):
                raise InputError(f"sample_weight must be ({X.shape[0]},), got shape {w.shape}")
            if not np.all(np.isfinite(w)) or (w < 0).any() or w.sum() <= 0:
                raise InputError("sample_weight must be finite, non-negative and not all zero")
            w = w / w.mean()
        rng = check_random_state(self.random_state)
        s_init, s_loop = spawn_seeds(rng, 2)
        self.n_features_in_, self.n_context_ = X.shape[1], c.shape[1]
        self.scaler_ = make_scaler(self.preprocessing).fit(X)
        self.context_mean_ = c.mean(axis=0)
        self.context_std_ = c.std(axis=0)
        self.context_std_[self.context_std_ == 0] = 1.0
        z, _ = self.scaler_.transform(X)
        zt = torch.as_tensor(z, dtype=torch.float32)
        ct = self.context_tensor(c)
        tr, va = train_val_split(X.shape[0], self.validation_fraction, rng)
        tr, va = torch.as_tensor(tr), torch.as_tensor(va)
        flow = self._build()
        reset_parameters(flow, torch_generator(s_init))

        if w is None:
            def nll(flow, zb, cb):
                return -flow(cb).log_prob(zb).mean()

            train, val = (zt[tr], ct[tr]), (zt[va], ct[va])
        else:
            def nll(flow, zb, cb, wb):
                return -(wb * flow(cb).log_prob(zb)).mean()

            wt = torch.as_tensor(w, dtype=torch.float32)
            train, val = (zt[tr], ct[tr], wt[tr]), (zt[va], ct[va], wt[va])

        res = fit_torch(
            flow, nll, train, val if va.numel() else None,
            epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, weight_decay=self.weight_decay,
            lr_schedule=self.lr_schedule,
            patience=self.patience, n_best=1, generator=torch_generator(s_loop), desc=f"flow[{self.kind}]",
            device=device, max_steps=self.max_steps,
        )
        self.flow_ = flow
        self.history_ = res.to_dict()
        return self

    def log_prob_latent(self, z: np.ndarray, c) -> np.ndarray:
        """``log p(z | c)`` of already preprocessed variables."""
        import torch

        from .training import batched_eval

        self._check()
        c = _as_context(c, z.shape[0])
        zt = torch.as_tensor(z, dtype=torch.float32)
        ct = self.context_tensor(c)
        if not zt.shape[0]:
            return np.empty(0)
        return batched_eval(lambda zb, cb: self.flow_(cb).log_prob(zb), (zt, ct),
                            device=self._device()).double().numpy()

    def log_prob_torch(self, x, c=None):
        """``log p(x | c)`` of torch tensors, differentiable with respect to ``x`` and ``c``.

        ``x``: (n, d), ``c``: (n, k) or ``None`` for an unconditional flow (fitted with ``c=None`` or an
        (n, 0) context). The preprocessing's log-Jacobian is included (its torch version, without the
        clipping of :meth:`log_prob`); the result has ``x``'s dtype and device (the flow runs in its own
        dtype, float32, on ``x``'s device).
        """
        import torch

        self._check()
        if x.ndim != 2 or x.shape[1] != self.n_features_in_:
            raise InputError(f"x must be (n, {self.n_features_in_}), got shape {tuple(x.shape)}")
        if c is None:
            c = x.new_zeros((x.shape[0], 0))
        if c.ndim != 2 or c.shape != (x.shape[0], self.n_context_):
            raise InputError(f"context must be ({x.shape[0]}, {self.n_context_}), got shape {tuple(c.shape)}")
        dtype = next(self.flow_.parameters()).dtype
        self.flow_.to(x.device)
        z, logdet = self.scaler_.forward_torch(x.cpu())  # the scalers' torch versions build CPU tensors
        z = z.to(x.device)
        mean = torch.as_tensor(self.context_mean_, dtype=c.dtype, device=c.device)
        std = torch.as_tensor(self.context_std_, dtype=c.dtype, device=c.device)
        lp = self.flow_(((c - mean) / std).to(dtype)).log_prob(z.to(dtype))
        return lp.to(x.dtype) + logdet.to(x.device)

    def log_prob(self, X, c) -> np.ndarray:
        """``log p(x | c)`` in the original variables (preprocessing Jacobian included)."""
        self._check()
        X = np.asarray(X, dtype=np.float64)
        z, logdet = self.scaler_.transform(X)
        return self.log_prob_latent(z, c) + logdet

    def _checked_rows(self, A, c, name):
        """``(A as float64 (n, d), context)`` for a fitted flow, or one error naming ``name``'s shape."""
        self._check()
        A = np.asarray(A, dtype=np.float64)
        if A.ndim != 2 or A.shape[1] != self.n_features_in_:
            raise InputError(f"{name} must be (n, {self.n_features_in_}), got shape {A.shape}")
        return A, _as_context(c, A.shape[0])

    def to_base(self, X, c) -> np.ndarray:
        """The base-distribution (standard normal) coordinates of ``X`` given ``c``: the flow's forward map
        after the preprocessing, (n, d). For events following the fitted ``p(x | c)`` they are N(0, 1)
        and independent of ``c``; the map is invertible at every ``c`` (:meth:`from_base`)."""
        import torch

        from .training import batched_eval

        X, c = self._checked_rows(X, c, "X")
        if not X.shape[0]:
            return np.empty((0, self.n_features_in_))
        z, _ = self.scaler_.transform(X)
        zt = torch.as_tensor(z, dtype=torch.float32)
        return batched_eval(lambda zb, cb: self.flow_(cb).transform(zb), (zt, self.context_tensor(c)),
                            device=self._device()).double().numpy()

    def from_base(self, U, c) -> np.ndarray:
        """The inverse of :meth:`to_base`: original variables of base coordinates ``U`` given ``c``."""
        import torch

        from .training import batched_eval

        U, c = self._checked_rows(U, c, "U")
        if not U.shape[0]:
            return np.empty((0, self.n_features_in_))
        ut = torch.as_tensor(U, dtype=torch.float32)
        z = batched_eval(lambda ub, cb: self.flow_(cb).transform.inv(ub), (ut, self.context_tensor(c)),
                         device=self._device()).double().numpy()
        return self.scaler_.inverse_transform(z)

    def sample_latent(self, c, random_state=None) -> np.ndarray:
        import torch

        from .training import torch_generator

        self._check()
        c = _as_context(c)
        (seed,) = spawn_seeds(check_random_state(random_state), 1)
        g = torch_generator(seed)
        ct = self.context_tensor(c)
        device = self._device()
        out = []
        with torch.no_grad():
            for i in range(0, ct.shape[0], 65536):
                cb = ct[i : i + 65536].to(device)
                dist = self.flow_(cb)
                eps = torch.randn((cb.shape[0], self.n_features_in_), generator=g).to(device)  # drawn on the CPU
                out.append(dist.transform.inv(eps).cpu())
        return torch.cat(out).double().numpy() if out else np.empty((0, self.n_features_in_))

    def sample(self, c, random_state=None) -> np.ndarray:
        """Draw one ``x ~ p(x | c)`` per context row (original variables), reproducibly from ``random_state``."""
        return self.scaler_.inverse_transform(self.sample_latent(c, random_state))

    # -- persistence -----------------------------------------------------------------------------
    def _check(self):
        if not hasattr(self, "flow_"):
            raise NotFittedError("ConditionalFlow is not fitted; call fit(X, c) first")

    def _get_state(self):
        self._check()
        meta = {"n_features_in": self.n_features_in_, "n_context": self.n_context_, "scaler": self.scaler_.get_state(),
                "context_mean": self.context_mean_.tolist(), "context_std": self.context_std_.tolist(),
                "history": getattr(self, "history_", None)}
        return dict(self.flow_.state_dict()), meta

    def _set_state(self, tensors, meta):
        self.n_features_in_, self.n_context_ = int(meta["n_features_in"]), int(meta["n_context"])
        self.scaler_ = scaler_from_state(meta["scaler"])
        self.context_mean_ = np.asarray(meta["context_mean"])
        self.context_std_ = np.asarray(meta["context_std"])
        self.history_ = meta.get("history")
        flow = self._build()
        flow.load_state_dict(tensors)
        flow.eval()
        self.flow_ = flow

    def save(self, path):
        from .io import save_model

        return save_model(self, path)

    @classmethod
    def load(cls, path) -> ConditionalFlow:
        from .io import load_model

        model = load_model(path)
        if not isinstance(model, cls):
            raise InputError(f"{path} holds a {type(model).__name__}, not a {cls.__name__}")
        return model
