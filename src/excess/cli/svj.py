"""``excess svj``: semi-visible-jet samples (Pythia 8 Hidden Valley signal, QCD background) with tracks per jet."""

from __future__ import annotations

import click

from .common import echo_json


@click.group()
def svj():
    """Semi-visible jets: generate signal (Hidden Valley Z') and QCD samples with per-jet tracks."""


def _settings_options(f):
    opts = [
        click.option("--m-dark", type=float, default=20.0, show_default=True,
                     help="Dark meson mass in GeV (dark quarks at half of it)."),
        click.option("--pthat-min", type=float, default=500.0, show_default=True, help="QCD PhaseSpace:pTHatMin in GeV."),
        click.option("--met-min", type=float, default=None, help="Preselection MET threshold in GeV [100]."),
        click.option("--jet-radius", type=float, default=None, help="Anti-kt radius [0.4]."),
        click.option("--seed", type=int, default=1, show_default=True,
                     help="Pythia seed of chunk 0 (chunk i uses seed + 1000 i)."),
        click.option("--chunk-size", type=int, default=1000, show_default=True, help="Preselected events per chunk file."),
        click.option("-j", "--workers", type=int, default=None, help="Worker processes [default: all cores]."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


@svj.command("generate")
@click.option("-n", "--n-events", type=int, required=True, help="Preselected events to produce.")
@click.option("-o", "--output", type=click.Path(), required=True,
              help="A chunk directory (resumable: a rerun skips finished chunks) or one .h5 file.")
@click.option("--process", type=click.Choice(["signal", "qcd"]), default="signal", show_default=True)
@click.option("--m-zprime", type=float, default=2000.0, show_default=True, help="Z' mass in GeV (signal).")
@click.option("--r-inv", type=float, default=0.3, show_default=True, help="Invisible fraction of dark hadrons (signal).")
@_settings_options
@click.option("--force", is_flag=True, help="Replace an existing single-file output (a chunk directory resumes instead).")
def generate(n_events, output, process, m_zprime, r_inv, m_dark, pthat_min, met_min, jet_radius, seed, chunk_size,
             workers, force):
    """Generate preselected semi-visible-jet signal or QCD events with tracks (prints a JSON summary)."""
    from ..data.svj import generate_svj

    summary = generate_svj(n_events, output, process=process, m_zprime=m_zprime, r_inv=r_inv, m_dark=m_dark,
                           pthat_min=pthat_min, seed=seed, chunk_size=chunk_size, n_workers=workers,
                           overwrite=force, met_min=met_min, jet_radius=jet_radius)
    echo_json(summary)


@svj.command("grid")
@click.option("-n", "--n-events", type=int, required=True, help="Preselected events per signal point.")
@click.option("-o", "--output", type=click.Path(file_okay=False), required=True,
              help="Folder; each point goes to OUTPUT/svj_mz<m>_rinv<r>/ (resumable).")
@click.option("--m-zprime", "m_zprimes", type=float, multiple=True,
              help="Z' masses in GeV (repeatable) [1500 2000 3000 4000].")
@click.option("--r-inv", "r_invs", type=float, multiple=True, help="r_inv values (repeatable) [0.2 0.3 0.5 0.7].")
@_settings_options
def grid(n_events, output, m_zprimes, r_invs, m_dark, pthat_min, met_min, jet_radius, seed, chunk_size, workers):
    """Generate the signal grid (every m_Z' x r_inv point), one chunk directory per point."""
    from ..data.svj import GRID_MZPRIME, GRID_RINV, generate_svj_grid

    out = generate_svj_grid(output, n_events, m_zprimes=m_zprimes or GRID_MZPRIME, r_invs=r_invs or GRID_RINV,
                            m_dark=m_dark, seed=seed, chunk_size=chunk_size, n_workers=workers, met_min=met_min,
                            jet_radius=jet_radius)
    echo_json(out)
