"""Generation time per shower vs batch size: a generative model against the reference simulator.

The table follows the CaloGAN paper (Paganini, de Oliveira, Nachman, PRD 97 (2018) 014021,
Table II: time per shower of full simulation and of the GAN at several batch sizes). Here the
"full simulation" is the GFLASH reference simulator of this package (Geant4 cannot run here;
CaloGAN quotes 1772 ms/shower for Geant4). Times are wall-clock on the model's device (the showers
come back to the CPU as numpy arrays, so a GPU has finished when the clock stops) with the number of
torch CPU threads given (``threads``), best of ``repeats`` after one warm-up call; the model's CPU time
(the process's, all threads) is reported next to it, the figure that holds on a shared machine.
"""

from __future__ import annotations

import inspect
import time
from dataclasses import dataclass

import numpy as np

from .._util import check_random_state

__all__ = ["TimingRow", "TimingResult", "time_generation", "DEFAULT_BATCH_SIZES"]

DEFAULT_BATCH_SIZES = (1, 10, 128, 1024, 10_000)


@dataclass(frozen=True)
class TimingRow:
    batch_size: int
    model_ms_per_shower: float
    reference_ms_per_shower: float | None
    reference_showers_timed: int | None
    #: CPU time of the process (all threads) per shower in the model's timed call: on a shared machine it
    #: is what the model itself cost, whatever else ran; with n threads it is about n x the wall time
    model_cpu_ms_per_shower: float | None = None

    @property
    def speedup(self) -> float | None:
        if self.reference_ms_per_shower is None:
            return None
        return self.reference_ms_per_shower / self.model_ms_per_shower

    def to_dict(self) -> dict:
        return {**self.__dict__, "speedup": self.speedup}


@dataclass(frozen=True)
class TimingResult:
    model: str
    geometry: str
    threads: int
    rows: tuple[TimingRow, ...]
    device: str = "cpu"

    def to_dict(self) -> dict:
        return {"model": self.model, "geometry": self.geometry, "threads": self.threads, "device": self.device,
                "rows": [r.to_dict() for r in self.rows]}

    def format_table(self) -> str:
        where = "CPU" if self.device == "cpu" else self.device
        head = f"Generation time per shower [ms], {self.geometry}, {where}, {self.threads} CPU thread(s)"
        lines = [head, f"{'batch size':>10} | {'reference (GFLASH)':>18} | {self.model + ' model':>14} | {'model CPU':>10} | {'speed-up':>9}",
                 "-" * 73]
        for r in self.rows:
            ref = f"{r.reference_ms_per_shower:18.4f}" if r.reference_ms_per_shower is not None else f"{'-':>18}"
            sp = f"{r.speedup:9.1f}" if r.speedup is not None else f"{'-':>9}"
            cpu = f"{r.model_cpu_ms_per_shower:10.4f}" if r.model_cpu_ms_per_shower is not None else f"{'-':>10}"
            lines.append(f"{r.batch_size:>10} | {ref} | {r.model_ms_per_shower:14.4f} | {cpu} | {sp}")
        return "\n".join(lines)


def _best_time(fn, repeats: int, min_seconds: float, with_cpu: bool = False):
    """Best wall time of ``fn`` (after a warm-up call); with ``with_cpu``, ``(wall, CPU time)`` of the least CPU."""
    fn()  # warm-up
    best, best_cpu, total, n = float("inf"), float("inf"), 0.0, 0
    while n < repeats or (total < min_seconds and n < 100):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        best, best_cpu, total, n = min(best, dt), min(best_cpu, dc), total + dt, n + 1
    return (best, best_cpu) if with_cpu else best


def time_generation(
    model,
    simulator=None,
    *,
    energies: np.ndarray | None = None,
    batch_sizes=DEFAULT_BATCH_SIZES,
    threads: int | None = None,
    repeats: int = 3,
    min_seconds: float = 0.5,
    reference_max_showers: int = 1024,
    random_state=None,
    compile: bool = False,
    device=None,
    compiled_loops: bool | None = True,
) -> TimingResult:
    """Time ``model.sample`` (and ``simulator.simulate``) at each batch size.

    ``energies`` is a pool of incident energies (MeV) drawn from for every batch (default: log-uniform
    1 GeV - 1 TeV). The reference simulator's cost per shower does not fall with the batch size
    beyond a few hundred showers, so batches larger than ``reference_max_showers`` are timed on
    that many showers (reported in ``reference_showers_timed``). ``compile`` is passed to
    ``model.sample`` (the compilation happens in the warm-up call, which is not timed), and so is
    ``compiled_loops`` (default ``True``: the flow's compiled loops, loaded in the warm-up call; ``None``: the
    model's default) where the model's ``sample`` takes it. ``device``
    (default: the model's own ``device`` setting) is set on the model, which moves there.
    """
    import torch

    from ..nn.device import describe_device

    if device is not None:
        model.set_params(device=device)
    where = describe_device(model.device)
    rng = check_random_state(random_state)
    if energies is None:
        energies = np.exp(rng.uniform(np.log(1e3), np.log(1e6), size=max(batch_sizes)))
    energies = np.asarray(energies, dtype=float)
    old = torch.get_num_threads()
    if threads:
        torch.set_num_threads(int(threads))
    try:
        rows = []
        for bs in batch_sizes:
            e = rng.choice(energies, size=int(bs))
            kw = {"compile": True} if compile else {}
            if compiled_loops is not None and "compiled_loops" in inspect.signature(model.sample).parameters:
                kw["compiled_loops"] = bool(compiled_loops)
            t_model, c_model = _best_time(lambda: model.sample(e, batch_size=int(bs), random_state=rng, **kw), repeats, min_seconds,
                                          with_cpu=True)
            t_ref, n_ref = None, None
            if simulator is not None:
                n_ref = int(min(bs, reference_max_showers))
                er = e[:n_ref]
                t_ref = _best_time(lambda: simulator.simulate(er, rng), 1 if n_ref > 100 else repeats, 0.0) / n_ref * 1e3
            rows.append(TimingRow(int(bs), t_model / bs * 1e3, t_ref, n_ref, c_model / bs * 1e3))
    finally:
        torch.set_num_threads(old)
    name = getattr(model, "name", type(model).__name__) + (" (compiled)" if compile else "")
    return TimingResult(name, model.geometry_.name, int(threads or old), tuple(rows), where)
