"""Invertible preprocessing that carries its log-Jacobian, so densities stay right in the original variables.

:class:`LogitScaler` maps each feature ``x`` from a box ``[lo, hi]`` (the training range widened by a
margin) to the unit interval, then through ``logit``, then standardises::

    u = (x - lo) / (hi - lo),   z = (logit(u) - mu) / sigma

A flow models ``p_Z(z)``; the density of the data is ``p_X(x) = p_Z(z(x)) |dz/dx|`` with
``log|dz/dx| = sum_j [ -log(hi_j - lo_j) - log u_j - log(1 - u_j) - log sigma_j ]``. Values outside the
box (possible when scoring new data) are clipped to ``[eps, 1 - eps]`` in ``u``: the density there is an
approximation, but finite. ``logit=False`` gives plain standardisation (Jacobian ``-sum log sigma``).
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError, NotFittedError

__all__ = ["LogitScaler"]


class LogitScaler:
    """Box -> logit -> standardise, with exact log-Jacobian (numpy and torch)."""

    def __init__(self, logit: bool = True, margin: float = 0.05, eps: float = 1e-6):
        self.logit = logit
        self.margin = margin
        self.eps = eps

    def fit(self, X) -> LogitScaler:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[0] < 2:
            raise InputError(f"LogitScaler needs (n >= 2, d) data, got shape {X.shape}")
        lo, hi = X.min(axis=0), X.max(axis=0)
        width = hi - lo
        if np.any(width <= 0):
            raise InputError(f"constant columns {np.nonzero(width <= 0)[0].tolist()} cannot be preprocessed")
        self.lo_ = lo - self.margin * width
        self.hi_ = hi + self.margin * width
        z = self._pre(X)
        self.mean_ = z.mean(axis=0)
        self.std_ = z.std(axis=0)
        self.std_[self.std_ == 0] = 1.0
        return self

    # -- numpy -----------------------------------------------------------------------------------
    def _pre(self, X):
        if not self.logit:
            return X.copy()
        u = np.clip((X - self.lo_) / (self.hi_ - self.lo_), self.eps, 1 - self.eps)
        return np.log(u) - np.log1p(-u)

    def transform(self, X) -> tuple[np.ndarray, np.ndarray]:
        """``(z, log|dz/dx|)`` for rows of ``X``."""
        self._check()
        X = np.asarray(X, dtype=np.float64)
        z = (self._pre(X) - self.mean_) / self.std_
        logdet = np.full(X.shape[0], -np.sum(np.log(self.std_)))
        if self.logit:
            u = np.clip((X - self.lo_) / (self.hi_ - self.lo_), self.eps, 1 - self.eps)
            logdet += np.sum(-np.log(self.hi_ - self.lo_) - np.log(u) - np.log1p(-u), axis=1)
        return z, logdet

    def inverse_transform(self, Z) -> np.ndarray:
        self._check()
        z0 = np.asarray(Z, dtype=np.float64) * self.std_ + self.mean_
        if not self.logit:
            return z0
        u = 1.0 / (1.0 + np.exp(-z0))
        return self.lo_ + u * (self.hi_ - self.lo_)

    # -- torch (for autograd checks and in-graph use) ---------------------------------------------
    def forward_torch(self, x):
        """Torch version of :meth:`transform` (differentiable, no clipping inside the box)."""
        import torch

        self._check()
        t = lambda a: torch.as_tensor(a, dtype=x.dtype)  # noqa: E731
        if self.logit:
            u = (x - t(self.lo_)) / t(self.hi_ - self.lo_)
            z0 = torch.log(u) - torch.log1p(-u)
            logdet = (-torch.log(t(self.hi_ - self.lo_)) - torch.log(u) - torch.log1p(-u)).sum(-1)
        else:
            z0 = x
            logdet = torch.zeros(x.shape[:-1], dtype=x.dtype)
        z = (z0 - t(self.mean_)) / t(self.std_)
        return z, logdet - torch.log(t(self.std_)).sum()

    # -- state -----------------------------------------------------------------------------------
    def _check(self):
        if not hasattr(self, "mean_"):
            raise NotFittedError("LogitScaler is not fitted")

    def get_state(self) -> dict:
        self._check()
        return {"logit": self.logit, "margin": self.margin, "eps": self.eps,
                "lo": self.lo_.tolist(), "hi": self.hi_.tolist(), "mean": self.mean_.tolist(), "std": self.std_.tolist()}

    @classmethod
    def from_state(cls, state: dict) -> LogitScaler:
        obj = cls(logit=state["logit"], margin=state["margin"], eps=state["eps"])
        for k in ("lo", "hi", "mean", "std"):
            setattr(obj, f"{k}_", np.asarray(state[k], dtype=np.float64))
        return obj
