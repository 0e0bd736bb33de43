"""``excess antelope``: ANTELOPE on semi-visible-jet samples -- train, evaluate across the signal grid, mT search.

SAMPLES are what ``excess svj generate`` writes (read with ``excess.data.svj.read_svj``): a QCD sample and
signal samples, in any order; events are preselected with ANTELOPE's >= 3 tracks (and finite variables).
"""

from __future__ import annotations

from pathlib import Path

import click

from ..nn.device import DEVICE_HELP  # no torch import
from .common import check_output, echo_json


def _model_params(items) -> dict:
    """``model.key=value`` (model: pfn, vae or ae; JSON values) -> ``{model: {key: value}}``."""
    import json

    from ..errors import ConfigError

    out: dict = {"pfn": {}, "vae": {}, "ae": {}}
    for item in items:
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise ConfigError(f"--param expects model.key=value with model pfn, vae or ae (e.g. pfn.epochs=20), "
                              f"got {item!r}")
        k, v = item.split("=", 1)
        model, key = k.split(".", 1)
        if model not in out:
            raise ConfigError(f"--param {item!r}: model must be pfn, vae or ae")
        try:
            val = json.loads(v)
        except ValueError:
            val = v
        out[model][key.strip().replace("-", "_")] = tuple(val) if isinstance(val, list) else val
    return out


def _load(samples, max_events=None):
    from ..antelope.data import load_samples, preselect

    data = load_samples(samples)
    if max_events is not None and len(data) > max_events:
        import numpy as np

        # keep the class mix: the first max_events of each label's events, in file order
        lab = data.events["label"].to_numpy()
        idx = np.sort(np.concatenate([np.nonzero(lab == c)[0][:max_events] for c in np.unique(lab)]))
        data = data.subset(idx)
    data, counts = preselect(data)
    return data, counts


def _samples_arg(f):
    f = click.option("--max-events", type=click.IntRange(10), default=None,
                     help="Read at most this many events per class (QCD / signal) after reading.")(f)
    return click.argument("samples", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))(f)


@click.group()
def antelope():
    """ANTELOPE: PFN + VAE anomaly score on the tracks of semi-visible jets, and the mT bump hunt."""


@antelope.command()
@_samples_arg
@click.option("-o", "--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Model directory (pfn/, vae/, meta.json).")
@click.option("--train-point", required=True, help="Signal point of the PFN: m_zprime,r_inv[,m_dark] (GeV, -, GeV).")
@click.option("--train-fraction", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.5,
              show_default=True, help="Fraction of the QCD (and signal-point) events used for training.")
@click.option("--split-seed", type=int, default=0, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the trainings.")
@click.option("--param", "params", multiple=True, help="pfn.key=value or vae.key=value (JSON), e.g. pfn.epochs=20.")
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP)
@click.option("--force", is_flag=True, help="Replace a trained model in OUT.")
def train(samples, max_events, out, train_point, train_fraction, split_seed, seed, params, device, force):
    """Train the PFN (QCD vs TRAIN_POINT) and ANTELOPE's VAE (on QCD) and save them to OUT."""
    import time

    import numpy as np

    from .._util import atomic_write_json
    from ..antelope.data import parse_point, point_mask, split_indices
    from ..antelope.models import Antelope

    check_output(out, force, marker="meta.json", what="ANTELOPE model")
    kw = _model_params(params)
    data, counts = _load(samples, max_events)
    ev = data.events
    sig = np.nonzero(point_mask(ev, train_point))[0]
    bkg = np.nonzero(ev["label"].to_numpy() == 0)[0]
    if bkg.size < 10:
        from ..errors import InputError

        raise InputError(f"{len(bkg)} QCD (label 0) events after the preselection; need a QCD sample")
    b_tr = bkg[split_indices(bkg.size, train_fraction, split_seed)[0]]
    s_tr = sig[split_indices(sig.size, train_fraction, split_seed + 1)[0]]
    idx = np.r_[b_tr, s_tr]
    y = np.r_[np.zeros(b_tr.size, int), np.ones(s_tr.size, int)]
    c0, w0 = time.process_time(), time.perf_counter()
    model = Antelope(pfn_params=kw["pfn"], vae_params=kw["vae"], random_state=seed, device=device)
    model.fit(data.tracks[idx], y)
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    model.save(out)
    atomic_write_json(out / "train_events.json", data.keys(idx))  # file#row of every training event
    meta = {"train_point": list(parse_point(train_point)), "files": list(data.files),
            "n_events_preselected": len(data), "preselection": counts, "train_fraction": train_fraction,
            "split_seed": split_seed, "seed": seed, "n_train_qcd": int(b_tr.size), "n_train_signal": int(s_tr.size),
            "pfn_history": model.pfn_.history_, "vae_history": model.vae_.history_,
            "train_cpu_s": cpu, "train_wall_s": wall, "params": kw}
    atomic_write_json(out / "meta.json", meta)
    echo_json({"models": str(out), "n_train_qcd": int(b_tr.size), "n_train_signal": int(s_tr.size),
               "train_cpu_s": round(cpu, 1), "train_wall_s": round(wall, 1)})


