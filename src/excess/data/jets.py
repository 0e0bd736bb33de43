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

__all__ = ["cluster_events", "cluster_flat", "nsubjettiness", "nsubjettiness_flat", "FlatClustering", "trigger_bound", "delta_phi", "dijet_columns", "derived_features"]

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


def _offsets(counts) -> np.ndarray:
    out = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=out[1:])
    return out


class FlatClustering:
    """One FastJet clustering of many events given as flat numpy arrays, read back as numpy arrays.

    ``px, py, pz, e`` hold the particles of all events back to back, ``offsets`` (length ``n_events + 1``)
    where each event starts. This is the clustering of ``fastjet.ClusterSequence`` on the equivalent
    awkward array (same C++ call, same particle order, hence the same jets bit for bit; tested), without
    building awkward arrays around the inputs and results, which cost more than the clustering itself
    in generation. Falls back to the public awkward interface if the wheel's extension module lacks
    the multi-event entry point.
    """

    def __init__(self, px, py, pz, e, offsets, jetdef):
        import fastjet

        self.offsets = np.ascontiguousarray(offsets, dtype=np.int64)
        arrays = [np.ascontiguousarray(a, dtype=np.float64) for a in (px, py, pz, e)]
        multi = getattr(getattr(fastjet, "_ext", None), "interfacemulti", None)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if multi is not None:
                self._res = multi(*arrays, self.offsets[:-1], self.offsets[1:], jetdef)
                self._cs = None
            else:  # pragma: no cover - depends on the fastjet wheel
                rec = ak.zip(dict(zip(("px", "py", "pz", "E"), arrays)), with_name="Momentum4D")
                self._cs = fastjet.ClusterSequence(ak.unflatten(rec, np.diff(self.offsets)), jetdef)

    @staticmethod
    def _four(arr) -> tuple:
        return tuple(ak.to_numpy(ak.flatten(getattr(arr, f))).astype(np.float64) for f in ("px", "py", "pz", "E")) + (
            _offsets(ak.to_numpy(ak.num(arr, axis=1))),)

    def inclusive_jets(self, min_pt: float) -> tuple:
        """``(px, py, pz, E, offsets)`` of the jets above ``min_pt``, event by event in FastJet's order."""
        if self._cs is not None:  # pragma: no cover
            return self._four(self._cs.inclusive_jets(min_pt=min_pt))
        r = self._res.to_numpy(min_pt)
        return (*(np.asarray(a) for a in r[:4]), np.asarray(r[4], dtype=np.int64))

    def constituent_index(self, min_pt: float) -> tuple:
        """``(jet_offsets, index)``: the constituents of jet ``j`` (in :meth:`inclusive_jets`' order) are the
        particles ``index[jet_offsets[j]:jet_offsets[j + 1]]`` (indices into the flat input arrays)."""
        if self._cs is not None:  # pragma: no cover
            ci = self._cs.constituent_index(min_pt=min_pt)
            per_jet = ak.flatten(ci, axis=1)
            local = ak.to_numpy(ak.flatten(per_jet)).astype(np.int64)
            jet_off = _offsets(ak.to_numpy(ak.num(per_jet, axis=1)))
            ev_jets = ak.to_numpy(ak.num(ci, axis=1))
        else:
            jet_off, local, ev_off = (np.asarray(a, dtype=np.int64) for a in self._res.to_numpy_with_constituents(min_pt))
            start = int(jet_off[0])  # the index array may hold unused entries beyond the last offset
            local, jet_off = local[start : int(jet_off[-1])], jet_off - start
            ev_jets = np.diff(ev_off)
        n_const = np.diff(jet_off)
        event_of_jet = np.repeat(np.arange(len(ev_jets)), ev_jets)
        return jet_off, local + np.repeat(self.offsets[:-1][event_of_jet], n_const)

    def exclusive_jets_up_to(self, n: int) -> tuple:
        """``(px, py, pz, E, offsets)`` of at most ``n`` exclusive jets per event."""
        if self._cs is not None:  # pragma: no cover
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return self._four(self._cs.exclusive_jets_up_to(n))
        r = self._res.to_numpy_exclusive_njet_up_to(int(n))
        return (*(np.asarray(a) for a in r[:4]), np.asarray(r[4], dtype=np.int64))


