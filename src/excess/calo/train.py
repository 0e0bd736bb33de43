"""Training loop of the shower generators, with the best epoch chosen by the chi2 of E_tot/E_inc.

After every epoch the model generates ``E_tot/E_inc`` for the validation incident energies; the
chi2 per bin between that distribution and the validation reference (binned on the reference's
0.5-99.5 % range, FastCaloGAN's criterion) decides which epoch's weights are kept.

A model with a likelihood may name parts of its network that the chi2 cannot judge
(``_validation_loss_parts``, with ``_validation_loss``): the normalizing flow's shape stage
does not change ``E_tot/E_inc`` at all. Those parts are kept at the epoch of lowest validation
loss (negative log-likelihood), the rest at the epoch of lowest chi2; both are in ``history_``.
"""

from __future__ import annotations

import copy
import math
import time

import numpy as np

from .._util import check_random_state, get_logger, progress
from ..errors import InputError
from .evaluate import histogram_chi2
from .preprocessing import ShowerPreprocessor

__all__ = ["fit_generator"]

log = get_logger(__name__)


def fit_generator(model, showers, incident_energies, *, validation=None, progress_bar: bool = True):
    import torch

    from ._torch import torch_generator

    geometry = model.geometry_
    showers = np.asarray(showers, dtype=np.float32)
    e = np.asarray(incident_energies, dtype=np.float64).reshape(-1)
    geometry.check_showers(showers, "training showers")
    if len(e) != len(showers):
        raise InputError(f"{len(showers)} training showers but {len(e)} incident energies")
    if (showers < 0).any() or (e <= 0).any():
        raise InputError("training showers must be >= 0 and incident energies > 0 MeV")
    rng = check_random_state(model.random_state)
    if validation is None:
        perm = rng.permutation(len(e))
        n_val = max(1, len(e) // 10)
        val_x, val_e = showers[perm[:n_val]], e[perm[:n_val]]
        showers, e = showers[perm[n_val:]], e[perm[n_val:]]
    else:
        val_x, val_e = np.asarray(validation[0], dtype=np.float32), np.asarray(validation[1], dtype=np.float64).reshape(-1)
        geometry.check_showers(val_x, "validation showers")
    if len(e) < 2:
        raise InputError(f"need at least 2 training showers, got {len(e)}")

    pre = ShowerPreprocessor(geometry, noise_mev=float(model.noise_mev)).fit(showers, e, rng)
    model.preprocessor_ = pre
    gen = torch_generator(rng)
    model.module_ = model._build(pre.n_features, pre.n_energy, gen)
    model._make_optimizers()
    bs = int(model.batch_size)
    model.n_batches_hint_ = max(1, int(np.ceil(len(e) / bs)))
    c_all = torch.as_tensor(pre.condition(e))
    val_ratio = val_x.sum(1) / val_e
    lo, hi = np.quantile(val_ratio, [0.005, 0.995])
    bins = np.linspace(lo, hi, 31) if hi > lo else np.linspace(lo - 0.5, hi + 0.5, 31)
    c_val = torch.as_tensor(pre.condition(val_e))

    loss_parts = tuple(getattr(model, "_validation_loss_parts", ()))
    x_val = torch.as_tensor(pre.transform(val_x, val_e, rng)[0]) if loss_parts else None
    history, best_chi2, best_state, best_epoch = [], math.inf, None, 0
    best_val, best_val_state, best_val_epoch = math.inf, None, 0
    bar = progress(range(1, int(model.epochs) + 1), desc=f"train {model.name}", disable=None if progress_bar else True)
    for epoch in bar:
        t0 = time.perf_counter()
        # fresh dequantisation noise every epoch
        x_all = torch.as_tensor(pre.transform(showers, e, rng)[0])
        model.module_.train()
        perm = torch.randperm(len(x_all), generator=gen)
        losses = []
        for i in range(0, len(perm) - (bs // 2 if len(perm) > bs else 0), bs):
            idx = perm[i : i + bs]
            losses.append(model._train_step(x_all[idx], c_all[idx], gen))
        model.module_.eval()
        with torch.no_grad():
            ratio = np.concatenate([model._generate_energy_ratio(c_val[i : i + 4096], gen) for i in range(0, len(c_val), 4096)])
            val_loss = model._validation_loss(x_val, c_val) if loss_parts else None
        chi2 = histogram_chi2(val_ratio, ratio, bins)
        loss = float(np.mean(losses)) if losses else float("nan")
        if not np.isfinite(loss):
            log.warning("epoch %d: non-finite loss", epoch)
        row = {"epoch": epoch, "loss": loss, "chi2_etot": chi2, "seconds": time.perf_counter() - t0}
        if val_loss is not None:
            row["val_loss"] = val_loss
        history.append(row)
        if chi2 < best_chi2 and np.isfinite(loss):
            best_chi2, best_epoch = chi2, epoch
            best_state = copy.deepcopy(model.module_.state_dict())
        if val_loss is not None and val_loss < best_val and np.isfinite(loss):
            best_val, best_val_epoch = val_loss, epoch
            best_val_state = copy.deepcopy(model.module_.state_dict())
        if hasattr(bar, "set_postfix"):
            bar.set_postfix(loss=f"{loss:.3g}", chi2=f"{chi2:.3g}", best=best_epoch,
                            **({"val": f"{val_loss:.3g}", "best_val": best_val_epoch} if val_loss is not None else {}))
        log.info("%s epoch %d: loss %.4g, chi2(E_tot/E_inc) %.4g%s", model.name, epoch, loss, chi2,
                 f", validation loss {val_loss:.4g}" if val_loss is not None else "")
    if best_state is not None:
        if best_val_state is not None:  # the likelihood-judged parts from their own best epoch
            prefixes = tuple(f"{p}." for p in loss_parts)
            best_state = {k: (best_val_state[k] if k.startswith(prefixes) else v) for k, v in best_state.items()}
        model.module_.load_state_dict(best_state)
    model.module_.eval()
    model.best_validation_loss_epoch_ = best_val_epoch if loss_parts else None
    if getattr(model, "sparsity_calibration", False):
        model.calibrate_sparsity(showers, e, random_state=rng)
    model.history_ = history
    model.best_epoch_ = best_epoch
    model.n_train_ = int(len(e))
    return model
