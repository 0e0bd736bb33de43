"""Pseudo-experiments of a scan: the global significance and the per-cut toy p-values.

* :func:`with_global_toys`: background-only pseudo-experiments of every window's selected spectra
  (nested across efficiencies, independent across windows: conservative), refitted like the data
  with the scan's background model, one executor task (:class:`ToyJob`) per window: the dijet fits of
  the selected spectra (``"sideband"``, :func:`excess.stats.significance.pseudo_experiment_z`), the
  inclusive fit x efficiency fits (``"efficiency"``,
  :func:`excess.stats.efficiency.efficiency_pseudo_experiment_z`) or the signal-plus-background fits
  (``"signal_fit"`` and ``"profile"``, :func:`excess.stats.efficiency.signal_fit_pseudo_experiment_z`), or the
  dijet signal-plus-background fits over the whole window (``"dijet_signal"``: drawn from each cut's background-only
  fit over the window, :func:`excess.stats.significance.pseudo_experiment_z` with ``signal_width``). The largest
  local Z of each pseudo-scan gives the look-elsewhere correction; each cut gets ``p_toys``.
* :func:`attach_null` / :func:`permutation_global`: the permutation pseudo-windows (the whole
  procedure rerun with ``m`` permuted among the window's events) give each cut ``p_null`` and the
  scan a global significance with ``method="permutation"``.

Every toy p-value is :func:`excess.stats.significance.toy_p_value`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from .._util import get_logger
from ..stats.efficiency import efficiency_pseudo_experiment_z, signal_fit_pseudo_experiment_z
from ..stats.sideband import SidebandFit
from ..stats.significance import GlobalSignificance, global_significance, p_to_z, pseudo_experiment_z, toy_p_value
from .analysis import window_seed
from .results import CutResult, WindowResult

__all__ = ["ToyJob", "run_toy_job", "with_global_toys", "attach_null", "permutation_global"]

log = get_logger(__name__)


def _cut_p(z_obs: float, toys: np.ndarray) -> tuple[float, float, int] | None:
    """``(p, Z(p), n)`` of a cut's local Z among the finite toy Zs (p = 0.5 for a deficit); None without toys."""
    t = toys[np.isfinite(toys)]
    if not t.size:
        return None
    p = toy_p_value(z_obs, t) if z_obs > 0 else 0.5
    return float(p), float(max(p_to_z(p), 0.0)), int(t.size)


def _largest_per_toy(z: np.ndarray) -> tuple[np.ndarray, int]:
    """Largest finite Z of each pseudo-scan (rows of ``z``) and the number of pseudo-scans with none."""
    finite = np.isfinite(z).any(axis=1)
    with np.errstate(all="ignore"):
        zmax = np.nanmax(np.where(np.isfinite(z), z, -np.inf), axis=1)
    return zmax[finite], int((~finite).sum())


@dataclass(frozen=True)
class ToyJob:
    """Background-only pseudo-experiments of one window's selected spectra (an executor task).

    ``model="sideband"``: ``expected`` is (n_cuts, n_bins), the selected spectra's fitted expectation.
    ``"efficiency"``: ``expected`` is the inclusive fit's expectation (n_bins,) and ``efficiencies``
    (n_cuts, n_bins) the fitted efficiency of each cut. ``"signal_fit"``: ``expected`` is the observed
    inclusive spectrum (the toys thin it) and ``efficiencies`` the background-only fits'. ``"dijet_signal"``:
    ``expected`` is (n_cuts, n_bins), the background-only dijet fits over the whole window.
    ``fit_kw``: the dijet-fit options; ``degree``, ``signal_width``: the efficiency model's.
    """

    edges: np.ndarray
    expected: np.ndarray
    fit_mask: np.ndarray
    sr: tuple[float, float]
    n_toys: int
    seed: int
    fit_kw: dict
    model: str = "sideband"
    efficiencies: np.ndarray | None = None
    degree: int | str = "auto"
    signal_width: float = 0.04

    @classmethod
    def of(cls, w: WindowResult, n_toys: int, seed: int, background) -> ToyJob:
        """The pseudo-experiments of window ``w`` (its cuts with a result) under ``background``."""
        ok = [t for t in w.tests if t.ok]
        edges = w.window.edges()
        cen = 0.5 * (edges[1:] + edges[:-1])
        model = getattr(background, "model", "sideband")
        fit_kw = background.fit_kw() if isinstance(background, SidebandFit) else SidebandFit().fit_kw()
        opts = {"degree": getattr(background, "degree", "auto"), "signal_width": getattr(background, "signal_width", 0.04)}
        if model in ("signal_fit", "profile"):
            expected = np.asarray(ok[0].background.efficiency_fit.n_inclusive)
            eff = np.stack([t.signal_fit.null_fit.efficiency(cen) for t in ok])
        elif model == "dijet_signal":
            expected, eff = np.stack([np.asarray(t.signal_fit.null_fit.expected) for t in ok]), None
        elif model == "efficiency":
            expected = np.asarray(ok[0].background.inclusive_fit.expected)
            eff = np.stack([t.background.efficiency_fit.efficiency(cen) for t in ok])
        else:
            expected, eff = np.stack([np.asarray(t.fit.expected) for t in ok]), None
        return cls(edges, expected, w.window.sideband_bins(), w.window.sr, n_toys, seed, fit_kw, model, eff, **opts)


