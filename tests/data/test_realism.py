"""Generated LHCO-like events against the official LHC Olympics R&D SR quartiles (issue: realistic events).

Tolerance per quartile = 3 x the statistical error of a sample quantile (asymptotic, from the IQR)
+ a stated systematic fraction of the reference IQR:
* 0.25 x IQR for features the `lhco` preset models well (background substructure and masses,
  signal mjj and lighter-jet mass) — modelling differences between Pythia 8.317 + our
  Delphes-like response and the official Pythia 8.219 + Delphes 3.4.1 sample.
* Known gaps, guarded so they cannot silently grow: the generated signal has a longer low tail in
  delta_mj (X jet less often fully contained, p25 ~290 vs 346 GeV) and more two-prong-smeared
  substructure (tau21 p75 higher by ~0.06-0.11); these are checked at 1.0 x IQR.
"""

import numpy as np
import pytest

from excess.data.generate import generate_dijet
from excess.data.io import read_events
from excess.data.realism import LHCO_RD_SR_QUARTILES, compare_to_quartiles, quartile_tolerance

SR = (3300.0, 3700.0)
KNOWN_GAPS = {("signal", "delta_mj"), ("signal", "tau21_j1"), ("signal", "tau21_j2")}


@pytest.fixture(scope="module")
def lhco_like(tmp_path_factory):
    import pandas as pd

    d = tmp_path_factory.mktemp("realism")
    generate_dijet(d / "qcd", 10_000, process="qcd", seed=4242, chunk_size=5000, n_workers=1)
    generate_dijet(d / "sig", 2_500, process="signal", seed=777, chunk_size=2500, n_workers=1)
    return pd.concat([read_events(d / "qcd"), read_events(d / "sig")], ignore_index=True)


def test_sr_quartiles_match_official(lhco_like):
    rep = compare_to_quartiles(lhco_like, sr=SR)
    n_bkg = [c.n_generated for c in rep.comparisons if c.category == "background"][0]
    n_sig = [c.n_generated for c in rep.comparisons if c.category == "signal"][0]
    assert n_bkg > 1000 and n_sig > 1800, (n_bkg, n_sig)
    failures = []
    for c in rep.comparisons:
        ref = LHCO_RD_SR_QUARTILES[c.category][c.feature]
        sys_frac = 1.0 if (c.category, c.feature) in KNOWN_GAPS else 0.25
        tol = quartile_tolerance(c.n_generated, ref, sys_frac)
        diff = np.abs(np.asarray(c.generated_quartiles) - np.asarray(ref))
        if np.any(diff > tol):
            failures.append(f"{c.category} {c.feature}: generated {np.round(c.generated_quartiles, 3)} "
                            f"official {ref} tolerance {np.round(tol, 3)}")
    assert not failures, "\n".join(failures)


def test_mpi_shifts_lighter_jet_mass(tmp_path):
    """Why the lhco preset turns MPI off: the underlying event adds ~20 GeV to the Y-jet mass
    (signal lighter-jet median ~110 GeV with MPI off, official 110, ~134 with MPI on)."""
    med = {}
    for preset in ("lhco", "pythia"):
        generate_dijet(tmp_path / preset, 300, process="signal", preset=preset, seed=31, chunk_size=300, n_workers=1)
        df = read_events(tmp_path / preset)
        assert df.attrs["excess"]["settings"]["mpi"] is (preset == "pythia")
        med[preset] = float(np.median(df["mj1"]))
    assert med["pythia"] > med["lhco"] + 8, med
    assert abs(med["lhco"] - 110.0) < 8, med
