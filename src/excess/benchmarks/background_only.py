"""No fake excess without signal: an anomaly method fitted on background only must not select a bump.

:func:`background_only_check` (``benchmarks/sic.py --bkg-only-check``) compares, at cuts set on the
scores of fresh flow samples, the selected fraction of SR background with that of the samples and
with that of the adjacent sidebands, and runs the search's own sideband test
(:func:`excess.stats.sideband.sideband_test`, with the scan's background models) on the selected events.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .._util import spawn_seeds
from ..anomaly import in_sr, make_method
from ..errors import InputError
from ..stats.sideband import DEFAULT_BACKGROUND_MODEL, SidebandTest, background_estimate
from ..stats.windows import Window
from .common import flow_location, load_features, split_indices, train_sb_flow
from .sic import SICBenchmarkConfig

__all__ = ["background_only_check"]


def background_only_check(cfg: SICBenchmarkConfig, seed: int = 0, method: str = "cathode",
                          efficiencies: Sequence[float] = (0.2, 0.05, 0.01), sideband_width: float = 500.0,
                          bin_width: float = 50.0, background_model: str = DEFAULT_BACKGROUND_MODEL) -> list[dict]:
    """No fake excess without signal: fit ``method`` on background-only data, then compare the fraction of
    independent SR background events and of fresh flow samples (at KDE-drawn SR masses) above cuts set
    on the samples' score quantiles. Returns one row per efficiency with the pull (binomial errors).

    Each row also holds what a bump hunt compares: the fraction of SR data above the cut vs the
    fraction in the adjacent sidebands (``sideband_width`` on each side) interpolated linearly in ``m``
    to the SR mean (``frac_sb_interp``, ``pull_sb_interp``). A flow that mismodels the background
    globally fails the first comparison but not the second; an SR-specific excess fails both.

    And the search's own verdict (``z_fit``, signed): the sideband test of the selected test events
    (:func:`~excess.stats.sideband.sideband_test`: ``bin_width`` GeV bins over the SR and both adjacent
    sidebands, the dijet function fitted in the sidebands, f3/f4 by likelihood-ratio test as the scan
    does, the SR prediction with its uncertainty and the local significance of the selected SR count).
    ``background_model``: the background model of that test, by default the scan's
    (:data:`excess.stats.sideband.DEFAULT_BACKGROUND_MODEL`, ``"efficiency"``; ``"profile"`` or
    ``"signal_fit"`` with the test events' inclusive spectrum too; ``"sideband"``, the dijet fit of the
    selected events).

    With ``cfg.flow_cache`` the background-only SB flow is kept and reused like the benchmark's.
    """
    from ..anomaly.cathode import sample_sr_mass
    from ..anomaly.density import FAST_FLOW

    bkg = load_features(cfg.background, cfg.features, cfg.max_background)
    if cfg.max_background is not None:
        bkg = bkg.iloc[: cfg.max_background]
    rng = np.random.default_rng(seed)
    s_split, s_m, s_fit, s_samp = spawn_seeds(rng, 4)
    b_data, _, b_test = split_indices(len(bkg), (0.5, 0.25, 0.25), np.random.default_rng(s_split))
    X = bkg[list(cfg.features)].to_numpy(float)
    m = bkg["mjj"].to_numpy(float)
    Xt, mt = X[b_test], m[b_test]
    sr = in_sr(mt, cfg.sr)
    lo, hi = cfg.sr
    sb_lo = (mt >= lo - sideband_width) & (mt < lo)
    sb_hi = (mt > hi) & (mt <= hi + sideband_width)
    if not (sr.any() and sb_lo.any() and sb_hi.any()):
        raise InputError(f"{cfg.background}: the test split needs events in the SR {cfg.sr} and in both adjacent "
                         f"{sideband_width:g} GeV sidebands (got {int(sr.sum())}, {int(sb_lo.sum())}, {int(sb_hi.sum())})")
    fp = cfg.flow_params if cfg.flow_params is not None else (FAST_FLOW if cfg.fast else None)
    Xd, md = X[b_data], m[b_data]
    with tempfile.TemporaryDirectory() as tmp:
        flow_path = flow_location(cfg, fp, "background-only", seed, 0, len(bkg), Path(tmp))
        train_sb_flow(flow_path, fp, s_fit, Xd, md, cfg.sr)
        est = make_method(method, fast=cfg.fast, random_state=s_fit, flow_params=fp, background_flow=str(flow_path))
        est.fit(Xd, md, sr=cfg.sr)
    m_samp = sample_sr_mass(mt[sr], 4 * int(sr.sum()), np.random.default_rng(s_m))
    X_samp = est.background_flow_.sample(m_samp, random_state=s_samp)
    s_test = est.score_samples(Xt, mt)  # once for every test event; SR, SB and adjacent SBs are slices
    s_data, s_sb, s_lo, s_hi = s_test[sr], s_test[~sr], s_test[sb_lo], s_test[sb_hi]
    s_samp_ = est.score_samples(X_samp, m_samp)
    t = (mt[sr].mean() - mt[sb_lo].mean()) / (mt[sb_hi].mean() - mt[sb_lo].mean())
    window = Window.around(cfg.sr, sideband_width, bin_width)
    background = background_estimate(background_model).bind(mt, window)  # the scan's test of a selection
    rows = []
    for eff in efficiencies:
        cut = np.quantile(s_samp_, 1 - eff)
        fd, fs = float(np.mean(s_data > cut)), float(np.mean(s_samp_ > cut))
        sigma = float(np.sqrt(eff * (1 - eff) * (1 / s_data.size + 1 / s_samp_.size)))
        f_lo, f_hi = float(np.mean(s_lo > cut)), float(np.mean(s_hi > cut))
        f_int = (1 - t) * f_lo + t * f_hi
        var_int = (1 - t) ** 2 * f_lo * (1 - f_lo) / s_lo.size + t**2 * f_hi * (1 - f_hi) / s_hi.size
        sigma_int = float(np.sqrt(fd * (1 - fd) / s_data.size + var_int))
        rows.append({"efficiency": eff, "frac_data": fd, "frac_samples": fs, "sigma": sigma,
                     "frac_sb_interp": f_int, "pull_sb_interp": (fd - f_int) / sigma_int,
                     "frac_sb_low": f_lo, "frac_sb_high": f_hi,
                     "frac_sb_data": float(np.mean(s_sb > cut)), "n_sb_data": int(s_sb.size),
                     "pull": (fd - fs) / sigma, "n_data_sr": int(s_data.size), "n_samples": int(s_samp_.size),
                     "seed": seed, **_fit_columns(background(mt[s_test > cut], window))})
    return rows


def _fit_columns(test: SidebandTest) -> dict:
    """The sideband test as the check's columns (NaN and the reason when it has no result)."""
    fit = test.fit if test.fit is not None else (test.background.inclusive_fit if test.ok else None)
    cols = {"n_sel_sr": test.n_sr, "b_fit": test.b_hat, "b_fit_err": test.sigma_b, "z_fit": test.z_signed,
            "fit_p_value": fit.p_value if test.ok else float("nan"),
            "fit_function": fit.function if test.ok else None}
    if test.ok and test.background is not None:
        cols["efficiency_p_value"] = test.background.efficiency_fit.p_value
    if not test.ok:
        cols["fit_error"] = test.reason
    return cols
