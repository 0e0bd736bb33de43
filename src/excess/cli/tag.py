"""``excess tag``: supervised identification. ``excess tag electrons simulate | train | evaluate | impact``."""

from __future__ import annotations

from pathlib import Path

import click

from .common import check_output, echo_json


def _columns(items) -> dict:
    from ..errors import ConfigError

    out = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--column expects excess_name=file_column, got {item!r}")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def _load_tracks(inputs, columns, tree, max_tracks=None, seed=0):
    import pandas as pd

    from ..errors import InputError
    from ..tagging.io import read_track_table

    if not inputs:
        raise InputError("give at least one --input track table")
    frames = [read_track_table(p, columns=_columns(columns), tree=tree) for p in inputs]
    df = pd.concat(frames, ignore_index=True)
    if max_tracks is not None and len(df) > max_tracks:
        df = df.sample(n=max_tracks, random_state=seed).reset_index(drop=True)
    return df


_input = click.option("-i", "--input", "inputs", multiple=True, type=click.Path(exists=True, path_type=Path),
                      help="Track table: an excess sample directory, .parquet, .h5 or .root (repeatable).")
_column = click.option("--column", "columns", multiple=True, metavar="NAME=COLUMN",
                       help="Map an excess variable to a column of your file (repeatable).")
_tree = click.option("--tree", default=None, help="TTree name for ROOT inputs.")


@click.group()
def tag():
    """Supervised identification: low-pT electrons, quark/gluon jets and b-tagging."""


@tag.group()
def electrons():
    """Low-pT electron identification: samples, per-category taggers, evaluation, higgsino impact."""


@electrons.command()
@click.option("--process", type=click.Choice(["gun", "wenu", "softqcd", "higgsino"]), default="gun", show_default=True)
@click.option("-n", "--n-events", type=click.IntRange(1), required=True, help="Events (tracks for the gun).")
@click.option("--seed", type=click.IntRange(1, 900_000_000), default=1, show_default=True)
@click.option("--chunk-size", type=click.IntRange(1), default=1000, show_default=True)
@click.option("--m-chi20", type=float, default=153.0, show_default=True)
@click.option("--m-chi10", type=float, default=150.0, show_default=True)
@click.option("--pthat-min", type=float, default=20.0, show_default=True, help="W+jets only (150 for the impact sample).")
@click.option("--mpi/--no-mpi", default=True, show_default=True)
@click.option("--pileup-mu", type=click.FloatRange(0), default=0.0, show_default=True,
              help="Mean pile-up interactions in the detector model (calorimeter noise, TRT occupancy; Run 2: 33.7).")
@click.option("--keep-tracks-met-min", type=click.FloatRange(0), default=0.0, show_default=True,
              help="Store tracks only of events with MET above this [GeV] (impact samples; events all kept).")
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), required=True)
def simulate(process, n_events, seed, chunk_size, m_chi20, m_chi10, pthat_min, mpi, pileup_mu, keep_tracks_met_min,
             output):
    """Generate a track sample (Pythia 8 + the track-level detector model); resumable."""
    from .._util import check_writable
    from ..data.electrons import generate_tracks

    check_writable(output)
    kw = {"mpi": mpi, "pileup_mu": pileup_mu, "keep_tracks_met_min": keep_tracks_met_min}
    if process == "higgsino":
        kw.update(m_chi20=m_chi20, m_chi10=m_chi10)
    if process == "wenu":
        kw["pthat_min"] = pthat_min
    s = generate_tracks(output, n_events, process=process, seed=seed, chunk_size=chunk_size, **kw)
    echo_json(s.to_dict())


@electrons.command()
@_input
@_column
@_tree
@click.option("--model", "models", multiple=True, type=click.Choice(["dnn", "inclusive", "hgb"]), default=("dnn",),
              show_default=True, help="Tagger(s) to train (repeatable).")
@click.option("--epochs", type=click.IntRange(1), default=30, show_default=True)
@click.option("--batch-size", type=click.IntRange(1), default=512, show_default=True)
@click.option("--hidden", default="128,128", show_default=True, help="Hidden layer sizes.")
@click.option("--max-tracks", type=click.IntRange(1), default=None, help="Random subset of the inputs.")
@click.option("--min-tracks", type=click.IntRange(1), default=20, show_default=True,
              help="Electrons and other tracks each category needs at least.")
@click.option("--preprocessing", type=click.Choice(["quantile", "standard"]), default="quantile", show_default=True,
              help="The networks' input map: quantile (to Gaussian margins) or standard (mean/std).")
@click.option("--calibration", type=click.Choice(["auto", "sigmoid", "isotonic", "none"]), default="auto",
              show_default=True, help="Calibrate each member's probability on held-out rows (auto: Platt for the "
              "networks, raw HGB; none: raw output).")
@click.option("--prior", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=None,
              help="Electron fraction the probability refers to (default: equal classes, as training).")
@click.option("--pt-bins", default=None, metavar="EDGES",
              help="Train one member per category and fitted-pT bin, edges in GeV, e.g. 0.5,1,2,3,5 (outer bins open).")
@click.option("--pt-bins-merge", is_flag=True,
              help="Join a (category, pT bin) short of electrons or other tracks to its neighbour instead of failing.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--force", is_flag=True, help="Replace the results of an existing OUTPUT.")
