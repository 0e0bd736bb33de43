"""``excess validate``: compare generated samples with reference data."""

from __future__ import annotations

import json

import click


@click.group()
def validate():
    """Compare generated samples with reference files."""


@validate.command("realism")
@click.argument("generated", type=click.Path(exists=True))
@click.argument("reference", default="lhco-rd")
@click.option("--sr", nargs=2, type=float, default=(3300.0, 3700.0), show_default=True, help="Compare inside this mjj window.")
@click.option("--all-mjj", is_flag=True, help="Compare over the full mjj range instead of the SR.")
@click.option("--features", default="mjj,mj1,delta_mj,tau21_j1,tau21_j2", show_default=True)
@click.option("-o", "--output", type=click.Path(), default=None, help="Directory for realism.json and realism.png.")
def realism(generated, reference, sr, all_mjj, features, output):
    """Compare GENERATED with REFERENCE (a file in any supported format, or 'lhco-rd' for the
    built-in official LHCO R&D SR quartiles) feature by feature: quartiles, KS distance, plots."""
    from pathlib import Path

    from .._util import atomic_write_json
    from ..data.io import read_events
    from ..data.realism import compare_samples, compare_to_quartiles, plot_comparison

    gen = read_events(generated)
    window = None if all_mjj else tuple(sr)
    feats = tuple(f.strip() for f in features.split(",") if f.strip())
    ref_df = None
    if reference == "lhco-rd":
        rep = compare_to_quartiles(gen, sr=tuple(sr))
    else:
        ref_df = read_events(reference)
        rep = compare_samples(gen, ref_df, features=feats, sr=window, reference_name=str(reference))
    click.echo(rep.table(), err=output is not None)
    if output:
        out = Path(output)
        atomic_write_json(out / "realism.json", rep.to_dict())
        if ref_df is not None:
            plot_comparison(gen, ref_df, out / "realism.png", features=feats, sr=window)
        click.echo(json.dumps({"output": str(out)}))
