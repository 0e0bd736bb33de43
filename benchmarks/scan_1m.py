"""Wall, CPU time, peak memory and sensitivity of a whole search (``run_scan``, what ``excess search`` runs).

Runs the scan of one method over the default sliding windows (or ``--windows``) on an event file made
by ``excess generate mix`` (background + injected signal, truth labels kept), in worker processes as
``excess search -j N`` does, and prints one ``RESULT`` line:

- ``wall_s``: wall time of ``run_scan`` (on a shared machine it grows with the load: see ``load``);
- ``cpu_s``: user + system CPU seconds of this process and its (finished) worker processes, the figure
  that does not depend on the other jobs of the machine;
- ``peak_rss_gb`` / ``peak_pss_gb``: the largest sum of the resident (proportional) memory of the process
  tree (this process and all its children), polled every 0.5 s (see :class:`TreeMemory`);
- ``max_sic``: the max SIC (FPR >= 1/(N_bkg 0.2^2)) of the out-of-fold scores of the SR events of the
  window whose SR is ``--sic-sr`` (default the LHCO SR 3300-3700 GeV), from the labels;
- ``z_local``: the largest local significance of that window over the efficiencies, and ``z_best`` /
  ``best`` those of the whole scan (a background-only file must give no large ``z_best``);
- the number of windows, folds, flows and the flow epochs run;
- per window (``windows`` in the JSON, ``# window`` lines): SR and SB events and the summed wall time of
  its folds' fits, to see where the time goes.

Make the sample (LHCO R&D level: 1000 signal events in 1M)::

    excess generate mix -b data/qcd_1m -s data/signal_100k --n-signal 1000 -o mixed_1m.h5

Reproduce (one window, the method's defaults, 2 worker processes)::

    python benchmarks/scan_1m.py --events mixed_1m.h5 --method cathode --windows 3300,3700
    python benchmarks/scan_1m.py --events mixed_1m.h5 --method cathode --params '{"flow_groups": null}'  # one flow per fold
    python benchmarks/scan_1m.py --events mixed_1m.h5 --method cwola          # the default sliding windows

``--n-events N`` keeps the first N events of the (shuffled) file; ``--json`` appends the result to a file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import sys
import threading
import time


class TreeMemory:
    """Peaks of the summed RSS and PSS of this process and all its descendants (psutil, which comes with
    dask.distributed; polled in a thread).

    The RSS sum counts pages shared between the processes (torch's libraries, mapped by every worker)
    once per process: an upper bound. The PSS sum splits shared pages among their users: the tree's
    real footprint (Linux only; equal to the RSS sum elsewhere)."""

    def __init__(self, interval: float = 0.5):
        import psutil

        self._proc = psutil.Process()
        self._interval = interval
        self.peak = 0
        self.peak_pss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> tuple[int, int]:
        import psutil

        rss = pss = 0
        for p in [self._proc, *self._proc.children(recursive=True)]:
            try:
                info = p.memory_full_info()
                rss += info.rss
                pss += getattr(info, "pss", info.rss)
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                pass
        return rss, pss

    def _update(self):
        rss, pss = self._sample()
        self.peak, self.peak_pss = max(self.peak, rss), max(self.peak_pss, pss)

    def _run(self):
        while not self._stop.is_set():
            self._update()
            self._stop.wait(self._interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._update()
        return False


def cpu_seconds() -> float:
    """User + system seconds of this process and its waited-for children."""
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def parse_windows(text: str | None):
    if not text or text == "default":
        return None
    return [tuple(float(v) for v in w.split(",")) for w in text.split(";")]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", required=True, help="event file with labels (excess generate mix)")
    p.add_argument("--method", default="cathode")
    p.add_argument("--params", default="{}", help="JSON method parameters")
    p.add_argument("--windows", default="default", help='"default" (sliding windows) or "lo,hi;lo,hi" SRs in GeV')
    p.add_argument("--n-events", type=int, default=None, help="keep the first N events of the file")
    p.add_argument("--n-folds", type=int, default=5)
    p.add_argument("--workers", type=int, default=2, help="worker processes (excess search -j)")
    p.add_argument("--global-toys", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sic-sr", default="3300,3700", help="SR (lo,hi) of the window whose SIC and Z are quoted")
    p.add_argument("--tag", default="", help="a label printed with the result")
    p.add_argument("--json", default=None, help="append the result (one JSON line) to this file")
    a = p.parse_args(argv)
    os.environ.setdefault("EXCESS_NO_PROGRESS", "1")  # no progress bars (workers inherit it)

    import numpy as np

    from excess.data.io import read_events
    from excess.search import run_scan
    from excess.stats.roc import max_sic

    t0 = time.perf_counter()
    events = read_events(a.events)
    if a.n_events:
        events = events.iloc[: a.n_events].reset_index(drop=True)
    t_read = time.perf_counter() - t0
    params = json.loads(a.params)
    sic_sr = tuple(float(v) for v in a.sic_sr.split(","))
    n_sig = int((events["label"] == 1).sum()) if "label" in events.columns else 0
    print(f"# events: {len(events)} from {a.events} ({n_sig} signal), read in {t_read:.1f} s", flush=True)

    cpu0, w0 = cpu_seconds(), time.perf_counter()
    with TreeMemory() as mem:
        res = run_scan(events, method=a.method, method_params=params, windows=parse_windows(a.windows),
                       n_folds=a.n_folds, n_workers=a.workers, random_state=a.seed, global_toys=a.global_toys,
                       show_progress=False)
    wall, cpu = time.perf_counter() - w0, cpu_seconds() - cpu0

    win = next((w for w in res.windows if tuple(w.window.sr) == sic_sr), None)
    sic = z_loc = float("nan")
    if win is not None and win.scores is not None and "label" in events.columns:
        m = events["mjj"].to_numpy()
        sr = (m >= sic_sr[0]) & (m < sic_sr[1]) & np.isfinite(win.scores)
        y = events["label"].to_numpy()[sr]
        if 0 < y.sum() < y.size:
            sic = max_sic(y, win.scores[sr])
    if win is not None:
        z_loc = win.z_max
    best = res.best
    z_best = best[1].z if best else float("nan")
    best_label = f"{best[0].window.label}@{best[1].efficiency:g}" if best else "none"
    g = res.global_significance
    out = {
        "tag": a.tag, "method": a.method, "params": params, "n_events": len(events), "n_signal": n_sig,
        "n_windows": len(res.windows), "n_folds": a.n_folds, "workers": a.workers,
        "wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "peak_rss_gb": round(mem.peak / 1024**3, 3),
        "peak_pss_gb": round(mem.peak_pss / 1024**3, 3),
        "max_sic": round(float(sic), 3), "z_local": round(float(z_loc), 3), "z_best": round(float(z_best), 3),
        "best": best_label, "z_global": None if g is None else g.z_global,
        "load": round(os.getloadavg()[0], 1), "cores": os.cpu_count(),
        "command": "python benchmarks/scan_1m.py " + " ".join(shlex.quote(x) for x in (argv or sys.argv[1:])),
    }
    # per window: events and the summed wall time of its folds' fits (worker seconds; folds of one window
    # may run on different workers, so these add up to about workers x wall, not to wall)
    out["windows"] = [{"window": w.window.label, "n_sr": int(w.n_sr), "n_sb": int(w.n_sb),
                       "fold_wall_s": round(float(w.runtime_s), 1)} for w in res.windows]
    for w in out["windows"]:
        print(f"# window {w['window']}: {w['n_sr']} SR + {w['n_sb']} SB events, folds' wall {w['fold_wall_s']} s")
    print("RESULT " + " ".join(f"{k}={v}" for k, v in out.items() if k not in ("params", "command", "windows")))
    print(f"# params: {json.dumps(params)}; machine: {platform.machine()}, {os.cpu_count()} cores, "
          f"load avg {os.getloadavg()[0]:.1f}")
    print(f"# reproduce: {out['command']}")
    if a.json:
        with open(a.json, "a") as fh:
            fh.write(json.dumps(out, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
