"""Synthetic semi-visible-jet samples in the contract of ``excess.data.svj.read_svj`` (for tests only).

``make_svj(n_bkg, points, n_sig)`` returns an object with ``.events`` (the contract columns) and ``.tracks``
``(N, 160, 8)``: up to 80 pT-sorted tracks per jet, leading jet first, padding rows zero. QCD jets have fewer,
harder, narrower tracks; a signal point's jets have more, softer, wider tracks and larger impact parameters,
more so at small r_inv (more visible dark hadrons), and an mT peak near 0.8 m_Z'. QCD mT falls like a dijet
spectrum.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

MAX_PER_JET = 80


@dataclass
class Sample:
    events: pd.DataFrame
    tracks: np.ndarray


def _jet_tracks(rng, n, mean_ntrk, pt_scale, width, d0_sigma, jet, eta0, phi0):
    out = np.zeros((n, MAX_PER_JET, 8), np.float32)
    ntrk = np.clip(rng.poisson(mean_ntrk, n), 3, MAX_PER_JET)
    for i in range(n):
        k = ntrk[i]
        pt = np.sort(rng.exponential(pt_scale, k) + 1.0)[::-1]
        eta = eta0[i] + rng.normal(0, width, k)
        phi = phi0[i] + rng.normal(0, width, k)
        e = pt * np.cosh(eta)
        d0 = rng.normal(0, d0_sigma, k)
        z0 = rng.normal(0, 2 * d0_sigma, k)
        q = rng.choice([-1.0, 1.0], k)
        out[i, :k] = np.column_stack([pt, eta, phi, e, d0, z0, q / e, np.full(k, jet)])
    return out


def _events(rng, n, kind, point=None):
    if kind == "qcd":
        mT = 1000.0 + rng.exponential(700.0, n)
        mean_ntrk, pt_scale, width, d0s = 14.0, 25.0, 0.04, 0.02
        m_zp = r_inv = m_dark = np.full(n, np.nan)
        label = np.zeros(n, np.int8)
    else:
        mzp, rinv, mdark = point
        mT = rng.normal(0.8 * mzp, 0.08 * mzp, n)
        mean_ntrk, pt_scale, width, d0s = 14.0 + 20.0 * (1 - rinv), 12.0, 0.04 + 0.08 * (1 - rinv), 0.02 + 0.05 * (1 - rinv)
        m_zp, r_inv, m_dark = np.full(n, mzp), np.full(n, rinv), np.full(n, mdark)
        label = np.ones(n, np.int8)
    eta = rng.normal(0, 1.0, (n, 2))
    phi = rng.uniform(-np.pi, np.pi, n)
    phi2 = (phi + np.pi + np.pi) % (2 * np.pi) - np.pi
    tr = np.concatenate([_jet_tracks(rng, n, mean_ntrk, pt_scale, width, d0s, 0, eta[:, 0], phi),
                         _jet_tracks(rng, n, mean_ntrk * 0.8, pt_scale, width, d0s, 1, eta[:, 1], phi2)], axis=1)
    ntrk = (tr[..., 0] > 0).reshape(n, 2, MAX_PER_JET).sum(-1)
    ev = {"mT": mT, "met": rng.exponential(200, n), "met_phi": rng.uniform(-np.pi, np.pi, n), "mjj": 0.9 * mT,
          "dphi_min": rng.uniform(0, 1, n)}
    for j, (e_, p_) in enumerate(((eta[:, 0], phi), (eta[:, 1], phi2)), start=1):
        ev.update({f"pt_j{j}": mT / 2.5, f"eta_j{j}": e_, f"phi_j{j}": p_,
                   f"m_j{j}": rng.gamma(4, 20 * (1 + (kind != "qcd")), n),
                   f"tau21_j{j}": rng.beta(5, 3, n), f"tau32_j{j}": rng.beta(6, 3, n),
                   f"ntrk_j{j}": ntrk[:, j - 1].astype(float), f"ptd_j{j}": rng.beta(3, 5, n)})
    ev.update({"label": label, "m_zprime": m_zp, "r_inv": r_inv, "m_dark": m_dark})
    return pd.DataFrame(ev), tr


def make_svj(n_bkg: int = 400, points=((2000.0, 0.3, 20.0),), n_sig: int = 200, seed: int = 0) -> Sample:
    rng = np.random.default_rng(seed)
    parts = [_events(rng, n_bkg, "qcd")] if n_bkg else []
    parts += [_events(rng, n_sig, "sig", p) for p in points]
    ev = pd.concat([p[0] for p in parts], ignore_index=True)
    return Sample(ev, np.concatenate([p[1] for p in parts]))


def write_sample(sample: Sample, path) -> None:
    """An npz file that :func:`read_sample` reads (the fake reader of the tests)."""
    np.savez(path, tracks=sample.tracks, **{c: sample.events[c].to_numpy() for c in sample.events.columns})


def read_sample(path) -> Sample:
    from excess.errors import InputError

    try:
        z = np.load(path)
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read ({exc})") from None
    cols = [k for k in z.files if k != "tracks"]
    return Sample(pd.DataFrame({c: z[c] for c in cols}), z["tracks"])
