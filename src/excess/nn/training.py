"""One seeded torch training loop: mini-batches, validation split, early stopping, best-epoch keeping.

The loop of every torch model in excess (classifiers, flows, autoencoders, R-ANODE's signal model, the
calorimeter generators through :func:`fit_torch`'s ``step``/``score`` hooks, and every later wing), with the
helpers they share: seeded generators (:func:`torch_generator`), initialisation from them
(:func:`reset_parameters`), the validation split, batched evaluation on a device, and thread limits.
Torch is imported lazily.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._util import get_logger, progress
from ..errors import ConfigError, FitError

LR_SCHEDULES = ("constant", "cosine")

__all__ = ["LR_SCHEDULES", "TrainResult", "train_val_split", "torch_generator", "reset_parameters", "fit_torch",
           "batched_eval", "set_threads", "as_numpy", "to_device"]

log = get_logger(__name__)


def torch_generator(seed=None):
    """A CPU ``torch.Generator``: from an ``int`` seed directly; from a numpy ``Generator`` (or ``None``)
    through one draw of it (:func:`~excess._util.check_random_state`).

    Random numbers are always drawn on the CPU, whatever the device, so that a seed gives the same model
    on every machine; tensors drawn with it are moved to the device afterwards.
    """
    import torch

    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return torch.Generator().manual_seed(int(seed))
    from .._util import check_random_state

    return torch.Generator().manual_seed(int(check_random_state(seed).integers(2**62)))


def set_threads(n: int | None) -> None:
    """Limit torch's intra-op threads (``None`` leaves torch's default, which honours OMP_NUM_THREADS)."""
    if n:
        import torch

        torch.set_num_threads(int(n))


def as_numpy(t) -> np.ndarray:
    """A tensor's values as a numpy array on the CPU (from any device)."""
    return t.detach().cpu().numpy()


def to_device(tensors: Sequence, device):
    """The tensors on ``device`` (a no-op on the CPU; pinned, non-blocking copies to a GPU)."""
    if device is None or device.type == "cpu":
        return tuple(tensors)
    if device.type == "cuda":
        return tuple(t.pin_memory().to(device, non_blocking=True) if t.device.type == "cpu" else t.to(device)
                     for t in tensors)
    return tuple(t.to(device) for t in tensors)


def reset_parameters(module, generator) -> None:
    """Re-initialise every ``nn.Linear`` (zuko's masked ones included) from ``generator``.

    Torch's default scheme, U(+-1/sqrt(fan_in)) for weights and biases, drawn from a local generator:
    reproducible without touching torch's global random state. Call it before moving the module to a device.
    """
    import torch

    with torch.no_grad():
        for mod in module.modules():
            if isinstance(mod, torch.nn.Linear):
                bound = 1.0 / math.sqrt(max(1, mod.in_features))
                mod.weight.uniform_(-bound, bound, generator=generator)
                if mod.bias is not None:
                    mod.bias.uniform_(-bound, bound, generator=generator)


def train_val_split(n: int, val_fraction: float, rng: np.random.Generator, *, min_val: int = 1):
    """Random index split ``(train_idx, val_idx)``; ``val_fraction=0`` gives an empty validation set."""
    perm = rng.permutation(n)
    if val_fraction <= 0:
        return perm, perm[:0]
    n_val = max(min_val, int(round(val_fraction * n)))
    n_val = min(n_val, n - 1)
    return perm[n_val:], perm[:n_val]


