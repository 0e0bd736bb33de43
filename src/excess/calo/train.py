"""Training of the shower generators, with the best epoch chosen by the chi2 of E_tot/E_inc.

The epochs run in the substrate's one loop (:func:`excess.nn.training.train_loop`: batches, progress,
history, best-state keeping) with each model's own step (``_train_step``; the WGAN-GP's has two
optimisers) and the selection below; the data, the network and the steps live on the model's ``device``.

After every epoch the model generates ``E_tot/E_inc`` for the validation incident energies; the
chi2 per bin between that distribution and the validation reference (binned on the reference's
0.5-99.5 % range, FastCaloGAN's criterion) decides which epoch's weights are kept.

A model with a likelihood may name parts of its network that the chi2 cannot judge
(``_validation_loss_parts``, with ``_validation_loss``): the normalizing flow's shape stage
does not change ``E_tot/E_inc`` at all. Those parts are kept at the epoch of lowest validation
loss (negative log-likelihood), the rest at the epoch of lowest chi2; both are in ``history_``.
"""

from __future__ import annotations

import time

import numpy as np

from .._util import check_random_state, get_logger
from ..errors import InputError
from .evaluate import histogram_chi2
from .preprocessing import ShowerPreprocessor

__all__ = ["fit_generator"]

log = get_logger(__name__)


def fit_generator(model, showers, incident_energies, *, validation=None, progress_bar: bool = True):
    """Fit ``model`` (a :class:`~excess.calo.models.ShowerGenerator`) on its ``device``; returns ``model``.

    The epochs run in :func:`excess.nn.training.train_loop` with the model's own step (``_train_step``, one
    or several optimisers) and this module's selection: the chi2 of ``E_tot/E_inc`` and, for the parts in
    ``_validation_loss_parts``, the validation loss.
    """
    import torch

    from ..nn.device import resolve_device
    from ..nn.training import torch_generator, train_loop

    geometry = model.geometry_
    showers = np.asarray(showers, dtype=np.float32)
    e = np.asarray(incident_energies, dtype=np.float64).reshape(-1)
    geometry.check_showers(showers, "training showers")
    if len(e) != len(showers):
        raise InputError(f"{len(showers)} training showers but {len(e)} incident energies")
    if (showers < 0).any() or (e <= 0).any():
        raise InputError("training showers must be >= 0 and incident energies > 0 MeV")
    device = resolve_device(model.device)
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
    model.module_ = model._build(pre.n_features, pre.n_energy, gen).to(device)  # initialised on the CPU
    model._make_optimizers()
    bs = int(model.batch_size)
    model.n_batches_hint_ = max(1, int(np.ceil(len(e) / bs)))
    c_all = torch.as_tensor(pre.condition(e)).to(device)
    val_ratio = val_x.sum(1) / val_e
    lo, hi = np.quantile(val_ratio, [0.005, 0.995])
    bins = np.linspace(lo, hi, 31) if hi > lo else np.linspace(lo - 0.5, hi + 0.5, 31)
    c_val = torch.as_tensor(pre.condition(val_e)).to(device)

    loss_parts = tuple(getattr(model, "_validation_loss_parts", ()))
    x_val = torch.as_tensor(pre.transform(val_x, val_e, rng)[0]).to(device) if loss_parts else None
    data = {}

    def start(epoch):
        data["t0"] = time.perf_counter()
        data["x"] = torch.as_tensor(pre.transform(showers, e, rng)[0]).to(device)  # fresh dequantisation noise

    def step(idx):
        idx = idx.to(device)
        return model._train_step(data["x"][idx], c_all[idx], gen)

    def evaluate(epoch, loss):
        with torch.no_grad():
            ratio = np.concatenate([model._generate_energy_ratio(c_val[i : i + 4096], gen) for i in range(0, len(c_val), 4096)])
            val_loss = model._validation_loss(x_val, c_val) if loss_parts else None
        chi2 = histogram_chi2(val_ratio, ratio, bins)
        if not np.isfinite(loss):
            log.warning("epoch %d: non-finite loss", epoch + 1)
        row = {"chi2_etot": chi2, "seconds": time.perf_counter() - data["t0"]}
        if val_loss is not None:
            row["val_loss"] = val_loss
        log.info("%s epoch %d: loss %.4g, chi2(E_tot/E_inc) %.4g%s", model.name, epoch + 1, loss, chi2,
                 f", validation loss {val_loss:.4g}" if val_loss is not None else "")
        return row

    shown = {}  # best (score, 1-based epoch) so far by each criterion, for the progress bar only

    def postfix(row):
        for key in ("chi2_etot", "val_loss"):
            if key in row and np.isfinite(row["train_loss"]) and (key not in shown or row[key] < shown[key][0]):
                shown[key] = (row[key], row["epoch"] + 1)
        out = {"loss": f"{row['train_loss']:.3g}", "chi2": f"{row['chi2_etot']:.3g}", "best": shown.get("chi2_etot", (0, 0))[1]}
        if "val_loss" in row:
            out.update(val=f"{row['val_loss']:.3g}", best_val=shown.get("val_loss", (0, 0))[1])
        return out

    res = train_loop(
        model.module_, step, len(e), epochs=int(model.epochs), batch_size=bs, generator=gen, evaluate=evaluate,
        select="chi2_etot", keep_also=("val_loss",) if loss_parts else (), on_epoch_start=start, drop_small_last=True,
        train_loss="batches", desc=f"train {model.name}", progress_bar=progress_bar, leave=True, postfix=postfix,
    )
    if res.best_states:
        best_state = res.best_states[0][2]
        if "val_loss" in res.best_by:  # the likelihood-judged parts from their own best epoch
            prefixes = tuple(f"{p}." for p in loss_parts)
            best_val_state = res.best_by["val_loss"][2]
            best_state = {k: (best_val_state[k] if k.startswith(prefixes) else v) for k, v in best_state.items()}
        model.module_.load_state_dict(best_state)
    model.module_.eval()
    model.best_validation_loss_epoch_ = (res.best_by["val_loss"][1] + 1 if "val_loss" in res.best_by else 0) if loss_parts else None
    if getattr(model, "sparsity_calibration", False):
        model.calibrate_sparsity(showers, e, random_state=rng)
    model.history_ = [{"epoch": r["epoch"] + 1, "loss": r["train_loss"], "chi2_etot": r["chi2_etot"], "seconds": r["seconds"],
                       **({"val_loss": r["val_loss"]} if "val_loss" in r else {})} for r in res.history]
    model.best_epoch_ = res.best_states[0][1] + 1 if res.best_states else 0
    model.n_train_ = int(len(e))
    return model
