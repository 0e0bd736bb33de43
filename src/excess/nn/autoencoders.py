"""Autoencoder and variational autoencoder (torch), the unsupervised anomaly baselines.

Inputs are standardised with training statistics. :class:`Autoencoder` scores events by their
reconstruction error (mean squared, in standardised units); :class:`VAE` additionally offers the
norm of the latent mean and the KL term.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator

from .._util import check_random_state, spawn_seeds
from ..errors import ConfigError, InputError, NotFittedError

__all__ = ["Autoencoder", "VAE"]


class Autoencoder(BaseEstimator):
    """Dense autoencoder ``d -> hidden -> latent -> hidden -> d`` trained on MSE."""

    variational = False

    def __init__(self, hidden: tuple[int, ...] = (32, 16), latent: int = 2, epochs: int = 100, batch_size: int = 256,
                 lr: float = 1e-3, patience: int = 10, validation_fraction: float = 0.2, beta: float = 1.0,
                 random_state=None, device: str = "auto"):
        self.hidden = hidden
        self.latent = latent
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.beta = beta
        self.random_state = random_state
        self.device = device

    def _build(self, d):
        import torch

        from .mlp import mlp

        h = tuple(int(x) for x in self.hidden)
        out_latent = 2 * int(self.latent) if self.variational else int(self.latent)
        net = torch.nn.Module()
        net.enc = mlp((d, *h, out_latent))
        net.dec = mlp((int(self.latent), *h[::-1], d))
        return net

    def _encode(self, net, x):
        import torch

        h = net.enc(x)
        if not self.variational:
            return h, None
        mu, logvar = torch.chunk(h, 2, dim=-1)
        return mu, logvar.clamp(-10, 10)

    def _loss_terms(self, net, x, eps=None):
        mu, logvar = self._encode(net, x)
        if self.variational:
            import torch

            zl = mu + (torch.exp(0.5 * logvar) * eps if eps is not None else 0)
            kl = 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(-1)
        else:
            zl, kl = mu, None
        rec = ((net.dec(zl) - x) ** 2).mean(-1)
        return rec, kl, mu

    def fit(self, X):
        import torch

        from .device import resolve_device
        from .training import fit_torch, reset_parameters, torch_generator, train_val_split

        device = resolve_device(self.device)
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[0] < 10:
            raise InputError(f"an autoencoder needs (n >= 10, d) data, got shape {X.shape}")
        if int(self.latent) < 1:
            raise ConfigError(f"latent must be >= 1, got {self.latent}")
        rng = check_random_state(self.random_state)
        s_init, s_loop, s_eps = spawn_seeds(rng, 3)
        self.mean_, self.scale_ = X.mean(0), X.std(0)
        self.scale_[self.scale_ == 0] = 1
        xt = torch.as_tensor((X - self.mean_) / self.scale_, dtype=torch.float32)
        tr, va = train_val_split(X.shape[0], self.validation_fraction, rng)
        net = self._build(X.shape[1])
        reset_parameters(net, torch_generator(s_init))
        g_eps = torch_generator(s_eps)

        def loss(net, xb):
            eps = (torch.randn((xb.shape[0], int(self.latent)), generator=g_eps).to(xb.device)
                   if self.variational else None)
            rec, kl, _ = self._loss_terms(net, xb, eps)
            total = rec * xb.shape[1]
            if kl is not None:
                total = total + self.beta * kl
            return total.mean()

        res = fit_torch(net, loss, (xt[tr],), (xt[va],) if va.size else None, epochs=self.epochs,
                        batch_size=self.batch_size, lr=self.lr, patience=self.patience,
                        generator=torch_generator(s_loop), desc="vae" if self.variational else "autoencoder",
                        device=device)
        self.net_ = net
        self.n_features_in_ = X.shape[1]
        self.history_ = res.to_dict()
        return self

    def _terms(self, X):
        import torch

        from .device import resolve_device
        from .training import as_numpy

        if not hasattr(self, "net_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted")
        device = resolve_device(self.device)
        xt = torch.as_tensor((np.asarray(X, dtype=np.float64) - self.mean_) / self.scale_, dtype=torch.float32)
        with torch.no_grad():
            rec, kl, mu = self._loss_terms(self.net_.to(device), xt.to(device))
        return (as_numpy(rec).astype(np.float64), None if kl is None else as_numpy(kl).astype(np.float64),
                as_numpy(mu).astype(np.float64))

    def reconstruction_error(self, X) -> np.ndarray:
        """Mean squared reconstruction error per event (standardised units; VAE: from the latent mean)."""
        return self._terms(X)[0]

    def _get_state(self):
        return dict(self.net_.state_dict()), {"mean": self.mean_.tolist(), "scale": self.scale_.tolist(),
                                             "n_features_in": self.n_features_in_}

    def _set_state(self, tensors, meta):
        self.mean_, self.scale_ = np.asarray(meta["mean"]), np.asarray(meta["scale"])
        self.n_features_in_ = int(meta["n_features_in"])
        self.net_ = self._build(self.n_features_in_)
        self.net_.load_state_dict(tensors)
        self.net_.eval()


class VAE(Autoencoder):
    """Variational autoencoder (Gaussian encoder, ``beta``-weighted KL)."""

    variational = True

    def latent_norm(self, X) -> np.ndarray:
        """Euclidean norm of the latent mean ``|mu(x)|``."""
        return np.linalg.norm(self._terms(X)[2], axis=1)

    def kl(self, X) -> np.ndarray:
        return self._terms(X)[1]
