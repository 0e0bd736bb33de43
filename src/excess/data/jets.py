"""Jet reconstruction and substructure, vectorised over events with awkward arrays and FastJet.

* anti-kt jets (R = 1.0 by default) of the visible final state (or detector objects),
* the LHCO selection: >= 2 jets with pT > 20 GeV, at least one with |eta| < 2.5 and pT > 1.2 TeV,
* N-subjettiness (Thaler & Van Tilburg, JHEP 03 (2011) 015), normalised as
  ``tau_N^beta = sum_i pT_i min_k dR(i, axis_k)^beta / (sum_i pT_i R0^beta)`` with R0 = 1 and
  distances in rapidity-azimuth (as fjcontrib's Nsubjettiness).

Axes (option ``axes``):
    ``"wta"`` (default) exclusive-kt reclustering of the jet constituents into N subjets with the
    winner-take-all pT recombination scheme (fjcontrib ``WTA_KT_Axes``). WTA axes never make
    tau2 > tau1 pathological and track the official LHCO distributions best (KS 0.03 vs 0.08 for the
    heavier jet's tau21 with plain kt axes).
    ``"kt"`` exclusive-kt axes with E-scheme recombination (fjcontrib ``KT_Axes``); note that
    tau21 > 1 happens for 3-11 % of QCD jets with these axes.
Delphes (used for the official sample) uses one-pass-minimised kt axes; the fastjet wheel ships no
Python binding of fjcontrib, so minimisation is not offered.
"""

from __future__ import annotations

import warnings

import awkward as ak
import numpy as np

__all__ = ["cluster_events", "nsubjettiness", "delta_phi", "dijet_columns", "derived_features"]

# FastJet's maximum allowed R: exclusive reclustering must never merge constituents with the beam.
_EXCLUSIVE_R = 1000.0


def delta_phi(a, b):
    """Azimuthal difference wrapped into [-pi, pi)."""
    return (np.asarray(a) - np.asarray(b) + np.pi) % (2 * np.pi) - np.pi


def _kinematics(px, py, pz, e):
    pt = np.hypot(px, py)
    phi = np.arctan2(py, px)
    # rapidity, guarded against |pz| >= E from rounding
    num = np.maximum(e + pz, 1e-12)
    den = np.maximum(e - pz, 1e-12)
    rap = 0.5 * np.log(num / den)
    return pt, rap, phi


def _fields(arr):
    return (ak.to_numpy(arr.px), ak.to_numpy(arr.py), ak.to_numpy(arr.pz), ak.to_numpy(arr.E))


def nsubjettiness(constituents: ak.Array, n_max: int = 3, betas=(1.0,), axes: str = "wta", r0: float = 1.0) -> dict:
    """N-subjettiness of each jet for N = 1..n_max and each beta.

    Parameters
    ----------
    constituents : awkward Array, jets x var x {px, py, pz, E}
    Returns a dict ``{(N, beta): ndarray (n_jets,)}``.
    """
    import fastjet

    n_jets = len(constituents)
    counts = ak.to_numpy(ak.num(constituents, axis=1))
    out: dict = {}
    if n_jets == 0:
        for n in range(1, n_max + 1):
            for b in betas:
                out[(n, b)] = np.zeros(0)
        return out
    flat = ak.flatten(constituents)
    pt, rap, phi = _kinematics(*_fields(flat))
    jet_idx = np.repeat(np.arange(n_jets), counts)
    sum_pt = np.bincount(jet_idx, weights=pt, minlength=n_jets)
    scheme = fastjet.WTA_pt_scheme if axes == "wta" else fastjet.E_scheme
    jetdef = fastjet.JetDefinition(fastjet.kt_algorithm, _EXCLUSIVE_R, scheme)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cs = fastjet.ClusterSequence(constituents, jetdef)
        for n in range(1, n_max + 1):
            ax = cs.exclusive_jets_up_to(n)
            ax = ak.pad_none(ax, n, axis=1, clip=True)
            apx, apy, apz, ae = (ak.to_numpy(ak.fill_none(getattr(ax, f), np.nan)) for f in ("px", "py", "pz", "E"))
            _, arap, aphi = _kinematics(apx, apy, apz, ae)
            missing = np.isnan(apx)
            # (n_particles, n) squared distances to each axis of the particle's own jet
            drap = rap[:, None] - arap[jet_idx]
            dphi = delta_phi(phi[:, None], aphi[jet_idx])
            dr2 = drap**2 + dphi**2
            dr2[missing[jet_idx]] = np.inf
            min_dr2 = np.min(dr2, axis=1)
            for b in betas:
                num = np.bincount(jet_idx, weights=pt * min_dr2 ** (b / 2.0), minlength=n_jets)
                with np.errstate(invalid="ignore", divide="ignore"):
                    out[(n, b)] = np.where(sum_pt > 0, num / (sum_pt * r0**b), 0.0)
    return out


