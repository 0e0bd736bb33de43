"""Compare a generated sample with a reference sample, feature by feature.

Used by ``excess validate realism`` (users run it against their own data) and by the tests that
hold the generator to the official LHC Olympics 2020 R&D distributions.

For each feature: the reference and generated quartiles (p25/p50/p75), the two-sample
Kolmogorov-Smirnov distance and p-value (``scipy.stats.ks_2samp``), and overlay plots.
The reference can be a file in any supported format or the built-in table of the official LHCO
R&D quartiles in the SR 3.3-3.7 TeV (``"lhco-rd"``), which carries quartiles only (no KS distance).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from .schema import RESONANT_FEATURE, STANDARD_FEATURES

__all__ = ["LHCO_RD_SR_QUARTILES", "FeatureComparison", "RealismReport", "compare_samples", "compare_to_quartiles"]

DEFAULT_FEATURES = (RESONANT_FEATURE, *STANDARD_FEATURES)

# Official LHCO R&D sample, SR 3.3-3.7 TeV (121,352 background, signal from the R&D signal file): p25/p50/p75.
LHCO_RD_SR_QUARTILES = {
    "background": {
        "mj1": (70.0, 108.0, 172.0),
        "delta_mj": (53.0, 126.0, 251.0),
        "tau21_j1": (0.462, 0.600, 0.710),
        "tau21_j2": (0.332, 0.491, 0.628),
    },
    "signal": {
        "mjj": (3441.0, 3511.0, 3577.0),
        "mj1": (101.0, 110.0, 126.0),
        "delta_mj": (346.0, 382.0, 411.0),
        "tau21_j1": (0.271, 0.375, 0.499),
        "tau21_j2": (0.120, 0.183, 0.292),
    },
}


@dataclass(frozen=True)
class FeatureComparison:
    feature: str
    category: str
    n_generated: int
    n_reference: int
    generated_quartiles: tuple[float, float, float]
    reference_quartiles: tuple[float, float, float]
    ks_distance: float | None
    ks_pvalue: float | None
    ks_lower_bound: float | None = None  # from reference quartiles only: max_p |F_gen(q_p) - p| <= KS distance

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class RealismReport:
    reference: str
    sr: tuple[float, float] | None
    comparisons: tuple[FeatureComparison, ...]

    def to_dict(self) -> dict:
        return {"reference": self.reference, "sr": self.sr, "comparisons": [c.to_dict() for c in self.comparisons]}

    def table(self) -> str:
        lines = [f"{'category':<11}{'feature':<10}{'n_gen':>8}{'n_ref':>9}  {'generated p25/p50/p75':<26}{'reference p25/p50/p75':<26}{'KS':>8}"]
        for c in self.comparisons:
            g = "/".join(f"{x:.4g}" for x in c.generated_quartiles)
            r = "/".join(f"{x:.4g}" for x in c.reference_quartiles)
            ks = (f"{c.ks_distance:.3f}" if c.ks_distance is not None
                  else (f">={c.ks_lower_bound:.3f}" if c.ks_lower_bound is not None else "-"))
            lines.append(f"{c.category:<11}{c.feature:<10}{c.n_generated:>8}{c.n_reference:>9}  {g:<26}{r:<26}{ks:>8}")
        return "\n".join(lines)


def _select(df: pd.DataFrame, sr, category: str) -> pd.DataFrame:
    if sr is not None:
        m = df["mjj"].to_numpy()
        df = df[(m >= sr[0]) & (m < sr[1])]
    if category != "all" and "label" in df.columns:
        want = 1 if category == "signal" else 0
        df = df[df["label"].to_numpy() == want]
    return df


def _categories(df: pd.DataFrame) -> list[str]:
    if "label" not in df.columns:
        return ["all"]
    labels = set(np.unique(df["label"].to_numpy()).tolist())
    if labels <= {-1}:
        return ["all"]
    return [c for c, v in (("background", 0), ("signal", 1)) if v in labels]


def compare_samples(generated: pd.DataFrame, reference: pd.DataFrame, *, features=DEFAULT_FEATURES,
                    sr: tuple[float, float] | None = (3300.0, 3700.0), reference_name: str = "reference") -> RealismReport:
    """Quartiles and KS distance per feature (per truth category when both samples carry labels)."""
    from scipy.stats import ks_2samp

    for name, df in (("generated", generated), ("reference", reference)):
        missing = [f for f in features if f not in df.columns]
        if missing:
            raise InputError(f"{name} sample lacks feature column(s) {missing}")
    cats = [c for c in _categories(generated) if c in _categories(reference)] or ["all"]
    out = []
    for cat in cats:
        g, r = _select(generated, sr, cat), _select(reference, sr, cat)
        if len(g) == 0 or len(r) == 0:
            raise InputError(f"no {cat} events in the SR {sr} of the {'generated' if len(g) == 0 else 'reference'} sample")
        for f in features:
            gv, rv = g[f].to_numpy(dtype=float), r[f].to_numpy(dtype=float)
            ks = ks_2samp(gv, rv)
            out.append(FeatureComparison(f, cat, len(gv), len(rv), tuple(np.quantile(gv, [0.25, 0.5, 0.75]).tolist()),
                                         tuple(np.quantile(rv, [0.25, 0.5, 0.75]).tolist()), float(ks.statistic), float(ks.pvalue)))
    return RealismReport(reference_name, None if sr is None else (float(sr[0]), float(sr[1])), tuple(out))


def compare_to_quartiles(generated: pd.DataFrame, quartiles: dict = LHCO_RD_SR_QUARTILES,
                         sr: tuple[float, float] = (3300.0, 3700.0), reference_name: str = "lhco-rd") -> RealismReport:
    """Compare with a table of reference quartiles (default: the official LHCO R&D SR quartiles)."""
    out = []
    for cat in _categories(generated):
        if cat not in quartiles:
            continue
        g = _select(generated, sr, cat)
        if len(g) == 0:
            raise InputError(f"no {cat} events in the SR {sr} of the generated sample")
        for f, ref in quartiles[cat].items():
            if f not in g.columns:
                raise InputError(f"generated sample lacks feature column {f!r}")
            gv = g[f].to_numpy(dtype=float)
            bound = max(abs(float(np.mean(gv <= q)) - p) for q, p in zip(ref, (0.25, 0.5, 0.75)))
            out.append(FeatureComparison(f, cat, len(gv), 0, tuple(np.quantile(gv, [0.25, 0.5, 0.75]).tolist()),
                                         tuple(float(x) for x in ref), None, None, bound))
    return RealismReport(reference_name, (float(sr[0]), float(sr[1])), tuple(out))


def quartile_tolerance(n: int, quartiles: tuple[float, float, float], systematic: float) -> np.ndarray:
    """Allowed |generated - reference| per quartile: 3 x the statistical error of a sample quantile
    (asymptotic sqrt(p(1-p)/n)/f, f estimated from the IQR as for a normal density) plus a relative
    systematic ``systematic`` x IQR for generator/detector modelling."""
    q = np.asarray(quartiles, dtype=float)
    iqr = q[2] - q[0]
    sigma = iqr / 1.349  # normal-equivalent width
    p = np.array([0.25, 0.5, 0.75])
    dens = np.exp(-0.5 * ((q - q[1]) / sigma) ** 2) / (sigma * np.sqrt(2 * np.pi))
    stat = np.sqrt(p * (1 - p) / max(n, 1)) / np.maximum(dens, 1e-12)
    return 3 * stat + systematic * iqr


def plot_comparison(generated: pd.DataFrame, reference: pd.DataFrame, path: str | Path, *, features=DEFAULT_FEATURES,
                    sr=(3300.0, 3700.0), labels=("generated", "reference")) -> Path:
    """Overlay unit-normalised histograms of each feature (per category) into one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .._util import atomic_path

    cats = [c for c in _categories(generated) if c in _categories(reference)] or ["all"]
    fig, axes = plt.subplots(len(cats), len(features), figsize=(3.2 * len(features), 2.8 * len(cats)), squeeze=False)
    for i, cat in enumerate(cats):
        g, r = _select(generated, sr, cat), _select(reference, sr, cat)
        for j, f in enumerate(features):
            ax = axes[i, j]
            both = np.concatenate([g[f].to_numpy(dtype=float), r[f].to_numpy(dtype=float)])
            lo, hi = np.quantile(both, [0.005, 0.995]) if len(both) else (0, 1)
            bins = np.linspace(lo, hi, 40)
            ax.hist(r[f], bins=bins, density=True, histtype="stepfilled", alpha=0.35, label=labels[1])
            ax.hist(g[f], bins=bins, density=True, histtype="step", lw=1.5, label=labels[0])
            ax.set_xlabel(f)
            ax.set_title(cat, fontsize=9)
            if i == 0 and j == 0:
                ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path