def run_toy_job(job: ToyJob) -> np.ndarray:
    """(n_toys, n_cuts) local Z of the refitted pseudo-experiments (NaN where a fit failed)."""
    min_sel = int(job.fit_kw.get("min_events", 1))
    if job.model in ("signal_fit", "profile"):
        return signal_fit_pseudo_experiment_z(job.edges, job.expected, job.efficiencies, job.sr, n_toys=job.n_toys,
                                              degree=job.degree, relative_width=job.signal_width,
                                              random_state=job.seed, min_selected=min_sel,
                                              count_sr=job.model == "profile")
    if job.model == "efficiency":
        return efficiency_pseudo_experiment_z(job.edges, job.expected, job.efficiencies, job.fit_mask, job.sr,
                                              n_toys=job.n_toys, degree=job.degree, random_state=job.seed,
                                              fit_kw=job.fit_kw, min_selected=min_sel)
    return pseudo_experiment_z(job.edges, job.expected, job.fit_mask, job.sr, n_toys=job.n_toys,
                               random_state=job.seed, nested=True, fit_kw=job.fit_kw,
                               signal_width=job.signal_width if job.model == "dijet_signal" else None)


def with_global_toys(window_results, n_toys: int, base_seed: int, background, executor, store):
    """Global significance (pseudo-experiments through ``executor``, kept in ``store``) and the per-cut
    toy p-values; ``background``: the scan's :class:`~excess.stats.sideband.BackgroundEstimate` (the toys
    are refitted with its model and options). Returns ``(window_results with p_toys, GlobalSignificance or None)``."""
    ok_pairs = [(w, t) for w in window_results for t in w.tests if t.ok]
    if not ok_pairs:
        log.warning("no window of the scan has a result")
        return window_results, None
    z_obs = max(t.z for _, t in ok_pairs)
    if n_toys == 0:
        return window_results, global_significance(z_obs, len(ok_pairs))
    toy_z, jobs, owners = {}, [], []
    for w in window_results:
        if not any(t.ok for t in w.tests):
            continue
        cached = store.toys(w, n_toys)
        if cached is not None:
            toy_z[w.window.key] = cached
            continue
        jobs.append((ToyJob.of(w, n_toys, window_seed(base_seed + 1, w.window), background),))
        owners.append(w)
    for i, z in executor.map_unordered(run_toy_job, jobs) if jobs else ():
        toy_z[owners[i].window.key] = z
        store.save_toys(owners[i], n_toys, z)
    columns, new_windows = [], []
    for w in window_results:
        if not any(t.ok for t in w.tests):
            new_windows.append(w)
            continue
        z = toy_z[w.window.key]
        columns.append(z)
        cols = iter(range(z.shape[1]))
        new_windows.append(dataclasses.replace(w, tests=tuple(
            _with_toys(t, z[:, next(cols)]) if t.ok else t for t in w.tests)))
    toy_max, n_failed = _largest_per_toy(np.concatenate(columns, axis=1))
    return tuple(new_windows), global_significance(z_obs, len(ok_pairs), toy_max, n_toys_failed=n_failed)


def _with_toys(t: CutResult, toys: np.ndarray) -> CutResult:
    r = _cut_p(t.z, toys)
    if r is None:
        return t
    p, z, n = r
    return dataclasses.replace(t, p_toys=p, z_toys=z, n_toys=n)


def attach_null(res: WindowResult, null_z: np.ndarray) -> WindowResult:
    """Per-cut p-values from the permutation pseudo-windows (``null_z``: (n_null, n_cuts) local Z)."""
    tests = []
    for j, t in enumerate(res.tests):
        r = _cut_p(t.z, null_z[:, j]) if t.ok else None
        if r is not None:
            p, z, n = r
            t = dataclasses.replace(t, p_null=p, z_null=z, n_null=n, null_z=tuple(np.round(null_z[:, j], 6).tolist()))
        tests.append(t)
    return dataclasses.replace(res, tests=tuple(tests))


def permutation_global(window_results, gsig: GlobalSignificance | None) -> GlobalSignificance | None:
    """Global significance from the permutation pseudo-scans: the largest Z over all cuts of all
    windows of pseudo-scan t (windows permuted independently: conservative)."""
    if gsig is None:
        return None
    cols = [np.asarray(t.null_z, dtype=float) for w in window_results for t in w.tests if t.ok and t.n_null]
    if not cols:
        return gsig
    toy_max, n_failed = _largest_per_toy(np.stack(cols, axis=1))
    g = global_significance(gsig.max_local_z, gsig.n_tests, toy_max, n_toys_failed=n_failed)
    return dataclasses.replace(g, method="permutation")
