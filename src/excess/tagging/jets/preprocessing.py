"""Jet representations from EnergyFlow-format constituents ``X`` ``(N, M, 4)`` = zero-padded ``(pT, y, phi, pid)``.

* :func:`centre` -- pT fractions ``z`` and ``(y, phi)`` relative to the pT-weighted centroid (``phi`` unwrapped
  around the hardest particle first), as EnergyFlow's PFN preprocessing;
* :func:`particle_features` -- per-particle PFN inputs ``(z, dy, dphi)`` plus, with ``use_pid``, the charge and
  a one-hot particle type (photon, pion, kaon, proton, neutron, K_L, electron, muon, other);
* :func:`jet_images` -- 33 x 33 pixels over 0.8 x 0.8 in ``(y, phi)`` (1612.01551), channels charged pT,
  neutral pT (as fractions of the jet pT) and charged multiplicity; centred on the centroid, rotated so the
  principal axis of the pT-weighted (y, phi) distribution is vertical, flipped so the pT-weighted third
  moments along both image axes are non-negative: a rotated or reflected jet gives the same image;
* :func:`jet_observables` -- mass (massless constituents), multiplicity, charged multiplicity, width
  ``sum z dR``, ``pT_D = sqrt(sum pT^2) / sum pT``, N-subjettiness ratios tau21, tau32 (beta = 1, winner-take-all
  kt axes, :func:`excess.data.jets.nsubjettiness`).
"""

from __future__ import annotations

import numpy as np

from ...data.jets import delta_phi

__all__ = ["PARTICLE_TYPES", "centre", "particle_features", "jet_images", "jet_observables", "OBSERVABLES",
           "charge_of"]

# |PDG id| -> (type index, |charge|) for the stable final state of Pythia 8 (defaults)
PARTICLE_TYPES = ("photon", "pion", "kaon", "proton", "neutron", "k_long", "electron", "muon", "other")
_TYPE = {22: 0, 211: 1, 321: 2, 2212: 3, 2112: 4, 130: 5, 11: 6, 13: 7}
_CHARGED = (211, 321, 2212, 11, 13, 3112, 3222, 3312, 3334)
OBSERVABLES = ("mass", "multiplicity", "charged_multiplicity", "width", "ptd", "tau21", "tau32")


def charge_of(pid: np.ndarray) -> np.ndarray:
    """Electric charge (-1, 0, +1) from the PDG id (leptons: negative id is positive charge)."""
    pid = np.asarray(pid).astype(np.int64)
    a = np.abs(pid)
    q = np.where(np.isin(a, _CHARGED), np.sign(pid), 0)
    return np.where(np.isin(a, (11, 13)), -q, q).astype(np.float64)


def centre(X: np.ndarray):
    """``(z, dy, dphi, mask)``: pT fractions and angles relative to the pT-weighted centroid (zero in padding)."""
    X = np.asarray(X, dtype=np.float64)
    pt, y, phi = X[..., 0], X[..., 1], X[..., 2]
    mask = pt > 0
    z = pt / pt.sum(axis=1, keepdims=True)
    lead = phi[np.arange(len(X)), np.argmax(pt, axis=1)][:, None]
    phi_u = lead + delta_phi(phi, lead)
    yc = (z * y).sum(axis=1, keepdims=True)
    pc = (z * phi_u).sum(axis=1, keepdims=True)
    dy = np.where(mask, y - yc, 0.0)
    dphi = np.where(mask, phi_u - pc, 0.0)
    return z, dy, dphi, mask


