"""``excess benchmark``: benchmarks of the anomaly methods (thin over excess.benchmarks)."""

from __future__ import annotations

import click

DEFAULT_BKG = "~/.cache/excess/lhco/background"
DEFAULT_SIG = "~/.cache/excess/lhco/signal"


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(v) for v in text.split(",") if v.strip())


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split(",") if v.strip())


@click.group()
def benchmark():
    """Benchmarks of anomaly methods (max SIC tables)."""


@benchmark.command("sic")
@click.option("--background", default=DEFAULT_BKG, show_default=True, help="Background events (file or chunk directory).")
@click.option("--signal", default=DEFAULT_SIG, show_default=True, help="Signal events (file or chunk directory).")
@click.option("--sr", nargs=2, type=float, default=(3300.0, 3700.0), show_default=True, help="Signal region in GeV.")
@click.option("--s-over-b", default="0.0064,0.0032,0.0019", show_default=True, help="Comma-separated S/B in the SR.")
@click.option("--seeds", default="0,1,2", show_default=True, help="Comma-separated seeds.")
@click.option("--methods", default=None, help="Comma-separated method names (default: all).")
@click.option("--noise", default="0", show_default=True, help="Comma-separated numbers of extra N(0,1) columns, e.g. 0,5.")
@click.option("--max-background", type=int, default=None, help="Use at most this many background events.")
@click.option("--fast", is_flag=True, help="Tiny models (smoke test).")
@click.option("--flow-cache", type=click.Path(file_okay=False), default=None,
              help="Keep the SB flows here and reuse them in later runs with the same data, seed and flow settings.")
@click.option("-o", "--out", "out_dir", default="sic-benchmark", show_default=True, type=click.Path(file_okay=False))
def sic(background, signal, sr, s_over_b, seeds, methods, noise, max_background, fast, flow_cache, out_dir):
    """Max SIC per method at several injections; writes JSON, a markdown table and plots to --out."""
    import os

    from ..anomaly import METHODS
    from ..benchmarks import SICBenchmarkConfig, run_sic_benchmark

    cfg = SICBenchmarkConfig(
        background=os.path.expanduser(background), signal=os.path.expanduser(signal), sr=tuple(sr),
        s_over_b=_floats(s_over_b), seeds=_ints(seeds),
        methods=tuple(m.strip() for m in methods.split(",")) if methods else METHODS,
        n_noise=_ints(noise), max_background=max_background, fast=fast, flow_cache=flow_cache,
    )
    result = run_sic_benchmark(cfg, out_dir)
    click.echo(result.markdown())
