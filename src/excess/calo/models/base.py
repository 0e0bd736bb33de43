"""The shared estimator skeleton of the conditional shower generators.

Subclasses define the torch network (``_build``), the per-batch training step (``_train_step``)
and generation of standardised features (``_generate``); this class handles the preprocessing,
the training loop with best-epoch selection (see :mod:`excess.calo.train`), batched generation on a
device and persistence as ``state_dict`` (``model.pt``, CPU tensors, loaded with ``weights_only=True``)
plus JSON hyperparameters (``model.json``, without the device: a model trained on a GPU loads anywhere).

Subclasses register themselves in :data:`MODEL_REGISTRY` by their ``name`` when their module is imported;
the package ``excess.calo.models`` imports them all, so this module never imports a subclass.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator

from ..._util import atomic_path, atomic_write_json, check_random_state
from ...errors import ConfigError, InputError, NotFittedError
from ..geometry import CaloGeometry, load_geometry
from ..preprocessing import ShowerPreprocessor

__all__ = ["ShowerGenerator", "MODEL_REGISTRY", "load_model"]

MODEL_REGISTRY: dict[str, type] = {}


class ShowerGenerator(BaseEstimator):
    """Base class: conditional generator p(shower | E_inc) on a fixed geometry (a scikit-learn estimator:
    ``get_params``/``set_params``/``sklearn.base.clone`` work).

    Common parameters: ``geometry`` (name, XML path or :class:`CaloGeometry`), ``epochs``,
    ``batch_size``, ``lr``, ``noise_mev`` (dequantisation noise and output threshold),
    ``random_state`` and ``device`` (``"auto"``, ``"cpu"``, ``"cuda[:N]"``, ``"mps"``; see
    :mod:`excess.nn.device`: random numbers are drawn on the CPU and then moved, so a seed draws the same
    numbers on any device, and on the CPU gives the numbers of a model that knows no devices). Learned
    state: ``preprocessor_``, ``module_`` (torch), ``history_`` (per-epoch loss and E_tot/E_inc chi2),
    ``best_epoch_`` (by the chi2) and, for models with a likelihood, ``best_validation_loss_epoch_``
    (see :mod:`excess.calo.train`).
    """

    name = "base"

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        if "name" in cls.__dict__ and cls.name != "base":  # a subclass that keeps its parent's name replaces nothing
            MODEL_REGISTRY[cls.name] = cls

    def _store_params(self, values: dict) -> None:
        """Store ``__init__``'s arguments (``locals()`` there) under their own names, and nothing else."""
        for name in self._get_param_names():
            setattr(self, name, values[name])

    def set_params(self, **params):
        """As scikit-learn's, with an unknown parameter reported as one :class:`ConfigError`."""
        known = self.get_params(deep=False)
        for k in params:
            if k not in known:
                raise ConfigError(f"{type(self).__name__} has no parameter {k!r} (known: {', '.join(sorted(known))})")
        return super().set_params(**params)

    # to implement --------------------------------------------------------------------------
    def _build(self, n_features: int, n_energy: int, generator):  # pragma: no cover - abstract
        raise NotImplementedError

    def _train_step(self, x, c, generator) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def _generate(self, c, generator):  # pragma: no cover - abstract
        """Standardised features (B, L+V) for condition ``c`` (B, 1)."""
        raise NotImplementedError

    def _generate_energy_ratio(self, c, generator) -> np.ndarray:
        """E_tot/E_inc only (the best-epoch criterion); subclasses may make this cheaper."""
        from ...nn.training import as_numpy

        f = self._generate(c, generator)
        return self.preprocessor_.energy_ratio(as_numpy(f[:, 0]))

    def _make_optimizers(self):  # pragma: no cover - abstract
        raise NotImplementedError

    # public API ---------------------------------------------------------------------------
    @property
    def geometry_(self) -> CaloGeometry:
        return load_geometry(self.geometry)

    def fit(self, showers, incident_energies, *, validation=None, progress_bar: bool = True):
        """Train on showers (N, V) MeV and incident energies (N,) MeV; returns ``self``.

        ``validation`` is ``(showers, incident_energies)`` for the best-epoch choice; by default
        10 % of the training showers are held out for it.
        """
        from ..train import fit_generator

        return fit_generator(self, showers, incident_energies, validation=validation, progress_bar=progress_bar)

    def calibrate_sparsity(self, showers, incident_energies, *, max_showers: int = 5000, random_state=None):
        """Fit the per-layer, per-energy output thresholds on (training) showers; returns ``self``.

        Called by :meth:`fit` when ``sparsity_calibration`` is true; see
        :meth:`excess.calo.preprocessing.ShowerPreprocessor.calibrate_thresholds`.
        """
        self._check_fitted()
        rng = check_random_state(random_state if random_state is not None else self.random_state)
        e = np.asarray(incident_energies, dtype=np.float64).reshape(-1)
        idx = rng.permutation(len(e))[: int(max_showers)]
        pre = self.preprocessor_
        # sample without any output threshold: the calibrated thresholds may lie below noise_mev, where
        # the reference has small deposits too
        pre.thresholds_ = np.zeros((self.geometry_.n_layers, 1))
        pre.threshold_log_e_ = np.zeros(1)
        pre.layer_floors_ = None
        gen = self.sample(e[idx], random_state=rng)
        pre.calibrate_thresholds(gen, np.asarray(showers)[idx], e[idx])
        return self

    def _check_fitted(self):
        if not hasattr(self, "module_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit() or load()")

    _can_compile = False  # whether sample(compile=True) is supported

    def sample(self, incident_energies, *, batch_size: int = 10_000, random_state=None, compile: bool = False) -> np.ndarray:
        """Generate one shower per incident energy (MeV): (N, V) float32 MeV, in batches.

        ``compile=True`` (the flow only) runs the networks through ``torch.compile``, which fuses the
        element-wise work, after a first call that compiles for about a minute (it needs a C++
        compiler). Measured on ds1 at batch 10k: 0.098 -> 0.088 ms per shower on 2 threads; at batch
        128, 0.17 -> 0.13. Worth it for large productions, not for a few showers.
        """
        import torch

        from ...nn.training import as_numpy, torch_generator

        self._check_fitted()
        if compile and not self._can_compile:
            raise ConfigError(f"compile=True is supported by the flow model only, not by {self.name!r}")
        self._compile_sampling = bool(compile)
        e = np.asarray(incident_energies, dtype=np.float64).reshape(-1)
        if e.size and (not np.all(np.isfinite(e)) or np.any(e <= 0)):
            raise InputError("incident energies must be finite and > 0 MeV")
        device = self._device()
        gen = torch_generator(check_random_state(random_state if random_state is not None else self.random_state))
        out = np.empty((len(e), self.geometry_.n_voxels), dtype=np.float32)
        self.module_.eval()
        with torch.no_grad():
            for i in range(0, len(e), int(batch_size)):
                eb = e[i : i + int(batch_size)]
                c = torch.as_tensor(self.preprocessor_.condition(eb)).to(device)
                f = as_numpy(self._generate(c, gen))
                out[i : i + len(eb)] = self.preprocessor_.inverse(f, eb)
        return out

    def _device(self):
        """The resolved ``device``, with the network moved there (a no-op when it is there already)."""
        from ...nn.device import resolve_device

        device = resolve_device(self.device)
        if hasattr(self, "module_"):
            self.module_.to(device)
        return device

    # persistence ---------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write ``model.json`` (hyperparameters, geometry, preprocessing, history) and ``model.pt``."""
        import torch

        self._check_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        params = self.get_params(deep=False)
        params.pop("device", None)  # where it ran is no property of the model
        params["geometry"] = self.geometry_.to_dict()
        if not isinstance(params.get("random_state"), (int, type(None))):
            params["random_state"] = None
        meta = {
            "model": self.name,
            "params": params,
            "preprocessor": self.preprocessor_.get_state(),
            "best_epoch_": self.best_epoch_,
            "best_validation_loss_epoch_": getattr(self, "best_validation_loss_epoch_", None),
            "history_": self.history_,
            "n_train_": self.n_train_,
        }
        with atomic_path(directory / "model.pt", suffix=".pt") as tmp:
            torch.save({k: v.detach().cpu() for k, v in self.module_.state_dict().items()}, tmp)
        atomic_write_json(directory / "model.json", meta)
        return directory

    @classmethod
    def load(cls, directory: str | Path, *, device="auto") -> ShowerGenerator:
        return load_model(directory, device=device)


