"""Track samples for low-pT electron identification: particle gun, W -> e nu + jets, soft QCD, higgsinos.

Each sample is a dataset directory of seeded chunks written atomically (resumable like the dijet
generation of :mod:`excess.data.generate`: chunk ``i`` uses the seed ``seed + 1000 i``; a rerun skips
finished chunks; other settings in an existing chunk are an error)::

    out/
      chunk-00000.h5     the track table (excess-events/1 HDF5): detector features of
                         :mod:`excess.data.tracks`, truth, ``label`` (1 = prompt electron), ``origin``,
                         ``event_id``, isolation ``ptcone30``, charge, z0, ``e_overlap`` (EM energy of
                         the event's photons in the track's 3x7 calorimeter window), ``e_overlap_had``
                         (energy of the event's other hadrons whose calorimeter impact is in that window)
      events-00000.h5    the event table: ``event_id``, ``met``, ``met_phi``, ``jet1_pt``, ``n_jets``, the leading
                         standard-electron candidate (pT > 4.5 GeV) and the event weight in fb
      manifest.json

Processes (Pythia 8 settings from the project's research notes, measured with pythia8mc 8.317.2):

``gun``
    Single electrons/positrons flat in pT (0.5-5 GeV) and |eta| < 2.5 (numpy particle gun; no Pythia).
``wenu``
    ``WeakBosonAndParton:qqbar2Wg`` and ``qg2Wq`` with ``24:onIfAny = 11`` and ``PhaseSpace:pTHatMin`` (20 GeV
    for training tracks; the ``impact`` sample uses 150 GeV, since the signal region needs MET > 200 GeV).
``softqcd``
    ``SoftQCD:nonDiffractive`` minimum-bias events.
``higgsino``
    Pure-higgsino pair production from a hand-written SLHA spectrum (:func:`higgsino_slha`):
    m(chi10, chi1+, chi20) = (m_chi10, mean, m_chi20), ``SUSY:qqbar2chi0chi0`` and ``SUSY:qqbar2chi+-chi0`` with
    at least one chi20 (``SUSY:idVecA = 1000023``), forced decays chi20 -> chi10 e+ e- and chi1+ -> chi10 e+ nu
    inside the SLHA DECAY table (``onMode`` before ``init`` would be overwritten by the SLHA import),
    ``SLHA:allowOnlyOffShell = on``. The forced branching ratios are 1: event weights must be scaled by the
    physical ones (``branching_ratio`` setting).

Track origin (``origin`` column): ``prompt`` (from W, Z, tau or a chargino/neutralino; label 1),
``heavy_flavour`` (electron from a b or c hadron), ``conversion`` (photon conversion in the detector
material, :func:`excess.data.tracks.convert_photons`), ``dalitz`` (electron from a light meson or a shower
photon), ``hadron`` (pi, K, p and others), ``muon``.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .._util import atomic_write_json, get_logger, package_versions, progress
from ..errors import ConfigError, InputError
from .settings import INVISIBLE_PDG_IDS, QUIET_PYTHIA, SEED_MAX, SEED_MIN
from .tracks import CATEGORIES

__all__ = ["TrackSampleSettings", "PROCESSES", "ORIGINS", "MASS_POINTS", "higgsino_slha", "pythia_config",
           "generate_track_chunk", "generate_tracks", "read_tracks", "resimulate_tracks", "TrackGenerationSummary"]

log = get_logger(__name__)

PROCESSES = ("gun", "wenu", "softqcd", "higgsino")
#: the study's mass points m(chi20), m(chi10) in GeV
MASS_POINTS = ((103.0, 100.0), (128.0, 125.0), (153.0, 150.0), (155.0, 150.0))
ORIGINS = ("prompt", "heavy_flavour", "conversion", "dalitz", "hadron", "muon")
_PROMPT_PARENTS = (15, 23, 24, 1000022, 1000023, 1000024, 1000025, 1000035, 1000037)


@dataclass(frozen=True)
class TrackSampleSettings:
    """Everything that defines a track sample (besides its size and seed)."""

    process: str = "gun"
    ecm: float = 13000.0
    pt_min: float = 0.5
    pt_max: float = 5.0
    eta_max: float = 2.5
    pthat_min: float = 20.0  # wenu only
    mpi: bool = True
    m_chi20: float = 153.0
    m_chi10: float = 150.0
    branching_ratio: float = 1.0  # multiplies the higgsino event weights (forced decays have BR 1)
    electron_pt_min: float = 4.5  # leading standard-electron candidate stored in the event table
    iso_track_pt_min: float = 0.5  # tracks entering ptcone30
    pileup_mu: float = 0.0  # mean pile-up interactions per crossing seen by the detector model (Run 2: 33.7)
    keep_tracks_met_min: float = 0.0  # tracks are stored only for events with MET above this (events: all)
    extra: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self):
        if self.process not in PROCESSES:
            raise ConfigError(f"unknown process {self.process!r}; known: {', '.join(PROCESSES)}")
        if not (0 < self.pt_min < self.pt_max):
            raise ConfigError(f"need 0 < pt_min < pt_max, got {self.pt_min}, {self.pt_max}")
        if self.pileup_mu < 0 or self.keep_tracks_met_min < 0:
            raise ConfigError(f"pileup_mu and keep_tracks_met_min must be >= 0, got {self.pileup_mu}, "
                              f"{self.keep_tracks_met_min}")
        if self.process == "higgsino" and not (self.m_chi20 > self.m_chi10 > 0):
            raise ConfigError(f"need m_chi20 > m_chi10 > 0, got {self.m_chi20}, {self.m_chi10}")

    def detector(self):
        """The :class:`~excess.data.tracks.TrackDetector` of this sample (pile-up set by ``pileup_mu``)."""
        from .tracks import TrackDetector

        return TrackDetector(pileup_mu=float(self.pileup_mu))

    def to_dict(self) -> dict:
        import dataclasses

        d = dataclasses.asdict(self)
        d["extra"] = list(self.extra)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrackSampleSettings:
        import dataclasses

        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown track-sample setting(s) {unknown}; known: {sorted(known)}")
        d = dict(d)
        if "extra" in d:
            d["extra"] = tuple(d["extra"])
        return cls(**d)


def higgsino_slha(m_chi20: float, m_chi10: float) -> str:
    """A pure-higgsino SLHA spectrum (everything else at 5 TeV) with forced soft-electron decays.

    chi10 = (H_d - H_u)/sqrt 2, chi20 = (H_d + H_u)/sqrt 2 (negative mass eigenvalue), chi1+ a pure higgsino
    at the mean of the two neutralino masses; bino and wino at 2 and 2.5 TeV.
    """
    m_c = 0.5 * (m_chi20 + m_chi10)
    heavy = [1000001, 2000001, 1000002, 2000002, 1000003, 2000003, 1000004, 2000004, 1000005, 2000005,
             1000006, 2000006, 1000011, 2000011, 1000012, 1000013, 2000013, 1000014, 1000015, 2000015,
             1000016, 1000021]
    lines = ["BLOCK MODSEL", "    1   0", "BLOCK SMINPUTS", "    1   1.279340e+02", "    2   1.166370e-05",
             "    3   1.180000e-01", "    4   9.118760e+01", "    5   4.180000e+00", "    6   1.725000e+02",
             "    7   1.776860e+00", "BLOCK MINPAR", "    3   1.0e+01", "BLOCK MASS"]
    lines += [f"   {i}  5.0e+03" for i in heavy]
    lines += [f"   1000022  {m_chi10:.4f}", f"   1000023  {-m_chi20:.4f}", "   1000025  2.0e+03",
              "   1000035  2.5e+03", f"   1000024  {m_c:.4f}", "   1000037  2.5e+03", "        25  125.0",
              "        35  2.0e+03", "        36  2.0e+03", "        37  2.0e+03"]
    s = 0.70710678
    nmix = [[0, 0, s, -s], [0, 0, s, s], [1, 0, 0, 0], [0, 1, 0, 0]]
    lines.append("BLOCK NMIX")
    lines += [f"  {i + 1}  {j + 1}  {v:.8f}" for i, row in enumerate(nmix) for j, v in enumerate(row)]
    for blk in ("UMIX", "VMIX"):
        lines += [f"BLOCK {blk}", "  1  1  0.0", "  1  2  1.0", "  2  1  1.0", "  2  2  0.0"]
    lines += ["BLOCK HMIX Q= 1.0e+03", f"    1   {m_chi10:.4f}", "    2   1.0e+01", "    3   2.46e+02",
              "    4   4.0e+06", "BLOCK ALPHA", "   -1.0e-01",
              "DECAY   1000022   0.0",
              "DECAY   1000023   1.0e-10", "   1.0   3   1000022   11   -11",
              "DECAY   1000024   1.0e-10", "   1.0   3   1000022   -11   12"]
    return "\n".join(lines) + "\n"


def pythia_config(settings: TrackSampleSettings, seed: int, slha_path: str | None = None) -> list[str]:
    """The Pythia 8 configuration strings of a sample (not used by the particle gun)."""
    cfg = [f"Beams:eCM = {settings.ecm}", "Random:setSeed = on", f"Random:seed = {int(seed)}",
           *QUIET_PYTHIA, "Init:showChangedSettings = off", "Init:showProcesses = off",
           "Init:showChangedParticleData = off", f"PartonLevel:MPI = {'on' if settings.mpi else 'off'}"]
    if settings.process == "wenu":
        cfg += ["WeakBosonAndParton:qqbar2Wg = on", "WeakBosonAndParton:qg2Wq = on", "24:onMode = off",
                "24:onIfAny = 11", f"PhaseSpace:pTHatMin = {settings.pthat_min}"]
    elif settings.process == "softqcd":
        cfg += ["SoftQCD:nonDiffractive = on"]
    elif settings.process == "higgsino":
        if slha_path is None:
            raise ConfigError("the higgsino process needs an SLHA file")
        cfg += ["SUSY:all = off", "SUSY:qqbar2chi0chi0 = on", "SUSY:qqbar2chi+-chi0 = on",
                "SUSY:idVecA = 1000023", "SUSY:idVecB = 1000022,1000023,1000024",
                f"SLHA:file = {slha_path}", "SLHA:allowOnlyOffShell = on"]
    else:
        raise ConfigError(f"process {settings.process!r} is not generated with Pythia")
    return cfg + list(settings.extra)


def _is_heavy_flavour(ids: np.ndarray) -> np.ndarray:
    d = np.abs(ids) % 10000
    return np.isin((d // 100) % 10, (4, 5)) | np.isin(d // 1000, (4, 5))


def _gun_chunk(settings: TrackSampleSettings, n: int, seed: int, det_rng):
    from .tracks import simulate_tracks

    rng = np.random.default_rng([int(seed), 0xE1])
    pt = rng.uniform(settings.pt_min, settings.pt_max, n)
    eta = rng.uniform(-settings.eta_max, settings.eta_max, n)
    phi = rng.uniform(-np.pi, np.pi, n)
    pid = rng.choice(np.array([11, -11]), n)
    z0 = np.zeros(n)  # impact parameters are relative to the primary vertex, as for the Pythia samples
    t = simulate_tracks(pt, eta, phi, pid, z0_true_mm=z0, detector=settings.detector(), random_state=det_rng)
    t["true_charge"] = np.where(pid > 0, -1.0, 1.0)
    t["r_prod"] = 0.0
    t["d0_true"] = 0.0
    t["e_overlap"] = 0.0
    t["e_overlap_had"] = 0.0
    t["origin"] = "prompt"
    t["event_id"] = np.arange(n, dtype=np.int64)
    t["ptcone30"] = 0.0
    t["z0"] = z0
    events = pd.DataFrame({"event_id": np.arange(n, dtype=np.int64), "met": 0.0, "met_phi": 0.0, "jet1_pt": 0.0,
                           "n_jets": 0,
                           "weight_fb": 0.0})
    return t, events, {}


class _PythiaTracks:
    """A configured Pythia instance producing track and event tables of batches of events."""

    def __init__(self, settings: TrackSampleSettings, seed: int, workdir: Path):
        from .generate import ChargeTable, start_pythia

        self.settings = settings
        slha = None
        if settings.process == "higgsino":
            slha = workdir / f".higgsino-{settings.m_chi20:g}-{settings.m_chi10:g}-{seed}.slha"
            slha.write_text(higgsino_slha(settings.m_chi20, settings.m_chi10))
        self.config = pythia_config(settings, seed, None if slha is None else str(slha))
        try:
            self.pythia = start_pythia(self.config, repr(settings.process))
        finally:
            if slha is not None:
                slha.unlink(missing_ok=True)
        self.charges = ChargeTable(self.pythia)  # charges(ids): electric charge of each PDG id (shared, cached)

    def sigma_fb(self) -> float:
        return float(self.pythia.infoPython().sigmaGen()) * 1e12

    def batch(self, n: int, first_event: int, det_rng):
        import awkward as ak

        from .generate import silence_stdout
        from .tracks import convert_photons, simulate_tracks

        s = self.settings
        with silence_stdout():
            b = self.pythia.nextBatch(int(n))
        prt = b.prt
        counts = ak.to_numpy(ak.num(prt, axis=1))
        n_ev = len(counts)
        ev = np.repeat(np.arange(n_ev), counts)
        offsets = np.r_[0, np.cumsum(counts)[:-1]]
        ids = ak.to_numpy(ak.flatten(prt.id)).astype(np.int64)
        status = ak.to_numpy(ak.flatten(prt.status))
        mother = ak.to_numpy(ak.flatten(prt.mother1)).astype(np.int64) + offsets[ev]
        px, py, pz, e = (ak.to_numpy(ak.flatten(getattr(prt.p, f))) for f in ("px", "py", "pz", "e"))
        # production vertex [mm]; missing vertices (the beam particles) count as the origin
        vx, vy, vz = (np.nan_to_num(np.asarray(ak.to_numpy(ak.fill_none(ak.flatten(getattr(prt.vProd, f)), 0.0)),
                                               dtype=float)) for f in ("px", "py", "pz"))
        final = status > 0
        pt = np.hypot(px, py)
        with np.errstate(divide="ignore", invalid="ignore"):
            eta = np.arcsinh(np.where(pt > 0, pz / np.maximum(pt, 1e-12), np.sign(pz) * 1e3))
        phi = np.arctan2(py, px)
        charge = np.zeros(ids.size)
        charge[final] = self.charges(ids[final])
        visible = final & ~np.isin(np.abs(ids), INVISIBLE_PDG_IDS)

        # ---- event quantities: MET from the visible particles, anti-kt 0.4 jets, leading electron ----
        vis_acc = visible & (np.abs(eta) < 4.9)
        mex, mey = -np.bincount(ev, px * vis_acc, n_ev), -np.bincount(ev, py * vis_acc, n_ev)
        met, met_phi = np.hypot(mex, mey), np.arctan2(mey, mex)
        jet1_pt, n_jets = self._jets(px, py, pz, e, ev, vis_acc & ~((np.abs(ids) == 11) & (pt > 10)), n_ev)
        ele = final & (np.abs(ids) == 11) & (pt > s.electron_pt_min) & (np.abs(eta) < 2.47)
        lead = np.full(n_ev, -1)
        if ele.any():
            idx = np.nonzero(ele)[0]
            order = np.lexsort((-pt[idx], ev[idx]))
            idx = idx[order]
            first = np.r_[True, ev[idx][1:] != ev[idx][:-1]]
            lead[ev[idx][first]] = idx[first]
        has = lead >= 0
        li = np.where(has, lead, 0)
        events = pd.DataFrame({
            "event_id": first_event + np.arange(n_ev, dtype=np.int64), "met": met, "met_phi": met_phi,
            "jet1_pt": jet1_pt,
            "n_jets": n_jets, "n_electrons": np.bincount(ev[ele], minlength=n_ev),
            "e1_pt": np.where(has, pt[li], np.nan), "e1_eta": np.where(has, eta[li], np.nan),
            "e1_phi": np.where(has, phi[li], np.nan), "e1_charge": np.where(has, charge[li], 0.0),
            "e1_prompt": has & (self._origin(ids, mother, li, ids[li]) == 0),
        })

        # ---- origin of every particle (for electrons: walk up copies of the same particle) ----
        # ---- tracks: charged final-state particles in the pT window, plus conversion electrons ----
        keep_ev = met >= s.keep_tracks_met_min
        sel = final & (charge != 0) & (pt > s.pt_min) & (pt < s.pt_max) & (np.abs(eta) < s.eta_max) & keep_ev[ev]
        idx = np.nonzero(sel)[0]
        origin = self._origin_labels(ids, mother, idx)
        cosphi, sinphi = np.cos(phi[idx]), np.sin(phi[idx])
        d0_true = vx[idx] * sinphi - vy[idx] * cosphi
        z0_true = vz[idx] - (vx[idx] * cosphi + vy[idx] * sinphi) * np.sinh(eta[idx])
        trk = dict(pt=pt[idx], eta=eta[idx], phi=phi[idx], pid=ids[idx], charge=charge[idx],
                   r_prod_mm=np.hypot(vx[idx], vy[idx]), d0_true_mm=d0_true, z0_true_mm=z0_true,
                   event=ev[idx], origin=origin)
        gam = np.nonzero(final & (ids == 22) & (pt > s.pt_min) & (np.abs(eta) < s.eta_max) & keep_ev[ev])[0]
        conv = convert_photons(pt[gam], eta[gam], phi[gam], random_state=det_rng)
        keep = (conv["pt"] > s.pt_min) & (conv["pt"] < s.pt_max)
        gi = gam[conv["photon_index"][keep]]
        cpid = conv["pid"][keep]
        conv_tr = dict(pt=conv["pt"][keep], eta=conv["eta"][keep], phi=conv["phi"][keep], pid=cpid,
                       charge=-np.sign(cpid).astype(float), r_prod_mm=conv["r_prod_mm"][keep],
                       d0_true_mm=conv["d0_true_mm"][keep], z0_true_mm=vz[gi], event=ev[gi],
                       origin=np.full(keep.sum(), "conversion", dtype=object))
        allt = {k: np.concatenate([trk[k], conv_tr[k]]) for k in trk}
        # EM energy of the event's (unconverted) photons inside the 3x7 cluster window around each track's
        # calorimeter impact; the track bends by asin(0.3 B R / 2 pT) in phi on its way there, photons do not
        self_idx = np.concatenate([idx, np.full(keep.sum(), -1)])
        r_calo = np.minimum(1.4, 3.7 / np.maximum(np.sinh(np.abs(allt["eta"])), 1e-9))
        bend = np.arcsin(np.clip(0.3 * 2.0 * r_calo / (2.0 * allt["pt"]), 0.0, 1.0))
        phi_calo = allt["phi"] - allt["charge"] * bend
        unconverted = np.ones(ids.size, bool)
        unconverted[gi] = False
        photons = np.nonzero(final & (ids == 22) & unconverted & (np.abs(eta) < 2.5))[0]
        e_ov = self._window_sum(allt["event"], allt["eta"], phi_calo, photons, ev, eta, phi, e,
                                deta_max=1.5 * 0.025, dphi_max=3.5 * 0.0245)
        # energy of other hadrons (neutral and charged, the track itself excluded) whose calorimeter impact
        # falls into the same window; charged ones bend like the track, those that curl before the
        # calorimeter (2 R < 1.4 m, pT < 0.42 GeV) do not arrive
        r_calo_p = np.minimum(1.4, 3.7 / np.maximum(np.sinh(np.abs(eta)), 1e-9))
        bend_p = np.arcsin(np.clip(0.3 * 2.0 * r_calo_p / (2.0 * np.maximum(pt, 1e-9)), 0.0, 1.0))
        phi_calo_p = phi - charge * bend_p
        hadrons = np.nonzero(visible & ~np.isin(np.abs(ids), (11, 13, 22)) & (np.abs(eta) < 2.5)
                             & ((charge == 0) | (pt > 0.42)))[0]
        e_ov_had = self._window_sum(allt["event"], allt["eta"], phi_calo, hadrons, ev, eta, phi_calo_p, e,
                                    deta_max=1.5 * 0.025, dphi_max=3.5 * 0.0245, exclude=self_idx)
        t = simulate_tracks(allt["pt"], allt["eta"], allt["phi"], allt["pid"], charge=allt["charge"],
                            r_prod_mm=allt["r_prod_mm"], d0_true_mm=allt["d0_true_mm"],
                            z0_true_mm=allt["z0_true_mm"], e_overlap_gev=e_ov, e_overlap_had_gev=e_ov_had,
                            detector=s.detector(), random_state=det_rng)
        t["e_overlap"] = e_ov
        t["e_overlap_had"] = e_ov_had
        t["true_charge"] = allt["charge"]  # truth kept so that a sample can be re-simulated (resimulate_tracks)
        t["r_prod"] = allt["r_prod_mm"]
        t["d0_true"] = allt["d0_true_mm"]
        t["origin"] = allt["origin"]
        t["event_id"] = first_event + allt["event"]
        t["z0"] = allt["z0_true_mm"]
        iso_cand = np.nonzero(final & (charge != 0) & (np.abs(eta) < 2.5) & (pt > s.iso_track_pt_min))[0]
        t["ptcone30"] = self._window_sum(allt["event"], allt["eta"], allt["phi"], iso_cand, ev, eta, phi, pt,
                                         0.0, 0.0, dr_max=0.3, exclude=self_idx)
        return t, events

    @staticmethod
    def _walk(ids, mother, idx):
        """Index of the first ancestor that is not a copy of the particle itself."""
        cur = idx.copy()
        for _ in range(50):
            m = mother[cur]
            same = (m >= 0) & (ids[np.clip(m, 0, ids.size - 1)] == ids[cur]) & (m != cur)
            if not same.any():
                break
            cur = np.where(same, m, cur)
        return mother[cur]

    def _origin(self, ids, mother, idx, own_ids):
        """0 prompt, 1 heavy flavour, 2 dalitz/shower, 3 hadron, 4 muon (codes)."""
        par = self._walk(ids, mother, np.atleast_1d(idx))
        pid_par = np.abs(ids[np.clip(par, 0, ids.size - 1)])
        own = np.abs(np.atleast_1d(own_ids))
        code = np.full(own.shape, 3)
        is_e = own == 11
        code[own == 13] = 4
        code[is_e] = 2
        code[is_e & np.isin(pid_par, _PROMPT_PARENTS)] = 0
        code[is_e & _is_heavy_flavour(pid_par)] = 1
        return code

    def _origin_labels(self, ids, mother, idx):
        names = np.array(["prompt", "heavy_flavour", "dalitz", "hadron", "muon"], dtype=object)
        return names[self._origin(ids, mother, idx, ids[idx])]

    @staticmethod
    def _window_sum(t_event, t_eta, t_phi, cand, ev, eta, phi, w, deta_max, dphi_max, *, dr_max=None, exclude=None):
        """Sum of ``w`` over candidate particles of the same event inside a window around each track.

        The window is ``|deta| < deta_max`` and ``|dphi| < dphi_max``, or ``dR < dr_max`` if given; ``exclude``
        (per track, an index into the particle arrays) is left out of its own sum.
        """
        out = np.zeros(t_event.size)
        if cand.size == 0 or out.size == 0:
            return out
        cand = cand[np.argsort(ev[cand], kind="stable")]
        starts = np.searchsorted(ev[cand], t_event, side="left")
        lens = np.searchsorted(ev[cand], t_event, side="right") - starts
        rep = np.repeat(np.arange(out.size), lens)
        pos = np.arange(lens.sum()) - np.repeat(np.cumsum(lens) - lens, lens) + np.repeat(starts, lens)
        j = cand[pos]
        deta = eta[j] - t_eta[rep]
        dphi = np.angle(np.exp(1j * (phi[j] - t_phi[rep])))
        inside = (deta**2 + dphi**2 < dr_max**2) if dr_max is not None else ((np.abs(deta) < deta_max)
                                                                               & (np.abs(dphi) < dphi_max))
        if exclude is not None:
            inside &= j != exclude[rep]
        return np.bincount(rep, np.where(inside, w[j], 0.0), minlength=out.size)

    @staticmethod
    def _jets(px, py, pz, e, ev, mask, n_ev):
        import warnings

        import awkward as ak
        import fastjet

        from .generate import silence_stdout

        idx = np.nonzero(mask)[0]
        counts = np.bincount(ev[idx], minlength=n_ev)
        rec = ak.zip({"px": px[idx], "py": py[idx], "pz": pz[idx], "E": e[idx]})
        parts = ak.unflatten(rec, counts)
        with warnings.catch_warnings(), silence_stdout():
            warnings.simplefilter("ignore")
            cs = fastjet.ClusterSequence(parts, fastjet.JetDefinition(fastjet.antikt_algorithm, 0.4))
            jets = cs.inclusive_jets(min_pt=20.0)
        jpt = np.hypot(jets.px, jets.py)
        jeta = np.arcsinh(jets.pz / np.maximum(jpt, 1e-9))
        jpt = jpt[np.abs(jeta) < 2.8]
        n_jets = ak.to_numpy(ak.num(jpt, axis=1))
        lead = ak.to_numpy(ak.fill_none(ak.max(jpt, axis=1), 0.0))
        return lead.astype(float), n_jets.astype(np.int64)


def generate_track_chunk(settings_dict: dict, n_events: int, seed: int, path: str | None = None,
                         batch_size: int = 200) -> dict:
    """Generate one chunk (``n_events`` events, or tracks for the gun) and write its two tables atomically."""
    from .generate import versions
    from .io import write_events

    settings = TrackSampleSettings.from_dict(settings_dict)
    t0 = time.perf_counter()
    det_rng = np.random.default_rng([int(seed), 0x7AC])  # detector stream, independent of Pythia's
    meta_extra: dict = {}
    if settings.process == "gun":
        tracks, events, meta_extra = _gun_chunk(settings, n_events, seed, det_rng)
        n_gen, config = n_events, []
    else:
        workdir = Path(path).parent if path else Path(".")
        workdir.mkdir(parents=True, exist_ok=True)
        src = _PythiaTracks(settings, seed, workdir)
        t_parts, e_parts, n_gen = [], [], 0
        first = (int(seed) % 1_000_000) * 10_000_000
        while n_gen < n_events:
            k = min(batch_size, n_events - n_gen)
            tr, evs = src.batch(k, first + n_gen, det_rng)
            t_parts.append(tr)
            e_parts.append(evs)
            n_gen += k
        tracks = pd.concat(t_parts, ignore_index=True)
        events = pd.concat(e_parts, ignore_index=True)
        sigma = src.sigma_fb() * (settings.branching_ratio if settings.process == "higgsino" else 1.0)
        events["weight_fb"] = sigma / max(n_gen, 1)
        meta_extra = {"cross_section_fb": sigma}
        config = src.config
    tracks["label"] = (tracks["origin"] == "prompt").astype(np.int8)
    # strings are stored as small integer codes (the HDF5 event format holds numeric columns)
    tracks["category"] = pd.Categorical(tracks["category"].astype(str), CATEGORIES).codes.astype(np.int8)
    tracks["origin"] = pd.Categorical(tracks["origin"].astype(str), ORIGINS).codes.astype(np.int8)
    meta = {"generator": "excess.data.electrons", "settings": settings.to_dict(), "pythia_config": config,
            "seed": int(seed), "versions": versions(), "counts": {"n_events": int(n_gen), "n_tracks": len(tracks)},
            **meta_extra, "timing": {"total_s": time.perf_counter() - t0}}
    if path is not None:
        path = Path(path)
        write_events(events, path.with_name(path.name.replace("chunk-", "events-")), meta)
        write_events(tracks, path, meta)  # the track file last: its presence marks the chunk finished
    meta["n_tracks"] = len(tracks)
    meta["n_events"] = int(n_gen)
    return meta


@dataclass(frozen=True)
class TrackGenerationSummary:
    output: str
    process: str
    n_events: int
    n_tracks: int
    n_chunks: int
    n_chunks_skipped: int
    wall_s: float
    settings: dict

    def to_dict(self) -> dict:
        import dataclasses

        return dataclasses.asdict(self)


def generate_tracks(output: str | os.PathLike, n_events: int, *, process: str = "gun", seed: int = 1,
                    chunk_size: int = 2000, n_workers: int = 1, address=None, **overrides) -> TrackGenerationSummary:
    """Generate a track sample into the dataset directory ``output`` (seeded, chunked, resumable).

    ``n_events`` counts events (tracks for the ``gun``); ``overrides`` set :class:`TrackSampleSettings` fields.
    """
    from ..executor import get_executor
    from .generate import chunk_seed, versions
    from .io import read_metadata

    if int(n_events) <= 0:
        raise ConfigError(f"n_events must be positive, got {n_events}")
    if int(chunk_size) <= 0:
        raise ConfigError(f"chunk_size must be positive, got {chunk_size}")
    if not (SEED_MIN <= int(seed) <= SEED_MAX):
        raise ConfigError(f"seed must be in {SEED_MIN}..{SEED_MAX:,}, got {seed}")
    settings = TrackSampleSettings.from_dict({"process": process, **overrides})
    out = Path(output)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    n_chunks = (int(n_events) + chunk_size - 1) // chunk_size
    sizes = [chunk_size] * (n_chunks - 1) + [int(n_events) - chunk_size * (n_chunks - 1)]
    seeds = [chunk_seed(seed, i) for i in range(n_chunks)]
    key = json.dumps(settings.to_dict(), sort_keys=True)
    todo, skipped = [], 0
    for i, (size, s) in enumerate(zip(sizes, seeds)):
        path = out / f"chunk-{i:05d}.h5"
        if path.exists() and (out / f"events-{i:05d}.h5").exists():
            meta = read_metadata(path)
            same = json.dumps(meta.get("settings", {}), sort_keys=True) == key
            if same and meta.get("seed") == s and meta.get("counts", {}).get("n_events") == size:
                skipped += 1
                continue
            raise InputError(f"{path}: an existing chunk was made with other settings, seed or size; "
                             f"use another output or delete it")
        todo.append((settings.to_dict(), size, s, str(path)))
    t0 = time.perf_counter()
    if todo:
        log.info("generating %d chunk(s) of %s (%d already on disk)", len(todo), process, skipped)
        with get_executor(n_workers=min(n_workers, len(todo)), address=address) as ex:
            with progress(total=sum(t[1] for t in todo), desc=f"{process}", unit="ev") as bar:
                for _, meta in ex.map_unordered(generate_track_chunk, todo):
                    bar.update(meta["n_events"])
    atomic_write_json(out / "manifest.json", {
        "format": "excess-tracks/1 chunk directory", "settings": settings.to_dict(), "seed": int(seed),
        "chunk_size": int(chunk_size), "n_events": int(n_events),
        "chunks": [f"chunk-{i:05d}.h5" for i in range(n_chunks)], "chunk_seeds": seeds,
        "versions": {**versions(), **package_versions(())}})
    tracks, _ = read_tracks(out)
    return TrackGenerationSummary(str(out), process, int(n_events), len(tracks), n_chunks, skipped,
                                  time.perf_counter() - t0, settings.to_dict())


def read_tracks(path: str | os.PathLike) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Read a track sample directory (or one track file): ``(tracks, events or None)``.

    The event weights of a directory are normalised to the whole sample: a chunk stores ``sigma / n_chunk``
    per event, which is rescaled by ``n_chunk / n_total`` so that the weights sum to the (event-weighted
    mean) cross-section once, however many chunks there are.
    """
    from .io import _read_excess_h5, read_events

    path = Path(path)
    tracks = read_events(path)
    events = None
    if path.is_dir():
        # the event file of a chunk is written before its track file: only finished chunks count
        files = sorted(p for p in path.glob("events-*.h5")
                       if not p.name.startswith(".") and (path / p.name.replace("events-", "chunk-")).exists())
        if files:
            parts = [_read_excess_h5(p) for p in files]
            n_all = sum(len(e) for e in parts)
            for e in parts:  # each chunk's weights are sigma / (its events): rescale to sigma / (all events)
                if "weight_fb" in e.columns:
                    e["weight_fb"] = e["weight_fb"] * (len(e) / max(n_all, 1))
            events = pd.concat(parts, ignore_index=True)
    for col, names in (("category", CATEGORIES), ("origin", ORIGINS)):
        if col in tracks.columns and tracks[col].dtype.kind in "iu":
            codes = tracks[col].to_numpy()
            if codes.min(initial=0) < 0 or codes.max(initial=0) >= len(names):
                raise InputError(f"{path}: column {col!r} holds codes outside 0..{len(names) - 1}")
            tracks[col] = np.asarray(names, dtype=object)[codes]
    return tracks, events


