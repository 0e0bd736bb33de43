"""A fast, seeded, particle-level detector response in the spirit of Delphes' CMS card.

The official LHC Olympics 2020 samples were passed through Delphes 3.4.1 (default CMS card) and jets
were clustered from its energy-flow objects. This module reproduces the main effects on the
stable visible particles *before* clustering, vectorised over all particles of a batch:

Tracking (charged particles; ``delphes_card_CMS.tcl``, ChargedHadronTrackingEfficiency)
    efficiency 0 for pT <= 0.1 GeV or |eta| > 2.5; |eta| <= 1.5: 0.70 (0.1 < pT <= 1 GeV), 0.95 (pT > 1 GeV);
    1.5 < |eta| <= 2.5: 0.60 and 0.85. Muons: 0.95 for |eta| <= 2.5 and pT > 0.1 GeV (never in the calorimeter).
    Momentum resolution (simplified from the card's binned table): sigma(pT)/pT = 1 % + 5e-5 * pT/GeV
    for |eta| <= 1.5 and twice that for 1.5 < |eta| <= 2.5.
Calorimeters (everything without a reconstructed track, |eta| <= 5)
    Deposits summed in towers of 0.087 x 0.087 in (eta, phi) for |eta| <= 3 and 0.175 x 0.175 beyond
    (the card's granularity, approximately); the tower direction is its centre.
    ECAL (photons, electrons): sigma(E) = sqrt((0.007 E)^2 + 0.07^2 E + 0.35^2) for |eta| <= 3,
    sqrt((0.107 E)^2 + 2.08^2 E) beyond. HCAL (hadrons): sqrt((0.050 E)^2 + 1.50^2 E) for |eta| <= 3,
    sqrt((0.130 E)^2 + 2.70^2 E) beyond. Smearing is log-normal as in Delphes (never negative).
    Thresholds: ECAL tower E > 0.5 GeV, HCAL tower E > 1.0 GeV.
Energy-flow objects = reconstructed tracks + calorimeter towers (massless).

Limits: no pile-up, no magnetic-field bending of low-pT tracks, no track-tower subtraction of the
charged energy (tracks that are reconstructed never reach the tower sum, which is the idealised
energy-flow limit), no electron/photon/muon isolation or identification.
"""

from __future__ import annotations

import awkward as ak
import numpy as np

__all__ = ["apply_detector", "apply_detector_flat", "DELPHES_CMS"]

DELPHES_CMS = {
    "source": "Delphes 3.4 delphes_card_CMS.tcl (resolutions, efficiencies, thresholds); towers approximated",
    "tracker_eta_max": 2.5,
    "calo_eta_max": 5.0,
    "tower_size_central": 0.087,
    "tower_size_forward": 0.175,
    "ecal_min_e": 0.5,
    "hcal_min_e": 1.0,
}

_ELECTRON, _MUON, _PHOTON = 11, 13, 22


def _lognormal(mean, sigma, rng):
    safe = np.where(mean > 0, mean, 1.0)
    b = np.sqrt(np.log1p((sigma / safe) ** 2))
    a = np.log(safe) - 0.5 * b * b
    return np.where(mean > 0, np.exp(a + b * rng.standard_normal(mean.shape)), 0.0)


def _ecal_sigma(e, abseta):
    central = np.sqrt((0.007 * e) ** 2 + 0.07**2 * e + 0.35**2)
    forward = np.sqrt((0.107 * e) ** 2 + 2.08**2 * e)
    return np.where(abseta <= 3.0, central, forward)


def _hcal_sigma(e, abseta):
    central = np.sqrt((0.050 * e) ** 2 + 1.50**2 * e)
    forward = np.sqrt((0.130 * e) ** 2 + 2.70**2 * e)
    return np.where(abseta <= 3.0, central, forward)


def _track_efficiency(pt, abseta, is_muon):
    barrel = abseta <= 1.5
    endcap = (abseta > 1.5) & (abseta <= 2.5)
    low = (pt > 0.1) & (pt <= 1.0)
    high = pt > 1.0
    eff = np.zeros_like(pt)
    eff[barrel & low] = 0.70
    eff[barrel & high] = 0.95
    eff[endcap & low] = 0.60
    eff[endcap & high] = 0.85
    eff[is_muon & (abseta <= 2.5) & (pt > 0.1)] = 0.95
    return eff


def apply_detector(particles: ak.Array, pid: ak.Array, charge: ak.Array, rng: np.random.Generator) -> ak.Array:
    """Turn visible particles into energy-flow objects (tracks + towers).

    Parameters
    ----------
    particles : events x var x {px, py, pz, E}
    pid, charge : events x var, PDG id and electric charge of each particle
    rng : numpy Generator (the chunk's; never global state)

    Returns events x var x {px, py, pz, E} (``Momentum4D``), ready for clustering.
    """
    counts = ak.to_numpy(ak.num(particles, axis=1))
    flat = ak.flatten(particles)
    cols = [ak.to_numpy(flat[f]).astype(np.float64) for f in ("px", "py", "pz", "E")]
    new_counts, px, py, pz, e = apply_detector_flat(
        counts, *cols, ak.to_numpy(ak.flatten(pid)), ak.to_numpy(ak.flatten(charge)), rng
    )
    rec = ak.zip({"px": px, "py": py, "pz": pz, "E": e}, with_name="Momentum4D")
    return ak.unflatten(rec, new_counts)


