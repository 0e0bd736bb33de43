"""One seeded torch training loop: mini-batches, validation split, early stopping, best-epoch keeping.

The loop of every torch model in excess (classifiers, flows, autoencoders, R-ANODE's signal model, the
calorimeter generators through :func:`fit_torch`'s ``step``/``score`` hooks, and every later wing), with the
helpers they share: seeded generators (:func:`torch_generator`), initialisation from them
(:func:`reset_parameters`), the validation split, batched evaluation on a device, and thread limits.
Torch is imported lazily.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._util import get_logger, progress
from ..errors import ConfigError, FitError

LR_SCHEDULES = ("constant", "cosine")

__all__ = ["LR_SCHEDULES", "TrainResult", "budget_epochs", "train_val_split", "stratified_split", "torch_generator",
           "reset_parameters", "train_loop", "fit_torch", "batched_eval", "set_threads", "as_numpy", "to_device"]

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
    """Re-initialise every ``nn.Linear`` (zuko's masked ones included), convolution (``Conv1d/2d/3d`` and the
    transposed ones) and recurrent layer (``RNN``, ``GRU``, ``LSTM``) from ``generator``.

    Torch's default schemes, drawn from a local generator: U(+-1/sqrt(fan_in)) for the weights and biases of
    linear and convolution layers (``fan_in = in_channels / groups * prod(kernel_size)``; for transposed
    convolutions torch's ``fan_in`` is computed from ``weight.shape[1]``), U(+-1/sqrt(hidden_size)) for every
    parameter of a recurrent layer. Reproducible without touching torch's global random state. Modules are
    visited in ``module.modules()`` order. Call it before moving the module to a device.
    """
    import torch

    with torch.no_grad():
        for mod in module.modules():
            if isinstance(mod, torch.nn.Linear):
                bound = 1.0 / math.sqrt(max(1, mod.in_features))
            elif isinstance(mod, torch.nn.modules.conv._ConvNd):
                bound = 1.0 / math.sqrt(max(1, mod.weight.shape[1] * math.prod(mod.kernel_size)))
            elif isinstance(mod, torch.nn.RNNBase):
                bound = 1.0 / math.sqrt(max(1, mod.hidden_size))
                for w in mod.parameters(recurse=False):
                    w.uniform_(-bound, bound, generator=generator)
                continue
            else:
                continue
            mod.weight.uniform_(-bound, bound, generator=generator)
            if mod.bias is not None:
                mod.bias.uniform_(-bound, bound, generator=generator)


def budget_epochs(epochs: int, steps_per_epoch: int, max_steps: int | None) -> int:
    """Epochs under a step budget: ``min(epochs, ceil(max_steps / steps_per_epoch))``, at least 1;
    ``epochs`` when ``max_steps`` is ``None`` (see :func:`fit_torch`)."""
    epochs = int(epochs)
    if max_steps is None:
        return epochs
    if isinstance(max_steps, bool) or int(max_steps) != max_steps or max_steps < 1:
        raise ConfigError(f"max_steps must be a positive integer or None, got {max_steps!r}")
    return max(1, min(epochs, math.ceil(int(max_steps) / max(1, int(steps_per_epoch)))))


def train_val_split(n: int, val_fraction: float, rng: np.random.Generator, *, min_val: int = 1):
    """Random index split ``(train_idx, val_idx)``; ``val_fraction=0`` gives an empty validation set."""
    perm = rng.permutation(n)
    if val_fraction <= 0:
        return perm, perm[:0]
    n_val = max(min_val, int(round(val_fraction * n)))
    n_val = min(n_val, n - 1)
    return perm[n_val:], perm[:n_val]


def stratified_split(labels, val_fraction: float, rng: np.random.Generator, classes=None):
    """Index split ``(train_idx, val_idx)`` stratified by class, so every class is in the validation set.

    Class by class (``classes``, default the sorted distinct ``labels``), :func:`train_val_split` of that
    class's rows, drawing from ``rng`` in that order; the indices are concatenated class by class.
    """
    labels = np.asarray(labels)
    tr, va = [], []
    for c in (np.unique(labels) if classes is None else classes):
        idx = np.nonzero(labels == c)[0]
        a, b = train_val_split(idx.size, val_fraction, rng)
        tr.append(idx[a])
        va.append(idx[b])
    if not tr:
        return np.zeros(0, np.intp), np.zeros(0, np.intp)
    return np.concatenate(tr), np.concatenate(va)


@dataclass
class TrainResult:
    """History of a training run.

    ``best_states`` holds ``(score, epoch, state_dict)`` of the kept epochs, best first (for :func:`fit_torch`
    the score is the validation loss); ``best_by`` the single best ``(score, epoch, state_dict)`` of each
    further metric that :func:`train_loop` was asked to keep (``keep_also``); ``history`` one row per epoch
    (``epoch``, ``train_loss`` and the metrics of the epoch-end callback).
    """

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    best_states: list[tuple[float, int, dict]] = field(default_factory=list)
    stopped_epoch: int = 0
    seconds: float = 0.0
    history: list[dict] = field(default_factory=list)
    best_by: dict[str, tuple[float, int, dict]] = field(default_factory=dict)
    best_score: float = math.inf
    epochs: int | None = None

    @property
    def best_epoch(self) -> int:
        return self.best_states[0][1]

    def to_dict(self) -> dict[str, Any]:
        return {
            "train_loss": self.train_loss,
            "val_loss": self.val_loss,
            "best_epochs": [e for _, e, _ in self.best_states],
            "stopped_epoch": self.stopped_epoch,
            "epochs": self.epochs,
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


def _keep(kept: list, n: int, score: float, epoch: int, module) -> None:
    """Keep ``module``'s state among the ``n`` lowest-score epochs in ``kept`` (sorted, best first)."""
    if len(kept) < n or score < kept[-1][0]:
        kept.append((score, epoch, copy.deepcopy(module.state_dict())))
        kept.sort(key=lambda t: t[0])
        del kept[n:]


def train_loop(
    module,
    step: Callable,
    n: int,
    *,
    epochs: int,
    batch_size: int,
    generator=None,
    evaluate: Callable[[int, float], dict] | None = None,
    select: str = "train_loss",
    n_best: int = 1,
    keep_also: Sequence[str] = (),
    patience: int | None = None,
    on_epoch_start: Callable[[int], None] | None = None,
    drop_small_last: bool = False,
    train_loss: str = "samples",
    desc: str | None = None,
    progress_bar: bool = True,
    leave: bool = False,
    postfix: Callable[[dict], dict] | None = None,
) -> TrainResult:
    """The one epoch loop of excess: shuffled mini-batches, per-epoch metrics, best-state keeping, early stopping.

    Every epoch: ``on_epoch_start(epoch)``; ``module.train()``; a permutation of the ``n`` rows drawn from
    ``generator`` (CPU); ``step(idx)`` for each batch of row indices (one optimisation step, returning the
    batch's loss as a float or a 0-d tensor, which is summed without a device sync); ``module.eval()``;
    ``evaluate(epoch, train_loss) -> dict`` of the epoch's metrics (e.g. ``val_loss``, or a physics criterion).
    The ``n_best`` epochs of lowest ``select`` metric keep their state dicts in ``best_states``, and the
    single lowest of each metric in ``keep_also`` in ``best_by``; an epoch whose training loss is not finite
    is never kept. Training stops after ``patience`` epochs without a (relative 1e-6) improvement of
    ``select``. The module is left as the last epoch made it: restoring a kept state is the caller's choice.

    ``drop_small_last`` drops a last batch of at most half ``batch_size`` rows (unless it is the only one);
    ``train_loss`` is the mean of the batch losses weighted by their rows (``"samples"``) or not
    (``"batches"``). Epochs are numbered from 0. ``postfix(row)`` gives the progress bar's fields.
    """
    import time

    import torch

    if train_loss not in ("samples", "batches"):
        raise ConfigError(f"train_loss must be 'samples' or 'batches', got {train_loss!r}")
    t0 = time.perf_counter()
    batch_size = int(batch_size)
    starts = list(range(0, n, batch_size))
    if drop_small_last and len(starts) > 1 and n - starts[-1] <= batch_size // 2:
        starts.pop()
    res = TrainResult()
    best = math.inf
    since_best = 0
    with _scoped_global_rng(module, generator):
        bar = progress(range(epochs), desc=desc, leave=leave, disable=None if progress_bar else True)
        for epoch in bar:
            if on_epoch_start is not None:
                on_epoch_start(epoch)
            module.train()
            perm = torch.randperm(n, generator=generator)
            total, losses = 0.0, []
            for i in starts:
                idx = perm[i : i + batch_size]
                value = step(idx)
                if train_loss == "samples":
                    total += value * idx.shape[0]
                else:
                    losses.append(float(value))
            loss = float(total) / n if train_loss == "samples" else (float(np.mean(losses)) if losses else math.nan)
            res.train_loss.append(loss)
            module.eval()
            row = {"epoch": epoch, "train_loss": loss, **(evaluate(epoch, loss) if evaluate is not None else {})}
            res.history.append(row)
            res.stopped_epoch = epoch
            score = row[select]
            if math.isfinite(loss):
                _keep(res.best_states, n_best, score, epoch, module)
                for key in keep_also:
                    kept = [res.best_by[key]] if key in res.best_by else []
                    _keep(kept, 1, row[key], epoch, module)
                    res.best_by[key] = kept[0]
            if score < best - 1e-6 * abs(best if math.isfinite(best) else 1.0):
                best, since_best = score, 0
            else:
                since_best += 1
            if postfix is not None and hasattr(bar, "set_postfix"):
                bar.set_postfix(**postfix(row))
            if patience is not None and since_best >= patience:
                break
        if hasattr(bar, "close"):
            bar.close()
        res.best_score = best
    res.seconds = time.perf_counter() - t0
    return res


@contextlib.contextmanager
def _scoped_global_rng(module, generator):
    """Layers that draw from torch's global generator (dropout) draw reproducibly, from a seed derived from
    ``generator``, inside this scope only: the global state is saved and restored (``torch.random.fork_rng``),
    so nothing outside sees a seeded global generator."""
    import torch

    if generator is None:
        yield
        return
    devices = sorted({p.device.index or 0 for p in module.parameters() if p.device.type == "cuda"})
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed((generator.initial_seed() + 0x5EED) % 2**63)
        yield


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
    max_steps: int | None = None,
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
    epochs = budget_epochs(epochs, steps, max_steps)
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

    state = {"epoch": 0}

    def start(epoch):
        state["epoch"] = epoch

    def step(idx):
        loss = loss_fn(module, *batch_of(train, idx))
        if on_cpu and not torch.isfinite(loss):  # on a GPU checked once per epoch (no sync per step)
            raise FitError(f"{desc or 'training'}: loss became {loss.item()} at epoch {state['epoch']}; lower the learning rate")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if clip_grad:
            torch.nn.utils.clip_grad_norm_(params, clip_grad)
        opt.step()
        if sched is not None:
            sched.step()
        return loss.item() if on_cpu else loss.detach().double()

    def evaluate(epoch, train_loss):
        if not math.isfinite(train_loss):
            raise FitError(f"{desc or 'training'}: loss became {train_loss} at epoch {epoch}; lower the learning rate")
        if not has_val:
            return {"val_loss": train_loss}
        with torch.no_grad():
            nv = val[0].shape[0]
            vl = 0.0
            for i in range(0, nv, 65536):
                b = batch_of(val, torch.arange(i, min(i + 65536, nv))) if not resident else [t[i : i + 65536] for t in val]
                vl += loss_fn(module, *b).item() * b[0].shape[0]
            return {"val_loss": vl / nv}

    res = train_loop(
        module, step, n, epochs=epochs, batch_size=batch_size, generator=generator, evaluate=evaluate,
        select="val_loss", n_best=n_best, patience=patience if has_val else None, on_epoch_start=start, desc=desc,
        postfix=lambda row: {"train": f"{row['train_loss']:.4f}", "val": f"{row['val_loss']:.4f}"},
    )
    res.val_loss = [row["val_loss"] for row in res.history]
    res.epochs = epochs
    best = res.best_score
    if not math.isfinite(best):
        raise FitError(f"{desc or 'training'}: validation loss is not finite")
    module.load_state_dict(res.best_states[0][2])
    module.eval()
    res.seconds = time.perf_counter() - t0
    log.debug("%s: %d epochs, best %d (val %.4f), %.1fs on %s", desc, res.stopped_epoch + 1, res.best_epoch, best,
              res.seconds, device or "cpu")
    return res