@dataclass
class TrainResult:
    """History of a training run; ``best_states`` holds ``(val_loss, epoch, state_dict)``, best first."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    best_states: list[tuple[float, int, dict]] = field(default_factory=list)
    stopped_epoch: int = 0
    seconds: float = 0.0

    @property
    def best_epoch(self) -> int:
        return self.best_states[0][1]

    def to_dict(self) -> dict[str, Any]:
        return {
            "train_loss": self.train_loss,
            "val_loss": self.val_loss,
            "best_epochs": [e for _, e, _ in self.best_states],
            "stopped_epoch": self.stopped_epoch,
            "seconds": self.seconds,
        }


def batched_eval(fn: Callable, arrays: Sequence, batch_size: int = 65536, *, device=None):
    """Apply ``fn(*batch_tensors)`` in batches without gradients; concatenate the results on the CPU.

    With ``device`` (a :class:`torch.device`), each batch is moved there before ``fn`` sees it.
    """
    import torch

    n = arrays[0].shape[0]
    outs = []
    with torch.no_grad():
        for i in range(0, n, batch_size):
            batch = to_device([a[i : i + batch_size] for a in arrays], device)
            outs.append(fn(*batch).cpu())
    return torch.cat(outs) if outs else torch.empty(0)


def fit_torch(
    module,
    loss_fn: Callable,
    train: Sequence,
    val: Sequence | None,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float = 0.0,
    patience: int | None = 10,
    n_best: int = 1,
    generator=None,
    desc: str | None = None,
    parameters=None,
    clip_grad: float | None = 5.0,
    lr_schedule: str = "constant",
    device=None,
    max_resident_bytes: int = 2 * 1024**3,
) -> TrainResult:
    """Train ``module`` with Adam on ``loss_fn(module, *batch) -> scalar`` (a mean over the batch).

    ``train``/``val`` are sequences of CPU tensors sharing the first dimension. After every epoch the
    validation loss is computed; the ``n_best`` lowest-loss epochs' state dicts are kept (for best-epoch
    ensembling) and training stops after ``patience`` epochs without improvement. The module is left
    holding the best epoch's weights. Without a validation set the last epochs are kept.
    ``lr_schedule="cosine"`` anneals the learning rate to zero over ``epochs`` (per step), which reaches
    a given loss in fewer epochs than a constant rate on large samples.

    ``device`` (a :class:`torch.device` from :func:`~excess.nn.device.resolve_device`; ``None`` is the CPU):
    the module is moved there; data up to ``max_resident_bytes`` are copied there once, larger data batch by
    batch. The batch order is drawn from ``generator`` on the CPU, so a seed gives the same batches on every
    device, and on the CPU exactly the numbers of a loop that knows no devices.
    """
    import time

    import torch

    t0 = time.perf_counter()
    on_cpu = device is None or device.type == "cpu"
    if not on_cpu:
        module.to(device)
    params = list(parameters if parameters is not None else module.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay) if weight_decay else torch.optim.Adam(params, lr=lr)
    n = train[0].shape[0]
    steps = max(1, math.ceil(n / batch_size))
    if lr_schedule not in LR_SCHEDULES:
        raise ConfigError(f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {lr_schedule!r}")
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * steps) if lr_schedule == "cosine" else None
    has_val = val is not None and val[0].shape[0] > 0
    resident = on_cpu or sum(t.element_size() * t.numel() for t in (*train, *(val or ()))) <= max_resident_bytes
    if resident:
        train = to_device(train, device)
        val = to_device(val, device) if has_val else val

    def batch_of(tensors, idx):
        if resident:
            return tuple(t[idx.to(t.device) if not on_cpu else idx] for t in tensors)
        return to_device([t[idx] for t in tensors], device)

    res = TrainResult()
    best = math.inf
    since_best = 0
    bar = progress(range(epochs), desc=desc, leave=False)
    for epoch in bar:
        module.train()
        perm = torch.randperm(n, generator=generator)
        total = 0.0 if on_cpu else torch.zeros((), dtype=torch.float64, device=device)
        for i in range(steps):
            idx = perm[i * batch_size : (i + 1) * batch_size]
            loss = loss_fn(module, *batch_of(train, idx))
            if on_cpu and not torch.isfinite(loss):  # on a GPU checked once per epoch (no sync per step)
                raise FitError(f"{desc or 'training'}: loss became {loss.item()} at epoch {epoch}; lower the learning rate")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if clip_grad:
                torch.nn.utils.clip_grad_norm_(params, clip_grad)
            opt.step()
            if sched is not None:
                sched.step()
            if on_cpu:
                total += loss.item() * idx.shape[0]
            else:
                total += loss.detach().double() * idx.shape[0]
        total = float(total)
        if not math.isfinite(total):
            raise FitError(f"{desc or 'training'}: loss became {total / n} at epoch {epoch}; lower the learning rate")
        res.train_loss.append(total / n)
        module.eval()
        if has_val:
            with torch.no_grad():
                nv = val[0].shape[0]
                vl = 0.0
                for i in range(0, nv, 65536):
                    b = batch_of(val, torch.arange(i, min(i + 65536, nv))) if not resident else [t[i : i + 65536] for t in val]
                    vl += loss_fn(module, *b).item() * b[0].shape[0]
                vloss = vl / nv
        else:
            vloss = res.train_loss[-1]
        res.val_loss.append(vloss)
        res.stopped_epoch = epoch
        # keep the n_best lowest-val-loss epochs
        if len(res.best_states) < n_best or vloss < res.best_states[-1][0]:
            res.best_states.append((vloss, epoch, copy.deepcopy(module.state_dict())))
            res.best_states.sort(key=lambda t: t[0])
            del res.best_states[n_best:]
        if vloss < best - 1e-6 * abs(best if math.isfinite(best) else 1.0):
            best, since_best = vloss, 0
        else:
            since_best += 1
        if hasattr(bar, "set_postfix"):
            bar.set_postfix(train=f"{res.train_loss[-1]:.4f}", val=f"{vloss:.4f}")
        if patience is not None and has_val and since_best >= patience:
            break
    if hasattr(bar, "close"):
        bar.close()
    if not math.isfinite(best):
        raise FitError(f"{desc or 'training'}: validation loss is not finite")
    module.load_state_dict(res.best_states[0][2])
    module.eval()
    res.seconds = time.perf_counter() - t0
    log.debug("%s: %d epochs, best %d (val %.4f), %.1fs on %s", desc, res.stopped_epoch + 1, res.best_epoch, best,
              res.seconds, device or "cpu")
    return res