@antelope.command()
@_samples_arg
@click.option("-o", "--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Run directory.")
@click.option("--train-point", required=True, help="Signal point of the PFN: m_zprime,r_inv[,m_dark].")
@click.option("--seeds", "n_seeds", type=click.IntRange(1), default=3, show_default=True, help="Trainings per model.")
@click.option("--seed", type=int, default=0, show_default=True, help="First training seed (seeds seed..seed+n-1).")
@click.option("--train-fraction", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.5,
              show_default=True)
@click.option("--split-seed", type=int, default=0, show_default=True)
@click.option("--param", "params", multiple=True, help="pfn.key=value, vae.key=value or ae.key=value (JSON).")
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP)
@click.option("--force", is_flag=True, help="Replace a finished evaluation in OUT.")
def evaluate(samples, max_events, out, train_point, n_seeds, seed, train_fraction, split_seed, params, device, force):
    """AUC / SIC of the PFN, ANTELOPE and the high-level AE on every signal point, over seeds; report.html."""
    import sys

    from .._util import atomic_write_json, package_versions
    from ..antelope.evaluate import auc_table, evaluate_models
    from ..antelope.report import write_evaluation_plots, write_evaluation_report

    check_output(out, force, marker="report.html", what="evaluation")
    kw = _model_params(params)
    data, counts = _load(samples, max_events)
    res = evaluate_models(data, train_point=train_point, seeds=range(seed, seed + n_seeds),
                          train_fraction=train_fraction, split_seed=split_seed, pfn_params=kw["pfn"],
                          vae_params=kw["vae"], ae_params=kw["ae"], device=device)
    out.mkdir(parents=True, exist_ok=True)
    metrics = res.to_dict()
    metrics["preselection"] = counts
    metrics["provenance"] = {"command": sys.argv, "files": list(data.files),
                             "versions": package_versions(("numpy", "torch", "scikit-learn"))}
    captions = write_evaluation_plots(res, data.events, out / "plots")
    metrics["plot_captions"] = captions
    atomic_write_json(out / "metrics.json", metrics)
    report = write_evaluation_report(out, metrics, captions)
    click.echo(auc_table(metrics), err=True)
    echo_json({"report": str(report), "metrics": str(out / "metrics.json"),
               "train_cpu_s_mean": {k: round(sum(v["cpu_s"]) / len(v["cpu_s"]), 1) for k, v in res.timing.items()}})


@antelope.command()
@_samples_arg
@click.option("--models", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True,
              help="Directory written by `excess antelope train`.")
@click.option("-o", "--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Run directory.")
@click.option("--inject", "inject_point", default=None,
              help="Inject signal events of this point (m_zprime,r_inv[,m_dark]); without it signal events are "
                   "dropped (QCD alone).")
@click.option("--n-signal", type=click.IntRange(1), default=None, help="Number of injected signal events (default all "
              "held-out events of the point).")
@click.option("--mode", type=click.Choice(["frozen", "window"]), default="frozen", show_default=True,
              help="frozen: the VAE trained on QCD by `train`; window: a VAE per window and fold on its sidebands.")
@click.option("--score", type=click.Choice(["total", "kl", "reconstruction"]), default="total", show_default=True)
@click.option("--efficiencies", default="1.0,0.3,0.1", show_default=True,
              help="Sideband efficiencies of the cuts (1.0: the inclusive spectrum; MT_EFFICIENCIES).")
@click.option("--window-width", type=float, default=None, help="SR width in mT (GeV) [600].")
@click.option("--window-step", type=float, default=None, help="SR step (GeV) [100].")
@click.option("--sideband-width", type=float, default=None, help="Sideband width (GeV) [800].")
@click.option("--anchor", type=float, default=None, help="A window centre (GeV) [3500].")
@click.option("--bin-width", type=float, default=None, help="mT bin width of the fits (GeV) [50].")
@click.option("--relative-windows", is_flag=True, help="Mass-scaled windows: --window-width, --window-step and "
              "--sideband-width are fractions of the SR centre [0.2, 0.04, 0.3; anchor 3000].")
@click.option("--min-sideband-events", type=click.IntRange(1), default=100, show_default=True,
              help="Fewer events in a sideband (before cuts) flag the window as no result.")
