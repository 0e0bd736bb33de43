"""Impact of the electron tagger on a mock compressed-higgsino signal region (the study's selection).

Event selection (:data:`SR_CUTS`): MET > 200 GeV, leading jet pT > 100 GeV, exactly one standard electron
(the event table's leading electron with 4.5 < pT < 10 GeV, identified with efficiency
``std_electron_eff``), and at least one reconstructed track with 0.5 < pT < 5 GeV of opposite charge with
``ptcone30 / pT < 0.06``, ``0.1 < dR(track, e) < 1.2``, ``m(track, e) < Delta m``, outside the J/psi window
3.0-3.2 GeV, ``|d0| < 0.3 mm`` and ``|z0 sin theta| < 0.5 mm`` (relative to the primary vertex, where the
electron comes from), ``dphi(track, MET) < 1.5`` and ``(pT_track + pT_e) / MET < 0.05``.

Three ways to treat that track, each giving S and B for ``lumi_fb`` (139 fb^-1 by default):

``no_tagger``       any such track;
``tagger``          the track passes the tagger's working point (the score threshold of its category that
                    keeps ``fake_rate`` of the background tracks);
``threshold_4p5``   the track must be a standard electron: pT > 4.5 GeV, a true electron, identified with
                    ``std_electron_eff`` (no hadron fakes modelled);
``tagger_rate``     the tagger by its tag rates instead of its decision on the simulated track ("truth
                    tagging", as for b-tagging in MC-starved regions): an event that passes ``no_tagger``
                    counts with the probability ``1 - prod_i (1 - r_i)`` that at least one of its selected
                    tracks is tagged, ``r_i`` the pass rate of the working point for tracks of the same
                    category, pT bin and truth class (prompt electron, other electron, other), measured on all
                    reconstructed tracks of the samples (:func:`tag_rates`). It assumes the rate does not
                    depend on the rest of the selection, and it gives a background estimate where few
                    or no simulated background events survive the tagger.

Significance: the Asimov discovery significance ``Z = sqrt(2 ((s + b) ln(1 + s/b) - s))``
(:func:`asimov_z`). Where no simulated background event survives, ``b`` is replaced by the weight of one
background event (an upper-bound-like floor) and the result is flagged ``b_is_floor``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .._util import check_random_state
from ..errors import InputError

__all__ = ["SR_CUTS", "asimov_z", "select_events", "impact_study", "tagger_thresholds", "tag_rates",
           "track_tag_rate"]

SR_CUTS = {"met_min": 200.0, "jet1_pt_min": 100.0, "e_pt_min": 4.5, "e_pt_max": 10.0, "trk_pt_min": 0.5,
           "trk_pt_max": 5.0, "iso_max": 0.06, "dr_min": 0.1, "dr_max": 1.2, "jpsi": (3.0, 3.2), "d0_max": 0.3,
           "z0_max": 0.5, "dphi_met_max": 1.5, "pt_sum_over_met_max": 0.05}
_ME = 0.000511


def asimov_z(s, b):
    """Asimov discovery significance of ``s`` signal on ``b`` background events."""
    s, b = np.asarray(s, dtype=float), np.asarray(b, dtype=float)
    if np.any(b <= 0):
        raise InputError("the Asimov significance needs b > 0")
    return np.sqrt(2.0 * ((s + b) * np.log1p(s / b) - s))


def _reconstructed(tracks: pd.DataFrame) -> np.ndarray:
    """Rows that are reconstructed tracks (all rows of a table without a ``reco`` column)."""
    return tracks["reco"].astype(bool).to_numpy() if "reco" in tracks.columns else np.ones(len(tracks), bool)


def tagger_thresholds(tagger, background_tracks: pd.DataFrame, fake_rate: float = 0.05) -> dict:
    """Per-category score threshold keeping ``fake_rate`` of the background (label 0) tracks."""
    bkg = background_tracks[background_tracks["label"] == 0]
    bkg = bkg[_reconstructed(bkg)]  # the working point is a fake rate of reconstructed tracks
    if len(bkg) == 0:
        raise InputError("no background tracks to set the tagger working point")
    score = tagger.decision_function(bkg)
    cats = bkg["category"].astype(str).to_numpy()
    return {c: float(np.quantile(score[cats == c], 1 - fake_rate)) for c in np.unique(cats)}


_RATE_PT_BINS = (0.5, 1.0, 2.0, 3.0, 5.0)


def _truth_class(tracks: pd.DataFrame) -> np.ndarray:
    """0 prompt electron (label 1), 1 other electron, 2 anything else."""
    label = tracks["label"].to_numpy() if "label" in tracks.columns else np.zeros(len(tracks), int)
    is_e = np.abs(tracks["pid"].to_numpy()) == 11 if "pid" in tracks.columns else np.zeros(len(tracks), bool)
    return np.where(label == 1, 0, np.where(is_e, 1, 2))


def _rate_keys(tracks: pd.DataFrame, pt_bins) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    cat = tracks["category"].astype(str).to_numpy()
    b = np.clip(np.searchsorted(np.asarray(pt_bins), tracks["pt"].to_numpy(float), side="right") - 1, 0,
                len(pt_bins) - 2)
    return cat, b, _truth_class(tracks)


def tag_rates(tracks: pd.DataFrame, passed, *, pt_bins=_RATE_PT_BINS, min_count: int = 20) -> dict:
    """Pass rates of a working point per (category, fitted-pT bin, truth class) on reconstructed tracks.

    ``passed`` flags each row of ``tracks``. A cell with fewer than ``min_count`` tracks falls back to its
    category and class over all pT, then to the class alone. Returns ``{"pt_bins", "cells": {key: [k, n]},
    "category": {...}, "class": {...}}`` with string keys ``"cat|bin|class"``, ``"cat|class"``, ``"class"``.
    """
    passed = np.asarray(passed, bool)
    if passed.shape != (len(tracks),):
        raise InputError(f"passed has shape {passed.shape}, expected ({len(tracks)},)")
    rows = _reconstructed(tracks)
    cat, b, cls = _rate_keys(tracks[rows], pt_bins)
    p = passed[rows]

    def count(keys):
        out = {}
        for k, ok in zip(keys, p):
            c = out.setdefault(k, [0, 0])
            c[0] += int(ok)
            c[1] += 1
        return out

    return {"pt_bins": list(pt_bins), "min_count": int(min_count),
            "cells": count([f"{c}|{i}|{k}" for c, i, k in zip(cat, b, cls)]),
            "category": count([f"{c}|{k}" for c, k in zip(cat, cls)]),
            "class": count([str(k) for k in cls])}


def track_tag_rate(tracks: pd.DataFrame, rates: dict) -> np.ndarray:
    """The tag rate of each track from :func:`tag_rates` (with its fall-backs; 0 where nothing was measured)."""
    cat, b, cls = _rate_keys(tracks, rates["pt_bins"])
    m = rates["min_count"]
    out = np.zeros(len(tracks))
    for j, (c, i, k) in enumerate(zip(cat, b, cls)):
        for table, key in ((rates["cells"], f"{c}|{i}|{k}"), (rates["category"], f"{c}|{k}"),
                           (rates["class"], str(k))):
            kn = table.get(key)
            if kn is not None and (kn[1] >= m or table is rates["class"]):
                out[j] = kn[0] / kn[1]
                break
    return out


def _pair_mass(pt1, eta1, phi1, pt2, eta2, phi2):
    def four(pt, eta, phi):
        px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
        return px, py, pz, np.sqrt(px**2 + py**2 + pz**2 + _ME**2)

    a, b = four(pt1, eta1, phi1), four(pt2, eta2, phi2)
    e = a[3] + b[3]
    p2 = (a[0] + b[0]) ** 2 + (a[1] + b[1]) ** 2 + (a[2] + b[2]) ** 2
    return np.sqrt(np.maximum(e**2 - p2, 0.0))


def _dphi(a, b):
    return np.abs(np.angle(np.exp(1j * (np.asarray(a) - np.asarray(b)))))


def select_events(tracks: pd.DataFrame, events: pd.DataFrame, delta_m: float, *, track_pass=None,
                  track_rate=None, std_electron_eff: float = 0.85, rng=None, cuts: dict | None = None) -> dict:
    """The events passing the SR for each track treatment: per-selection arrays of event ids.

    With ``track_rate`` (a tag rate per row of ``tracks``), ``"tagger_rate"`` is a Series, indexed by event id,
    of the probability that at least one selected track of the event is tagged.
    """
    c = {**SR_CUTS, **(cuts or {})}
    rng = check_random_state(rng)
    need = {"event_id", "met", "met_phi", "jet1_pt", "n_electrons", "e1_pt", "e1_eta", "e1_phi", "e1_charge",
            "weight_fb"}
    missing = sorted(need - set(events.columns))
    if missing:
        raise InputError(f"event table: missing column(s) {missing}")
    ev = events.set_index("event_id")
    e_id = rng.random(len(ev)) < std_electron_eff
    ok_ev = ((ev["met"] > c["met_min"]) & (ev["jet1_pt"] > c["jet1_pt_min"]) & (ev["n_electrons"] == 1)
             & (ev["e1_pt"] > c["e_pt_min"]) & (ev["e1_pt"] < c["e_pt_max"]) & e_id)
    t = tracks[tracks["reco"].astype(bool) & tracks["event_id"].isin(ev.index[ok_ev])].copy()
    if track_pass is not None:
        track_pass = pd.Series(np.asarray(track_pass), index=tracks.index).loc[t.index].to_numpy()
    if track_rate is not None:
        track_rate = pd.Series(np.asarray(track_rate, dtype=float), index=tracks.index).loc[t.index].to_numpy()
    e = ev.loc[t["event_id"]]
    pt, eta, phi = t["pt"].to_numpy(), t["eta"].to_numpy(), t["phi"].to_numpy()
    dr = np.hypot(eta - e["e1_eta"].to_numpy(), _dphi(phi, e["e1_phi"].to_numpy()))
    mass = _pair_mass(pt, eta, phi, e["e1_pt"].to_numpy(), e["e1_eta"].to_numpy(), e["e1_phi"].to_numpy())
    good = ((pt > c["trk_pt_min"]) & (pt < c["trk_pt_max"])
            & (t["charge"].to_numpy() * e["e1_charge"].to_numpy() < 0)
            & (t["ptcone30"].to_numpy() / pt < c["iso_max"]) & (dr > c["dr_min"]) & (dr < c["dr_max"])
            & (mass < delta_m) & ~((mass > c["jpsi"][0]) & (mass < c["jpsi"][1]))
            & (np.abs(t["d0"].to_numpy()) < c["d0_max"]) & (np.abs(t["z0sintheta"].to_numpy()) < c["z0_max"])
            & (_dphi(phi, e["met_phi"].to_numpy()) < c["dphi_met_max"])
            & ((pt + e["e1_pt"].to_numpy()) / e["met"].to_numpy() < c["pt_sum_over_met_max"]))
    is_e = np.abs(t["pid"].to_numpy()) == 11 if "pid" in t.columns else np.zeros(len(t), bool)
    std = good & (pt > c["e_pt_min"]) & is_e & (rng.random(len(t)) < std_electron_eff)
    ids = t["event_id"].to_numpy()
    out = {"no_tagger": np.unique(ids[good]), "threshold_4p5": np.unique(ids[std])}
    if track_pass is not None:
        out["tagger"] = np.unique(ids[good & track_pass])
    if track_rate is not None:
        log_miss = pd.Series(np.log1p(-np.clip(track_rate[good], 0.0, 1.0 - 1e-12)), index=ids[good])
        out["tagger_rate"] = 1.0 - np.exp(log_miss.groupby(level=0).sum())
    return out


@dataclass(frozen=True)
class ImpactRow:
    s: float
    b: float
    z: float
    n_sig_mc: float  # simulated events selected (tagger_rate: the sum of their tag probabilities)
    n_bkg_mc: float
    b_is_floor: bool

    def to_dict(self) -> dict:
        import dataclasses

        return dataclasses.asdict(self)


def impact_study(tagger, signals: dict, background: tuple[pd.DataFrame, pd.DataFrame], *, lumi_fb: float = 139.0,
                 fake_rate: float = 0.05, thresholds: dict | None = None, std_electron_eff: float = 0.85,
                 random_state=None) -> dict:
    """S, B and Z per mass point ``{(m_chi20, m_chi10): (tracks, events)}`` for the three track treatments."""
    rng = check_random_state(random_state)
    b_tracks, b_events = background
    if thresholds is None:
        thresholds = tagger_thresholds(tagger, b_tracks, fake_rate)

    def passes(tr):
        if tagger is None:
            return None
        rows = tr["reco"].astype(bool).to_numpy()
        ok = np.zeros(len(tr), bool)
        sub = tr[rows]
        score = tagger.decision_function(sub)
        thr = sub["category"].astype(str).map(thresholds).to_numpy(dtype=float)
        ok[rows] = score > np.nan_to_num(thr, nan=np.inf)
        return ok

    b_pass = passes(b_tracks)
    s_pass = {k: passes(tr) for k, (tr, _) in signals.items()}
    rates = None
    if tagger is not None:  # tag rates measured on every sample's reconstructed tracks together
        rates = tag_rates(pd.concat([b_tracks] + [tr for tr, _ in signals.values()], ignore_index=True),
                          np.concatenate([b_pass] + [s_pass[k] for k in signals]))
    w_b = b_events.set_index("event_id")["weight_fb"]
    points = []

    def total(w, sel):
        if isinstance(sel, pd.Series):  # probability per event (tagger_rate)
            return float((w.loc[sel.index] * sel).sum()), float(sel.sum())
        return float(w.loc[sel].sum()), float(len(sel))

    for (m2, m1), (s_tracks, s_events) in signals.items():
        dm = m2 - m1
        sel_s = select_events(s_tracks, s_events, dm, track_pass=s_pass[(m2, m1)],
                              track_rate=None if rates is None else track_tag_rate(s_tracks, rates),
                              std_electron_eff=std_electron_eff, rng=rng)
        sel_b = select_events(b_tracks, b_events, dm, track_pass=b_pass,
                              track_rate=None if rates is None else track_tag_rate(b_tracks, rates),
                              std_electron_eff=std_electron_eff, rng=rng)
        w_s = s_events.set_index("event_id")["weight_fb"]
        row = {}
        for key in sel_s:
            (s, n_s), (b, n_b) = total(w_s, sel_s[key]), total(w_b, sel_b[key])
            s, b = s * lumi_fb, b * lumi_fb
            floor = b <= 0
            if floor:
                b = float(w_b.max() * lumi_fb)
            row[key] = ImpactRow(s, b, float(asimov_z(s, b)), n_s, n_b, floor).to_dict()
        points.append({"m_chi20": m2, "m_chi10": m1, "selections": row,
                       "n_signal_events": int(len(s_events)), "n_background_events": int(len(b_events))})
    return {"lumi_fb": lumi_fb, "fake_rate": fake_rate, "thresholds": thresholds, "tag_rates": rates,
            "cuts": {**SR_CUTS},
            "std_electron_eff": std_electron_eff, "points": points,
            "description": ("Mock SR: MET > 200 GeV, leading jet > 100 GeV, one electron 4.5-10 GeV, an opposite-charge "
                            f"isolated track 0.5-5 GeV with the study's cuts; W -> e nu + jets background; "
                            f"{lumi_fb:g} fb^-1; Asimov Z; higgsino yields assume the forced decays (BR = 1) unless "
                            "branching_ratio was set at generation. B marked as floored (b_is_floor): no simulated background "
                            "event survived, B set to one event's weight. tagger_rate: the tagger by its tag rates "
                            "(probability per event), not by its decision on the simulated track.")}
