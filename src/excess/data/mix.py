"""Build analysis datasets: inject a chosen amount of signal into background, reproducibly.

Truth labels are kept (1 signal, 0 background) for evaluation; the search itself never reads them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .._util import check_random_state
from ..errors import ConfigError, InputError

__all__ = ["inject_signal", "split_background", "MixInfo"]


@dataclass(frozen=True)
class MixInfo:
    n_background: int
    n_signal: int
    n_signal_sr: int
    n_background_sr: int
    s_over_b_sr: float
    s_over_sqrt_b_sr: float
    sr: tuple[float, float]
    seed: int | None

    def to_dict(self) -> dict:
        import dataclasses

        return dataclasses.asdict(self)


def _in(df, sr):
    m = df["mjj"].to_numpy()
    return (m >= sr[0]) & (m < sr[1])


def inject_signal(
    background: pd.DataFrame,
    signal: pd.DataFrame,
    *,
    n_signal: int | None = None,
    s_over_b: float | None = None,
    sr: tuple[float, float] = (3300.0, 3700.0),
    random_state=None,
    shuffle: bool = True,
) -> tuple[pd.DataFrame, MixInfo]:
    """Mix all of ``background`` with a random subset of ``signal``.

    Give either ``n_signal`` (events injected in total, over all mjj — LHCO convention: 1000 in 1M) or
    ``s_over_b`` (the signal-to-background ratio wanted inside ``sr``).
    """
    if (n_signal is None) == (s_over_b is None):
        raise ConfigError("give exactly one of n_signal or s_over_b")
    for name, df in (("background", background), ("signal", signal)):
        if "mjj" not in df.columns:
            raise InputError(f"{name} sample has no 'mjj' column")
    if list(background.columns) != list(signal.columns):
        common = [c for c in background.columns if c in signal.columns]
        if "mjj" not in common:
            raise InputError("background and signal samples share no columns")
        background, signal = background[common], signal[common]
    rng = check_random_state(random_state)
    sig_sr_frac = float(_in(signal, sr).mean()) if len(signal) else 0.0
    n_bkg_sr = int(_in(background, sr).sum())
    if s_over_b is not None:
        if s_over_b < 0:
            raise ConfigError(f"s_over_b must be >= 0, got {s_over_b}")
        if s_over_b > 0 and sig_sr_frac == 0:
            raise InputError(f"no signal events inside the SR {sr}")
        n_signal = int(round(s_over_b * n_bkg_sr / sig_sr_frac)) if s_over_b > 0 else 0
    n_signal = int(n_signal)
    if n_signal < 0:
        raise ConfigError(f"n_signal must be >= 0, got {n_signal}")
    if n_signal > len(signal):
        raise InputError(f"asked for {n_signal} signal events but the signal sample has only {len(signal)}")
    pick = rng.choice(len(signal), size=n_signal, replace=False) if n_signal else np.array([], dtype=int)
    sig = signal.iloc[np.sort(pick)].copy()
    sig["label"] = np.int8(1)
    bkg = background.copy()
    bkg["label"] = np.int8(0)
    out = pd.concat([bkg, sig], ignore_index=True)
    if shuffle:
        out = out.iloc[rng.permutation(len(out))].reset_index(drop=True)
    n_sig_sr = int(_in(sig, sr).sum())
    info = MixInfo(
        n_background=len(bkg),
        n_signal=n_signal,
        n_signal_sr=n_sig_sr,
        n_background_sr=n_bkg_sr,
        s_over_b_sr=n_sig_sr / n_bkg_sr if n_bkg_sr else float("nan"),
        s_over_sqrt_b_sr=n_sig_sr / np.sqrt(n_bkg_sr) if n_bkg_sr else float("nan"),
        sr=(float(sr[0]), float(sr[1])),
        seed=random_state if isinstance(random_state, (int, np.integer)) else None,
    )
    out.attrs["excess"] = {
        "mix": info.to_dict(),
        "background": background.attrs.get("excess", {}),
        "signal": signal.attrs.get("excess", {}),
    }
    return out, info


def split_background(df: pd.DataFrame, fraction: float, random_state=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split a sample into (rest, reserved) with ``fraction`` reserved, e.g. an idealized-AD reference background."""
    if not 0 < fraction < 1:
        raise ConfigError(f"fraction must be in (0, 1), got {fraction}")
    rng = check_random_state(random_state)
    idx = rng.permutation(len(df))
    k = int(round(fraction * len(df)))
    return df.iloc[np.sort(idx[k:])].reset_index(drop=True), df.iloc[np.sort(idx[:k])].reset_index(drop=True)
