"""Semi-visible jets: Pythia 8 Hidden Valley signal and QCD background, reconstructed with tracks per jet.

Signal (public CMS SVJ production settings, ``svjHelper.py``)
    s-channel ``q qbar -> Z' -> chi chibar`` (``HiddenValley:ffbar2Zv``; ``4900023`` at ``m_zprime``, width
    0.01 GeV, BR 0.982 to dark quarks ``4900101`` and 0.003 to each SM quark flavour). Dark sector:
    ``Ngauge = 2``, ``nFlav = 2``, ``spinFv = 0``, FSR and fragmentation on, ``alphaOrder = 1``,
    ``probVector = 0.75``; dark quark mass ``m_dark / 2``; dark pseudoscalars (``4900111``, ``4900211``) and
    vectors (``4900113``, ``4900213``) degenerate at ``m_dark`` (default **20 GeV**, the CMS benchmark);
    ``Lambda = 3.2 m_dark^0.8`` (the "peak" coupling of the CMS helper), ``pTminFSR = 1.1 Lambda``; the HV
    partners ``4900001-6`` and ``4900011-16`` decoupled at 5 TeV. Invisibility: each dark meson decays to a
    pair of stable dark-matter states (``51 51`` for pseudoscalars, ``53 53`` for vectors; meMode 0) with
    probability ``r_inv``, else to ``q qbar`` (meMode 91) with the five light flavours equally likely (the CMS
    helper weights the flavours; equal weights are our simplification). The fraction of dark mesons that
    decay invisibly is measured in every chunk (metadata ``dark_mesons``) and tested against ``r_inv``.
QCD background
    ``HardQCD:all`` with ``PhaseSpace:pTHatMin = pthat_min`` (default 500 GeV; see :class:`SVJSettings` for why).
Both: 13 TeV, multiparton interactions off (as the ``lhco`` dijet preset: ~3.7x faster), seeds per chunk as in
:mod:`excess.data.generate` (``seed + 1000 * chunk``).

Reconstruction
    The visible final state (status > 0, not a neutrino, not ``|id| >= 4900000``, not 51/52/53) goes through
    the lhco preset's Delphes-CMS-like detector (:func:`excess.data.detector.apply_detector_flat`: tracking
    efficiency and smearing, calorimeter towers with resolution and thresholds, |eta| <= 5). **MET** is minus
    the vector sum of all reconstructed objects: it carries the invisible particles, everything outside the
    calorimeter acceptance or below the tower thresholds, lost muons and the calorimeter smearing.
    **Jets**: anti-kt R = 0.4 (the research gives no larger radius for the ATLAS analysis; ``jet_radius`` is a
    setting) of the objects, pT > 30 GeV; the two leading jets with |eta| < 2.4 are j1, j2.
    **Preselection** (CMS SVJ-like, arXiv:2112.11125, with a lower MET threshold): pT(j1), pT(j2) > 200 GeV,
    |Delta eta(j1, j2)| < 1.5, MET > 100 GeV, ``dphi_min = min(|dphi(MET, j1)|, |dphi(MET, j2)|) < 0.8`` (MET
    aligned with a jet), and >= 3 tracks in the two jets (ANTELOPE's minimum, so no event is all padding).
    MET > 100 rather than CMS's ~200 GeV: in this detector model only ~0.3 % of QCD events with pTHat > 400 GeV
    have MET > 150 GeV (0.9 % above 100 GeV), so an unweighted QCD sample at 200 GeV would take many CPU-hours.
    **Veto before clustering**: the MET cut is applied before FastJet runs; MET does not depend on the
    clustering, so it cannot change an accepted event. **mT** of the dijet + MET system:
    ``mT^2 = mjj^2 + 2 (sqrt(mjj^2 + pTjj^2) MET - pTjj . MET)`` (:func:`transverse_mass`).
Tracks (:func:`excess.data.tracks.simulate_tracks`, the shared ATLAS-like track model)
    True charged visible particles with pT > 0.5 GeV and |eta| < 2.5, with their production vertex (true d0
    and z0 of the straight line from it; displaced K0S, Lambda and b/c-hadron daughters included), associated
    to the nearer of j1, j2 if within Delta R < ``jet_radius`` of its axis, go through the tracking efficiency,
    silicon-hit requirement and the d0, z0, q/pT resolutions; reconstructed tracks with fitted pT >
    ``track_pt_min`` (1 GeV) are kept. Per track: ``(pt, eta, phi, e, d0, z0, qoverp, jet)``; ``e`` uses the
    pion mass, ``qoverp = q / p`` in 1/GeV, ``d0``, ``z0`` in mm, ``jet`` 0 (j1) or 1 (j2).
High-level jet variables
    mass, ``tau21``, ``tau32`` (WTA-kt axes, beta = 1, :func:`excess.data.jets.nsubjettiness`), ``ntrk`` (all
    reconstructed tracks of the jet, before the 80-track truncation) and ``pT_D = sqrt(sum pT^2) / sum pT``
    over the jet's constituents (detector objects).

File format (``excess-svj/1``)
    An excess event file (``/events/<column>``, ``attrs["format"] = "excess-events/1"``, so
    :func:`excess.data.io.read_events` reads the event table of an SVJ file or chunk directory too) plus the
    dataset ``/tracks`` float32 ``(N, 160, 8)``: up to 80 tracks of j1, then up to 80 of j2, each block sorted
    by pT descending, zero padding (``mask = tracks[..., 0] > 0``); ``attrs["svj_format"] = "excess-svj/1"``.

Example
-------
>>> from excess.data.svj import generate_svj, read_svj
>>> generate_svj(2000, "svj_mz2000_rinv0.3", m_zprime=2000, r_inv=0.3)  # doctest: +SKIP
>>> s = read_svj("svj_mz2000_rinv0.3")  # doctest: +SKIP
>>> s.tracks.shape, s.events["mT"].median()  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .._util import atomic_path, atomic_write_json, check_random_state, ensure_dir, get_logger, progress
from ..errors import ConfigError, GenerationError, InputError, OutputError
from .settings import QUIET_PYTHIA, SEED_MAX, SEED_MIN

__all__ = [
    "SVJSettings",
    "SVJSample",
    "svj_pythia_config",
    "generate_svj",
    "generate_svj_chunk",
    "generate_svj_grid",
    "read_svj",
    "write_svj",
    "concat_svj",
    "inject_svj",
    "transverse_mass",
    "track_array",
    "point_name",
    "EVENT_COLUMNS",
    "TRACK_COLUMNS",
    "MAX_TRACKS_PER_JET",
    "N_TRACKS",
    "GRID_MZPRIME",
    "GRID_RINV",
    "SVJ_FORMAT",
]

log = get_logger(__name__)

SVJ_FORMAT = "excess-svj/1"
MAX_TRACKS_PER_JET = 80
N_TRACKS = 2 * MAX_TRACKS_PER_JET
TRACK_COLUMNS = ("pt", "eta", "phi", "e", "d0", "z0", "qoverp", "jet")
JET_COLUMNS = ("pt", "eta", "phi", "m", "tau21", "tau32", "ntrk", "ptd")
EVENT_COLUMNS = (("mT", "met", "met_phi", "mjj", "dphi_min")
                 + tuple(f"{q}_j{j}" for j in (1, 2) for q in JET_COLUMNS)
                 + ("label", "m_zprime", "r_inv", "m_dark"))
GRID_MZPRIME = (1500.0, 2000.0, 3000.0, 4000.0)
GRID_RINV = (0.2, 0.3, 0.5, 0.7)
DARK_MESONS = (4900111, 4900211, 4900113, 4900213)
DARK_MATTER = (51, 52, 53)
_PI_MASS = 0.13957


@dataclass(frozen=True)
class SVJSettings:
    """Everything that defines a generated SVJ sample besides the number of events and the seed.

    ``pthat_min`` (QCD) defaults to 500 GeV: QCD MET above the 100 GeV threshold comes from the mismeasurement
    of (and neutrinos inside) jets of several hundred GeV; the fraction of events passing grows with pTHat
    (MET > 100 and dphi_min < 0.8: 0.2 % at pTHat > 250, 0.9 % at > 400, 1.9 % at > 600 GeV), so low-pTHat
    events, with their large cross-section, would make an unweighted sample mostly rejected events. The QCD
    mT spectrum peaks at ~1.2 TeV (turn-on from the pTHat threshold); with |Delta eta(j1, j2)| < 1.5, mjj >~ 2 pT
    and mT >= mjj, so it should be complete above ~1.5 TeV (not checked against a lower-pTHat sample).
    """

    process: str = "signal"
    ecm: float = 13000.0
    m_zprime: float = 2000.0
    r_inv: float = 0.3
    m_dark: float = 20.0
    pthat_min: float = 500.0
    mpi: bool = False
    jet_radius: float = 0.4
    jet_pt_min: float = 30.0
    jet_eta_max: float = 2.4
    lead_pt_min: float = 200.0
    met_min: float = 100.0
    deta_max: float = 1.5
    dphi_max: float = 0.8
    min_tracks: int = 3
    track_pt_min: float = 1.0
    truth_track_pt_min: float = 0.5

    def __post_init__(self):
        if self.process not in ("signal", "qcd"):
            raise ConfigError(f"unknown process {self.process!r}; choose 'signal' or 'qcd'")
        if self.ecm <= 0:
            raise ConfigError(f"ecm must be positive, got {self.ecm}")
        if self.process == "signal":
            if not (0 < self.m_zprime < self.ecm):
                raise ConfigError(f"m_zprime must be in (0, ecm), got {self.m_zprime} GeV")
            if not (0.0 <= self.r_inv <= 1.0):
                raise ConfigError(f"r_inv must be in [0, 1], got {self.r_inv}")
            if not (0 < self.m_dark < self.m_zprime / 2):
                raise ConfigError(f"m_dark must be in (0, m_zprime / 2), got {self.m_dark} GeV")
        if self.pthat_min < 0:
            raise ConfigError(f"pthat_min must be >= 0, got {self.pthat_min}")
        if not (0 < self.jet_radius <= 1.5):
            raise ConfigError(f"jet_radius must be in (0, 1.5], got {self.jet_radius}")
        if self.met_min < 0 or self.lead_pt_min < 0 or self.dphi_max <= 0:
            raise ConfigError("met_min and lead_pt_min must be >= 0 and dphi_max > 0")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> SVJSettings:
        known = {f.name for f in dataclasses.fields(cls)}
        bad = sorted(set(d) - known)
        if bad:
            raise ConfigError(f"unknown SVJ setting(s) {bad}; known: {sorted(known)}")
        return cls(**d)

    @property
    def hv_lambda(self) -> float:
        """Dark confinement scale: the CMS helper's "peak" choice ``3.2 m_dark^0.8`` GeV."""
        return 3.2 * self.m_dark**0.8

    @property
    def hv_alpha(self) -> float:
        """The dark coupling at 1 TeV implied by ``Lambda``: ``pi / (b0 ln(1000 / Lambda))``, b0 = 11/6 Nc - 2/6 Nf."""
        b0 = 11.0 / 6.0 * 2 - 2.0 / 6.0 * 2
        return math.pi / (b0 * math.log(1000.0 / self.hv_lambda))


