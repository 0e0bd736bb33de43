"""Save and load models as ``state_dict`` tensors + JSON hyperparameters (never pickled modules).

A saved model is a directory::

    model/
      hyperparameters.json   {"class": "excess.models.flows.ConditionalFlow", "params": {...}, "meta": {...}}
      state_dict.pt          tensors only (loaded with torch.load(weights_only=True))

Estimators opt in by implementing ``_get_state() -> (tensors: dict, meta: dict)`` and
``_set_state(tensors, meta)``. Only classes from the ``excess`` package are loaded.
"""

from __future__ import annotations

import importlib
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
    atomic_write_json(
        path / "hyperparameters.json",
        {"format": _FORMAT, "class": f"{cls.__module__}.{cls.__qualname__}",
         "params": to_jsonable(model.get_params(deep=False)), "meta": to_jsonable(meta)},
    )
    return path


def _tuplify(params: dict) -> dict:
    # JSON turns tuples into lists; hidden-layer sizes etc. are tuples in the constructors
    return {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}


def load_model(path: str | os.PathLike):
    """Load a model written by :func:`save_model`."""
    import torch

    path = Path(path)
    cfg_file, state_file = path / "hyperparameters.json", path / "state_dict.pt"
    if not cfg_file.is_file() or not state_file.is_file():
        raise InputError(f"{path} is not a saved model (needs hyperparameters.json and state_dict.pt)")
    cfg = json.loads(cfg_file.read_text())
    module, _, name = cfg["class"].rpartition(".")
    if not module.startswith("excess."):
        raise InputError(f"refusing to load class {cfg['class']!r} from outside the excess package")
    cls = getattr(importlib.import_module(module), name)
    model = cls(**_tuplify(cfg["params"]))
    tensors = torch.load(state_file, weights_only=True)
    model._set_state(tensors, cfg["meta"])
    return model
