from __future__ import annotations

import math

import numpy as np
import pytest

from excess.calo.evaluate import (
    classifier_test,
    evaluate_showers,
    feature_histograms,
    high_level_features,
    histogram_chi2,
    separation_power,
)
from excess.calo.geometry import CaloGeometry
from excess.calo.io import ShowerData
from excess.errors import InputError


def test_separation_power_limits():
    p = np.array([1, 2, 3, 4])
    assert separation_power(p, 10 * p) == 0.0
    assert separation_power([1, 0, 0], [0, 0, 5]) == pytest.approx(1.0)
    # hand value: p=(.5,.5), q=(1,0): 0.5*(0.25/1.5 + 0.25/0.5)
    assert separation_power([1, 1], [1, 0]) == pytest.approx(0.5 * (0.25 / 1.5 + 0.5))
    with pytest.raises(InputError):
        separation_power([0, 0], [1, 1])


def test_histogram_chi2():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=20000), rng.normal(size=20000)
    bins = np.linspace(-3, 3, 31)
    assert histogram_chi2(a, b, bins) < 2.0
    assert histogram_chi2(a, b + 0.5, bins) > 20.0


def test_high_level_features_by_hand():
    g = CaloGeometry.regular("g", 2, 4, [0, 10, 20])  # 2 layers x 4 alpha x 2 r
    x = np.zeros((1, 16))
    x[0, g.voxel_index(0, 2, 1)] = 3.0  # layer 0: alpha bin 2 (centre pi/4), r centre 15
    x[0, g.voxel_index(1, 0, 0)] = 1.0  # layer 1
    x[0, g.voxel_index(1, 0, 1)] = 1.0
    f = high_level_features(x, np.array([10.0]), g)
    assert f["E_ratio"][0] == pytest.approx(0.5)
    assert f["E_layer_0"][0] == 3.0 and f["E_layer_1"][0] == 2.0
    assert f["EC_r_0"][0] == pytest.approx(15.0) and f["width_r_0"][0] == pytest.approx(0.0, abs=1e-6)
    assert f["EC_eta_0"][0] == pytest.approx(15 * math.cos(math.pi / 4))
    assert f["EC_phi_0"][0] == pytest.approx(15 * math.sin(math.pi / 4))
    assert f["EC_r_1"][0] == pytest.approx(10.0) and f["width_r_1"][0] == pytest.approx(5.0)
    assert f["sparsity_0"][0] == pytest.approx(7 / 8) and f["sparsity_1"][0] == pytest.approx(6 / 8)


def test_feature_histograms_detect_shift():
    rng = np.random.default_rng(1)
    ref = {"E_ratio": rng.normal(1, 0.05, 5000)}
    same = feature_histograms(ref, {"E_ratio": rng.normal(1, 0.05, 5000)})[0]
    shifted = feature_histograms(ref, {"E_ratio": rng.normal(1.1, 0.05, 5000)})[0]
    assert same.separation < 0.01 < 0.3 < shifted.separation


def test_classifier_and_full_evaluation(tiny_data, tiny_geometry, tiny_simulator):
    e, x = tiny_data
    ref = ShowerData(e[:300], x[:300], tiny_geometry)
    same = ShowerData(e[300:], x[300:], tiny_geometry)
    res = evaluate_showers(ref, same, classifiers=("high",), classifier_kwargs={"epochs": 20, "hidden": (32,), "batch_size": 64, "lr": 2e-3}, random_state=0)
    assert res.classifiers["high"].auc < 0.65
    assert res.mean_separation_power < 0.1
    d = res.to_dict()
    assert {"separation_powers", "classifiers", "mean_separation_power"} <= set(d)
    assert "E_ratio" in d["separation_powers"] and "voxel_energy" in d["separation_powers"]
    # showers with three times the energy in the last layer are easy to spot
    other = x[300:].copy()
    other[:, tiny_geometry.layer_slice(2)] *= 3.0
    r = classifier_test(x[:300], e[:300], other, e[300:], tiny_geometry, inputs="high", epochs=30, hidden=(32,), batch_size=64, lr=2e-3, random_state=0)
    assert r.auc > 0.9 and r.jsd > 0.3
    other[:, tiny_geometry.layer_slice(2)] = 0.0  # an empty last layer shows in the voxels
    r_low = classifier_test(x[:300], e[:300], other, e[300:], tiny_geometry, inputs="low", epochs=30, hidden=(32,), batch_size=64, lr=2e-3, random_state=0)
    assert r_low.auc > 0.8
    assert r.jsd == pytest.approx((math.log(2) - r.bce) / math.log(2))
