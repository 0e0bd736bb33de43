"""Properties of the track-level detector model (excess.data.tracks)."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from excess.data.tracks import (
    CALO_FEATURES,
    CATEGORIES,
    TRT_FEATURES,
    TrackDetector,
    bethe_heitler_fraction,
    category_features,
    conversion_probability,
    convert_photons,
    p_ht,
    radial_reach_mm,
    resolution,
    simulate_tracks,
    tracking_efficiency,
)
from excess.errors import InputError

DET = TrackDetector()
# geometry only: no TRT-extension inefficiency and no cluster-energy threshold (third pass)
GEOM = TrackDetector(trt_ext_ineff_base=0.0, trt_ext_ineff_slope=0.0, calo_cluster_et_min_gev=0.0)


def _gun(n, pid, pt, eta=0.0, seed=0, **kw):
    rng = np.random.default_rng(seed)
    pt = np.full(n, pt) if np.isscalar(pt) else pt
    eta = np.full(n, eta) if np.isscalar(eta) else eta
    return simulate_tracks(pt, eta, rng.uniform(-np.pi, np.pi, n), np.full(n, pid), random_state=seed + 1, **kw)


def test_resolution_formula_values():
    # JINST 3 S08003: sigma(d0) ~ 280/140/71/30 um at pT 0.5/1/2/5 GeV (central)
    got = resolution(np.array([0.5, 1.0, 2.0, 5.0]), 0.010, 14.0) * 1000
    np.testing.assert_allclose(got, [280, 140, 71, 30], rtol=0.03)


@pytest.mark.parametrize("pt", [0.6, 1.5, 4.0])
def test_d0_and_qpt_spread_follow_the_formula(pt):
    t = _gun(40_000, 211, pt, eta=0.25, seed=3)
    expect_d0 = resolution(pt, DET.d0_sigma_inf_mm[0], DET.d0_p_x[0])
    assert np.std(t["d0"]) == pytest.approx(expect_d0, rel=0.03)
    expect_z0 = resolution(pt, DET.z0_sigma_inf_mm, DET.z0_p_x)
    assert np.std(t["z0sintheta"]) == pytest.approx(expect_z0, rel=0.03)
    # q/pT of a hadron (no brem): spread of 1/pt_fit around 1/pt
    inv = t["charge"].to_numpy() / t["pt"].to_numpy()
    assert np.std(inv) == pytest.approx(resolution(pt, DET.qpt_sigma_inf, DET.qpt_p_x), rel=0.05)


def test_resolution_grows_at_low_pt():
    lo, hi = _gun(20_000, 211, 0.6, seed=1), _gun(20_000, 211, 4.0, seed=2)
    assert np.std(lo["d0"]) > 3 * np.std(hi["d0"])


def test_bethe_heitler_mean_is_exp_minus_t():
    rng = np.random.default_rng(0)
    for t in (0.2, 1.0):
        z = bethe_heitler_fraction(np.full(200_000, t), rng)
        assert z.mean() == pytest.approx(np.exp(-t), rel=0.01)
    assert np.all(bethe_heitler_fraction(np.zeros(10), rng) == 1.0)


def test_bremsstrahlung_lowers_fitted_momentum_of_electrons_only():
    e, pi = _gun(20_000, 11, 3.0, eta=1.0, seed=4), _gun(20_000, 211, 3.0, eta=1.0, seed=5)
    assert np.median(e["pt"]) < 0.9 * 3.0
    assert np.median(pi["pt"]) == pytest.approx(3.0, rel=0.01)
    assert np.median(e["dpoverp"]) > 0.2 > abs(np.median(pi["dpoverp"]))
    # more material (higher |eta|) -> larger bias
    e0 = _gun(20_000, 11, 3.0, eta=0.0, seed=6)
    assert np.median(e["pt"]) < np.median(e0["pt"])
    assert e["brem_fraction"].mean() > e0["brem_fraction"].mean() > 0


def test_ht_probability_rises_with_gamma_and_matches_published_points():
    gam = np.logspace(0, 5, 50)
    p = p_ht(gam, DET.ht_barrel)
    assert np.all(np.diff(p) >= 0) and p[-1] - p[0] > 0.1
    me, mpi = 0.000511, 0.13957
    assert p_ht(np.hypot(1.0, mpi) / mpi, DET.ht_barrel) == pytest.approx(0.074, abs=0.002)
    got = [p_ht(np.hypot(x, me) / me, DET.ht_barrel) for x in (0.5, 1.0, 2.0, 5.0)]
    np.testing.assert_allclose(got, [0.118, 0.167, 0.207, 0.226], atol=0.003)
    # and the simulated HT fraction is higher for electrons than pions
    e, pi = _gun(5000, 11, 2.0, seed=7), _gun(5000, 211, 2.0, seed=8)
    assert np.nanmean(e["f_ht"]) > np.nanmean(pi["f_ht"]) + 0.05


def test_curling_removes_low_pt_tracks_from_trt_and_calo():
    # 2R = 2 pT / (0.3 B): 0.15 GeV reaches 500 mm (inside the TRT's 563 mm); 0.3 GeV does not reach 1.4 m
    assert radial_reach_mm(0.15) == pytest.approx(500.0)
    slow = _gun(3000, 211, 0.15, seed=9, detector=GEOM)
    assert not slow["has_trt"].any() and not slow["has_calo"].any()
    mid = _gun(3000, 211, 0.35, seed=10, detector=GEOM)
    assert mid["has_trt"].mean() > 0.9 and not mid["has_calo"].any()
    fast = _gun(3000, 211, 2.0, seed=11, detector=GEOM)
    assert fast["has_trt"].mean() > 0.95 and fast["has_calo"].mean() > 0.99
    # a curling track crosses fewer TRT straws
    assert np.nanmean(_gun(3000, 211, 0.25, seed=12, detector=GEOM)["n_trt"]) < 0.8 * np.nanmean(fast["n_trt"])


def test_acceptance_edges():
    fwd = _gun(2000, 211, 3.0, eta=2.2, seed=13, detector=GEOM)  # beyond the TRT, inside the calorimeter
    assert not fwd["has_trt"].any() and fwd["has_calo"].all()
    # the barrel-endcap transition is read out (fourth pass); as a hole it gives no calorimeter variables
    crack = _gun(2000, 211, 3.0, eta=1.45, seed=14, detector=GEOM)
    assert crack["has_calo"].mean() > 0.99
    hole = _gun(2000, 211, 3.0, eta=1.45, seed=14, detector=dataclasses.replace(GEOM, crack_has_calo=False))
    assert not hole["has_calo"].any()
    tracking = ["reco", "pt", "d0", "z0sintheta", "n_ibl", "n_pix", "n_sct", "dpoverp", "n_trt", "charge"]
    pd.testing.assert_frame_equal(crack[tracking], hole[tracking])  # only the calorimeter changes
    assert tracking_efficiency(np.array([211]), np.array([3.0]), np.array([2.6]))[0] == 0.0


def test_categories_exhaustive_and_consistent():
    rng = np.random.default_rng(0)
    n = 20_000
    pid = rng.choice([11, -11, 211, -211, 321, 2212], n)
    t = simulate_tracks(rng.uniform(0.1, 5, n), rng.uniform(-2.5, 2.5, n), rng.uniform(-3, 3, n), pid,
                        random_state=1)
    assert set(t["category"].cat.categories) == set(CATEGORIES)
    assert t["category"].notna().all() and len(t) == n
    for cat in CATEGORIES:
        sub = t[t["category"] == cat]
        assert len(sub) > 0
        assert (sub["has_trt"] == cat.startswith("trt")).all()
        assert (sub["has_calo"] == cat.endswith("_calo")).all()
        feats = category_features(cat)
        assert sub[list(feats)].notna().all().all()
        absent = [c for c in TRT_FEATURES + CALO_FEATURES if c not in feats]
        assert sub[absent].isna().all().all()


def test_category_fractions_of_electrons_follow_acceptance_and_thresholds():
    rng = np.random.default_rng(3)
    n = 20_000
    args = (rng.uniform(0.5, 5, n), rng.uniform(-2.5, 2.5, n), rng.uniform(-3, 3, n), np.full(n, 11))
    full, geom = (simulate_tracks(*args, detector=d, random_state=4) for d in (DET, GEOM))
    full, geom = full[full["reco"]], geom[geom["reco"]]
    frac = full["category"].value_counts(normalize=True)
    fwd = full["true_eta"].abs() > 2.0
    assert not full.loc[fwd, "has_trt"].any()  # beyond the TRT
    assert frac["notrt_calo"] + frac["notrt_nocalo"] > fwd.mean() + 0.05  # plus lost TRT extensions
    assert frac.idxmax() == "trt_calo" and (frac > 0.01).all()
    # the TRT-extension loss and the cluster threshold move electrons out of trt_calo
    gfrac = geom["category"].value_counts(normalize=True)
    assert gfrac["trt_calo"] > frac["trt_calo"] + 0.1
    crack = full["true_eta"].abs().between(1.38, 1.51)
    assert full.loc[crack, "has_calo"].mean() > 0.6  # the transition region is read out


def test_tracking_pt_threshold_drops_electrons_that_radiated_below_it():
    # fifth pass: reco needs a fitted pT above 0.4 GeV; nothing else changes (no random draw depends on it)
    args = (np.full(20_000, 1.0), np.full(20_000, 1.6), np.zeros(20_000))
    cut, off = (simulate_tracks(*args, np.full(20_000, 11), detector=d, random_state=7)
                for d in (DET, dataclasses.replace(DET, track_pt_min_gev=0.0)))
    assert DET.track_pt_min_gev == 0.4
    pd.testing.assert_frame_equal(cut.drop(columns="reco"), off.drop(columns="reco"))
    assert (cut["reco"] == (off["reco"] & (off["pt"] > 0.4))).all()
    lost = off["reco"] & ~cut["reco"]
    assert lost.mean() > 0.02 and off.loc[lost, "brem_fraction"].min() > 0.5  # heavy radiators only
    assert (off.loc[lost, "category"] == "notrt_nocalo").mean() > 0.5  # where the fourth pass put them
    # pions of the same true pT fit at their pT: none lost
    pcut, poff = (simulate_tracks(*args, np.full(20_000, 211), detector=d, random_state=7)
                  for d in (DET, dataclasses.replace(DET, track_pt_min_gev=0.0)))
    assert (pcut["reco"] == poff["reco"]).all()


def test_electron_vs_pion_calorimeter_response():
    e, pi = _gun(5000, 11, 3.0, eta=0.3, seed=15), _gun(5000, 211, 3.0, eta=0.3, seed=16)
    assert np.nanmedian(e["e_over_p"]) > 0.8 > np.nanmedian(pi["e_over_p"])
    assert np.nanmedian(e["rhad"]) < np.nanmedian(pi["rhad"])
    assert np.nanmedian(e["reta"]) > np.nanmedian(pi["reta"])


def test_conversions_are_displaced_and_miss_inner_hits():
    rng = np.random.default_rng(1)
    n = 50_000
    conv = convert_photons(rng.uniform(1, 5, n), rng.uniform(-2.5, 2.5, n), rng.uniform(-3, 3, n),
                           random_state=2)
    m = len(conv["pt"]) // 2
    frac = m / n
    assert 0.1 < frac < 0.6  # 1 - exp(-7 t/9) with t ~ 0.25-1.1 X0 of silicon material
    assert conversion_probability(0.0) == 0.0
    t = simulate_tracks(conv["pt"], conv["eta"], conv["phi"], conv["pid"], r_prod_mm=conv["r_prod_mm"],
                        d0_true_mm=conv["d0_true_mm"], random_state=3)
    late = conv["r_prod_mm"] > 60
    assert (t["n_ibl"][late] == 0).all()
    assert np.median(np.abs(t["d0"][late])) > 0.5
    assert not t["reco"][conv["r_prod_mm"] > 380].any()  # fewer than 7 silicon hits


def test_seeded_and_validated():
    a = _gun(100, 11, 1.0, seed=3)
    b = _gun(100, 11, 1.0, seed=3)
    assert a.equals(b)
    with pytest.raises(InputError, match="pt"):
        simulate_tracks(np.array([1.0, np.nan]), np.zeros(2), np.zeros(2), np.array([11, 11]))
    with pytest.raises(InputError, match="eta"):
        simulate_tracks(np.ones(2), np.zeros(3), np.zeros(2), np.array([11, 11]))
    with pytest.raises(InputError, match="unknown track category"):
        category_features("calo_only")


def test_overlapping_photon_energy_raises_e_over_p_and_widens_showers():
    n = 4000
    rng = np.random.default_rng(3)
    args = (np.full(n, 2.0), np.full(n, 0.3), rng.uniform(-3, 3, n), np.full(n, 211))
    alone = simulate_tracks(*args, random_state=4)
    crowded = simulate_tracks(*args, e_overlap_gev=np.full(n, 2.0), random_state=4)
    assert np.nanmedian(crowded["e_over_p"]) > np.nanmedian(alone["e_over_p"]) + 0.5
    assert np.nanmedian(crowded["rphi"]) < np.nanmedian(alone["rphi"])
    with pytest.raises(InputError, match="e_overlap_gev"):
        simulate_tracks(*args, e_overlap_gev=np.full(n, -1.0))


# ---- second pass: pile-up, TRT occupancy, pi0 fluctuations, ID hadronic interactions, extrapolation ----
def test_pileup_widens_the_electron_e_over_p():
    quiet = _gun(4000, 11, 1.0, eta=0.3, seed=20)
    busy = _gun(4000, 11, 1.0, eta=0.3, seed=20, detector=TrackDetector(pileup_mu=60.0))
    iqr = [np.subtract(*np.nanpercentile(t["e_over_p"], [84, 16])) for t in (quiet, busy)]
    assert iqr[1] > 1.3 * iqr[0]


def test_trt_occupancy_raises_the_pion_high_threshold_fraction():
    d = TrackDetector(pileup_mu=40.0)
    quiet = _gun(4000, 211, 2.0, eta=0.3, seed=21)
    busy = _gun(4000, 211, 2.0, eta=0.3, seed=21, detector=d)
    occ = d.trt_occupancy_per_mu * d.pileup_mu
    p0 = p_ht(2.0 / 0.13957, DET.ht_barrel)
    expected = 1 - (1 - p0) * (1 - occ * d.trt_ht_occupancy)
    assert np.nanmean(quiet["f_ht"]) == pytest.approx(p0, abs=0.01)
    assert np.nanmean(busy["f_ht"]) == pytest.approx(expected, abs=0.01)


def test_pi0_fluctuations_make_some_pions_electron_like():
    plain = TrackDetector(fem_concentration=1e4, charge_exchange_prob=0.0)
    fluct = _gun(6000, 211, 3.0, eta=0.3, seed=22)
    flat = _gun(6000, 211, 3.0, eta=0.3, seed=22, detector=plain)
    like_e = [((t["e_over_p"] > 0.8) & (t["rhad"] < 0.05)).mean() for t in (fluct, flat)]
    assert like_e[0] > 5 * like_e[1] + 0.005


def test_hadronic_interactions_in_the_inner_detector_give_dpoverp_tails():
    with_int = _gun(6000, 211, 2.0, eta=1.7, seed=23)
    without = _gun(6000, 211, 2.0, eta=1.7, seed=23, detector=TrackDetector(id_lambda_per_x0=0.0))
    tail = [(t["dpoverp"] > 0.2).mean() for t in (with_int, without)]
    t_si = DET.silicon_material_share * np.interp(1.7, DET.material_eta, DET.material_x0)
    p_int = 1 - np.exp(-DET.id_lambda_per_x0 * t_si)  # ~ interaction in the silicon, then x_lead < 0.8
    assert tail[1] < 0.005 and tail[0] > 0.3 * p_int


def test_calorimeter_information_follows_the_extrapolated_track():
    # a 0.5 GeV electron that radiates most of its energy still has an extrapolated calorimeter impact
    ext = _gun(4000, 11, 0.5, eta=1.0, seed=24, detector=GEOM)
    phys = _gun(4000, 11, 0.5, eta=1.0, seed=24, detector=dataclasses.replace(GEOM, calo_acceptance="physical"))
    assert ext["has_calo"].mean() > phys["has_calo"].mean() + 0.1
    with pytest.raises(InputError, match="calo_acceptance"):
        _gun(10, 11, 1.0, detector=TrackDetector(calo_acceptance="nope"))
    # a 0.3 GeV central pion curls inside the barrel and turns too far to be followed to the endcap
    assert not _gun(500, 211, 0.3, eta=0.2, seed=25)["has_calo"].any()