def train(inputs, columns, tree, models, epochs, batch_size, hidden, max_tracks, min_tracks, preprocessing,
          calibration, prior, pt_bins, pt_bins_merge, seed, device, output, force):
    """Train taggers on labelled tracks; each is saved under OUTPUT/models/<model>."""
    import time

    from .._util import atomic_write_json
    from ..nn.io import save_model
    from ..tagging import ElectronTagger

    from ..errors import ConfigError

    try:
        edges = None if pt_bins is None else tuple(float(e) for e in pt_bins.split(",") if e.strip())
    except ValueError:
        raise ConfigError(f"--pt-bins expects comma-separated edges in GeV, e.g. 0.5,1,2,3,5; "
                          f"got {pt_bins!r}") from None
    check_output(output, force, marker="training.json", what="training")
    df = _load_tracks(inputs, columns, tree, max_tracks, seed)
    hid = tuple(int(h) for h in hidden.split(",") if h.strip())
    summary = {"n_tracks": len(df), "n_electrons": int(df["label"].sum()) if "label" in df else None, "models": {}}
    for m in models:
        t0 = time.perf_counter()
        tg = ElectronTagger(model=m, hidden=hid, epochs=epochs, batch_size=batch_size, min_tracks=min_tracks,
                            random_state=seed, device=device, preprocessing=preprocessing,
                            calibration=None if calibration == "none" else calibration, prior=prior,
                            pt_bins=edges, pt_bins_merge=pt_bins_merge).fit(df)
        info = {"train_s": time.perf_counter() - t0, "n_train": tg.n_train_}
        info["path"] = str(save_model(tg, output / "models" / m))
        summary["models"][m] = info
    atomic_write_json(output / "training.json", summary)
    echo_json(summary)


@electrons.command()
@click.option("-m", "--model", "model_dirs", multiple=True, required=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path), help="Saved tagger directory (repeatable).")
@_input
@_column
@_tree
@click.option("--fake-rate", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.05, show_default=True)
@click.option("--shap/--no-shap", default=True, show_default=True)
@click.option("--n-shap", type=click.IntRange(5), default=200, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--force", is_flag=True, help="Replace the results of an existing OUTPUT.")
def evaluate(model_dirs, inputs, columns, tree, fake_rate, shap, n_shap, seed, output, force):
    """ROC, efficiency at fixed fake rate per pT bin and category, SHAP; writes a run directory."""
    from ..nn.io import load_model
    from ..tagging.evaluate import evaluate_taggers

    check_output(output, force, marker="metrics.json", what="evaluation")
    df = _load_tracks(inputs, columns, tree)
    taggers = {p.name: load_model(p) for p in model_dirs}
    cfg = {"models": [str(p) for p in model_dirs], "inputs": [str(p) for p in inputs], "columns": list(columns),
           "fake_rate": fake_rate, "shap": shap, "n_shap": n_shap, "seed": seed}
    m = evaluate_taggers(taggers, df, output, fake_rate=fake_rate, shap=shap, n_shap=n_shap, random_state=seed,
                         config=cfg)
    echo_json({"output": str(output), "report": str(output / "report.html"),
                "auc": {k: v["roc"]["combined"]["auc"] for k, v in m["models"].items()}})


@electrons.command()
@click.option("-m", "--model", "model_dir", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("-s", "--signal", "signals", multiple=True, required=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Higgsino sample directory (repeatable; masses read from its manifest).")
@click.option("-b", "--background", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="W -> e nu + jets sample directory.")
@click.option("--lumi", type=click.FloatRange(0, min_open=True), default=139.0, show_default=True, help="fb^-1")
@click.option("--fake-rate", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.05, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--force", is_flag=True, help="Replace the results of an existing OUTPUT.")
def impact(model_dir, signals, background, lumi, fake_rate, seed, output, force):
    """Expected significance in the mock higgsino SR: with the tagger, without it, with a 4.5 GeV electron."""
    import time

    from .._util import atomic_write_json
    from ..data.electrons import read_tracks
    from ..data.io import read_metadata
    from ..errors import InputError
    from ..nn.io import load_model
    from ..tagging.impact import impact_study
    from ..tagging.report import write_tagging_report

    check_output(output, force, marker="metrics.json", what="impact study")
    t0 = time.perf_counter()
    tagger = load_model(model_dir)
    sig = {}
    for d in signals:
        st = read_metadata(d).get("settings", {})
        if st.get("process") != "higgsino":
            raise InputError(f"{d}: not a higgsino sample (process {st.get('process')!r})")
        tr, ev = read_tracks(d)
        sig[(float(st["m_chi20"]), float(st["m_chi10"]))] = (tr, ev)
    b_tr, b_ev = read_tracks(background)
    if b_ev is None:
        raise InputError(f"{background}: no event table (events-*.h5)")
    res = impact_study(tagger, sig, (b_tr, b_ev), lumi_fb=lumi, fake_rate=fake_rate, random_state=seed)
    output.mkdir(parents=True, exist_ok=True)
    atomic_write_json(output / "metrics.json", {"kind": "electron-impact", "n_tracks": int(len(b_tr)),
                                                "impact": res, "runtime_s": time.perf_counter() - t0})
    atomic_write_json(output / "config.json", {"model": str(model_dir), "signals": [str(s) for s in signals],
                                               "background": str(background), "lumi_fb": lumi,
                                               "fake_rate": fake_rate, "seed": seed})
    write_tagging_report(output)
    echo_json({"output": str(output), "points": [
        {"m_chi20": p["m_chi20"], "m_chi10": p["m_chi10"],
         **{k: round(v["z"], 4) for k, v in p["selections"].items()}} for p in res["points"]]})


def _add_jets() -> None:
    from .jets import jets

    tag.add_command(jets)
    from .btag import btag

    tag.add_command(btag)


_add_jets()
