"""``excess calo``: reference showers, generative models, CaloChallenge-style evaluation."""

from __future__ import annotations

from pathlib import Path

import click

from ..nn.device import DEVICE_HELP
from .common import echo_json, parse_params

_SPECTRA = "'discrete' (ds1: 2^8..2^22 MeV), 'log-uniform' (ds2/3: e-min..e-max) or a fixed energy in MeV"


def _device_option(f):
    return click.option("--device", default="auto", show_default=True, help=DEVICE_HELP)(f)


def _check_device(device: str) -> str:
    """The device's name (e.g. ``cpu``, ``cuda:0 (NVIDIA H200)``); a device that is not there fails here, before any work."""
    from ..nn.device import describe_device

    return describe_device(device)


def _torch_options(f):
    """``--seed``, ``--threads`` and ``--device``: the options of every command that runs torch."""
    f = _device_option(f)
    f = click.option("--threads", type=click.IntRange(1), default=None,
                     help="torch CPU threads (default: torch's, honours OMP_NUM_THREADS).")(f)
    return click.option("--seed", type=int, default=0, show_default=True)(f)


def _check_out(path: Path, force: bool) -> bool:
    """True if ``path`` should be (re)written; a finished output is kept unless --force. A path that cannot be
    written (under a file, no permission) fails here, before any work."""
    from .._util import check_writable

    check_writable(path)
    if path.exists() and not force:
        click.echo(f"{path} exists: skipping (use --force to overwrite)", err=True)
        return False
    return True


@click.group()
def calo():
    """Fast calorimeter simulation: GFLASH reference showers, flow/VAE/WGAN-GP, evaluation."""


@calo.command()
@click.option("--preset", type=click.Choice(["ds1-like", "ds2-like"]), default="ds2-like", show_default=True,
              help="Calorimeter preset: ds1-like (Pb-LAr, photons, ds1-photons binning) or ds2-like (Si-W, electrons).")