def nsubjettiness(constituents: ak.Array, n_max: int = 3, betas=(1.0,), axes: str = "wta", r0: float = 1.0) -> dict:
    """N-subjettiness of each jet for N = 1..n_max and each beta.

    Parameters
    ----------
    constituents : awkward Array, jets x var x {px, py, pz, E}
    Returns a dict ``{(N, beta): ndarray (n_jets,)}``. :func:`nsubjettiness_flat` takes flat arrays.
    """
    counts = ak.to_numpy(ak.num(constituents, axis=1))
    flat = ak.flatten(constituents)
    return nsubjettiness_flat(counts, *(np.asarray(a, dtype=np.float64) for a in _fields(flat)), n_max=n_max, betas=betas,
                              axes=axes, r0=r0)


def nsubjettiness_flat(counts, px, py, pz, e, n_max: int = 3, betas=(1.0,), axes: str = "wta", r0: float = 1.0) -> dict:
    """:func:`nsubjettiness` of jets given as flat constituent arrays: jet ``j`` holds ``counts[j]``
    consecutive entries of ``px, py, pz, e``."""
    import fastjet

    counts = np.asarray(counts, dtype=np.int64)
    n_jets = len(counts)
    out: dict = {}
    if n_jets == 0:
        for n in range(1, n_max + 1):
            for b in betas:
                out[(n, b)] = np.zeros(0)
        return out
    pt, rap, phi = _kinematics(px, py, pz, e)
    jet_idx = np.repeat(np.arange(n_jets), counts)
    sum_pt = np.bincount(jet_idx, weights=pt, minlength=n_jets)
    scheme = fastjet.WTA_pt_scheme if axes == "wta" else fastjet.E_scheme
    jetdef = fastjet.JetDefinition(fastjet.kt_algorithm, _EXCLUSIVE_R, scheme)
    cs = FlatClustering(px, py, pz, e, _offsets(counts), jetdef)
    for n in range(1, n_max + 1):
        epx, epy, epz, ee, eoff = cs.exclusive_jets_up_to(n)
        # (n_jets, n) axes; a jet with fewer than n constituents has axes at rapidity +inf (never the closest)
        n_ax = np.diff(eoff)
        col = np.arange(len(epx)) - np.repeat(eoff[:-1], n_ax)
        keep = col < n
        _, erap, ephi = _kinematics(epx[keep], epy[keep], epz[keep], ee[keep])
        arap, aphi = np.full((n_jets, n), np.inf), np.zeros((n_jets, n))
        r_, c_ = np.repeat(np.arange(n_jets), n_ax)[keep], col[keep]
        arap[r_, c_], aphi[r_, c_] = erap, ephi
        # (n_particles, n) squared distances to each axis of the particle's own jet, in place:
        # the same operations as drap**2 + delta_phi(phi, aphi)**2
        dr2 = np.subtract(rap[:, None], arap[jet_idx])
        np.square(dr2, out=dr2)
        dphi = np.subtract(phi[:, None], aphi[jet_idx])
        dphi += np.pi
        np.remainder(dphi, 2 * np.pi, out=dphi)
        dphi -= np.pi
        np.square(dphi, out=dphi)
        dr2 += dphi
        min_dr2 = dr2.min(axis=1) if n > 1 else dr2[:, 0]
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

    :func:`cluster_flat` does the same on flat arrays (what generation calls).
    """
    counts = ak.to_numpy(ak.num(particles, axis=1))
    flat = ak.flatten(particles)
    return cluster_flat(counts, *(np.asarray(a, dtype=np.float64) for a in _fields(flat)), settings=settings, rng=rng)


#: smearing draws per event, by jet rank (jets of rank >= this draw from a per-event stream of their own)
SMEAR_RANKS = 16
#: the jet energy smearing factor is clipped to [0.05, scale * (1 + SMEAR_MAX_SIGMA * resolution)] (8 sigma: never
#: reached in practice, but it makes the trigger veto's bound hold for jets of any rank)
SMEAR_MAX_SIGMA = 8.0


def _smearing_factors(z, settings) -> np.ndarray:
    f = settings.jet_energy_scale * (1.0 + settings.jet_energy_resolution * z)
    return np.clip(f, 0.05, settings.jet_energy_scale * (1.0 + SMEAR_MAX_SIGMA * settings.jet_energy_resolution))


def trigger_bound(counts, px, py, settings, z=None) -> np.ndarray:
    """An upper bound on the largest (smeared) jet pT of each event, from its particles alone.

    A jet's pT is the norm of the vector sum of its constituents' transverse momenta ``p_i``, so it is at
    most ``T = max over subsets A |sum_A p_i| = max over unit vectors n of sum_i max(p_i.n, 0)``. Since
    ``max(c, 0) <= ((1 + c) / 2)^2`` for ``c`` in [-1, 1], with ``c = cos`` of the angle between ``p_i`` and n,
    ``sum_i max(p_i.n, 0) <= (HT + 2 S.n + n.Q.n) / 4 <= (HT + 2 |S| + lambda_max(Q)) / 4``, where ``HT`` is
    the scalar sum of the ``|p_i|``, ``S`` their vector sum and ``Q = sum_i p_i p_i^T / |p_i|`` (a 2x2
    matrix): three sums per event, no clustering. The jets are disjoint, so the jet of rank r
    (0 = hardest) also has pT <= HT / (r + 1). Each jet's smearing
    factor is known before clustering (``z``, the draws by rank, see :func:`cluster_flat`) and is
    clipped above, which bounds jets beyond the drawn ranks.
    """
    counts = np.asarray(counts, dtype=np.int64)
    n = len(counts)
    ev = np.repeat(np.arange(n), counts)
    pt = np.hypot(px, py)
    ht = np.bincount(ev, weights=pt, minlength=n)
    s_norm = np.hypot(np.bincount(ev, weights=px, minlength=n), np.bincount(ev, weights=py, minlength=n))
    w = np.divide(1.0, pt, out=np.zeros_like(pt), where=pt > 0)
    qxx, qyy, qxy = (np.bincount(ev, weights=a * b * w, minlength=n) for a, b in ((px, px), (py, py), (px, py)))
    lam = 0.5 * (qxx + qyy) + np.sqrt(0.25 * (qxx - qyy) ** 2 + qxy**2)
    t = 0.25 * (ht + 2.0 * s_norm + lam)
    if z is None:  # no resolution: one scale factor for every jet
        f = float(np.clip(settings.jet_energy_scale, 0.05, None)) if settings.jet_energy_scale != 1.0 else 1.0
        return f * t
    k = z.shape[1]
    u = np.minimum(t[:, None], ht[:, None] / np.arange(1, k + 1))  # bound on the unsmeared pT of rank r
    beyond = _smearing_factors(np.full(n, np.inf), settings) * np.minimum(t, ht / (k + 1))
    return np.maximum((_smearing_factors(z, settings) * u).max(1), beyond)


def cluster_flat(counts, px, py, pz, e, settings, rng: np.random.Generator | None = None, *,
                 veto: bool = True) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """:func:`cluster_events` of events given as flat arrays: event ``i`` holds ``counts[i]`` consecutive
    entries of ``px, py, pz, e``.

    Jet energy smearing (``settings.jet_energy_resolution > 0``): ``rng`` draws, for every event,
    :data:`SMEAR_RANKS` standard normals, used by the event's jets in order of decreasing unsmeared pT
    (and one key for the per-event streams of jets of higher rank), before anything is clustered; the
    factor is ``scale * (1 + resolution * z)`` clipped to ``[0.05, scale * (1 + 8 resolution)]``.

    ``veto`` skips the clustering of events whose :func:`trigger_bound` is below the trigger threshold:
    they cannot pass, and since every event's draws are made whether or not it is clustered, the
    output is the same with and without the veto (tested), only faster.
    """
    import fastjet

    from .schema import beta_tag

    counts = np.asarray(counts, dtype=np.int64)
    n_events = len(counts)
    smear = settings.jet_energy_resolution > 0
    z = key = None
    if smear:
        if rng is None:
            raise ValueError("cluster_events needs rng when jet_energy_resolution > 0")
        z = rng.standard_normal((n_events, SMEAR_RANKS))
        key = int(rng.integers(0, 2**63))
    passed = np.zeros(n_events, dtype=bool)
    keep = np.arange(n_events)
    if veto and n_events:
        # a relative margin far above rounding: a vetoed event's jets are below the threshold by more
        bound = trigger_bound(counts, px, py, settings, z)
        may_pass = bound >= settings.leading_pt_min * (1.0 - 1e-9)
        keep = np.flatnonzero(may_pass)
        if len(keep) < n_events:
            sel = np.repeat(may_pass, counts)
            counts, px, py, pz, e = counts[keep], px[sel], py[sel], pz[sel], e[sel]
    n_kept = len(keep)
    if n_kept == 0:
        return passed, {}
    p_off = _offsets(counts)
    jetdef = fastjet.JetDefinition(fastjet.antikt_algorithm, settings.jet_radius)
    cs = FlatClustering(px, py, pz, e, p_off, jetdef)
    jpx, jpy, jpz, je, j_off = cs.inclusive_jets(settings.jet_pt_min)
    n_jets = np.diff(j_off)
    event_of_jet = np.repeat(np.arange(n_kept), n_jets)
    if smear or settings.jet_energy_scale != 1.0:
        # jet-level response: the whole four-momentum (pT, E and mass) scaled per jet, before the selection
        if smear:
            by_pt = np.lexsort((-np.hypot(jpx, jpy), event_of_jet))  # unsmeared rank within the event
            rank = np.empty(len(jpx), dtype=np.int64)
            rank[by_pt] = np.arange(len(jpx)) - j_off[:-1][event_of_jet[by_pt]]
            zj = np.empty(len(jpx))
            low = rank < SMEAR_RANKS
            zj[low] = z[keep[event_of_jet[low]], rank[low]]
            for j in np.flatnonzero(~low):  # rare: more than SMEAR_RANKS jets above jet_pt_min
                ev = int(keep[event_of_jet[j]])
                zj[j] = np.random.default_rng([key, ev, int(rank[j])]).standard_normal()
            f = _smearing_factors(zj, settings)
        else:
            f = np.full(len(jpx), max(settings.jet_energy_scale, 0.05))
        jpx, jpy, jpz, je = jpx * f, jpy * f, jpz * f, je * f
    jpt = np.hypot(jpx, jpy)
    # jets by decreasing pT within each event (ties keep FastJet's order, as a stable sort does)
    order = np.lexsort((-jpt, event_of_jet))
    jp = np.sqrt(jpx**2 + jpy**2 + jpz**2)
    jeta = np.arctanh(jpz / np.maximum(jp, 1e-12))
    hard = (jpt > settings.leading_pt_min) & (abs(jeta) < settings.leading_eta_max)
    trigger = np.bincount(event_of_jet[hard], minlength=n_kept) > 0
    ok = (n_jets >= 2) & trigger
    passed[keep[ok]] = True
    if not ok.any():
        return passed, {}
    first = j_off[:-1][ok]
    j1, j2 = order[first], order[first + 1]  # the two leading jets of each passed event
    cols: dict[str, np.ndarray] = {"n_jets": n_jets[ok].astype(np.int16)}
    cols.update(dijet_columns((jpx[j1], jpy[j1], jpz[j1], je[j1]), (jpx[j2], jpy[j2], jpz[j2], je[j2])))
    # N-subjettiness of both leading jets in one reclustering pass (jets stacked: first all jet1, then jet2)
    n_pass = int(ok.sum())
    c_off, c_idx = cs.constituent_index(settings.jet_pt_min)
    sel = np.concatenate([j1, j2])
    n_const = c_off[sel + 1] - c_off[sel]
    pos = np.repeat(c_off[sel] - _offsets(n_const)[:-1], n_const) + np.arange(int(n_const.sum()))
    parts = c_idx[pos]
    n_max = 9 if settings.extended_nsubjettiness else 3
    betas = (0.5, 1.0, 2.0) if settings.extended_nsubjettiness else (1.0,)
    taus = nsubjettiness_flat(n_const, px[parts], py[parts], pz[parts], e[parts], n_max=n_max, betas=betas,
                              axes=settings.axes)
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
