"""ANTELOPE's models (Matos, Busch, Park, Gonski, arXiv:2408.17409) on the shared substrate.

* :class:`PFNClassifier` -- the supervised particle flow network (:func:`excess.nn.sets.particle_flow_network`,
  ANTELOPE's Phi 75-75-64 and F 75-75-75) on the track sets of the two leading jets, trained QCD (0) vs one
  signal point (1) with class-balanced cross entropy (one logit: the two-class softmax of the paper in one
  output). Its 64-d ``latent`` (the masked sum over tracks) is the event representation.
* :class:`AntelopeVAE` -- the VAE of :mod:`excess.nn.autoencoders` with ANTELOPE's shape: input dropout 0.1,
  encoder 32-32-16 to a 12-d latent, decoder 32-64-64, LeakyReLU with the paper's slope 0.3, loss MSE (summed
  over inputs, standardised) + KL.
* :class:`Antelope` -- the chain: the PFN trained supervised, frozen; the VAE trained on the background's PFN
  latent; ``score_samples`` the VAE loss through ``sigmoid(log10(.))`` (``score="total"``, ``"kl"`` or
  ``"reconstruction"``), higher = more anomalous.

Inputs are zero-padded track sets (:mod:`excess.antelope.sets`), optionally with an explicit mask. All are
scikit-learn estimators (parameters in ``__init__``, ``random_state`` resolved in ``fit``) and save / load with
:mod:`excess.nn.io` (state dicts + JSON, the preprocessing's scaling in the metadata).

Defaults: the PFN trains with Adam 1e-3 and batch 500 as the paper (at most 100 epochs, early stopping on a
validation split); the VAE with Adam 1e-3, not the paper's 1e-5: at 1e-5 the VAE needs thousands of epochs on
the sample sizes a CPU run affords (set ``lr`` to follow the paper).
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from .._util import check_random_state, spawn_seeds
from ..errors import ConfigError, InputError, NotFittedError
from ..nn.autoencoders import VAE
from ..nn.estimators import TorchStateMixin
from .sets import FEATURES, TrackPreprocessor

__all__ = ["PFNClassifier", "AntelopeVAE", "Antelope", "loss_score", "SCORES"]

SCORES = ("total", "kl", "reconstruction")


def loss_score(loss) -> np.ndarray:
    """ANTELOPE's anomaly score from a per-event loss: ``sigmoid(log10(loss))`` (monotone in the loss)."""
    loss = np.maximum(np.asarray(loss, dtype=np.float64), 1e-300)
    return 1.0 / (1.0 + np.exp(-np.log10(loss)))


def _check_labels(y, n: int) -> np.ndarray:
    y = np.asarray(y)
    if y.shape != (n,):
        raise InputError(f"labels: need one per event ({n}), got shape {y.shape}")
    if not np.isin(y, (0, 1)).all() or np.unique(y).size < 2:
        raise InputError(f"labels must be 0 (QCD) and 1 (signal), both present; got {np.unique(y)[:10].tolist()}")
    return y.astype(np.int64)