def apply_detector_flat(counts, px, py, pz, e, pid, q, rng: np.random.Generator):
    """Flat-array core of :func:`apply_detector`: returns ``(counts, px, py, pz, E)`` of the objects."""
    counts = np.asarray(counts)
    n_events = len(counts)
    ev = np.repeat(np.arange(n_events), counts)
    apid = np.abs(np.asarray(pid))
    q = np.asarray(q)
    pt = np.hypot(px, py)
    p = np.sqrt(pt**2 + pz**2)
    eta = np.arctanh(np.clip(pz / np.maximum(p, 1e-12), -1 + 1e-12, 1 - 1e-12))
    abseta = np.abs(eta)
    phi = np.arctan2(py, px)

    # --- tracks
    charged = q != 0
    is_muon = apid == _MUON
    eff = _track_efficiency(pt, abseta, is_muon)
    tracked = charged & (rng.random(pt.shape) < eff)
    res = (0.01 + 5e-5 * pt) * np.where(abseta <= 1.5, 1.0, 2.0)
    scale = np.clip(1.0 + res * rng.standard_normal(pt.shape), 0.05, None)
    trk = np.flatnonzero(tracked)
    t_px, t_py, t_pz = px[trk] * scale[trk], py[trk] * scale[trk], pz[trk] * scale[trk]
    m2 = np.maximum(e[trk] ** 2 - p[trk] ** 2, 0.0)
    t_e = np.sqrt(t_px**2 + t_py**2 + t_pz**2 + m2)
    t_ev = ev[trk]

    # --- calorimeter towers (everything else but muons and neutrinos, which never reach here)
    calo = (~tracked) & (~is_muon) & (abseta <= DELPHES_CMS["calo_eta_max"])
    em = (apid == _PHOTON) | (apid == _ELECTRON)
    c = np.flatnonzero(calo)
    size = np.where(abseta[c] <= 3.0, DELPHES_CMS["tower_size_central"], DELPHES_CMS["tower_size_forward"])
    ieta = np.floor(eta[c] / size).astype(np.int64)
    iphi = np.floor((phi[c] + np.pi) / size).astype(np.int64)
    forward = (abseta[c] > 3.0).astype(np.int64)
    key = ((ev[c] * 2 + forward) * 4096 + (ieta + 2048)) * 4096 + iphi
    ukey, inv = np.unique(key, return_inverse=True)
    e_ecal = np.bincount(inv, weights=np.where(em[c], e[c], 0.0), minlength=len(ukey))
    e_hcal = np.bincount(inv, weights=np.where(em[c], 0.0, e[c]), minlength=len(ukey))
    # tower centre
    iphi_u = ukey % 4096
    ieta_u = (ukey // 4096) % 4096 - 2048
    fwd_u = ((ukey // 4096 // 4096) % 2).astype(bool)
    ev_u = ukey // 4096 // 4096 // 2
    size_u = np.where(fwd_u, DELPHES_CMS["tower_size_forward"], DELPHES_CMS["tower_size_central"])
    t_eta = (ieta_u + 0.5) * size_u
    t_phi = (iphi_u + 0.5) * size_u - np.pi
    a_eta = np.abs(t_eta)
    e_ecal = _lognormal(e_ecal, _ecal_sigma(e_ecal, a_eta), rng)
    e_hcal = _lognormal(e_hcal, _hcal_sigma(e_hcal, a_eta), rng)
    e_ecal = np.where(e_ecal > DELPHES_CMS["ecal_min_e"], e_ecal, 0.0)
    e_hcal = np.where(e_hcal > DELPHES_CMS["hcal_min_e"], e_hcal, 0.0)
    tow_e = e_ecal + e_hcal
    keep = tow_e > 0
    tow_e, t_eta, t_phi, ev_u = tow_e[keep], t_eta[keep], t_phi[keep], ev_u[keep]
    tow_pt = tow_e / np.cosh(t_eta)

    # --- merge tracks and towers per event (sorted by event index)
    all_ev = np.concatenate([t_ev, ev_u])
    o = np.argsort(all_ev, kind="stable")
    out_px = np.concatenate([t_px, tow_pt * np.cos(t_phi)])[o]
    out_py = np.concatenate([t_py, tow_pt * np.sin(t_phi)])[o]
    out_pz = np.concatenate([t_pz, tow_pt * np.sinh(t_eta)])[o]
    out_e = np.concatenate([t_e, tow_e])[o]
    new_counts = np.bincount(all_ev, minlength=n_events)
    return new_counts, out_px, out_py, out_pz, out_e
