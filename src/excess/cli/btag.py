"""``excess tag btag``: b/c/light jet generation with impact-parameter tracks, b-tagger training and evaluation."""

from __future__ import annotations

from pathlib import Path

import click

from .common import check_output, echo_json
from .jets import _params


@click.group()
def btag():
    """b-tagging: b/c/light jets (Pythia 8 ttbar + QCD, track IPs), RNNIP, deep sets and an IP3D-like baseline."""


@btag.command()
@click.option("-o", "--out", "out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Directory of chunk files (.npz + JSON); a rerun resumes.")
@click.option("-n", "--n-jets", type=click.IntRange(2), required=True, help="Total jets (ttbar and QCD).")
@click.option("--ttbar-fraction", type=click.FloatRange(0, 1), default=0.5, show_default=True)
@click.option("--seed", type=click.IntRange(1), default=1, show_default=True, help="Pythia seed of chunk 0.")
@click.option("--chunk-size", type=click.IntRange(1), default=5000, show_default=True)
@click.option("--workers", type=click.IntRange(1), default=1, show_default=True)
@click.option("--pt-min", type=float, default=20.0, show_default=True, help="Jet pT window [GeV] (lower edge).")
@click.option("--pt-max", type=float, default=300.0, show_default=True, help="Jet pT window [GeV] (upper edge).")
def generate(out, n_jets, ttbar_fraction, seed, chunk_size, workers, pt_min, pt_max):
    """Generate b, c and light jets with truth flavour and smeared, lifetime-signed track impact parameters."""
    from .._util import check_writable
    from ..data.btag import BTagSettings, generate_btag

    s = BTagSettings(jet_pt_min=pt_min, jet_pt_max=pt_max)
    check_writable(out)
    echo_json(generate_btag(out, n_jets, seed=seed, chunk_size=chunk_size, settings=s,
                            ttbar_fraction=ttbar_fraction, n_workers=workers))


def _data_options(f):
    f = click.option("--max-tracks", type=click.IntRange(1), default=25, show_default=True,
                     help="Tracks per jet kept (largest |S_d0| first).")(f)
    f = click.option("--max-jets", type=click.IntRange(3), default=None, help="Read at most this many jets.")(f)
    return click.argument("data", type=click.Path(exists=True, path_type=Path))(f)


@btag.command()
@_data_options
@click.option("-t", "--tagger", default="rnnip", show_default=True, help="rnnip, deepsets or ip3d.")
@click.option("-o", "--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Model directory.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--param", "params", multiple=True, help="Constructor argument, e.g. epochs=10 (JSON values).")
@click.option("--device", default="auto", show_default=True)
@click.option("--force", is_flag=True, help="Replace an existing saved model in OUT.")
def train(data, max_jets, max_tracks, tagger, out, seed, params, device, force):
    """Train one b-tagger on DATA (a chunk file or a directory of them) and save it (state_dict + JSON)."""
    from ..data.btag import load_btag
    from ..nn.device import check_device_spec
    from ..nn.io import save_model
    from ..tagging.jets.btag import make_btagger

    check_output(out, force, marker="hyperparameters.json", what="model")
    check_device_spec(device)
    kw = _params([f"{tagger}.{p}" for p in params]).get(tagger, {})
    d = load_btag(data, max_jets=max_jets, max_tracks=max_tracks)
    model = make_btagger(tagger, random_state=seed, device=device, **kw).fit(d.X, d.y)
    save_model(model, out)
    echo_json({"model": str(out), "tagger": tagger, "n_train": len(d),
               "history": getattr(model, "history_", None)})


@btag.command()
@_data_options
@click.option("-o", "--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Run directory.")
@click.option("-t", "--taggers", default="ip3d,deepsets,rnnip", show_default=True, help="Comma-separated names.")
@click.option("--n-train", type=click.IntRange(3), default=None, help="Training jets (default: all but the test set).")
@click.option("--n-test", type=click.IntRange(3), default=None, help="Test jets (default: 25 %).")
@click.option("--seeds", "n_seeds", type=click.IntRange(1), default=3, show_default=True, help="Trainings per tagger.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the split and the trainings.")
@click.option("--f-c", "f_c", type=click.FloatRange(0, 1), default=0.07, show_default=True,
              help="c fraction in the background of D_b = log(p_b / (f_c p_c + (1 - f_c) p_light)).")
@click.option("--param", "params", multiple=True, help="tagger.key=value, e.g. rnnip.epochs=10 (JSON values).")
def evaluate(data, max_jets, max_tracks, out, taggers, n_train, n_test, n_seeds, seed, f_c, params):
    """Train and compare b-taggers over seeds on DATA; write metrics.json, plots and report.html to OUT."""
    from .._util import check_writable
    from ..data.btag import load_btag
    from ..tagging.jets.btag_evaluate import evaluate_btaggers

    check_writable(out)  # a rerun into OUT resumes from the saved scores (other settings are refused)
    d = load_btag(data, max_jets=max_jets, max_tracks=max_tracks)
    m = evaluate_btaggers(d.X, d.y, d.jets["jet_pt"], out, taggers=[t.strip() for t in taggers.split(",") if t.strip()],
                          n_train=n_train, n_test=n_test, n_seeds=n_seeds, seed=seed, f_c=f_c, params=_params(params),
                          data_files=d.files, jet_eta=d.jets["jet_eta"])
    echo_json({name: {f"{k}_77": f"{r[f'{k}_77_mean']:.2f} +- {r[f'{k}_77_std']:.2f}" for k in ("light_rej", "c_rej")}
               for name, r in m["taggers"].items()} | {"report": str(out / "report.html")})