@click.option("--geometry", default=None, help="Geometry name (ds1-photons, ds1-pions, ds2, ds3) or binning XML; default: the preset's.")
@click.option("--particle", type=click.Choice(["electron", "photon"]), default=None, help="Default: the preset's.")
@click.option("-n", "--n-showers", type=click.IntRange(1), required=True)
@click.option("--energies", "spectrum", default=None, help=f"Incident energy spectrum: {_SPECTRA}. Default: discrete for ds1-like, log-uniform for ds2-like.")
@click.option("--e-min", type=float, default=None, help="MeV (default 256 for ds1-like, 1000 for ds2-like).")
@click.option("--e-max", type=float, default=None, help="MeV (default 4194304 for ds1-like, 1e6 for ds2-like).")
@click.option("--sampling-term", type=float, default=0.11, show_default=True, help="Stochastic resolution term a/sqrt(E/GeV).")
@click.option("--spot-factor", type=float, default=1.0, show_default=True, help="Multiplies GFLASH's number of spots.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True, help="CaloChallenge HDF5 file to write.")
@click.option("--force", is_flag=True, help="Overwrite an existing output.")
def simulate(preset, geometry, particle, n_showers, spectrum, e_min, e_max, sampling_term, spot_factor, seed, output, force):
    """Simulate reference showers with the GFLASH parameterisation (CaloChallenge HDF5 out)."""
    import numpy as np

    from .._util import progress
    from ..calo.gflash import GFlashSimulator, sample_incident_energies
    from ..calo.io import write_showers

    if not _check_out(output, force):
        return
    overrides = {"sampling_term": sampling_term, "spot_factor": spot_factor}
    if particle:
        overrides["particle"] = particle
    sim = GFlashSimulator.preset(preset, geometry, **overrides)
    ds1 = preset == "ds1-like"
    spectrum = spectrum or ("discrete" if ds1 else "log-uniform")
    e_min = e_min if e_min is not None else (256.0 if ds1 else 1e3)
    e_max = e_max if e_max is not None else (2.0**22 if ds1 else 1e6)
    rng = np.random.default_rng(seed)
    energies = sample_incident_energies(n_showers, spectrum, e_min=e_min, e_max=e_max, random_state=rng)
    chunk = 1000
    parts = [sim.simulate(energies[i : i + chunk], rng) for i in progress(range(0, n_showers, chunk), desc="simulate")]
    showers = np.concatenate(parts)
    meta = {"generator": "excess.calo.gflash", "seed": seed, "spectrum": spectrum, "e_min": e_min, "e_max": e_max, **sim.describe()}
    write_showers(output, energies, showers, geometry=sim.geometry, metadata=meta)
    echo_json({"output": output, "n_showers": n_showers, "geometry": sim.geometry.name, "n_voxels": sim.geometry.n_voxels,
                "mean_E_ratio": float((showers.sum(1) / energies).mean())})


@calo.command()
@click.option("--model", "kind", type=click.Choice(["flow", "vae", "wgan"]), default="flow", show_default=True)
@click.option("--data", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True, help="Training showers (HDF5).")
@click.option("--validation", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Validation showers for the best-epoch choice (default: 10% of --data).")
@click.option("--geometry", default=None, help="Geometry name or XML (default: from the file).")
@click.option("--epochs", type=click.IntRange(1), default=None)
@click.option("--batch-size", type=click.IntRange(1), default=None)
@click.option("--lr", type=float, default=None)
@click.option("--max-showers", type=click.IntRange(1), default=None, help="Use only the first N showers of --data.")
@click.option("--param", "params", multiple=True, help="Model hyperparameter key=value (JSON value), repeatable.")
@_torch_options
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), required=True, help="Model directory.")
@click.option("--force", is_flag=True, help="Retrain even if the model directory holds a model.")
def train(kind, data, validation, geometry, epochs, batch_size, lr, max_showers, params, seed, threads, device, output, force):
    """Train a conditional generator and save it.

    The best epoch is chosen by the chi2 of E_tot/E_inc; a flow's shape stage by its validation likelihood.
    """
    from .._util import atomic_write_json
    from ..nn.training import set_threads
    from ..calo.io import read_showers
    from ..calo.models import get_model_class
    from ..calo.plots import plot_history

    if not _check_out(output / "model.json", force):
        return
    where = _check_device(device)
    set_threads(threads)
    d = read_showers(data, geometry, max_showers=max_showers)
    if d.geometry is None:
        from ..errors import InputError

        raise InputError(f"{data}: cannot infer the geometry from {d.showers.shape[1]} voxels; pass --geometry")
    val = None
    if validation is not None:
        v = read_showers(validation, d.geometry)
        val = (v.showers, v.incident_energies)
    kw = parse_params(params, tuples=True)
    for k, v in (("epochs", epochs), ("batch_size", batch_size), ("lr", lr)):
        if v is not None:
            kw[k] = v
    cls = get_model_class(kind)
    model = cls(d.geometry, random_state=seed, device=device)
    model.set_params(**kw)
    model.fit(d.showers, d.incident_energies, validation=val)
    model.save(output)
    plot_history(model.history_, output / "history.png")
    summary = {"model": kind, "output": output, "geometry": d.geometry.name, "device": where,
               "n_train": model.n_train_,
               "best_epoch": model.best_epoch_,
               "best_validation_loss_epoch": getattr(model, "best_validation_loss_epoch_", None),
               "best_chi2_etot": min(h["chi2_etot"] for h in model.history_),
               "train_seconds": sum(h["seconds"] for h in model.history_)}
    atomic_write_json(output / "train_summary.json", summary)
    echo_json(summary)


