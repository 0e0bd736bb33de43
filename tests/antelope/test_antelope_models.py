"""ANTELOPE's models: permutation and padding invariance, save/load, bad input (one clear error each)."""

import numpy as np
import pytest

pytest.importorskip("torch")

from excess.antelope import Antelope, PFNClassifier, TrackPreprocessor, check_sets, track_selection  # noqa: E402
from excess.antelope.data import point_mask  # noqa: E402
from excess.errors import ConfigError, InputError  # noqa: E402

TINY_PFN = {"phi_sizes": (16, 16, 8), "f_sizes": (16,), "epochs": 2, "batch_size": 64}
TINY_VAE = {"hidden": (8, 8), "latent": 3, "decoder_hidden": (8, 8), "epochs": 3, "batch_size": 64}


@pytest.fixture(scope="module")
def fitted(svj_small):
    y = svj_small.events["label"].to_numpy()
    sel = (y == 0) | point_mask(svj_small.events, (2000, 0.3))
    model = Antelope(pfn_params=TINY_PFN, vae_params=TINY_VAE, random_state=0, device="cpu")
    return model.fit(svj_small.tracks[sel], y[sel])


def _permute_tracks(tracks, rng):
    out = tracks.copy()
    for i in range(len(out)):
        out[i] = out[i][rng.permutation(out.shape[1])]  # real tracks and padding rows shuffled together
    return out


def test_permutation_invariance(fitted, svj_small):
    x = svj_small.tracks[:40]
    xp = _permute_tracks(x, np.random.default_rng(3))
    assert not np.array_equal(x, xp)
    np.testing.assert_allclose(fitted.latent(xp), fitted.latent(x), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(fitted.pfn_.decision_function(xp), fitted.pfn_.decision_function(x), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(fitted.score_samples(xp), fitted.score_samples(x), rtol=1e-5, atol=1e-6)
    # not trivially invariant: the scores differ between events, and changing one real track changes its event's
    assert np.ptp(fitted.score_samples(x)) > 1e-3
    moved = x.copy()
    moved[0, 0, 0] *= 3.0
    assert not np.isclose(fitted.latent(moved)[0], fitted.latent(x)[0]).all()


def test_padding_invariance(fitted, svj_small):
    x = svj_small.tracks[:40]
    more = np.concatenate([x, np.zeros((40, 57, 8), np.float32)], axis=1)  # extra padding rows
    np.testing.assert_allclose(fitted.score_samples(more), fitted.score_samples(x), rtol=1e-6)
    # garbage in padding rows is ignored once the mask says they are padding
    junk = x.copy()
    pad = junk[..., 0] == 0
    junk[pad] = 7.0
    np.testing.assert_allclose(fitted.score_samples(junk, mask=~pad), fitted.score_samples(x), rtol=1e-6)


def test_scores_separate_and_save_load(fitted, svj_small, tmp_path):
    s = fitted.score_samples(svj_small.tracks)
    assert s.shape == (len(svj_small.tracks),) and np.all((s > 0) & (s < 1))
    fitted.save(tmp_path / "m")
    again = Antelope.load(tmp_path / "m", device="cpu")
    np.testing.assert_allclose(again.score_samples(svj_small.tracks[:50]), s[:50], rtol=1e-6)
    assert fitted.pfn_.latent(svj_small.tracks[:5]).shape == (5, 8)


def test_preprocessor_scaling_from_training_only(svj_small):
    pp = TrackPreprocessor("minmax").fit(svj_small.tracks[:100])
    f, m = pp.transform(svj_small.tracks[:100])
    assert f[m].min() >= -1e-6 and f[m].max() <= 1 + 1e-6 and np.all(f[~m] == 0)
    f2, m2 = pp.transform(svj_small.tracks[300:])  # other events: same scaling, may leave [0, 1]
    assert np.all(f2[~m2] == 0)
    std = TrackPreprocessor("standard").fit(svj_small.tracks)
    g, mm = std.transform(svj_small.tracks)
    np.testing.assert_allclose(g[mm][:, :7].mean(0), 0, atol=1e-3)
    with pytest.raises(ConfigError, match="scaling"):
        TrackPreprocessor("robust").fit(svj_small.tracks)


def test_track_selection():
    x = np.zeros((3, 10, 8), np.float32)
    x[0, :5, 0] = 1.0
    x[1, :2, 0] = 1.0
    assert track_selection(x).tolist() == [True, False, False]


def test_bad_inputs_one_clear_error_each(fitted, svj_small):
    x = svj_small.tracks[:5]
    with pytest.raises(InputError, match="ragged"):
        fitted.score_samples([x[0], x[1][:50]])
    empty = x.copy()
    empty[2] = 0
    with pytest.raises(InputError, match=r"1 events have no track \(all padding; first events \[2\]\)"):
        fitted.score_samples(empty)
    nan = x.copy()
    nan[1, 0, 4] = np.nan
    with pytest.raises(InputError, match=r"NaN/inf in a track \(first events \[1\], columns \['d0'\]\)"):
        fitted.score_samples(nan)
    with pytest.raises(InputError, match=r"shape \(events, tracks, 8\)"):
        fitted.score_samples(x[..., :4])
    with pytest.raises(InputError, match="unknown signal point 9000,0.1"):
        point_mask(svj_small.events, "9000,0.1")
    with pytest.raises(InputError, match="fewer than 3 tracks"):
        few = x.copy()
        few[0, 2:] = 0
        check_sets(few, min_tracks=3)
    with pytest.raises(InputError, match="labels must be 0"):
        PFNClassifier(**TINY_PFN).fit(x, np.zeros(5))


def test_vae_leaky_slope_is_the_papers_and_survives_save_load(fitted, tmp_path):
    import json

    import torch

    from excess.nn.io import load_model, save_model

    def slopes(vae):
        return {m.negative_slope for m in vae.net_.modules() if isinstance(m, torch.nn.LeakyReLU)}

    assert slopes(fitted.vae_) == {0.3}  # ANTELOPE's LeakyReLU(0.3), not the substrate's 0.2
    save_model(fitted.vae_, tmp_path / "vae")
    again = load_model(tmp_path / "vae")
    assert slopes(again) == {0.3}
    # a VAE saved before the slope was a parameter was trained with 0.2 and loads with 0.2
    cfg = json.loads((tmp_path / "vae" / "hyperparameters.json").read_text())
    cfg["params"].pop("negative_slope")
    cfg["meta"].pop("negative_slope")
    (tmp_path / "vae" / "hyperparameters.json").write_text(json.dumps(cfg))
    assert slopes(load_model(tmp_path / "vae")) == {0.2}