class PFNClassifier(TorchStateMixin, ClassifierMixin, BaseEstimator):
    """Supervised PFN on track sets (QCD 0 vs signal 1); ``latent(tracks)`` is the 64-d event representation."""

    _eval_batch_size = 2048

    def __init__(self, phi_sizes=(75, 75, 64), f_sizes=(75, 75, 75), scaling: str = "minmax", epochs: int = 100,
                 batch_size: int = 500, lr: float = 1e-3, patience: int = 10, validation_fraction: float = 0.2,
                 random_state=None, device: str = "auto"):
        self.phi_sizes = phi_sizes
        self.f_sizes = f_sizes
        self.scaling = scaling
        self._common_init(epochs, batch_size, lr, patience, validation_fraction, random_state, device)

    def _build(self):
        from ..nn.sets import particle_flow_network

        return particle_flow_network(len(FEATURES), tuple(self.phi_sizes), tuple(self.f_sizes), 1)

    def fit(self, tracks, y, mask=None):
        import torch

        from ..nn.device import resolve_device
        from ..nn.training import fit_torch, reset_parameters, stratified_split, torch_generator

        device = resolve_device(self.device)
        self.preprocessor_ = TrackPreprocessor(self.scaling).fit(tracks, mask=mask)
        x, m = self.preprocessor_.transform(tracks, mask)
        y = _check_labels(y, x.shape[0])
        rng = check_random_state(self.random_state)
        s_init, s_loop = spawn_seeds(rng, 2)
        tr, va = stratified_split(y, self.validation_fraction, rng)
        xt, mt = torch.from_numpy(x), torch.from_numpy(m)
        yt = torch.from_numpy(y.astype(np.float32))
        w = np.where(y == 1, 0.5 / y.mean(), 0.5 / (1 - y.mean())).astype(np.float32)
        wt = torch.from_numpy(w)
        net = self._build()
        reset_parameters(net, torch_generator(s_init))

        def loss_fn(module, xb, mb, yb, wb):
            k = int(mb.sum(dim=1).max())  # real tracks come first: cut the batch's all-padding rows
            logit = module(xb[:, :k], mb[:, :k]).squeeze(-1)
            return (torch.nn.functional.binary_cross_entropy_with_logits(logit, yb, reduction="none") * wb).mean()

        tr_t, va_t = torch.from_numpy(tr), torch.from_numpy(va)
        res = fit_torch(net, loss_fn, [xt[tr_t], mt[tr_t], yt[tr_t], wt[tr_t]],
                        [xt[va_t], mt[va_t], yt[va_t], wt[va_t]] if va.size else None,
                        epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, patience=self.patience,
                        generator=torch_generator(s_loop), desc="PFN", device=device)
        self._keep_fitted(net, res)
        return self

    def _inputs(self, tracks, mask):
        return self.preprocessor_.transform(tracks, mask)

    def _eval(self, tracks, mask, fn):
        def cut(net, xb, mb):  # real tracks come first (TrackPreprocessor): drop the batch's all-padding rows
            k = int(mb.sum(dim=1).max())
            return fn(net, xb[:, :k], mb[:, :k])

        return self._network_outputs(tracks, mask, forward=cut).double().numpy()

    def decision_function(self, tracks, mask=None) -> np.ndarray:
        """The logit of signal vs QCD."""
        return self._eval(tracks, mask, lambda net, x, m: net(x, m)).reshape(-1)

    def predict_proba(self, tracks, mask=None) -> np.ndarray:
        p = 1.0 / (1.0 + np.exp(-self.decision_function(tracks, mask)))
        return np.column_stack([1 - p, p])

    def predict(self, tracks, mask=None) -> np.ndarray:
        return (self.decision_function(tracks, mask) >= 0).astype(np.int64)

    def latent(self, tracks, mask=None) -> np.ndarray:
        """The PFN latent space ``sum_i mask_i Phi(x_i)`` ``(N, phi_sizes[-1])``: ANTELOPE's representation."""
        return self._eval(tracks, mask, lambda net, x, m: net.latent(x, m))

    def _get_state(self):
        return dict(self.state_), {"preprocessor": self.preprocessor_.to_meta(),
                                   "history": getattr(self, "history_", {})}

    def _set_state(self, tensors, meta):
        super()._set_state(tensors, meta)
        self.preprocessor_ = TrackPreprocessor.from_meta(meta["preprocessor"])
        self.history_ = meta.get("history", {})
        self._fitted_net("cpu")  # built now: a state that does not fit the network fails when loading


class AntelopeVAE(VAE):
    """:class:`excess.nn.autoencoders.VAE` with ANTELOPE's shape: input dropout, encoder ``hidden`` to ``latent``,
    decoder ``decoder_hidden``, LeakyReLU (``negative_slope`` 0.3 as the paper); scores ``total`` (MSE summed over
    inputs + beta KL), ``kl`` or ``reconstruction`` (the summed MSE), each through ``sigmoid(log10(.))`` in :meth:`score_samples`."""

    def __init__(self, hidden=(32, 32, 16), latent: int = 12, decoder_hidden=(32, 64, 64), input_dropout: float = 0.1,
                 activation: str = "leaky_relu", negative_slope: float = 0.3, epochs: int = 100,
                 batch_size: int = 256, lr: float = 1e-3, patience: int = 10, validation_fraction: float = 0.2,
                 beta: float = 1.0, random_state=None, device: str = "auto"):
        super().__init__(hidden=hidden, latent=latent, epochs=epochs, batch_size=batch_size, lr=lr, patience=patience,
                         validation_fraction=validation_fraction, beta=beta, random_state=random_state, device=device)
        self.decoder_hidden = decoder_hidden
        self.input_dropout = input_dropout
        self.activation = activation
        self.negative_slope = negative_slope

    def _build(self, d):
        import torch

        from ..nn.mlp import mlp

        net = torch.nn.Module()
        slope = float(self.negative_slope)
        enc = mlp((d, *(int(h) for h in self.hidden), 2 * int(self.latent)), self.activation, negative_slope=slope)
        if self.input_dropout:
            enc = torch.nn.Sequential(torch.nn.Dropout(float(self.input_dropout)), *enc)
        net.enc = enc
        net.dec = mlp((int(self.latent), *(int(h) for h in self.decoder_hidden), d), self.activation,
                      negative_slope=slope)
        return net

    def _get_state(self):
        tensors, meta = super()._get_state()
        return tensors, {**meta, "negative_slope": float(self.negative_slope)}

    def _set_state(self, tensors, meta):
        if "negative_slope" not in meta:  # saved before the slope was a parameter: trained with the substrate's 0.2
            from ..nn.mlp import LEAKY_SLOPE

            self.negative_slope = LEAKY_SLOPE
        super()._set_state(tensors, meta)

    def losses(self, X) -> dict[str, np.ndarray]:
        """Per-event ``total``, ``kl`` and ``reconstruction`` (summed squared error, standardised units) losses,
        from the latent mean (no sampling: deterministic)."""
        rec, kl, _ = self._terms(X)
        rec = rec * self.n_features_in_
        return {"total": rec + float(self.beta) * kl, "kl": kl, "reconstruction": rec}

    def score_samples(self, X, score: str = "total") -> np.ndarray:
        if score not in SCORES:
            raise ConfigError(f"score must be one of {', '.join(SCORES)}, got {score!r}")
        return loss_score(self.losses(X)[score])