def load_model(directory: str | Path, *, device="auto") -> ShowerGenerator:
    """Rebuild a saved generator from ``model.json`` + ``model.pt`` (no pickled objects), to run on ``device``.

    The weights are read onto the CPU (``map_location="cpu"``) and moved to the device when the model is used;
    a device stored in the file (none is written) is ignored.
    """
    import torch

    from ...nn.training import torch_generator

    directory = Path(directory)
    meta_path = directory / "model.json"
    if not meta_path.exists():
        raise InputError(f"{directory}: not a saved model (no model.json)")
    try:
        meta = json.loads(meta_path.read_text())
        kind = meta["model"]
        params = dict(meta["params"])
    except (ValueError, KeyError) as exc:
        raise InputError(f"{meta_path}: malformed model file ({exc})") from None
    if kind not in MODEL_REGISTRY:
        raise InputError(f"{meta_path}: unknown model {kind!r} (known: {sorted(MODEL_REGISTRY)})")
    geometry = CaloGeometry.from_dict(params["geometry"])
    params["geometry"] = geometry
    cls = MODEL_REGISTRY[kind]
    for k, v in getattr(cls, "_absent_param_defaults", {}).items():  # files written before the parameter existed
        params.setdefault(k, v)
    for k, v in list(params.items()):
        if isinstance(v, list):
            params[k] = tuple(v)
    params["device"] = device
    model = cls(**params)
    model.preprocessor_ = ShowerPreprocessor.from_state(geometry, meta["preprocessor"])
    model.module_ = model._build(model.preprocessor_.n_features, model.preprocessor_.n_energy, torch_generator(0))
    state = torch.load(directory / "model.pt", map_location="cpu", weights_only=True)
    model.module_.load_state_dict(state)
    model.module_.eval()
    model.best_epoch_ = meta.get("best_epoch_")
    model.best_validation_loss_epoch_ = meta.get("best_validation_loss_epoch_")
    model.history_ = meta.get("history_", [])
    model.n_train_ = meta.get("n_train_")
    return model