def particle_features(X: np.ndarray, *, use_pid: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """``(features (N, M, d), mask (N, M))``; ``d`` = 3, or 3 + 1 + 9 with ``use_pid``."""
    z, dy, dphi, mask = centre(X)
    feats = [z, dy, dphi]
    if use_pid:
        pid = np.asarray(X)[..., 3].astype(np.int64)
        a = np.abs(pid)
        t = np.full(a.shape, len(PARTICLE_TYPES) - 1)
        for k, v in _TYPE.items():
            t[a == k] = v
        onehot = np.eye(len(PARTICLE_TYPES))[t] * mask[..., None]
        feats = [*feats, charge_of(pid) * mask]
        return np.concatenate([np.stack(feats, axis=-1), onehot], axis=-1).astype(np.float32), mask
    return np.stack(feats, axis=-1).astype(np.float32), mask


def _align(z, dy, dphi, mask, rotate: bool, flip: bool):
    u, v = dy, dphi
    if rotate:
        cxx = (z * u * u).sum(1)
        cyy = (z * v * v).sum(1)
        cxy = (z * u * v).sum(1)
        theta = 0.5 * np.arctan2(2 * cxy, cxx - cyy)  # angle of the principal axis from the y axis
        ang = (np.pi / 2 - theta)[:, None]  # rotate it onto the phi (vertical) axis
        c, s = np.cos(ang), np.sin(ang)
        u, v = c * u - s * v, s * u + c * v
    if flip:
        u = np.where(((z * u**3).sum(1) < 0)[:, None], -u, u)
        v = np.where(((z * v**3).sum(1) < 0)[:, None], -v, v)
    return np.where(mask, u, 0.0), np.where(mask, v, 0.0)


def jet_images(X: np.ndarray, *, n_pixels: int = 33, width: float = 0.8, rotate: bool = True,
               flip: bool = True) -> np.ndarray:
    """Images ``(N, 3, n_pixels, n_pixels)`` (float32): charged pT, neutral pT, charged multiplicity.

    Axis 2 is the rotated phi direction (the principal axis), axis 3 the rotated y direction. Particles
    outside the ``width`` x ``width`` window are dropped (their pT still counts in the normalisation).
    """
    X = np.asarray(X, dtype=np.float64)
    z, dy, dphi, mask = centre(X)
    u, v = _align(z, dy, dphi, mask, rotate, flip)
    charged = charge_of(X[..., 3]) != 0
    pix = width / n_pixels
    iu = np.floor((u + width / 2) / pix).astype(np.int64)
    iv = np.floor((v + width / 2) / pix).astype(np.int64)
    inside = mask & (iu >= 0) & (iu < n_pixels) & (iv >= 0) & (iv < n_pixels)
    n = len(X)
    img = np.zeros((n, 3, n_pixels, n_pixels), dtype=np.float32)
    jet = np.broadcast_to(np.arange(n)[:, None], mask.shape)
    ch = np.where(charged, 0, 1)
    np.add.at(img, (jet[inside], ch[inside], iv[inside], iu[inside]), z[inside].astype(np.float32))
    sel = inside & charged
    np.add.at(img, (jet[sel], np.full(int(sel.sum()), 2), iv[sel], iu[sel]), 1.0)
    return img


def jet_observables(X: np.ndarray) -> np.ndarray:
    """``(N, 7)`` observables in the order of :data:`OBSERVABLES`."""
    import awkward as ak

    from ...data.jets import nsubjettiness, tau_ratio
    from ...data.generate import silence_stdout

    X = np.asarray(X, dtype=np.float64)
    pt, y, phi = X[..., 0], X[..., 1], X[..., 2]
    mask = pt > 0
    px, py, pz, e = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(y), pt * np.cosh(y)
    msum = lambda a: np.where(mask, a, 0.0).sum(1)  # noqa: E731
    mass = np.sqrt(np.maximum(msum(e) ** 2 - msum(px) ** 2 - msum(py) ** 2 - msum(pz) ** 2, 0.0))
    z, dy, dphi, _ = centre(X)
    width = (z * np.hypot(dy, dphi)).sum(1)
    ptd = np.sqrt((pt**2).sum(1)) / pt.sum(1)
    mult = mask.sum(1)
    cmult = (mask & (charge_of(X[..., 3]) != 0)).sum(1)
    counts = mult
    flat = mask.ravel()
    consts = ak.unflatten(ak.zip({"px": px.ravel()[flat], "py": py.ravel()[flat], "pz": pz.ravel()[flat],
                                  "E": e.ravel()[flat]}, with_name="Momentum4D"), counts)
    with silence_stdout():
        taus = nsubjettiness(consts, n_max=3, betas=(1.0,), axes="wta")
    tau21 = tau_ratio(taus[(2, 1.0)], taus[(1, 1.0)])
    tau32 = tau_ratio(taus[(3, 1.0)], taus[(2, 1.0)])
    return np.column_stack([mass, mult, cmult, width, ptd, tau21, tau32])
