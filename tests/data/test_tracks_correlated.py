"""Third pass of the track-level detector model: latents, tails, TRT extension, conversions, overlaps, clusters."""

import dataclasses

import numpy as np
import pytest

from excess.data.tracks import TrackDetector, conversion_radius, simulate_tracks
from excess.errors import InputError

DET = TrackDetector()


def _gun(n, pid, pt, eta=0.3, seed=0, det=DET, **kw):
    rng = np.random.default_rng(seed)
    return simulate_tracks(np.full(n, pt), np.full(n, eta), rng.uniform(-np.pi, np.pi, n), np.full(n, pid),
                           detector=det, random_state=seed + 1, **kw)


def _rank_corr(x, y):
    ok = np.isfinite(x) & np.isfinite(y)
    rx, ry = np.argsort(np.argsort(x[ok])), np.argsort(np.argsort(y[ok]))
    return np.corrcoef(rx, ry)[0, 1]


def test_hadron_shower_latent_correlates_calorimeter_variables():
    # pi0-rich (EM-like) showers: more visible energy (E/p) and narrower (R_eta) together
    on = _gun(6000, 211, 3.0, seed=1)
    off = _gun(6000, 211, 3.0, seed=1, det=dataclasses.replace(DET, shower_latent_rho=0.0))
    c_on = _rank_corr(on["e_over_p"].to_numpy(), on["reta"].to_numpy())
    c_off = _rank_corr(off["e_over_p"].to_numpy(), off["reta"].to_numpy())
    assert c_on > c_off + 0.1


def test_shape_tails_are_heavier_than_gaussian_at_equal_width():
    t = _gun(8000, 11, 3.0, seed=2)
    g = _gun(8000, 11, 3.0, seed=2, det=dataclasses.replace(DET, shape_tail_dof=None))

    def kurt(x):
        x = x[np.isfinite(x)]
        x = (x - x.mean()) / x.std()
        return np.mean(x**4)

    assert kurt(t["deta1"].to_numpy()) > kurt(g["deta1"].to_numpy()) + 1.0
    with pytest.raises(InputError, match="shape_tail_dof"):
        _gun(10, 11, 1.0, det=dataclasses.replace(DET, shape_tail_dof=2.0))


def test_trt_extension_is_lost_more_often_after_bremsstrahlung():
    e = _gun(6000, 11, 1.0, eta=0.5, seed=3)
    lost = e["brem_fraction"].to_numpy() > 0.5
    miss = ~e["has_trt"].to_numpy()
    assert miss[lost].mean() > miss[~lost].mean() + 0.15
    none = _gun(6000, 11, 1.0, eta=0.5, seed=3,
                det=dataclasses.replace(DET, trt_ext_ineff_base=0.0, trt_ext_ineff_slope=0.0))
    assert (~none["has_trt"]).mean() < miss.mean() - 0.05


def test_conversions_happen_at_the_material_layers():
    r = conversion_radius(20_000, DET, random_state=4)
    near = np.min(np.abs(r[:, None] - np.asarray(DET.conversion_layers_mm)[None, :]), axis=1)
    assert np.mean(near < 3 * DET.conversion_layer_smear_mm) > 0.99
    uni = conversion_radius(20_000, dataclasses.replace(DET, conversion_layers_mm=None), random_state=4)
    near_u = np.min(np.abs(uni[:, None] - np.asarray(DET.conversion_layers_mm)[None, :]), axis=1)
    assert np.mean(near_u < 3 * DET.conversion_layer_smear_mm) < 0.3


def test_overlapping_hadrons_raise_e_over_p_and_rhad():
    n = 4000
    alone = _gun(n, 11, 2.0, seed=5)
    crowded = _gun(n, 11, 2.0, seed=5, e_overlap_had_gev=np.full(n, 3.0))
    assert np.nanmedian(crowded["e_over_p"]) > np.nanmedian(alone["e_over_p"]) + 0.3
    assert np.nanmedian(crowded["rhad"]) > np.nanmedian(alone["rhad"]) + 0.1
    with pytest.raises(InputError, match="e_overlap_had_gev"):
        _gun(10, 11, 1.0, e_overlap_had_gev=np.full(10, -1.0))


def test_cluster_threshold_removes_mip_pions_from_the_calorimeter_categories():
    # a 2 GeV MIP pion deposits ~0.25 GeV: below the 0.4 GeV cluster E_T; electrons keep their cluster
    pi = _gun(4000, 211, 2.0, seed=6)
    pi0 = _gun(4000, 211, 2.0, seed=6, det=dataclasses.replace(DET, calo_cluster_et_min_gev=0.0))
    e = _gun(4000, 11, 2.0, seed=7)
    assert pi0["has_calo"].mean() > 0.99
    assert pi["has_calo"].mean() < pi0["has_calo"].mean() - 0.1
    assert e["has_calo"].mean() > 0.95
