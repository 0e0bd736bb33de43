"""No fake excess without signal: the background-only check on generated QCD (the packaged demo's background)."""

import pytest

pytest.importorskip("torch")


def test_background_only_generated_qcd_no_fake_bump(tmp_path):
    """On generated QCD (the packaged demo's background, no signal), CATHODE's cut must not create an SR bump.

    The SR data fraction above cuts set on the flow samples is compared with the fraction in the adjacent
    500 GeV sidebands interpolated to the SR (what the sideband fit of the search predicts); it must
    agree within 3 sigma at every efficiency. The data-vs-samples comparison is reported by the check
    too, but an imperfect flow on real QCD fails it at the few-sigma level (see the issue-3 notes).
    """
    from excess.benchmarks import SICBenchmarkConfig, background_only_check
    from excess.data.io import read_events, write_events
    from excess.data.inputs import demo_dataset_path

    df = read_events(demo_dataset_path())
    write_events(df[df["label"] == 0].reset_index(drop=True), tmp_path / "qcd.h5")
    write_events(df, tmp_path / "with_signal.h5")  # 400 W' events: S/B ~ 6 % in the SR
    fp = {"kind": "maf", "preprocessing": "quantile", "transforms": 3, "hidden": (32, 32), "epochs": 15, "batch_size": 512}

    def check(name):
        cfg = SICBenchmarkConfig(background=str(tmp_path / name), signal=str(tmp_path / name), fast=True,
                                 flow_params=fp)
        return background_only_check(cfg, seed=0, efficiencies=(0.2, 0.05, 0.01))

    for r in check("qcd.h5"):
        assert r["n_data_sr"] > 1000
        assert abs(r["pull_sb_interp"]) < 3, r
        assert abs(r["z_fit"]) < 3, r  # the search's own sideband fit sees no bump either
    # the same comparisons do see a real resonance (so the assertions above can fail)
    rows = check("with_signal.h5")
    assert rows[-1]["pull_sb_interp"] > 2.5, rows[-1]
    assert max(r["z_fit"] for r in rows) > 2.0, rows  # 2.8 at 5 %: the fit's own uncertainty costs sensitivity