class Antelope(BaseEstimator):
    """ANTELOPE: a supervised PFN (frozen after training) + a VAE on the background's PFN latent space.

    ``fit(tracks, y)`` trains the PFN on QCD (``y == 0``) vs one signal point (``y == 1``), then the VAE on the
    latent of the QCD events only (``vae_on="background"``) or of every event (``"all"``: unlabelled data, where
    the signal is rare). ``score_samples(tracks)`` is ``sigmoid(log10(loss))`` of the ``score`` loss.
    ``pfn_params`` / ``vae_params`` go to :class:`PFNClassifier` / :class:`AntelopeVAE` (no ``device`` or
    ``random_state`` there: they are this estimator's).
    """

    def __init__(self, pfn_params: dict | None = None, vae_params: dict | None = None, score: str = "total",
                 vae_on: str = "background", random_state=None, device: str = "auto"):
        self.pfn_params = pfn_params
        self.vae_params = vae_params
        self.score = score
        self.vae_on = vae_on
        self.random_state = random_state
        self.device = device

    def _params(self, params, what):
        p = dict(params or {})
        for k in ("device", "random_state"):
            if k in p:
                raise ConfigError(f"{what}: {k!r} is set on Antelope itself, not in {what}")
        return p

    def fit(self, tracks, y, mask=None, pfn: PFNClassifier | None = None):
        """Train (or, with a fitted ``pfn``, reuse) the PFN, then the VAE on its latent."""
        if self.score not in SCORES:
            raise ConfigError(f"score must be one of {', '.join(SCORES)}, got {self.score!r}")
        if self.vae_on not in ("background", "all"):
            raise ConfigError(f"vae_on must be 'background' or 'all', got {self.vae_on!r}")
        rng = check_random_state(self.random_state)
        s_pfn, s_vae = spawn_seeds(rng, 2)
        y = np.asarray(y)
        if pfn is None:
            try:
                pfn = PFNClassifier(**self._params(self.pfn_params, "pfn_params"), random_state=s_pfn,
                                    device=self.device)
            except TypeError as exc:
                raise ConfigError(f"bad pfn_params {self.pfn_params!r}: {exc}") from None
            pfn.fit(tracks, y, mask)
        elif not hasattr(pfn, "state_"):
            raise NotFittedError("the pfn given to Antelope.fit must be fitted")
        self.pfn_ = pfn
        z = pfn.latent(tracks, mask)
        train = z if self.vae_on == "all" else z[_check_labels(y, z.shape[0]) == 0]
        try:
            vae = AntelopeVAE(**self._params(self.vae_params, "vae_params"), random_state=s_vae, device=self.device)
        except TypeError as exc:
            raise ConfigError(f"bad vae_params {self.vae_params!r}: {exc}") from None
        self.vae_ = vae.fit(train)
        return self

    def latent(self, tracks, mask=None) -> np.ndarray:
        self._check()
        return self.pfn_.latent(tracks, mask)

    def _check(self):
        if not hasattr(self, "vae_"):
            raise NotFittedError("Antelope is not fitted; call fit(tracks, y) first")

    def losses(self, tracks, mask=None) -> dict[str, np.ndarray]:
        return self.vae_.losses(self.latent(tracks, mask))

    def score_samples(self, tracks, mask=None) -> np.ndarray:
        """Anomaly score, higher = more anomalous (``sigmoid(log10(loss))``)."""
        return loss_score(self.losses(tracks, mask)[self.score])

    def save(self, path) -> None:
        """Write the PFN and the VAE to ``path/pfn`` and ``path/vae`` (:func:`excess.nn.io.save_model`)."""
        from pathlib import Path

        from ..nn.io import save_model

        self._check()
        save_model(self.pfn_, Path(path) / "pfn")
        save_model(self.vae_, Path(path) / "vae")

    @classmethod
    def load(cls, path, *, score: str = "total", device: str | None = None) -> Antelope:
        from pathlib import Path

        from ..nn.io import load_model

        out = cls(score=score, device=device or "auto")
        out.pfn_ = load_model(Path(path) / "pfn", device=device)
        out.vae_ = load_model(Path(path) / "vae", device=device)
        if not isinstance(out.pfn_, PFNClassifier) or not isinstance(out.vae_, AntelopeVAE):
            raise InputError(f"{path}: not a saved ANTELOPE model (pfn/ and vae/ of excess.antelope)")
        return out
