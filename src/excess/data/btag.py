"""b, c and light jets with truth flavour and impact-parameter tracks: Pythia 8 + FastJet + the shared track model.

Generation
    pp at 13 TeV, Pythia 8 defaults (MPI, hadronisation, particle decays with their lifetimes) and two processes:
    ``ttbar`` (``Top:gg2ttbar``, ``Top:qqbar2ttbar``: b jets from the tops, c and light jets from the W's) and
    ``qcd`` dijets (``HardQCD:all``, pTHat >= 20 GeV: mostly light jets, some c and b from gluon splitting and
    flavour excitation). Pythia's default decay handling lets every unstable hadron decay at its proper
    lifetime with no cut (``ParticleDecays:limitTau0 = off``, ``limitTau``, ``limitRadius`` and
    ``limitCylinder`` off; the generator checks this), so b hadrons fly ~0.5 mm x gamma beta and c hadrons
    0.1-0.3 mm; K0S and Lambda decay too (real displaced tracks in light jets). Pythia's primary vertex is the
    origin (no beam spot), so the production vertex ``(xProd, yProd, zProd)`` [mm] of a particle is its
    displacement from the primary vertex.

    All visible final-state particles (:data:`~excess.data.settings.INVISIBLE_PDG_IDS` dropped) are clustered
    with anti-kt R = 0.4; every jet with ``jet_pt_min < pT < jet_pt_max`` (default 20-300 GeV) and
    ``|eta| < 2.5`` is kept if it has at least one reconstructed track (a jet without tracks cannot be
    b-tagged with track taggers; the fraction dropped is in the chunk metadata).

Truth flavour (hadron cone labelling, as ATLAS's ``HadronConeExclTruthLabelID``)
    Weakly decaying ("last in chain") b hadrons -- open-b hadrons (:func:`has_quark`; quarkonia excluded) none
    of whose daughters is one --
    with pT > 5 GeV are matched to the nearest jet within Delta R < 0.4 (each hadron to one jet at most); a jet
    with one is ``b`` (label 5). Otherwise the same with last-in-chain c hadrons gives ``c`` (4); every other
    jet is ``light`` (0). :data:`FLAVOURS` maps the names to labels.

Tracks
    The charged constituents of a jet go through :func:`excess.data.tracks.simulate_tracks` (efficiency,
    silicon hits, pT and impact-parameter resolution) with their true transverse and longitudinal impact
    parameters, computed from the production vertex in the straight-line approximation (displacements are
    millimetres, bending radii metres)::

        d0 = x sin(phi) - y cos(phi)            z0 = z - (x cos(phi) + y sin(phi)) * pz / pT

    Only reconstructed tracks are kept. Lifetime signs relative to the jet axis (the ATLAS convention): the
    point of closest approach of a track lies at ``d0 * (sin phi, -cos phi)``; the transverse IP is positive
    when that point lies in the jet's hemisphere, ``sign(d0 * sin(phi_track - phi_jet))``, and the
    longitudinal one when ``sign(z0 * (eta_jet - eta_track))`` is positive (:func:`signed_impact_parameters`).
    Significances divide by the resolution of :func:`excess.data.tracks.resolution` at the fitted pT
    (``d0_sig`` of the track model; ``sigma(z0 sin theta)`` from the same formula). A track grade (the IP3D
    track category) from the innermost hits: 0 with an IBL hit, 1 without IBL but >= 2 pixel hits, 2 else.

Files
    One ``.npz`` per chunk (processes alternate ``ttbar``/``qcd``, chunk ``i`` with Pythia seed
    ``seed + 1000 * i`` and the detector seeded from it), a JSON sidecar with settings, timing and the flavour
    counts, and a directory manifest: a rerun skips finished chunks (resume). Jet columns :data:`JET_COLUMNS`
    (``jet_*``); tracks flat in :data:`TRACK_COLUMNS` (``trk_*``), grouped by jet (``jet_n_tracks``) and
    ordered by decreasing ``|S_d0|``. :func:`load_btag` reads files or directories into :class:`BTagData`
    with the tagger inputs :data:`BTAG_FEATURES` zero-padded to ``max_tracks``.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .._util import atomic_path, atomic_write_json, get_logger
from ..errors import ConfigError, GenerationError, InputError
from .settings import QUIET_PYTHIA

__all__ = ["BTagSettings", "FLAVOURS", "LABEL_NAMES", "JET_COLUMNS", "TRACK_COLUMNS", "BTAG_FEATURES",
           "btag_pythia_config", "generate_btag_chunk", "generate_btag", "load_btag", "BTagData",
           "check_btag_inputs", "check_flavour_labels", "signed_impact_parameters", "true_impact_parameters",
           "flavour_labels", "has_quark", "track_grade"]

log = get_logger(__name__)

PROCESSES = ("ttbar", "qcd")
#: flavour name -> truth label (the ATLAS PDG-like convention)
FLAVOURS = {"light": 0, "c": 4, "b": 5}
LABEL_NAMES = {v: k for k, v in FLAVOURS.items()}
JET_COLUMNS = ("jet_pt", "jet_eta", "jet_phi", "jet_m", "jet_label", "jet_hadron_pt", "jet_hadron_lxy",
               "jet_process", "jet_event", "jet_n_tracks")
TRACK_COLUMNS = ("trk_pt", "trk_eta", "trk_phi", "trk_d0", "trk_z0sintheta", "trk_s_d0", "trk_s_z0", "trk_grade",
                 "trk_charge", "trk_pid")
#: the per-track tagger inputs of :func:`load_btag` (zero rows are padding; ``pt_frac > 0`` marks a track)
BTAG_FEATURES = ("s_d0", "s_z0", "pt_frac", "d_r", "grade")
GRADES = 3
_DECAY_LIMITS = ("ParticleDecays:limitTau0", "ParticleDecays:limitTau", "ParticleDecays:limitRadius",
                 "ParticleDecays:limitCylinder")


@dataclass(frozen=True)
class BTagSettings:
    """Settings of the b/c/light generation."""

    ecm: float = 13000.0
    qcd_pthat_min: float = 20.0
    qcd_pthat_max: float = 300.0
    mpi: bool = True
    jet_radius: float = 0.4
    jet_pt_min: float = 20.0
    jet_pt_max: float = 300.0
    jet_eta_max: float = 2.5
    hadron_pt_min: float = 5.0
    label_dr: float = 0.4

    def __post_init__(self):
        if not (0 < self.jet_pt_min < self.jet_pt_max):
            raise ConfigError(f"need 0 < jet_pt_min < jet_pt_max, got {self.jet_pt_min}, {self.jet_pt_max}")
        if not (0 < self.qcd_pthat_min < self.qcd_pthat_max):
            raise ConfigError(f"need 0 < qcd_pthat_min < qcd_pthat_max, got {self.qcd_pthat_min}, {self.qcd_pthat_max}")
        if not (0 < self.jet_radius <= 1.5) or not (0 < self.label_dr <= 1.5):
            raise ConfigError(f"jet_radius and label_dr must be in (0, 1.5], got {self.jet_radius}, {self.label_dr}")

    def to_dict(self) -> dict:
        return asdict(self)


def btag_pythia_config(s: BTagSettings, process: str, seed: int) -> list[str]:
    """Pythia ``readString`` lines for ``process`` ``"ttbar"`` or ``"qcd"``."""
    from .settings import SEED_MAX, SEED_MIN

    if process not in PROCESSES:
        raise ConfigError(f"process must be one of {', '.join(PROCESSES)}, got {process!r}")
    if not (SEED_MIN <= int(seed) <= SEED_MAX):
        raise ConfigError(f"seed must be in {SEED_MIN}..{SEED_MAX:,}, got {seed}")
    proc = (["Top:gg2ttbar = on", "Top:qqbar2ttbar = on"] if process == "ttbar" else
            ["HardQCD:all = on", f"PhaseSpace:pTHatMin = {s.qcd_pthat_min:g}",
             f"PhaseSpace:pTHatMax = {s.qcd_pthat_max:g}"])
    return [f"Beams:eCM = {s.ecm:g}", "Random:setSeed = on", f"Random:seed = {int(seed)}", *proc,
            f"PartonLevel:MPI = {'on' if s.mpi else 'off'}", *QUIET_PYTHIA]


# --------------------------------------------------------------------------------------------------
# physics helpers (pure numpy; tested on constructed inputs)


def has_quark(pid, quark: int) -> np.ndarray:
    """Whether each PDG id is an open-flavour hadron (meson or baryon, excited states included) containing ``quark``
    (4 or 5); quarkonia (J/psi, Upsilon: no net flavour, no lifetime), quarks and diquarks are not."""
    a = np.abs(np.asarray(pid, dtype=np.int64)) % 10000
    n1, n2, n3 = (a // 1000) % 10, (a // 100) % 10, (a // 10) % 10
    meson = (n1 == 0) & (n2 > 0) & (n3 > 0)
    baryon = (n1 > 0) & (n2 > 0) & (n3 > 0)
    if quark not in (4, 5):
        raise ConfigError(f"quark must be 4 (c) or 5 (b), got {quark}")
    in_meson = meson & ((n2 == quark) != (n3 == quark))  # open flavour: quarkonia (c cbar, b bbar) are not
    in_baryon = baryon & ((n1 == quark) | (n2 == quark) | (n3 == quark))
    return (in_meson | in_baryon) & (np.abs(np.asarray(pid)) > 100)


def _delta_phi(a, b):
    return (np.asarray(a) - np.asarray(b) + np.pi) % (2 * np.pi) - np.pi


def flavour_labels(jet_eta, jet_phi, b_hadrons, c_hadrons, *, dr_max: float = 0.4) -> np.ndarray:
    """Hadron-cone truth labels (5 b, 4 c, 0 light) of the jets of ONE event.

    ``b_hadrons``/``c_hadrons`` are ``(eta, phi)`` arrays of shape ``(n, 2)`` of the last-in-chain hadrons that
    passed the pT cut. Each hadron goes to its nearest jet if that lies within ``dr_max``; a jet with a b hadron
    is b, else with a c hadron c, else light.
    """
    jet_eta, jet_phi = np.asarray(jet_eta, dtype=float), np.asarray(jet_phi, dtype=float)
    labels = np.zeros(jet_eta.size, dtype=np.int64)
    if jet_eta.size == 0:
        return labels
    for label, had in ((4, c_hadrons), (5, b_hadrons)):  # b last: it wins
        had = np.asarray(had, dtype=float).reshape(-1, 2)
        for eta, phi in had:
            dr = np.hypot(jet_eta - eta, _delta_phi(jet_phi, phi))
            k = int(np.argmin(dr))
            if dr[k] < dr_max:
                labels[k] = max(labels[k], label)
    return labels


def true_impact_parameters(x, y, z, px, py, pz):
    """Geometric ``(d0, z0)`` [mm] of straight tracks from production vertices ``(x, y, z)`` w.r.t. the origin."""
    x, y, z, px, py, pz = (np.asarray(v, dtype=float) for v in (x, y, z, px, py, pz))
    pt = np.hypot(px, py)
    d0 = (x * py - y * px) / pt
    z0 = z - (x * px + y * py) / pt * (pz / pt)
    return d0, z0


def signed_impact_parameters(d0, z0, trk_eta, trk_phi, jet_eta, jet_phi):
    """Lifetime-signed ``(d0, z0)``: positive when the track's point of closest approach lies on the jet's side.

    Transverse: ``|d0| sign(d0 sin(phi_trk - phi_jet))``; longitudinal: ``|z0| sign(z0 (eta_jet - eta_trk))``.
    A track from a vertex displaced along the jet direction gets positive signs (tested).
    """
    d0, z0 = np.asarray(d0, dtype=float), np.asarray(z0, dtype=float)
    sd = np.sign(d0 * np.sin(np.asarray(trk_phi) - np.asarray(jet_phi)))
    sz = np.sign(z0 * (np.asarray(jet_eta) - np.asarray(trk_eta)))
    return np.abs(d0) * np.where(sd == 0, 1.0, sd), np.abs(z0) * np.where(sz == 0, 1.0, sz)


def track_grade(n_ibl, n_pix) -> np.ndarray:
    """IP3D-like track category from the innermost hits: 0 IBL hit, 1 no IBL but >= 2 pixel hits, 2 otherwise."""
    n_ibl, n_pix = np.asarray(n_ibl), np.asarray(n_pix)
    return np.where(n_ibl > 0, 0, np.where(n_pix >= 2, 1, 2)).astype(np.int64)


# --------------------------------------------------------------------------------------------------
# generation


def _daughters(d1: int, d2: int) -> range | tuple:
    if d1 > 0 and d2 >= d1:
        return range(d1, d2 + 1)
    return tuple(d for d in (d1, d2) if d > 0)


def _last_in_chain(flavoured: np.ndarray, d1: np.ndarray, d2: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """The candidate indices none of whose daughters is flavoured (the weakly decaying hadrons)."""
    keep = [i for i in candidates if not any(flavoured[d] for d in _daughters(int(d1[i]), int(d2[i]))
                                             if d < flavoured.size)]
    return np.asarray(keep, dtype=np.int64)


def _process_batch(batch, s: BTagSettings, charges, rng, det, event_offset: int):
    """Jets and tracks of one Pythia batch: (jet columns dict, track columns dict, n jets without tracks)."""
    import awkward as ak
    import fastjet

    from .settings import INVISIBLE_PDG_IDS
    from .tracks import resolution, simulate_tracks

    prt = batch.prt
    counts = ak.to_numpy(ak.num(prt, axis=1))
    off = np.concatenate([[0], np.cumsum(counts)])
    fl = {k: ak.to_numpy(ak.flatten(getattr(prt, k))) for k in ("id", "status", "daughter1", "daughter2")}
    mom = {k: ak.to_numpy(ak.flatten(getattr(prt.p, k))) for k in ("px", "py", "pz", "e")}
    vtx = {k: ak.to_numpy(ak.fill_none(ak.flatten(getattr(prt.vProd, k)), 0.0)) for k in ("px", "py", "pz")}
    ids = fl["id"].astype(np.int64)
    pt_all = np.hypot(mom["px"], mom["py"])
    with np.errstate(divide="ignore", invalid="ignore"):
        eta_all = np.arcsinh(np.where(pt_all > 0, mom["pz"] / np.maximum(pt_all, 1e-12), 0.0))
    phi_all = np.arctan2(mom["py"], mom["px"])
    ev_of = np.repeat(np.arange(len(counts)), counts)
    keep = (fl["status"] > 0) & ~np.isin(np.abs(ids), INVISIBLE_PDG_IDS)
    vis = np.nonzero(keep)[0]
    vcounts = np.bincount(ev_of[keep], minlength=len(counts))
    voff = np.concatenate([[0], np.cumsum(vcounts)])
    parts = ak.unflatten(ak.zip({"px": mom["px"][vis], "py": mom["py"][vis], "pz": mom["pz"][vis],
                                 "E": mom["e"][vis]}, with_name="Momentum4D"), vcounts)
    jetdef = fastjet.JetDefinition(fastjet.antikt_algorithm, s.jet_radius)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cs = fastjet.ClusterSequence(parts, jetdef)
        jets = cs.inclusive_jets(min_pt=s.jet_pt_min)
        cidx = cs.constituent_index(min_pt=s.jet_pt_min)
    jn = ak.to_numpy(ak.num(jets, axis=1))
    jpx, jpy, jpz, je = (ak.to_numpy(ak.flatten(getattr(jets, f))) for f in ("px", "py", "pz", "E"))
    jpt = np.hypot(jpx, jpy)
    jeta = np.arcsinh(jpz / np.maximum(jpt, 1e-12))
    jphi = np.arctan2(jpy, jpx)
    jm = np.sqrt(np.maximum(je**2 - jpx**2 - jpy**2 - jpz**2, 0.0))
    jev = np.repeat(np.arange(len(counts)), jn)
    sel = (jpt > s.jet_pt_min) & (jpt < s.jet_pt_max) & (np.abs(jeta) < s.jet_eta_max)
    cflat = ak.to_list(ak.flatten(cidx, axis=1))
    # truth flavour, per event
    is_b, is_c = has_quark(ids, 5), has_quark(ids, 4)
    label = np.zeros(jpt.size, dtype=np.int64)
    had_pt = np.zeros(jpt.size)
    had_lxy = np.zeros(jpt.size)
    jstart = np.concatenate([[0], np.cumsum(jn)])
    for ev in np.unique(jev):
        a, b = off[ev], off[ev + 1]
        js = slice(jstart[ev], jstart[ev + 1])
        d1, d2 = fl["daughter1"][a:b], fl["daughter2"][a:b]
        out = {}
        for q, flav in ((5, is_b[a:b]), (4, is_c[a:b])):
            cand = np.nonzero(flav & (pt_all[a:b] > s.hadron_pt_min))[0]
            last = _last_in_chain(flav, d1, d2, cand) if cand.size else np.zeros(0, dtype=np.int64)
            out[q] = last
        lab = flavour_labels(jeta[js], jphi[js], np.column_stack([eta_all[a:b][out[5]], phi_all[a:b][out[5]]]),
                             np.column_stack([eta_all[a:b][out[4]], phi_all[a:b][out[4]]]), dr_max=s.label_dr)
        label[js] = lab
        # the labelling hadron's pT and transverse decay length (truth; for studies)
        for q in (5, 4):
            for h in out[q]:
                dr = np.hypot(jeta[js] - eta_all[a + h], _delta_phi(jphi[js], phi_all[a + h]))
                k = int(np.argmin(dr))
                if dr[k] < s.label_dr and label[js][k] == q and had_pt[jstart[ev] + k] == 0:
                    dd = _daughters(int(d1[h]), int(d2[h]))
                    if len(dd):
                        d = a + dd[0]
                        had_lxy[jstart[ev] + k] = np.hypot(vtx["px"][d] - vtx["px"][a + h], vtx["py"][d] - vtx["py"][a + h])
                    had_pt[jstart[ev] + k] = pt_all[a + h]
    # tracks: charged constituents of the selected jets
    jsel = np.nonzero(sel)[0]
    tr_jet, tr_idx = [], []
    for j in jsel:
        g = vis[voff[jev[j]] + np.asarray(cflat[j], dtype=np.int64)]
        tr_jet.append(np.full(g.size, j))
        tr_idx.append(g)
    tr_jet = np.concatenate(tr_jet) if tr_jet else np.zeros(0, dtype=np.int64)
    tr_idx = np.concatenate(tr_idx) if tr_idx else np.zeros(0, dtype=np.int64)
    q = charges(ids[tr_idx]) if tr_idx.size else np.zeros(0)
    ch = q != 0
    tr_jet, tr_idx, q = tr_jet[ch], tr_idx[ch], q[ch]
    d0t, z0t = true_impact_parameters(vtx["px"][tr_idx], vtx["py"][tr_idx], vtx["pz"][tr_idx],
                                      mom["px"][tr_idx], mom["py"][tr_idx], mom["pz"][tr_idx])
    trk = simulate_tracks(pt_all[tr_idx], eta_all[tr_idx], phi_all[tr_idx], ids[tr_idx], charge=q,
                          r_prod_mm=np.hypot(vtx["px"][tr_idx], vtx["py"][tr_idx]), d0_true_mm=d0t,
                          z0_true_mm=z0t, detector=det, random_state=rng)
    reco = trk["reco"].to_numpy()
    trk = trk[reco]
    tj = tr_jet[reco]
    d0, z0s = trk["d0"].to_numpy(), trk["z0sintheta"].to_numpy()
    teta, tphi, tpt = trk["eta"].to_numpy(), trk["phi"].to_numpy(), trk["pt"].to_numpy()
    sd0, sz0 = signed_impact_parameters(d0, z0s, teta, tphi, jeta[tj], jphi[tj])
    sig_z = resolution(tpt, det.z0_sigma_inf_mm, det.z0_p_x)
    s_d0 = np.abs(trk["d0_sig"].to_numpy()) * np.sign(sd0)
    s_z0 = np.clip(sz0 / sig_z, -1e3, 1e3)
    grade = track_grade(trk["n_ibl"].to_numpy(), trk["n_pix"].to_numpy())
    ntr = np.bincount(tj, minlength=jpt.size)
    good = sel & (ntr > 0)
    n_notrack = int((sel & (ntr == 0)).sum())
    # order: jets as clustered; tracks grouped by jet, by decreasing |S_d0|
    order = np.lexsort((-np.abs(s_d0), tj))
    tj = tj[order]
    keep_t = good[tj]
    o = order[keep_t]
    tracks = {"trk_pt": tpt[o], "trk_eta": teta[o], "trk_phi": tphi[o], "trk_d0": sd0[o], "trk_z0sintheta": sz0[o],
              "trk_s_d0": s_d0[o], "trk_s_z0": s_z0[o], "trk_grade": grade[o],
              "trk_charge": trk["charge"].to_numpy()[o].astype(np.int8), "trk_pid": ids[tr_idx[reco]][o].astype(np.int32)}
    g = np.nonzero(good)[0]
    jets_out = {"jet_pt": jpt[g], "jet_eta": jeta[g], "jet_phi": jphi[g], "jet_m": jm[g], "jet_label": label[g],
                "jet_hadron_pt": had_pt[g], "jet_hadron_lxy": had_lxy[g], "jet_event": jev[g] + event_offset,
                "jet_n_tracks": ntr[g]}
    return jets_out, tracks, n_notrack


def _concat(parts: list[dict]) -> dict:
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def generate_btag_chunk(settings_dict: dict, process: str, n_jets: int, seed: int, path: str | None = None,
                        batch_size: int = 50) -> dict:
    """At least ``n_jets`` jets (whole events; truncated to ``n_jets``) of ``process`` with one Pythia seed,
    written to ``path`` (``.npz``) atomically. Top-level for :mod:`excess.executor`; returns the metadata."""
    from .generate import ChargeTable, silence_stdout, start_pythia, versions
    from .tracks import TrackDetector

    s = BTagSettings(**settings_dict)
    if n_jets < 1:
        raise ConfigError(f"n_jets must be >= 1, got {n_jets}")
    cfg = btag_pythia_config(s, process, seed)
    t0, c0 = time.perf_counter(), time.process_time()
    pythia = start_pythia(cfg, process)
    limits = {k: bool(pythia.settings.flag(k)) for k in _DECAY_LIMITS}
    if any(limits.values()):  # pragma: no cover - only with a modified Pythia default
        raise GenerationError(f"Pythia cuts particle decays ({limits}); b and c hadrons must decay with their lifetime")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0xB7A6]))
    det = TrackDetector()
    charges = ChargeTable(pythia)
    jparts, tparts = [], []
    n_have = n_gen = n_notrack = 0
    for _ in range(100_000):
        if n_have >= n_jets:
            break
        with silence_stdout():
            batch = pythia.nextBatch(int(batch_size))
            j, t, nn = _process_batch(batch, s, charges, rng, det, n_gen)
        n_gen += len(batch.prt)
        n_notrack += nn
        jparts.append(j)
        tparts.append(t)
        n_have += j["jet_pt"].size
    else:  # pragma: no cover
        raise GenerationError(f"only {n_have} of {n_jets} {process} jets after {n_gen} events")
    jets, tracks = _concat(jparts), _concat(tparts)
    nt = int(jets["jet_n_tracks"][:n_jets].sum())
    jets = {k: v[:n_jets] for k, v in jets.items()}
    tracks = {k: v[:nt] for k, v in tracks.items()}
    jets["jet_process"] = np.full(n_jets, PROCESSES.index(process), dtype=np.int8)
    info = pythia.infoPython()
    counts = {name: int((jets["jet_label"] == lab).sum()) for name, lab in FLAVOURS.items()}
    cpu = time.process_time() - c0
    meta = {"generator": "pythia8mc + fastjet + excess.data.tracks (excess.data.btag)", "process": process,
            "settings": s.to_dict(), "pythia_config": cfg, "decay_limits": limits, "seed": int(seed),
            "versions": versions(), "n_jets": int(n_jets), "n_tracks": nt, "flavour_counts": counts,
            "n_pythia_events": n_gen, "n_jets_without_tracks": n_notrack, "sigma_gen_mb": float(info.sigmaGen()),
            "timing": {"total_s": time.perf_counter() - t0, "cpu_s": cpu}}
    if path is not None:
        with atomic_path(Path(path), suffix=".npz") as tmp:
            np.savez_compressed(tmp, **jets, **tracks)
        atomic_write_json(str(path) + ".json", meta)
    return meta


def generate_btag(out_dir, n_jets: int, *, seed: int = 1, chunk_size: int = 2000, settings: BTagSettings | None = None,
                  ttbar_fraction: float = 0.5, n_workers: int = 1, address=None) -> dict:
    """Generate ``n_jets`` jets (``ttbar_fraction`` of them from ttbar, the rest QCD) into ``out_dir``; resumable.

    Chunk ``i`` (``btag_{i:05d}_{process}.npz``) is generated with Pythia seed ``seed + 1000 * i``; ttbar chunks
    come first, then QCD. Finished chunks are skipped on a rerun with the same settings (other settings for an
    existing directory are an error).
    """
    from ..executor import get_executor
    from .generate import chunk_seed

    s = settings or BTagSettings()
    if n_jets < 2 or chunk_size < 1:
        raise ConfigError(f"need n_jets >= 2 and chunk_size >= 1, got {n_jets}, {chunk_size}")
    if not 0 <= ttbar_fraction <= 1:
        raise ConfigError(f"ttbar_fraction must be in [0, 1], got {ttbar_fraction}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    manifest = out / "btag_settings.json"
    key = {"settings": s.to_dict(), "seed": int(seed), "chunk_size": int(chunk_size),
           "ttbar_fraction": float(ttbar_fraction)}
    if manifest.exists():
        old = json.loads(manifest.read_text())
        if old != json.loads(json.dumps(key)):
            raise ConfigError(f"{out} holds jets generated with other settings ({old}); use another directory")
    else:
        atomic_write_json(manifest, key)
    n_tt = int(round(ttbar_fraction * n_jets))
    tasks, skipped, i = [], 0, 0
    for process, total in (("ttbar", n_tt), ("qcd", n_jets - n_tt)):
        for c in range(-(-total // chunk_size)):
            size = min(chunk_size, total - c * chunk_size)
            path = out / f"btag_{i:05d}_{process}.npz"
            if path.exists() and Path(str(path) + ".json").exists():
                skipped += 1
            else:
                tasks.append((s.to_dict(), process, size, chunk_seed(seed, i), str(path)))
            i += 1
    t0 = time.perf_counter()
    metas = []
    if tasks:
        with get_executor(n_workers=n_workers, address=address) as ex:
            metas = ex.map(generate_btag_chunk, tasks)
    n_new = sum(m["n_jets"] for m in metas)
    cpu = sum(m["timing"]["cpu_s"] for m in metas)
    flav = {k: sum(m["flavour_counts"][k] for m in metas) for k in FLAVOURS}
    return {"out_dir": str(out), "n_chunks_generated": len(metas), "n_chunks_skipped": skipped,
            "n_jets_generated": n_new, "flavour_counts": flav, "wall_s": time.perf_counter() - t0, "cpu_s": cpu,
            "jets_per_s_per_core": n_new / cpu if cpu > 0 else None}


# --------------------------------------------------------------------------------------------------
# reading and checking


@dataclass(frozen=True)
class BTagData:
    """Jets for the taggers: ``X`` ``(N, M, len(BTAG_FEATURES))`` zero-padded tracks, ``y`` truth labels
    (0/4/5), ``jets`` the jet columns (dict of arrays, incl. ``jet_pt``) and the source files."""

    X: np.ndarray
    y: np.ndarray
    jets: dict
    files: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.y)


def check_flavour_labels(y, n: int | None = None, *, name: str = "labels") -> np.ndarray:
    """Truth labels as int64, each one of 0 (light), 4 (c), 5 (b); one clear error otherwise."""
    y = np.asarray(y)
    if y.ndim != 1 or (n is not None and y.shape[0] != n):
        raise InputError(f"{name}: y must have shape ({n if n is not None else 'n_jets'},), got {y.shape}")
    if y.dtype.kind not in "iuf":
        raise InputError(f"{name}: flavour labels must be the integers 0 (light), 4 (c), 5 (b); got dtype {y.dtype}")
    if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
        raise InputError(f"{name}: y contains NaN")
    bad = sorted(set(np.unique(y).tolist()) - set(FLAVOURS.values()))
    if bad:
        raise InputError(f"{name}: unknown flavour label(s) {bad} in y; known: 0 (light), 4 (c), 5 (b)")
    return y.astype(np.int64)


def check_btag_inputs(X, y=None, *, name: str = "jets") -> tuple[np.ndarray, np.ndarray | None]:
    """Validate tagger inputs ``X`` ``(n_jets, n_tracks, 5)`` as :data:`BTAG_FEATURES` (and labels)."""
    X = np.asarray(X)
    d = len(BTAG_FEATURES)
    if X.ndim != 3 or X.shape[-1] != d:
        raise InputError(f"{name}: X must have shape (n_jets, n_tracks, {d}) as ({', '.join(BTAG_FEATURES)}), "
                         f"got {X.shape}")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise InputError(f"{name}: no jets or no track slots (shape {X.shape})")
    if X.dtype.kind not in "iuf":
        raise InputError(f"{name}: X must be numeric, got dtype {X.dtype}")
    X = X.astype(np.float32, copy=False)
    if not np.all(np.isfinite(X)):
        bad = int(np.argmax(~np.all(np.isfinite(X), axis=(1, 2))))
        raise InputError(f"{name}: X contains NaN or infinite values (first in jet {bad})")
    pf = X[:, :, 2]
    if np.any(pf < 0):
        raise InputError(f"{name}: negative track pT fraction (column pt_frac)")
    empty = ~np.any(pf > 0, axis=1)
    if empty.any():
        raise InputError(f"{name}: {int(empty.sum())} jet(s) without tracks (no row with pt_frac > 0), first at "
                         f"index {int(np.argmax(empty))}; track taggers need at least one track per jet")
    g = X[:, :, 4][pf > 0]
    if g.size and not np.all(np.isin(g, np.arange(GRADES))):
        raise InputError(f"{name}: track grade (column grade) must be 0, 1 or 2, got {sorted(set(np.unique(g).tolist()) - {0, 1, 2})[:5]}")
    if y is None:
        return X, None
    return X, check_flavour_labels(y, X.shape[0], name=name)


def tracks_to_inputs(jets: dict, tracks: dict, max_tracks: int = 25) -> np.ndarray:
    """Padded tagger inputs :data:`BTAG_FEATURES` from flat jet/track columns (tracks grouped by jet, the first
    ``max_tracks`` of each jet kept: the largest ``|S_d0|``)."""
    n = jets["jet_pt"].size
    ntr = jets["jet_n_tracks"].astype(np.int64)
    start = np.concatenate([[0], np.cumsum(ntr)])[:-1]
    jet_of = np.repeat(np.arange(n), ntr)
    pos = np.arange(jet_of.size) - start[jet_of]
    ok = pos < max_tracks
    X = np.zeros((n, max_tracks, len(BTAG_FEATURES)), dtype=np.float32)
    j, p = jet_of[ok], pos[ok]
    deta = tracks["trk_eta"][ok] - jets["jet_eta"][j]
    dphi = _delta_phi(tracks["trk_phi"][ok], jets["jet_phi"][j])
    X[j, p, 0] = tracks["trk_s_d0"][ok]
    X[j, p, 1] = tracks["trk_s_z0"][ok]
    X[j, p, 2] = tracks["trk_pt"][ok] / jets["jet_pt"][j]
    X[j, p, 3] = np.hypot(deta, dphi)
    X[j, p, 4] = tracks["trk_grade"][ok]
    return X


def load_btag(source, *, max_jets: int | None = None, max_tracks: int = 25) -> BTagData:
    """Read b-tagging chunk files: a ``.npz`` file, a directory (every ``*.npz`` in it, sorted; hidden names, the
    temporary files of chunks still being written, are skipped) or a list. ``max_tracks`` per jet are kept
    (the largest ``|S_d0|``); bad files raise :class:`~excess.errors.InputError` naming the file."""
    if isinstance(source, (str, os.PathLike)):
        src = Path(source)
        if src.is_dir():
            # hidden names are files being written (atomic_path's temporary names)
            files = sorted(p for p in src.glob("*.npz") if not p.name.startswith("."))
            if not files:
                raise InputError(f"{src}: no .npz files in this directory")
        elif src.is_file():
            files = [src]
        else:
            raise InputError(f"{src}: no such file or directory")
    else:
        files = [Path(f) for f in source]
        if not files:
            raise InputError("load_btag: no files given")
    if max_tracks < 1:
        raise ConfigError(f"max_tracks must be >= 1, got {max_tracks}")
    Xs, ys, js = [], [], []
    n = 0
    for f in files:
        try:
            with np.load(f, allow_pickle=False) as d:
                names = set(getattr(d, "files", []))
                missing = sorted((set(JET_COLUMNS) | set(TRACK_COLUMNS)) - names)
                if missing:
                    raise InputError(f"{f}: not a b-tagging chunk file (missing arrays {missing[:4]}...); write it "
                                     "with `excess tag btag generate`")
                jets = {k: d[k] for k in JET_COLUMNS}
                tracks = {k: d[k] for k in TRACK_COLUMNS}
        except InputError:
            raise
        except (OSError, ValueError, EOFError) as exc:
            raise InputError(f"{f}: not a readable .npz file ({exc})") from None
        if int(jets["jet_n_tracks"].sum()) != tracks["trk_pt"].size:
            raise InputError(f"{f}: jet_n_tracks sums to {int(jets['jet_n_tracks'].sum())} but there are "
                             f"{tracks['trk_pt'].size} tracks")
        X = tracks_to_inputs(jets, tracks, max_tracks)
        X, y = check_btag_inputs(X, jets["jet_label"], name=str(f))
        if max_jets is not None:
            k = max_jets - n
            X, y, jets = X[:k], y[:k], {c: v[:k] for c, v in jets.items()}
        Xs.append(X)
        ys.append(y)
        js.append(jets)
        n += len(y)
        if max_jets is not None and n >= max_jets:
            break
    return BTagData(np.concatenate(Xs), np.concatenate(ys), {k: np.concatenate([j[k] for j in js]) for k in JET_COLUMNS},
                    tuple(str(f) for f in files))