def _g(x: float) -> str:
    return f"{x:.6g}"


def svj_pythia_config(s: SVJSettings, seed: int) -> list[str]:
    """Pythia ``readString`` commands of an SVJ sample (signal: the CMS Hidden Valley settings; see module doc)."""
    if not (SEED_MIN <= int(seed) <= SEED_MAX):
        raise ConfigError(f"seed must be in {SEED_MIN}..{SEED_MAX:,}, got {seed}")
    cfg = [f"Beams:eCM = {_g(s.ecm)}", "Random:setSeed = on", f"Random:seed = {int(seed)}",
           f"PartonLevel:MPI = {'on' if s.mpi else 'off'}", *QUIET_PYTHIA]
    if s.process == "qcd":
        return cfg + ["HardQCD:all = on", f"PhaseSpace:pTHatMin = {_g(s.pthat_min)}"]
    mz, md, rinv, lam = s.m_zprime, s.m_dark, s.r_inv, s.hv_lambda
    cfg += [
        "HiddenValley:ffbar2Zv = on",
        f"4900023:m0 = {_g(mz)}", f"4900023:mMin = {_g(mz - 1)}", f"4900023:mMax = {_g(mz + 1)}",
        "4900023:mWidth = 0.01",
        "4900023:oneChannel = 1 0.982 102 4900101 -4900101",
        *[f"4900023:addChannel = 1 0.003 102 {q} -{q}" for q in range(1, 7)],
        f"4900101:m0 = {_g(md / 2)}",
        *[f"{i}:m0 = {_g(md)}" for i in DARK_MESONS],
        "51:m0 = 0.0", "51:isResonance = false", "53:m0 = 0.0", "53:isResonance = false",
        "HiddenValley:Ngauge = 2", "HiddenValley:nFlav = 2", "HiddenValley:spinFv = 0", "HiddenValley:FSR = on",
        "HiddenValley:fragment = on", "HiddenValley:alphaOrder = 1", f"HiddenValley:Lambda = {_g(lam)}",
        f"HiddenValley:pTminFSR = {_g(1.1 * lam)}", "HiddenValley:probVector = 0.75",
        *[f"{4900000 + i}:m0 = 5000" for i in (*range(1, 7), *range(11, 17))],
    ]
    for pid, dm in ((4900111, 51), (4900211, 51), (4900113, 53), (4900213, 53)):
        if rinv > 0:
            cfg.append(f"{pid}:oneChannel = 1 {_g(rinv)} 0 {dm} -{dm}")
        for k, q in enumerate((1, 2, 3, 4, 5)):
            if rinv < 1:
                verb = "oneChannel" if (rinv == 0 and k == 0) else "addChannel"
                cfg.append(f"{pid}:{verb} = 1 {_g((1 - rinv) / 5)} 91 {q} -{q}")
    return cfg