@click.option("--background-model", type=click.Choice(["efficiency", "sideband", "profile", "signal_fit", "dijet_signal"]),
              default="dijet_signal", show_default=True, help="Background of a cut's SR (excess.search.run_scan's "
              "background_model; dijet_signal: the dijet function + a Gaussian signal template fitted over the whole "
              "window, MT_BACKGROUND_MODEL).")
@click.option("--signal-width", type=float, default=None, help="Width of the Gaussian signal template over the SR "
              "centre (background models dijet_signal, signal_fit, profile) [0.08, MT_SIGNAL_WIDTH: the mT peak "
              "width measured over the signal grid].")
@click.option("--fit-functions", type=click.Choice(["4", "3,4", "3"]), default="4", show_default=True,
              help="Dijet functions of the sideband fits: 4 or 3 = that one only; 3,4 = the 4-parameter one where a "
                   "likelihood-ratio test prefers it (not calibrated on curved spectra, see MT_FIT_FUNCTIONS).")
@click.option("--folds", type=click.IntRange(2), default=5, show_default=True)
@click.option("--toys", type=click.IntRange(0), default=200, show_default=True, help="Pseudo-experiments for global Z.")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("-j", "--workers", type=click.IntRange(1), default=None, help="Local worker processes.")
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP)
@click.option("--force", is_flag=True, help="Replace a finished search in OUT.")
def search(samples, max_events, models, out, inject_point, n_signal, mode, score, efficiencies, window_width,
           window_step, sideband_width, anchor, bin_width, relative_windows, min_sideband_events, background_model,
           signal_width, fit_functions, folds, toys, seed, workers, device, force):
    """Bump hunt in mT with ANTELOPE's score (trained models from `train`); writes report.html."""
    import numpy as np

    from .._util import read_json
    from ..antelope.data import point_mask
    from ..antelope.search import MT_SIGNAL_WIDTH, run_antelope_search
    from ..errors import ConfigError, InputError

    check_output(out, force, marker="report.html", what="search")
    try:
        effs = tuple(float(e) for e in efficiencies.split(","))
    except ValueError:
        raise ConfigError(f"--efficiencies: comma-separated numbers, got {efficiencies!r}") from None
    if signal_width is not None:
        from ..stats.fit import check_signal_width

        check_signal_width(signal_width)  # before the samples are read
    meta_file = models / "meta.json"
    if not meta_file.exists():
        raise InputError(f"{models}: not a model directory of `excess antelope train` (no meta.json)")
    meta = read_json(meta_file, "model metadata")
    data, counts = _load(samples, max_events)
    ev = data.events
    trained = set(read_json(models / "train_events.json", "training events")) if (models / "train_events.json").exists() else set()
    keep = np.array([k not in trained for k in data.keys()])  # never search the models' training events
    excluded = int((~keep).sum())
    if trained and not excluded:
        click.echo(f"warning: none of the {len(trained)} events the models were trained on (file#row keys in "
                   f"{models / 'train_events.json'}) is among these samples; if the same files were moved or "
                   "renamed, the search scores its own training events", err=True)
    lab = ev["label"].to_numpy()
    sig = np.zeros(len(data), bool)
    if inject_point is not None:
        cand = np.nonzero(point_mask(ev, inject_point) & keep)[0]
        if n_signal is not None:
            if n_signal > cand.size:
                raise InputError(f"--n-signal {n_signal}: only {cand.size} held-out events of {inject_point}")
            cand = np.sort(np.random.default_rng(seed).choice(cand, n_signal, replace=False))
        sig[cand] = True
    sel = np.nonzero(((lab == 0) & keep) | sig)[0]
    wo = {k: v for k, v in (("width", window_width), ("step", window_step), ("sideband_width", sideband_width),
                            ("anchor", anchor), ("bin_width", bin_width)) if v is not None}
    if relative_windows:
        wo["relative"] = True
    prov = {"files": list(data.files), "preselection": counts, "excluded_training_events": excluded,
            "n_qcd": int(((lab == 0) & keep).sum()), "n_signal_injected": int(sig.sum()), "inject": inject_point}
    m = run_antelope_search(data.subset(sel), models, out, mode=mode, score=score, efficiencies=effs,
                            window_options=wo or None, n_folds=folds, global_toys=toys, seed=seed, device=device,
                            workers=workers, provenance=prov, vae_params=meta.get("params", {}).get("vae"),
                            min_sideband_events=min_sideband_events, background_model=background_model,
                            fit_functions=tuple(int(f) for f in fit_functions.split(",")),
                            signal_width=MT_SIGNAL_WIDTH if signal_width is None else signal_width)
    g = m.get("global_significance") or {}
    echo_json({"report": str(out / "report.html"), "best": m.get("best"), "z_global": g.get("z_global"),
               "z_global_is_limit": g.get("z_global_is_limit"), "truth_best_window": m.get("truth_best_window"),
               **prov})
