"""``excess tag jets``: quark/gluon jet generation, tagger training and evaluation (thin layer over the library)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .common import check_output, echo_json


def _params(items) -> dict:
    """``tagger.key=value`` pairs (values parsed as JSON) -> ``{tagger: {key: value}}``."""
    from ..errors import ConfigError

    out: dict = {}
    for item in items:
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise ConfigError(f"--param expects tagger.key=value (e.g. pfn.epochs=10), got {item!r}")
        k, v = item.split("=", 1)
        tagger, key = k.split(".", 1)
        try:
            val = json.loads(v)
        except ValueError:
            val = v
        out.setdefault(tagger.strip(), {})[key.strip().replace("-", "_")] = tuple(val) if isinstance(val, list) else val
    return out


@click.group()
def jets():
    """Jet tagging: quark/gluon jets (Pythia 8 + FastJet), CNN on jet images, PFN/EFN, tree baseline."""


@jets.command()
@click.option("-o", "--out", "out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Directory of chunk files (EnergyFlow .npz format); a rerun resumes.")
@click.option("-n", "--n-jets", type=click.IntRange(2), required=True, help="Total jets (half quark, half gluon).")
@click.option("--seed", type=click.IntRange(1), default=1, show_default=True, help="Pythia seed of chunk 0.")
@click.option("--chunk-size", type=click.IntRange(1), default=5000, show_default=True)
@click.option("--workers", type=click.IntRange(1), default=1, show_default=True)
@click.option("--no-mpi", is_flag=True, help="Switch multiparton interactions off (the recipe has them on).")
def generate(out, n_jets, seed, chunk_size, workers, no_mpi):
    """Generate q/g jets in the EnergyFlow recipe (Z + jet at 14 TeV, anti-kt 0.4, pT 500-550 GeV, |y| < 1.7)."""
    from .._util import check_writable
    from ..data.qg import QGSettings, generate_qg

    check_writable(out)
    echo_json(generate_qg(out, n_jets, seed=seed, chunk_size=chunk_size, n_workers=workers,
                           settings=QGSettings(mpi=not no_mpi)))


def _data_options(f):
    f = click.option("--max-jets", type=click.IntRange(2), default=None, help="Read at most this many jets.")(f)
    return click.argument("data", type=click.Path(exists=True, path_type=Path))(f)


@jets.command()
@_data_options
@click.option("-t", "--tagger", default="pfn", show_default=True, help="pfn, pfn_nopid, efn or cnn.")
@click.option("-o", "--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Model directory.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--param", "params", multiple=True, help="Constructor argument, e.g. epochs=10 (JSON values).")
@click.option("--device", default="auto", show_default=True)
@click.option("--force", is_flag=True, help="Replace an existing saved model in OUT.")
def train(data, max_jets, tagger, out, seed, params, device, force):
    """Train one tagger on DATA (an .npz file or a directory of them) and save it (state_dict + JSON)."""
    from ..data.qg import load_qg
    from ..errors import ConfigError
    from ..nn.io import save_model
    from ..tagging.jets.models import make_tagger

    if tagger == "hgb":
        raise ConfigError("the tree baseline is not saved as a state_dict; use `excess tag jets evaluate` for it")
    check_output(out, force, marker="hyperparameters.json", what="model")
    kw = _params([f"{tagger}.{p}" for p in params]).get(tagger, {})
    d = load_qg(data, max_jets=max_jets)
    model = make_tagger(tagger, random_state=seed, device=device, **kw).fit(d.X, d.y)
    save_model(model, out)
    echo_json({"model": str(out), "tagger": tagger, "n_train": len(d), "history": model.history_})


@jets.command()
@_data_options
@click.option("-o", "--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Run directory.")
@click.option("-t", "--taggers", default="hgb,efn,pfn,cnn", show_default=True, help="Comma-separated tagger names.")
@click.option("--n-train", type=click.IntRange(2), default=None, help="Training jets (default: all but the test set).")
@click.option("--n-test", type=click.IntRange(2), default=None, help="Test jets (default: 20 %).")
@click.option("--seeds", "n_seeds", type=click.IntRange(1), default=3, show_default=True, help="Trainings per tagger.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the split and the trainings.")
@click.option("--param", "params", multiple=True, help="tagger.key=value, e.g. pfn.epochs=10 (JSON values).")
def evaluate(data, max_jets, out, taggers, n_train, n_test, n_seeds, seed, params):
    """Train and compare taggers over seeds on DATA; write metrics.json, plots and report.html to OUT."""
    from .._util import check_writable
    from ..data.qg import load_qg
    from ..tagging.jets.evaluate import evaluate_taggers

    check_writable(out)  # a rerun into OUT resumes from the saved scores (other settings are refused)
    d = load_qg(data, max_jets=max_jets)
    m = evaluate_taggers(d.X, d.y, out, taggers=[t.strip() for t in taggers.split(",") if t.strip()],
                         n_train=n_train, n_test=n_test, n_seeds=n_seeds, seed=seed, params=_params(params),
                         data_files=d.files)
    echo_json({name: {"auc": f"{r['auc_mean']:.4f} +- {r['auc_std']:.4f}",
                       "rejection_50": f"{r['rejection_50_mean']:.2f} +- {r['rejection_50_std']:.2f}"}
                for name, r in m["taggers"].items()} | {"report": str(out / "report.html")})