def cluster_events(particles: ak.Array, settings, rng: np.random.Generator | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Cluster events, apply the LHCO selection and compute the jet features.

    Parameters
    ----------
    particles : awkward Array, events x var x {px, py, pz, E} (GeV)
    settings : :class:`excess.data.settings.GeneratorSettings`
    rng : numpy Generator for the jet energy smearing (needed if ``settings.jet_energy_resolution > 0``)

    Returns
    -------
    passed : bool ndarray (n_events,)
    columns : dict of ndarrays, one entry per passed event (see :mod:`excess.data.schema`)
    """
    import fastjet

    from .schema import beta_tag

    jetdef = fastjet.JetDefinition(fastjet.antikt_algorithm, settings.jet_radius)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cs = fastjet.ClusterSequence(particles, jetdef)
        jets = cs.inclusive_jets(min_pt=settings.jet_pt_min)
        consts = cs.constituents(min_pt=settings.jet_pt_min)
    if settings.jet_energy_resolution > 0 or settings.jet_energy_scale != 1.0:
        # jet-level response: the whole four-momentum (pT, E and mass) scaled per jet, before the selection
        counts = ak.to_numpy(ak.num(jets, axis=1))
        n = int(counts.sum())
        if settings.jet_energy_resolution > 0:
            if rng is None:
                raise ValueError("cluster_events needs rng when jet_energy_resolution > 0")
            f = settings.jet_energy_scale * (1.0 + settings.jet_energy_resolution * rng.standard_normal(n))
        else:
            f = np.full(n, settings.jet_energy_scale)
        f = ak.unflatten(np.clip(f, 0.05, None), counts)
        jets = ak.zip({"px": jets.px * f, "py": jets.py * f, "pz": jets.pz * f, "E": jets.E * f}, with_name="Momentum4D")
    jpt = np.hypot(jets.px, jets.py)
    order = ak.argsort(jpt, axis=1, ascending=False)
    jets, consts, jpt = jets[order], consts[order], jpt[order]
    jp = np.sqrt(jets.px**2 + jets.py**2 + jets.pz**2)
    jeta = np.arctanh(jets.pz / np.maximum(jp, 1e-12))
    n_jets = ak.to_numpy(ak.num(jets, axis=1))
    trigger = ak.to_numpy(ak.any((jpt > settings.leading_pt_min) & (abs(jeta) < settings.leading_eta_max), axis=1))
    passed = (n_jets >= 2) & trigger
    if not passed.any():
        return passed, {}
    jets, consts = jets[passed][:, :2], consts[passed][:, :2]
    cols: dict[str, np.ndarray] = {"n_jets": n_jets[passed].astype(np.int16)}
    cols.update(dijet_columns(_fields(jets[:, 0]), _fields(jets[:, 1])))
    # N-subjettiness of both leading jets in one reclustering pass (jets stacked: first all jet1, then jet2)
    n_pass = int(passed.sum())
    stacked = ak.concatenate([consts[:, 0], consts[:, 1]], axis=0)
    n_max = 9 if settings.extended_nsubjettiness else 3
    betas = (0.5, 1.0, 2.0) if settings.extended_nsubjettiness else (1.0,)
    taus = nsubjettiness(stacked, n_max=n_max, betas=betas, axes=settings.axes)
    for j in (0, 1):
        sl = slice(j * n_pass, (j + 1) * n_pass)
        for n in (1, 2, 3):
            cols[f"jet{j + 1}_tau{n}"] = taus[(n, 1.0)][sl]
        if settings.extended_nsubjettiness:
            for b in betas:
                for n in range(1, n_max + 1):
                    cols[f"jet{j + 1}_tau{n}_{beta_tag(b)}"] = taus[(n, b)][sl]
    cols.update(derived_features(cols))
    return passed, cols


def dijet_columns(jet1, jet2) -> dict[str, np.ndarray]:
    """``jet{1,2}_{pt,eta,phi,m}`` and ``mjj`` from the two jets' four-momenta ``(px, py, pz, E)`` (GeV).

    Generation and the LHCO loader both call this, so the kinematics are defined once.
    """
    cols: dict[str, np.ndarray] = {}
    for j, (px, py, pz, e) in ((1, jet1), (2, jet2)):
        pt = np.hypot(px, py)
        p = np.sqrt(pt**2 + pz**2)
        cols[f"jet{j}_pt"] = pt
        cols[f"jet{j}_eta"] = np.arctanh(np.clip(pz / np.maximum(p, 1e-12), -1 + 1e-15, 1 - 1e-15))
        cols[f"jet{j}_phi"] = np.arctan2(py, px)
        cols[f"jet{j}_m"] = np.sqrt(np.maximum(e**2 - p**2, 0.0))
    s = [a + b for a, b in zip(jet1, jet2)]
    cols["mjj"] = np.sqrt(np.maximum(s[3] ** 2 - s[0] ** 2 - s[1] ** 2 - s[2] ** 2, 0.0))
    return cols


def tau_ratio(num, den):
    """tau_{N}/tau_{N-1}, defined as 0 where the denominator vanishes (single-constituent jets)."""
    num, den = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    out = np.zeros_like(num)
    np.divide(num, den, out=out, where=den > 0)
    return out


def derived_features(cols: dict) -> dict[str, np.ndarray]:
    """The standard (CATHODE-convention) features from per-jet columns ``jet{1,2}_{m,tau1,tau2}``.

    Formulas live here once: generation and loaders call this.
    """
    m1, m2 = np.asarray(cols["jet1_m"]), np.asarray(cols["jet2_m"])
    t21_1 = tau_ratio(cols["jet1_tau2"], cols["jet1_tau1"])
    t21_2 = tau_ratio(cols["jet2_tau2"], cols["jet2_tau1"])
    first_lighter = m1 <= m2
    return {
        "mj1": np.where(first_lighter, m1, m2),
        "mj2": np.where(first_lighter, m2, m1),
        "delta_mj": np.abs(m2 - m1),
        "tau21_j1": np.where(first_lighter, t21_1, t21_2),
        "tau21_j2": np.where(first_lighter, t21_2, t21_1),
    }