@calo.command()
@click.option("--model-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True)
@click.option("--data", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
              help="Training showers (HDF5) to match the fractions of empty voxels and layers of.")
@click.option("--max-showers", type=click.IntRange(1), default=5000, show_default=True)
@_torch_options
def calibrate(model_dir, data, max_showers, seed, threads, device):
    """Refit a saved model's sparsity calibration (voxel thresholds and layer floors) in place.

    Training does this already; use it for models saved by an older version, or to calibrate on other showers.
    """
    from ..nn.training import set_threads
    from ..calo.io import read_showers
    from ..calo.models import load_model

    _check_device(device)
    set_threads(threads)
    model = load_model(model_dir, device=device)
    d = read_showers(data, model.geometry_)
    model.calibrate_sparsity(d.showers, d.incident_energies, max_showers=max_showers, random_state=seed)
    model.save(model_dir)
    pre = model.preprocessor_
    echo_json({"model_dir": model_dir, "n_showers": int(min(max_showers, len(d.incident_energies))),
                "energy_groups": len(pre.threshold_log_e_)})


@calo.command()
@click.option("--model-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True)
@click.option("-n", "--n-showers", type=click.IntRange(1), default=None, help="Number of showers (with --energies).")
@click.option("--energies", "spectrum", default="log-uniform", show_default=True, help=f"Spectrum with -n: {_SPECTRA}.")
@click.option("--e-min", type=float, default=1e3, show_default=True)
@click.option("--e-max", type=float, default=1e6, show_default=True)
@click.option("--energies-from", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Take the incident energies of this HDF5 file (one generated shower each).")
@click.option("--batch-size", type=click.IntRange(1), default=10_000, show_default=True)
@_torch_options
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--force", is_flag=True)
@click.option("--compile", "compile_", is_flag=True,
              help="Sample through torch.compile (flow only): 10-30 % faster after a ~1 min compilation; needs a C++ compiler.")
def generate(model_dir, n_showers, spectrum, e_min, e_max, energies_from, batch_size, seed, threads, device, output, force, compile_):
    """Generate showers with a trained model (CaloChallenge HDF5 out)."""
    import time

    import h5py
    import numpy as np

    from ..nn.training import set_threads
    from ..calo.gflash import sample_incident_energies
    from ..calo.io import write_showers
    from ..calo.models import load_model
    from ..errors import ConfigError, InputError

    if not _check_out(output, force):
        return
    _check_device(device)
    set_threads(threads)
    model = load_model(model_dir, device=device)
    if energies_from is not None:
        with h5py.File(energies_from, "r") as f:
            if "incident_energies" not in f:
                raise InputError(f"{energies_from}: missing key 'incident_energies'")
            energies = np.asarray(f["incident_energies"][:], dtype=float).reshape(-1)
        if n_showers is not None:
            energies = energies[:n_showers]
    elif n_showers is not None:
        energies = sample_incident_energies(n_showers, spectrum, e_min=e_min, e_max=e_max, random_state=seed)
    else:
        raise ConfigError("give -n/--n-showers or --energies-from")
    t0 = time.perf_counter()
    showers = model.sample(energies, batch_size=batch_size, random_state=seed, **({"compile": True} if compile_ else {}))
    dt = time.perf_counter() - t0
    write_showers(output, energies, showers, geometry=model.geometry_, metadata={"generator": f"excess.calo.models.{model.name}", "model_dir": str(model_dir), "seed": seed})
    echo_json({"output": output, "n_showers": len(energies), "ms_per_shower": 1e3 * dt / max(len(energies), 1)})


@calo.command()
@click.option("--reference", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True)
@click.option("--generated", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True)
@click.option("--geometry", default=None, help="Geometry name or XML (default: from the files).")
@click.option("--classifier", "classifiers", multiple=True, type=click.Choice(["low", "high"]), default=("low", "high"), show_default=True,
              help="Classifier inputs (repeatable).")
@click.option("--no-classifier", is_flag=True, help="Histograms and separation powers only.")
@click.option("--classifier-epochs", type=click.IntRange(1), default=30, show_default=True)
@click.option("--max-showers", type=click.IntRange(1), default=None, help="Use at most N showers of each file.")
@_torch_options
@click.option("--no-plots", is_flag=True)
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), required=True, help="Directory for summary.json and plots.")
def evaluate(reference, generated, geometry, classifiers, no_classifier, classifier_epochs, max_showers, seed, threads, device, no_plots,
             output):
    """Histograms, separation powers and classifier AUC/JSD: generated vs reference showers."""
    from .._util import atomic_write_json
    from ..nn.training import set_threads
    from ..calo.evaluate import evaluate_showers
    from ..calo.io import read_showers
    from ..calo.plots import plot_feature_histograms
    from ..errors import InputError

    from .._util import check_writable

    check_writable(output)  # before the work
    if not no_classifier:
        _check_device(device)
    set_threads(threads)
    ref = read_showers(reference, geometry, max_showers=max_showers)
    geom = ref.geometry
    if geom is None:
        raise InputError(f"{reference}: cannot infer the geometry from {ref.showers.shape[1]} voxels; pass --geometry")
    gen = read_showers(generated, geom, max_showers=max_showers)
    res = evaluate_showers(ref, gen, geom, classifiers=() if no_classifier else tuple(dict.fromkeys(classifiers)),
                           classifier_kwargs={"epochs": classifier_epochs}, device=device, random_state=seed)
    from .._util import ensure_dir

    ensure_dir(output)
    d = res.to_dict()
    d.update({"reference": str(reference), "generated": str(generated), "seed": seed})
    atomic_write_json(output / "summary.json", d)
    atomic_write_json(output / "histograms.json", [h.to_dict() for h in res.histograms])
    if not no_plots:
        plot_feature_histograms(res.histograms, output)
    echo_json({"summary": output / "summary.json", "mean_separation_power": res.mean_separation_power,
                "separation_E_ratio": res.separation_powers.get("E_ratio"),
                "classifiers": {k: {"auc": v.auc, "jsd": v.jsd} for k, v in res.classifiers.items()}})


@calo.command()
@click.option("--model-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True)
@click.option("--preset", type=click.Choice(["ds1-like", "ds2-like", "none"]), default=None,
              help="Reference simulator to time alongside (default: ds1-like for ds1 geometries, else ds2-like).")
@click.option("--batch-sizes", default="1,10,128,1024,10000", show_default=True)
@click.option("--threads", type=click.IntRange(1), default=2, show_default=True)
@_device_option
@click.option("--energies-from", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Draw incident energies from this HDF5 file (default: the preset's spectrum).")
@click.option("--reference-max-showers", type=click.IntRange(1), default=1024, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None, help="JSON file for the table.")
@click.option("--compile", "compile_", is_flag=True, help="Time sampling through torch.compile (flow only; compilation not timed).")
def timing(model_dir, preset, batch_sizes, threads, device, energies_from, reference_max_showers, seed, output, compile_):
    """Generation time per shower vs batch size, model vs reference simulator (CaloGAN-style table)."""
    import h5py
    import numpy as np

    from .._util import atomic_write_json
    from ..calo.gflash import GFlashSimulator, sample_incident_energies
    from ..calo.models import load_model
    from ..calo.timing import time_generation
    from ..errors import ConfigError

    if output is not None:
        from .._util import check_writable

        check_writable(output)  # before the work
    try:
        sizes = tuple(int(s) for s in batch_sizes.split(","))
    except ValueError:
        raise ConfigError(f"--batch-sizes must be comma-separated integers, got {batch_sizes!r}") from None
    _check_device(device)
    model = load_model(model_dir, device=device)
    geom = model.geometry_
    if preset is None:
        preset = "ds1-like" if geom.name.startswith("ds1") else "ds2-like"
    sim = None if preset == "none" else GFlashSimulator.preset(preset, geom)
    if energies_from is not None:
        with h5py.File(energies_from, "r") as f:
            energies = np.asarray(f["incident_energies"][:], dtype=float).reshape(-1)
    elif preset == "ds1-like":
        energies = sample_incident_energies(max(sizes), "discrete", e_min=256, e_max=2.0**22, random_state=seed)
    else:
        energies = sample_incident_energies(max(sizes), "log-uniform", random_state=seed)
    res = time_generation(model, sim, energies=energies, batch_sizes=sizes, threads=threads,
                          reference_max_showers=reference_max_showers, random_state=seed, compile=compile_)
    click.echo(res.format_table())
    if output is not None:
        atomic_write_json(output, res)