# --------------------------------------------------------------------------------------------------
# kinematics


def transverse_mass(mjj, ptjj_x, ptjj_y, met_x, met_y):
    """mT of a dijet system and MET: ``mT^2 = mjj^2 + 2 (sqrt(mjj^2 + pTjj^2) MET - pTjj . MET)`` (MET massless)."""
    mjj, px, py, mx, my = (np.asarray(a, dtype=float) for a in (mjj, ptjj_x, ptjj_y, met_x, met_y))
    et_jj = np.sqrt(mjj**2 + px**2 + py**2)
    met = np.hypot(mx, my)
    mt2 = mjj**2 + 2.0 * (et_jj * met - (px * mx + py * my))
    return np.sqrt(np.maximum(mt2, 0.0))


def _dphi(a, b):
    return np.abs((np.asarray(a) - np.asarray(b) + np.pi) % (2 * np.pi) - np.pi)


def track_array(ev, jet, pt, eta, phi, e, d0, z0, qoverp, n_events: int, max_per_jet: int = MAX_TRACKS_PER_JET):
    """Pack flat track arrays into the padded ``(n_events, 2 * max_per_jet, 8)`` float32 layout.

    ``ev`` (event index) and ``jet`` (0/1) say where each track belongs; within an (event, jet) block tracks
    are sorted by pT descending and truncated to ``max_per_jet``; j1's block first, zero padding.
    Returns ``(tracks, n_tracks_per_jet (n_events, 2))`` (counts before truncation).
    """
    ev, jet = np.asarray(ev, dtype=np.int64), np.asarray(jet, dtype=np.int64)
    pt = np.asarray(pt, dtype=float)
    out = np.zeros((n_events, 2 * max_per_jet, len(TRACK_COLUMNS)), dtype=np.float32)
    counts = np.zeros((n_events, 2), dtype=np.int64)
    if ev.size == 0:
        return out, counts
    np.add.at(counts, (ev, jet), 1)
    order = np.lexsort((-pt, jet, ev))  # by event, then jet, then pT descending
    key = ev[order] * 2 + jet[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    rank = np.arange(key.size) - np.repeat(starts, np.diff(np.r_[starts, key.size]))
    keep = rank < max_per_jet
    o = order[keep]
    slot = jet[o] * max_per_jet + rank[keep]
    vals = np.stack([pt, eta, phi, e, d0, z0, qoverp, jet.astype(float)], axis=1)
    out[ev[o], slot] = vals[o].astype(np.float32)
    return out, counts


# --------------------------------------------------------------------------------------------------
# generation


def _flat_record(prt):
    """Flat numpy views of a Pythia batch record: counts, ids, status, daughter1, p (4), vertex (3)."""
    import awkward as ak

    counts = ak.to_numpy(ak.num(prt, axis=1))
    f = {k: ak.to_numpy(ak.flatten(getattr(prt, k))) for k in ("id", "status", "daughter1")}
    p = prt.p
    mom = [ak.to_numpy(ak.flatten(getattr(p, c))) for c in ("px", "py", "pz", "e")]
    v = prt.vProd
    vtx = [np.asarray(ak.to_numpy(ak.fill_none(ak.flatten(getattr(v, c)), 0.0)), dtype=float)
           for c in ("px", "py", "pz")]  # x, y, z in mm (an unset vertex is the origin)
    return counts, f["id"], f["status"], f["daughter1"], mom, vtx


def dark_meson_decays(counts, ids, daughter1) -> tuple[int, int]:
    """``(n dark mesons that decayed, n of them that decayed to the dark-matter states 51/52/53)`` in a record."""
    offsets = np.repeat(np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
    dm = np.isin(np.abs(ids), DARK_MESONS) & (daughter1 > 0)
    d_idx = offsets[dm] + daughter1[dm]
    d_idx = d_idx[d_idx < ids.size]
    inv = np.isin(np.abs(ids[d_idx]), DARK_MATTER)
    return int(d_idx.size), int(inv.sum())


class SVJSource:
    """A configured Pythia instance (Hidden Valley signal or QCD) producing batches of flat records."""

    def __init__(self, settings: SVJSettings, seed: int):
        from .generate import ChargeTable, start_pythia

        self.config = svj_pythia_config(settings, seed)
        self.pythia = start_pythia(self.config, f"the SVJ {settings.process} process")
        self.charges = ChargeTable(self.pythia)  # charges(ids): electric charge of each PDG id

    def next_batch(self, n: int):
        from .generate import silence_stdout

        with silence_stdout():
            batch = self.pythia.nextBatch(int(n))
        return _flat_record(batch.prt)

    def sigma(self) -> tuple[float, float]:
        info = self.pythia.infoPython()
        return float(info.sigmaGen()), float(info.sigmaErr())


def _visible(ids, status):
    a = np.abs(ids)
    return (status > 0) & (a < 4900000) & ~np.isin(a, (12, 14, 16, 1000022, 1000039, *DARK_MATTER))


def reconstruct_svj(counts, ids, status, mom, vtx, charge, s: SVJSettings, rng: np.random.Generator):
    """Detector, MET veto, clustering, preselection, jet variables and tracks of one batch.

    Returns ``(columns dict, tracks (n_pass, 160, 8), cutflow dict)``; ``columns`` has one entry per passed event.
    """
    import awkward as ak
    import fastjet

    from .detector import apply_detector_flat
    from .generate import silence_stdout
    from .jets import nsubjettiness
    from .tracks import simulate_tracks

    n_ev = len(counts)
    ev_all = np.repeat(np.arange(n_ev), counts)
    vis = _visible(ids, status)
    px, py, pz, e = (m[vis] for m in mom)
    vcounts = np.bincount(ev_all[vis], minlength=n_ev)
    oc, opx, opy, opz, oe = apply_detector_flat(vcounts, px, py, pz, e, ids[vis], charge[vis], rng)
    oev = np.repeat(np.arange(n_ev), oc)
    met_x = -np.bincount(oev, weights=opx, minlength=n_ev)
    met_y = -np.bincount(oev, weights=opy, minlength=n_ev)
    met = np.hypot(met_x, met_y)
    cut = {"generated": n_ev}
    # veto before clustering: MET does not depend on the jets, so this cannot change an accepted event
    keep_ev = met > s.met_min
    cut["met"] = int(keep_ev.sum())
    empty = ({}, np.zeros((0, N_TRACKS, len(TRACK_COLUMNS)), np.float32), cut)
    if not keep_ev.any():
        return empty
    sel = keep_ev[oev]
    kc = oc[keep_ev]
    parts = ak.unflatten(ak.zip({"px": opx[sel], "py": opy[sel], "pz": opz[sel], "E": oe[sel]},
                                with_name="Momentum4D"), kc)
    jetdef = fastjet.JetDefinition(fastjet.antikt_algorithm, s.jet_radius)
    with silence_stdout(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cs = fastjet.ClusterSequence(parts, jetdef)
        jets = cs.inclusive_jets(min_pt=s.jet_pt_min)
        consts = cs.constituents(min_pt=s.jet_pt_min)
    jpt = np.hypot(jets.px, jets.py)
    jp = np.sqrt(jpt**2 + jets.pz**2)
    jeta = np.arctanh(jets.pz / np.maximum(jp, 1e-12))
    good = abs(jeta) < s.jet_eta_max
    jets, consts, jpt = jets[good], consts[good], jpt[good]
    order = ak.argsort(jpt, axis=1, ascending=False)
    jets, consts, jpt = jets[order], consts[order], jpt[order]
    nj = ak.to_numpy(ak.num(jets, axis=1))
    two = nj >= 2
    cut["two_jets"] = int(two.sum())
    kept_idx = np.flatnonzero(keep_ev)  # batch event index of each clustered event
    pt2 = np.zeros(len(nj))
    pt2[two] = ak.to_numpy(jpt[two][:, 1])
    ok = two & (pt2 > s.lead_pt_min)
    cut["jet_pt"] = int(ok.sum())
    deta = np.full(len(nj), np.inf)
    jeta_s = jeta[good][order]
    deta[two] = np.abs(ak.to_numpy(jeta_s[two][:, 0]) - ak.to_numpy(jeta_s[two][:, 1]))
    ok &= deta < s.deta_max
    cut["deta"] = int(ok.sum())
    if not ok.any():
        return empty
    jets, consts = jets[ok][:, :2], consts[ok][:, :2]
    evi = kept_idx[ok]
    j4 = [[ak.to_numpy(getattr(jets[:, j], c)) for c in ("px", "py", "pz", "E")] for j in (0, 1)]
    mx, my = met_x[evi], met_y[evi]
    mphi = np.arctan2(my, mx)
    jphi = [np.arctan2(j[1], j[0]) for j in j4]
    dphi_min = np.minimum(_dphi(mphi, jphi[0]), _dphi(mphi, jphi[1]))
    ok2 = dphi_min < s.dphi_max
    cut["dphi"] = int(ok2.sum())
    if not ok2.any():
        return empty
    j4 = [[c[ok2] for c in j] for j in j4]
    consts = consts[ok2]
    evi, mx, my, mphi, dphi_min = evi[ok2], mx[ok2], my[ok2], mphi[ok2], dphi_min[ok2]
    n = len(evi)
    cols: dict[str, np.ndarray] = {}
    jkin = []
    for j in (0, 1):
        jx, jy, jz, je = j4[j]
        pt = np.hypot(jx, jy)
        p = np.sqrt(pt**2 + jz**2)
        eta = np.arctanh(np.clip(jz / np.maximum(p, 1e-12), -1 + 1e-15, 1 - 1e-15))
        phi = np.arctan2(jy, jx)
        m = np.sqrt(np.maximum(je**2 - p**2, 0.0))
        jkin.append((pt, eta, phi, m))
    sx, sy, sz, se = (j4[0][k] + j4[1][k] for k in range(4))
    mjj = np.sqrt(np.maximum(se**2 - sx**2 - sy**2 - sz**2, 0.0))
    cols["mT"] = transverse_mass(mjj, sx, sy, mx, my)
    cols["met"] = np.hypot(mx, my)
    cols["met_phi"] = mphi
    cols["mjj"] = mjj
    cols["dphi_min"] = dphi_min
    # substructure: both jets in one reclustering pass (all j1 then all j2)
    stacked = ak.concatenate([consts[:, 0], consts[:, 1]], axis=0)
    with silence_stdout():
        taus = nsubjettiness(stacked, n_max=3, betas=(1.0,), axes="wta")
    cpt = np.hypot(stacked.px, stacked.py)
    ptd = ak.to_numpy(np.sqrt(ak.sum(cpt**2, axis=1)) / np.maximum(ak.sum(cpt, axis=1), 1e-12))

    # ---- tracks: true charged visible particles of the passed events, associated to j1/j2 by Delta R
    from .jets import tau_ratio

    offsets = np.concatenate([[0], np.cumsum(counts)])
    idx = np.concatenate([np.arange(offsets[k], offsets[k + 1]) for k in evi]) if n else np.zeros(0, np.int64)
    row = np.repeat(np.arange(n), counts[evi])
    q = charge[idx]
    tpx, tpy, tpz, te = (m_[idx] for m_ in mom)
    tpt = np.hypot(tpx, tpy)
    cand = vis[idx] & (q != 0) & (tpt > s.truth_track_pt_min)
    idx, row, q, tpx, tpy, tpz, tpt = idx[cand], row[cand], q[cand], tpx[cand], tpy[cand], tpz[cand], tpt[cand]
    tp = np.sqrt(tpt**2 + tpz**2)
    teta = np.arctanh(np.clip(tpz / np.maximum(tp, 1e-12), -1 + 1e-15, 1 - 1e-15))
    tphi = np.arctan2(tpy, tpx)
    inacc = np.abs(teta) < 2.5
    dr = []
    for j in (0, 1):
        _, eta_j, phi_j, _ = jkin[j]
        dr.append(np.hypot(teta - eta_j[row], _dphi(tphi, phi_j[row])))
    jet_of = np.where(dr[1] < dr[0], 1, 0)
    assoc = inacc & (np.minimum(dr[0], dr[1]) < s.jet_radius)
    sl = np.flatnonzero(assoc)
    vx, vy, vz = (v[idx[sl]] for v in vtx)
    ux, uy = tpx[sl] / tpt[sl], tpy[sl] / tpt[sl]
    d0_true = vx * uy - vy * ux  # signed transverse distance of the straight line from the beam line
    z0_true = vz - (vx * ux + vy * uy) * tpz[sl] / tpt[sl]
    r_prod = np.hypot(vx, vy)
    trk = simulate_tracks(tpt[sl], teta[sl], tphi[sl], ids[idx[sl]], charge=q[sl], r_prod_mm=r_prod,
                          d0_true_mm=d0_true, z0_true_mm=z0_true, random_state=rng)
    rpt = trk["pt"].to_numpy()
    good_t = trk["reco"].to_numpy() & (rpt > s.track_pt_min)
    g = np.flatnonzero(good_t)
    reta = trk["eta"].to_numpy()[g]
    rp = rpt[g] * np.cosh(reta)
    rq = trk["charge"].to_numpy()[g].astype(float)
    z0 = trk["z0sintheta"].to_numpy()[g] * np.cosh(reta)  # z0 = z0 sin(theta) / sin(theta)
    tracks, ntrk = track_array(row[sl][g], jet_of[sl][g], rpt[g], reta, trk["phi"].to_numpy()[g],
                               np.sqrt(rp**2 + _PI_MASS**2), trk["d0"].to_numpy()[g], z0, rq / rp, n)
    for j in (0, 1):
        pt, eta, phi, m = jkin[j]
        sl_j = slice(j * n, (j + 1) * n)
        t1, t2, t3 = (taus[(k, 1.0)][sl_j] for k in (1, 2, 3))
        cols[f"pt_j{j + 1}"] = pt
        cols[f"eta_j{j + 1}"] = eta
        cols[f"phi_j{j + 1}"] = phi
        cols[f"m_j{j + 1}"] = m
        cols[f"tau21_j{j + 1}"] = tau_ratio(t2, t1)
        cols[f"tau32_j{j + 1}"] = tau_ratio(t3, t2)
        cols[f"ntrk_j{j + 1}"] = ntrk[:, j].astype(float)
        cols[f"ptd_j{j + 1}"] = ptd[sl_j]
    enough = ntrk.sum(axis=1) >= s.min_tracks
    cut["tracks"] = int(enough.sum())
    cols = {k: v[enough] for k, v in cols.items()}
    return cols, tracks[enough], cut


def generate_svj_chunk(settings_dict: dict, n_events: int, seed: int, path: str | None = None,
                       batch_size: int = 500) -> dict:
    """``n_events`` preselected events with one Pythia seed, written to ``path`` atomically (picklable, for workers)."""
    s = SVJSettings.from_dict(settings_dict)
    t0, c0 = time.perf_counter(), time.process_time()
    src = SVJSource(s, seed)
    t_init = time.perf_counter() - t0
    rng = np.random.default_rng([int(seed), 0x5F1])  # detector + track smearing, independent of Pythia's stream
    cols: dict[str, list] = {}
    trk: list[np.ndarray] = []
    cutflow: dict[str, int] = {}
    n_sel = n_gen = n_dm = n_dm_inv = 0
    t_pythia = t_reco = 0.0
    eff = 0.05  # running estimate of the preselection efficiency, sizes the batches
    for _ in range(100_000):
        if n_sel >= n_events:
            break
        need = n_events - n_sel
        size = int(min(batch_size, max(50, need / max(eff, 1e-3) * 1.2)))
        t1 = time.perf_counter()
        counts, ids, status, d1, mom, vtx = src.next_batch(size)
        t2 = time.perf_counter()
        n_gen += len(counts)
        if s.process == "signal":
            a, b = dark_meson_decays(counts, ids, d1)
            n_dm, n_dm_inv = n_dm + a, n_dm_inv + b
        charge = src.charges(ids)
        c, tr, cut = reconstruct_svj(counts, ids, status, mom, vtx, charge, s, rng)
        t_reco += time.perf_counter() - t2
        t_pythia += t2 - t1
        for k, v in cut.items():
            cutflow[k] = cutflow.get(k, 0) + v
        take = min(len(tr), need)
        for k, v in c.items():
            cols.setdefault(k, []).append(np.asarray(v)[:take])
        trk.append(tr[:take])
        n_sel += take
        eff = max(cutflow.get("tracks", 0), 1) / max(n_gen, 1)
    else:  # pragma: no cover
        raise GenerationError(f"only {n_sel} of {n_events} events passed the preselection after {n_gen} generated")
    sigma_mb, sigma_err_mb = src.sigma()
    df = pd.DataFrame({k: np.concatenate(v).astype(np.float32) for k, v in cols.items()})
    df["label"] = np.int8(1 if s.process == "signal" else 0)
    sig = s.process == "signal"
    df["m_zprime"] = np.float32(s.m_zprime if sig else 0.0)
    df["r_inv"] = np.float32(s.r_inv if sig else 0.0)
    df["m_dark"] = np.float32(s.m_dark if sig else 0.0)
    df = df[list(EVENT_COLUMNS)]
    from .generate import versions

    meta = {
        "generator": "pythia8mc + fastjet (excess.data.svj)",
        "settings": s.to_dict(),
        "pythia_config": src.config,
        "seed": int(seed),
        "versions": versions(),
        # n_passed: events of the generated batches that passed (the last batch's surplus is not stored)
        "counts": {"n_pythia_events": n_gen, "n_selected": n_sel, "n_passed": cutflow.get("tracks", 0),
                   "preselection_efficiency": cutflow.get("tracks", 0) / max(n_gen, 1), "cutflow": cutflow},
        "cross_section": {"pythia_sigma_gen_mb": sigma_mb, "pythia_sigma_err_mb": sigma_err_mb,
                          "n_pythia_events": n_gen,
                          "selected_fb": sigma_mb * 1e12 * cutflow.get("tracks", 0) / max(n_gen, 1)},
        "dark_mesons": {"n_decayed": n_dm, "n_invisible": n_dm_inv,
                        "invisible_fraction": (n_dm_inv / n_dm) if n_dm else None},
        "timing": {"init_s": t_init, "pythia_s": t_pythia, "reconstruction_s": t_reco,
                   "total_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0},
    }
    sample = SVJSample(df, np.concatenate(trk, axis=0) if trk else np.zeros((0, N_TRACKS, 8), np.float32), meta)
    if path is not None:
        write_svj(sample, path)
    meta["n_events"] = n_sel
    return meta


# --------------------------------------------------------------------------------------------------
# samples and files


@dataclass
class SVJSample:
    """Events (one row each, :data:`EVENT_COLUMNS`) and their tracks ``(N, 160, 8)`` float32."""

    events: pd.DataFrame
    tracks: np.ndarray
    metadata: dict = dataclasses.field(default_factory=dict)

    @property
    def mask(self) -> np.ndarray:
        """Real tracks (``pt > 0``), shape ``(N, 160)``."""
        return self.tracks[..., 0] > 0

    @property
    def labels(self) -> np.ndarray:
        return self.events["label"].to_numpy()

    def __len__(self) -> int:
        return len(self.events)

    def subset(self, index) -> SVJSample:
        index = np.asarray(index)
        return SVJSample(self.events.iloc[index].reset_index(drop=True), self.tracks[index], dict(self.metadata))


def _check_sample(events: pd.DataFrame, tracks: np.ndarray, where: str) -> None:
    missing = [c for c in EVENT_COLUMNS if c not in events.columns]
    if missing:
        raise InputError(f"{where}: missing event column(s) {missing}")
    if tracks.ndim != 3 or tracks.shape[1:] != (N_TRACKS, len(TRACK_COLUMNS)):
        raise InputError(f"{where}: tracks must have shape (N, {N_TRACKS}, {len(TRACK_COLUMNS)}), got {tracks.shape}")
    if len(tracks) != len(events):
        raise InputError(f"{where}: {len(tracks)} track rows for {len(events)} events")
    if not np.all(np.isfinite(tracks)):
        bad = np.flatnonzero(~np.isfinite(tracks).all(axis=(1, 2)))
        raise InputError(f"{where}: tracks contain NaN or infinite values ({bad.size} events, first index {bad[0]})")
    num = events[[c for c in EVENT_COLUMNS]].to_numpy(dtype=float)
    if not np.all(np.isfinite(num)):
        col = [c for c in EVENT_COLUMNS if not np.all(np.isfinite(events[c].to_numpy(dtype=float)))][0]
        raise InputError(f"{where}: event column {col!r} contains NaN or infinite values")
    empty = ~(tracks[..., 0] > 0).any(axis=1)
    if empty.any():
        raise InputError(f"{where}: {int(empty.sum())} event(s) have no tracks (all padding), first index "
                         f"{int(np.flatnonzero(empty)[0])}; drop them (sample.subset(sample.mask.any(1)))")


def write_svj(sample: SVJSample, path: str | os.PathLike) -> Path:
    """Write an SVJ sample to one ``.h5`` file atomically (the excess event table + ``/tracks``)."""
    import h5py

    from .io import write_events

    path = Path(path)
    if path.suffix.lower() not in (".h5", ".hdf5"):
        raise OutputError(f"{path}: SVJ samples are written as .h5 files")
    tracks = np.asarray(sample.tracks, dtype=np.float32)
    _check_sample(sample.events, tracks, str(path))
    with atomic_path(path, suffix=".h5") as tmp:
        write_events(sample.events, tmp, sample.metadata)
        with h5py.File(tmp, "a") as f:
            f.attrs["svj_format"] = SVJ_FORMAT
            f.create_dataset("tracks", data=tracks, compression="gzip", compression_opts=4, shuffle=True,
                             chunks=(max(1, min(len(tracks), 256)), N_TRACKS, len(TRACK_COLUMNS)))
            f["tracks"].attrs["columns"] = json.dumps(list(TRACK_COLUMNS))
    return path


def _read_one(path: Path, max_events: int | None = None) -> SVJSample:
    import h5py

    from .io import _read_excess_h5

    try:
        with h5py.File(path, "r") as f:
            if "tracks" not in f:
                raise InputError(f"{path}: no 'tracks' dataset (not an SVJ file; write it with excess svj generate)")
            if "events" not in f:
                raise InputError(f"{path}: no 'events' group (not an SVJ file)")
            ds = f["tracks"]
            tracks = ds[: max_events] if max_events is not None else ds[...]
        df = _read_excess_h5(path)
    except InputError:
        raise
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise InputError(f"{path}: not a readable SVJ HDF5 file ({str(exc).splitlines()[0][:200]})") from None
    if max_events is not None:
        attrs = df.attrs
        df = df.iloc[:max_events].reset_index(drop=True)
        df.attrs = attrs
    tracks = np.asarray(tracks, dtype=np.float32)
    _check_sample(df, tracks, str(path))
    return SVJSample(df, tracks, dict(df.attrs.get("excess", {})))


def read_svj(path: str | os.PathLike, max_events: int | None = None) -> SVJSample:
    """Read an SVJ sample from one ``.h5`` file or a chunk directory (chunks concatenated in order).

    Raises :class:`~excess.errors.InputError` for a missing path, missing datasets or columns, a track array of
    the wrong shape or length, NaN/inf values, and events without any track (all padding).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or directory")
    if path.is_dir():
        files = sorted(p for p in path.glob("chunk-*.h5") if not p.name.startswith("."))
        if not files:
            raise InputError(f"{path}: directory holds no chunk-*.h5 SVJ files")
        parts, n = [], 0
        for p in files:
            parts.append(_read_one(p, None if max_events is None else max_events - n))
            n += len(parts[-1])
            if max_events is not None and n >= max_events:
                break
        out = concat_svj(parts)
        meta = dict(parts[0].metadata)
        meta.pop("seed", None)
        meta["source"] = str(path)
        meta["n_chunks"] = len(parts)
        meta["seeds"] = [q.metadata.get("seed") for q in parts]
        out.metadata = meta
        return out
    return _read_one(path, max_events)


def concat_svj(samples) -> SVJSample:
    """Concatenate samples (events and tracks); metadata of the first."""
    samples = list(samples)
    if not samples:
        raise InputError("concat_svj needs at least one sample")
    ev = pd.concat([s.events for s in samples], ignore_index=True)
    ev.attrs = {}
    return SVJSample(ev, np.concatenate([s.tracks for s in samples], axis=0), dict(samples[0].metadata))


def inject_svj(background: SVJSample, signal: SVJSample, n_signal: int, *, random_state=None,
               shuffle: bool = True) -> SVJSample:
    """All of ``background`` plus ``n_signal`` events drawn without replacement from ``signal`` (labels kept)."""
    rng = check_random_state(random_state)
    n_signal = int(n_signal)
    if not (0 <= n_signal <= len(signal)):
        raise ConfigError(f"n_signal must be in 0..{len(signal)} (the signal sample's size), got {n_signal}")
    pick = rng.choice(len(signal), size=n_signal, replace=False)
    out = concat_svj([background, signal.subset(np.sort(pick))])
    if shuffle:
        out = out.subset(rng.permutation(len(out)))
    out.metadata = {"background": background.metadata.get("source"), "signal": signal.metadata.get("source"),
                    "n_background": len(background), "n_signal": n_signal}
    return out


# --------------------------------------------------------------------------------------------------
# chunked, resumable generation


def point_name(m_zprime: float, r_inv: float) -> str:
    """Folder name of a signal grid point: ``svj_mz2000_rinv0.3``."""
    return f"svj_mz{m_zprime:g}_rinv{r_inv:g}"


def generate_svj(n_events: int, output: str | os.PathLike, *, process: str = "signal", m_zprime: float = 2000.0,
                 r_inv: float = 0.3, m_dark: float = 20.0, pthat_min: float = 500.0, seed: int = 1,
                 chunk_size: int = 1000, n_workers: int | None = None, show_progress: bool = True,
                 overwrite: bool = False, batch_size: int = 500, **overrides) -> dict:
    """Generate ``n_events`` preselected SVJ events (signal or QCD) into ``output``; returns a summary dict.

    ``output`` is a chunk directory (``chunk-NNNNN.h5`` + ``manifest.json``; a rerun skips finished chunks) or
    one ``.h5`` file (staged in ``<output>.chunks/`` and merged). Chunk ``i`` uses the Pythia seed
    ``seed + 1000 i``. Further :class:`SVJSettings` fields (``met_min``, ``jet_radius``, ...) as keywords.
    """
    from .generate import chunk_seed, versions

    if int(n_events) <= 0:
        raise ConfigError(f"n_events must be positive, got {n_events}")
    if int(chunk_size) <= 0:
        raise ConfigError(f"chunk_size must be positive, got {chunk_size}")
    if not (SEED_MIN <= int(seed) <= SEED_MAX):
        raise ConfigError(f"seed must be in {SEED_MIN}..{SEED_MAX:,}, got {seed}")
    kw = dict(process=process, m_zprime=float(m_zprime), r_inv=float(r_inv), m_dark=float(m_dark),
              pthat_min=float(pthat_min))
    kw.update({k: v for k, v in overrides.items() if v is not None})
    s = SVJSettings.from_dict(kw)
    output = Path(output)
    single = output.suffix.lower() in (".h5", ".hdf5")
    chunk_dir = output.with_name(output.name + ".chunks") if single else output
    if single and output.exists() and not overwrite:
        raise OutputError(f"{output}: exists; pass --force (overwrite=True) to replace it, or choose another output")
    if chunk_dir.exists() and not chunk_dir.is_dir():
        raise InputError(f"{chunk_dir}: exists and is not a directory")
    n_chunks = (int(n_events) + chunk_size - 1) // chunk_size
    sizes = [chunk_size] * (n_chunks - 1) + [int(n_events) - chunk_size * (n_chunks - 1)]
    seeds = [chunk_seed(seed, i) for i in range(n_chunks)]
    key = json.dumps(s.to_dict(), sort_keys=True)
    created = not chunk_dir.exists()
    ensure_dir(chunk_dir)
    try:
        todo, skipped = [], 0
        for i, (size, sd) in enumerate(zip(sizes, seeds)):
            p = chunk_dir / f"chunk-{i:05d}.h5"
            if p.exists():
                from .io import read_metadata

                try:
                    meta = read_metadata(p)
                except (OSError, ValueError) as exc:
                    raise InputError(f"{p}: damaged chunk ({exc}); delete it and rerun") from None
                same = json.dumps(meta.get("settings", {}), sort_keys=True) == key
                if same and meta.get("seed") == sd and meta.get("counts", {}).get("n_selected") == size:
                    skipped += 1
                    continue
                raise InputError(f"{p}: an existing chunk was made with other settings, seed or size; use another "
                                 "output or delete it")
            todo.append((s.to_dict(), size, sd, str(p), batch_size))
        t0 = time.perf_counter()
        metas = []
        if todo:
            from ..executor import get_executor

            log.info("generating %d SVJ chunk(s) of %s events (%d already on disk)", len(todo), process, skipped)
            nw = n_workers or min(len(todo), os.cpu_count() or 1)
            with get_executor(n_workers=nw) as ex:
                bar = progress(total=sum(t[1] for t in todo), desc=f"svj {process}", unit="ev",
                               disable=None if show_progress else True)
                with bar:
                    for _, meta in ex.map_unordered(generate_svj_chunk, todo):
                        metas.append(meta)
                        bar.update(meta["n_events"])
        manifest = {"format": f"{SVJ_FORMAT} chunk directory", "settings": s.to_dict(), "seed": int(seed),
                    "chunk_size": int(chunk_size), "n_events": int(n_events),
                    "chunks": [f"chunk-{i:05d}.h5" for i in range(n_chunks)], "chunk_seeds": seeds,
                    "versions": versions()}
        atomic_write_json(chunk_dir / "manifest.json", manifest)
    except BaseException:
        if created and chunk_dir.is_dir() and not any(chunk_dir.glob("chunk-*.h5")):
            import shutil

            shutil.rmtree(chunk_dir, ignore_errors=True)
        raise
    if single:
        import shutil

        merged = read_svj(chunk_dir)
        write_svj(merged, output)
        shutil.rmtree(chunk_dir)
    n_gen = sum(m["counts"]["n_pythia_events"] for m in metas)
    n_passed = sum(m["counts"]["n_passed"] for m in metas)
    n_new = sum(m["n_events"] for m in metas)
    cpu = sum(m["timing"]["cpu_s"] for m in metas)
    summary = {"output": str(output), "process": process, "n_events": int(n_events), "n_chunks": n_chunks,
               "n_chunks_skipped": skipped, "wall_s": time.perf_counter() - t0, "settings": s.to_dict()}
    if metas:
        summary["n_generated_new"] = n_gen
        summary["preselection_efficiency"] = n_passed / max(n_gen, 1)
        summary["cpu_s_chunks"] = cpu
        summary["events_per_cpu_s"] = n_new / max(cpu, 1e-9)
        if process == "signal":
            nd = sum(m["dark_mesons"]["n_decayed"] for m in metas)
            ni = sum(m["dark_mesons"]["n_invisible"] for m in metas)
            summary["invisible_fraction"] = ni / nd if nd else None
    return summary


def generate_svj_grid(output_dir: str | os.PathLike, n_events: int, *, m_zprimes=GRID_MZPRIME, r_invs=GRID_RINV,
                      m_dark: float = 20.0, seed: int = 1, **kwargs) -> list[dict]:
    """Generate every (m_Z', r_inv) point into ``output_dir/svj_mz<m>_rinv<r>/`` (each resumable).

    Point ``k`` (in grid order) uses the base seed ``seed + 1_000_000 k`` so no two points share Pythia seeds.
    """
    out = []
    for k, (mz, ri) in enumerate((mz, ri) for mz in m_zprimes for ri in r_invs):
        out.append(generate_svj(n_events, Path(output_dir) / point_name(mz, ri), process="signal", m_zprime=mz,
                                r_inv=ri, m_dark=m_dark, seed=seed + 1_000_000 * k, **kwargs))
    return out
