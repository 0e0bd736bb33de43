"""Save and load models as ``state_dict`` tensors + JSON hyperparameters (never pickled modules).

A saved model is a directory::

    model/
      hyperparameters.json   {"class": "excess.nn.flows.ConditionalFlow", "params": {...}, "meta": {...}}
      state_dict.pt          tensors only (loaded with torch.load(weights_only=True))

Estimators opt in by implementing ``_get_state() -> (tensors: dict, meta: dict)`` and
``_set_state(tensors, meta)``. Only classes from the ``excess`` package are loaded.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
from pathlib import Path

from .._util import atomic_path, atomic_write_json, to_jsonable
from ..errors import ConfigError, InputError, NotFittedError

__all__ = ["save_model", "load_model"]

_FORMAT = 1


def save_model(model, path: str | os.PathLike) -> Path:
    """Write ``model`` (fitted) to the directory ``path`` atomically per file."""
    import torch

    if not hasattr(model, "_get_state"):
        raise ConfigError(f"{type(model).__name__} does not support state_dict saving")
    try:
        tensors, meta = model._get_state()
    except AttributeError as exc:
        raise NotFittedError(f"{type(model).__name__} must be fitted before saving ({exc})") from None
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    with atomic_path(path / "state_dict.pt") as tmp:
        torch.save({k: v.detach().cpu() for k, v in tensors.items()}, tmp)
    cls = type(model)
    params = model.get_params(deep=False)
    if "device" in params:  # where to compute is the loading machine's choice, not the model's
        params["device"] = "auto"
    atomic_write_json(
        path / "hyperparameters.json",
        {"format": _FORMAT, "class": f"{cls.__module__}.{cls.__qualname__}",
         "params": to_jsonable(params), "meta": to_jsonable(meta)},
    )
    return path


def _tuplify(params: dict) -> dict:
    # JSON turns tuples into lists; hidden-layer sizes etc. are tuples in the constructors
    return {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}


def load_model(path: str | os.PathLike, *, device: str | None = None):
    """Load a model written by :func:`save_model` (on any machine: tensors are mapped to the CPU).

    ``device`` sets the loaded estimator's device (default: its saved setting, ``"auto"``).
    """
    import torch

    path = Path(path)
    cfg_file, state_file = path / "hyperparameters.json", path / "state_dict.pt"
    if not cfg_file.is_file() or not state_file.is_file():
        raise InputError(f"{path} is not a saved model (needs hyperparameters.json and state_dict.pt)")
    try:
        cfg = json.loads(cfg_file.read_text())
        module, _, name = cfg["class"].rpartition(".")
    except (ValueError, KeyError, AttributeError) as exc:
        raise InputError(f"{cfg_file}: not a valid model description ({exc})") from None
    if not module.startswith("excess."):
        raise InputError(f"refusing to load class {cfg['class']!r} from outside the excess package")
    if module.startswith("excess.models."):  # files written before the substrate was named excess.nn
        module = "excess.nn." + module[len("excess.models."):]
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        raise InputError(f"{cfg_file}: unknown model class {cfg['class']!r}") from None
    params = _tuplify(cfg["params"])
    if device is not None and "device" in inspect.signature(cls.__init__).parameters:
        params["device"] = device
    model = cls(**params)
    tensors = torch.load(state_file, map_location="cpu", weights_only=True)
    model._set_state(tensors, cfg["meta"])
    return model