_TRUTH_COLUMNS = ("true_pt", "true_eta", "phi", "pid", "true_charge", "r_prod", "d0_true", "z0", "e_overlap")


def resimulate_tracks(tracks: pd.DataFrame, detector=None, *, random_state=None) -> pd.DataFrame:
    """Run the detector model again on a stored sample's truth (no Pythia): a new table, same rows.

    Needs the truth columns :data:`_TRUTH_COLUMNS` that :func:`generate_tracks` stores; the generator-level
    columns (``origin``, ``label``, ``event_id``, ``ptcone30``, ``z0`` ...) are kept, the detector columns
    replaced. ``e_overlap_had`` (stored since the third pass of the detector model) is optional: older samples
    are re-simulated without overlapping hadrons. ``detector`` is a :class:`~excess.data.tracks.TrackDetector` (default: the default model).
    """
    from .tracks import simulate_tracks

    missing = [c for c in _TRUTH_COLUMNS if c not in tracks.columns]
    if missing:
        raise InputError(f"cannot re-simulate: the track table lacks the truth column(s) {missing} "
                         "(samples written before they were stored must be regenerated)")
    t = simulate_tracks(tracks["true_pt"].to_numpy(float), tracks["true_eta"].to_numpy(float),
                        tracks["phi"].to_numpy(float), tracks["pid"].to_numpy(np.int64),
                        charge=tracks["true_charge"].to_numpy(float), r_prod_mm=tracks["r_prod"].to_numpy(float),
                        d0_true_mm=tracks["d0_true"].to_numpy(float), z0_true_mm=tracks["z0"].to_numpy(float),
                        e_overlap_gev=tracks["e_overlap"].to_numpy(float),
                        e_overlap_had_gev=(tracks["e_overlap_had"].to_numpy(float) if "e_overlap_had" in tracks
                                           else None), detector=detector,
                        random_state=random_state)
    out = tracks.copy()
    for col in t.columns:
        out[col] = t[col].to_numpy() if col != "category" else t[col].astype(str).to_numpy()
    return out.reset_index(drop=True)
