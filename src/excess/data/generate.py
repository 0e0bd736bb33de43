"""Dijet event generation with Pythia 8 + FastJet, in seeded, resumable chunks.

The work is split into chunks of ``chunk_size`` selected events; chunk ``i`` uses the Pythia seed
``seed + 1000 * i`` (seeds spaced as recommended for parallel workers) and is written atomically to
``<out>/chunk-<i>.h5``. A rerun with the same settings skips chunks already on disk, so a long job
(1M QCD events is hours on 2 cores) can be interrupted and resumed without losing finished chunks.
Chunks run on the executor abstraction (local processes by default, Dask with an address).

Example
-------
>>> from excess.data.generate import generate_dijet
>>> summary = generate_dijet("qcd.h5", n_events=2000, process="qcd", seed=1)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._util import atomic_write_json, ensure_dir, get_logger, package_versions, progress
from ..errors import ConfigError, GenerationError, InputError, OutputError
from .settings import INVISIBLE_PDG_IDS, SEED_MAX, SEED_MIN, GeneratorSettings, pythia_config

__all__ = ["generate_dijet", "generate_chunk", "GenerationSummary", "chunk_seed", "PythiaSource", "ChargeTable", "start_pythia"]

log = get_logger(__name__)

@contextlib.contextmanager
def silence_stdout():
    """Redirect the process's C-level stdout to /dev/null (Pythia and FastJet banners)."""
    sys.stdout.flush()
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # e.g. pytest capture without a real fd
        yield
        return
    saved = os.dup(fd)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, fd)
        os.close(saved)
        os.close(devnull)


def visible_particles(prt):
    """The visible final-state particles of a Pythia batch's particle record (``batch.prt``, awkward), flat:
    ``(counts per event, px, py, pz, e, pdg ids)`` as numpy arrays; invisible ids are
    :data:`~excess.data.settings.INVISIBLE_PDG_IDS`."""
    import awkward as ak

    from .jets import _offsets

    flat = _flat_fields(prt)
    if flat is not None:  # the record layout pythia8mc returns: read its buffers, no awkward operations
        counts, status, ids, (px, py, pz, e) = flat
        final = np.flatnonzero(status > 0)  # about a third of the record: the id test only on these
        vis = final[~np.isin(np.abs(ids[final]), INVISIBLE_PDG_IDS)]
        return np.diff(np.searchsorted(vis, _offsets(counts))), px[vis], py[vis], pz[vis], e[vis], ids[vis]
    counts = ak.to_numpy(ak.num(prt, axis=1))
    status = ak.to_numpy(ak.flatten(prt.status))
    ids = ak.to_numpy(ak.flatten(prt.id))
    keep = (status > 0) & ~np.isin(np.abs(ids), INVISIBLE_PDG_IDS)
    p = prt.p
    px, py, pz, e = (ak.to_numpy(ak.flatten(getattr(p, f)))[keep] for f in ("px", "py", "pz", "e"))
    kept = np.concatenate([[0], np.cumsum(keep)])[_offsets(counts)]  # visible particles before each event
    return np.diff(kept), px, py, pz, e, ids[keep]


def _flat_fields(prt):
    """``(counts, status, id, (px, py, pz, e))`` as numpy views of a Pythia particle record whose layout is a
    list-offset array of records with plain ``id``, ``status`` and ``p.{px,py,pz,e}`` buffers; None otherwise."""
    try:
        lay = prt.layout
        off = np.asarray(lay.offsets)
        rec = lay.content
        lo, hi = int(off[0]), int(off[-1])

        def col(node, name):
            c = node.content(name)
            if not c.is_numpy:
                raise TypeError(name)
            return np.asarray(c.data)[lo:hi]

        p = rec.content("p")
        if not p.is_record:
            raise TypeError("p")
        return np.diff(off), col(rec, "status"), col(rec, "id"), tuple(col(p, f) for f in ("px", "py", "pz", "e"))
    except (AttributeError, TypeError, ValueError, KeyError, IndexError):
        return None


def chunk_seed(seed: int, index: int) -> int:
    """Pythia seed of chunk ``index``: ``seed + 1000 * index`` (validated to 1..900,000,000)."""
    s = int(seed) + 1000 * int(index)
    if not (SEED_MIN <= s <= SEED_MAX):
        raise ConfigError(
            f"chunk {index} would use Pythia seed {s}, outside {SEED_MIN}..{SEED_MAX:,}; choose a smaller seed"
        )
    return s


def versions() -> dict:
    """Versions recorded in every generated file's metadata (looked up once per process)."""
    global _VERSIONS
    if _VERSIONS is None:
        _VERSIONS = package_versions(("pythia8mc", "fastjet", "awkward", "numpy"))
    return dict(_VERSIONS)


_VERSIONS: dict | None = None


@dataclass(frozen=True)
class FlatBatch:
    """Particles of a batch of events, flattened: ``counts[i]`` particles belong to event ``i``."""

    counts: np.ndarray
    px: np.ndarray
    py: np.ndarray
    pz: np.ndarray
    e: np.ndarray
    pid: np.ndarray
    charge: np.ndarray

    def __len__(self) -> int:
        return len(self.counts)

    def to_awkward(self):
        import awkward as ak

        rec = ak.zip({"px": self.px, "py": self.py, "pz": self.pz, "E": self.e}, with_name="Momentum4D")
        return ak.unflatten(rec, self.counts)


def start_pythia(config, what: str):
    """A ``pythia8mc.Pythia`` configured with the lines of ``config`` and initialised, quietly.

    One :class:`GenerationError` for a rejected setting (naming it) or a failed ``init()`` (naming ``what``
    and all settings). Shared by every generator of excess (dijets, q/g, b-tagging, electrons, SVJ).
    """
    import pythia8mc

    with silence_stdout():
        pythia = pythia8mc.Pythia("", False)
        for line in config:
            if not pythia.readString(line):
                raise GenerationError(f"Pythia rejected the setting {line!r}")
        ok = pythia.init()
    if not ok:
        raise GenerationError(f"Pythia.init() failed for {what} (settings: {'; '.join(config)})")
    return pythia


class ChargeTable:
    """Electric charge of PDG ids from a Pythia instance's particle data, looked up once per id.

    ``table(ids)`` returns the charges (float) of ``ids`` (any order, repeats, new ids); the ids seen so far
    are kept in a sorted table, so a batch of known ids costs one ``searchsorted``. Shared by the
    generators of excess (dijets, electrons).
    """

    def __init__(self, pythia):
        self._pythia = pythia
        self._ids = np.zeros(0, dtype=np.int64)  # sorted PDG ids seen so far, and their charges
        self._vals = np.zeros(0)

    def __call__(self, ids) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64)
        known, vals = self._ids, self._vals
        pos = np.minimum(np.searchsorted(known, ids), max(len(known) - 1, 0))
        if len(known) == 0 or not np.array_equal(known[pos], ids):
            new = np.setdiff1d(ids, known)
            pd_ = self._pythia.particleData
            known = np.concatenate([known, new])
            vals = np.concatenate([vals, [float(pd_.charge(int(i))) for i in new]])
            order = np.argsort(known)
            self._ids, self._vals = known, vals = known[order], vals[order]
            pos = np.searchsorted(known, ids)
        return vals[pos]


class PythiaSource:
    """A configured Pythia instance producing batches of visible final-state particles."""

    def __init__(self, settings: GeneratorSettings, seed: int):
        self.settings = settings
        self.seed = int(seed)
        self.config = pythia_config(settings, seed)
        self.pythia = start_pythia(self.config, f"process {settings.process!r}")
        self.charges = ChargeTable(self.pythia)  # charges(ids): electric charge of each PDG id

    def next_batch(self, n: int) -> FlatBatch:
        """``n`` events of visible final-state particles as flat numpy arrays plus per-event counts."""
        with silence_stdout():
            batch = self.pythia.nextBatch(int(n))
        counts, px, py, pz, e, ids = visible_particles(batch.prt)
        return FlatBatch(counts, px, py, pz, e, ids, self.charges(ids))

    def sigma(self) -> tuple[float, float]:
        info = self.pythia.infoPython()
        return float(info.sigmaGen()), float(info.sigmaErr())


def reconstruct_batch(batch: FlatBatch, settings: GeneratorSettings, rng: np.random.Generator, *, veto: bool = True):
    """Detector response (if any), clustering, selection and features of one batch.

    ``veto`` skips the clustering of events that cannot pass the trigger (same output, see
    :func:`excess.data.jets.cluster_flat`)."""
    from .detector import apply_detector_flat
    from .jets import cluster_flat

    if settings.detector == "delphes-cms":
        batch = FlatBatch(*apply_detector_flat(batch.counts, batch.px, batch.py, batch.pz, batch.e, batch.pid,
                                               batch.charge, rng), pid=None, charge=None)
    with silence_stdout():
        return cluster_flat(batch.counts, batch.px, batch.py, batch.pz, batch.e, settings, rng, veto=veto)


def generate_chunk(settings_dict: dict, n_events: int, seed: int, path: str | None = None, batch_size: int = 500, *,
                   veto: bool = True) -> dict:
    """Generate ``n_events`` selected events with one Pythia seed; write them to ``path`` atomically.

    A top-level function (picklable) so chunks can run in worker processes or on Dask.
    Returns the chunk's metadata (counts, cross-section, timing). ``veto=False`` clusters every event,
    even those that cannot pass the trigger (the same events come out; for tests and benchmarks).
    """
    import pandas as pd

    from .io import write_events

    settings = GeneratorSettings.from_dict(settings_dict)
    t0 = time.perf_counter()
    src = PythiaSource(settings, seed)
    t_init = time.perf_counter() - t0
    rng = np.random.default_rng([int(seed), 0xD7])  # detector smearing stream, independent of Pythia's
    cols: dict[str, list] = {}
    n_sel = n_gen = 0
    t_pythia = t_reco = 0.0
    max_batches = 10_000
    for _ in range(max_batches):
        if n_sel >= n_events:
            break
        need = n_events - n_sel
        t1 = time.perf_counter()
        batch = src.next_batch(min(batch_size, max(50, int(need * 1.3) + 10)))
        t2 = time.perf_counter()
        n_gen += len(batch)
        passed, c = reconstruct_batch(batch, settings, rng, veto=veto)
        t_reco += time.perf_counter() - t2
        t_pythia += t2 - t1
        take = min(int(passed.sum()), need)
        for k, v in c.items():
            cols.setdefault(k, []).append(np.asarray(v)[:take])
        n_sel += take
    else:  # pragma: no cover - would need an absurd rejection rate
        raise GenerationError(f"only {n_sel} of {n_events} events passed the selection after {n_gen} generated")
    sigma_mb, sigma_err_mb = src.sigma()
    data = {k: np.concatenate(v) for k, v in cols.items()}
    data = {k: v.astype(np.float32) if v.dtype == np.float64 else v for k, v in data.items()}
    data["label"] = np.full(n_sel, 1 if settings.process == "signal" else 0, dtype=np.int8)
    df = pd.DataFrame(data, copy=False)
    meta = {
        "generator": "pythia8mc + fastjet (excess.data.generate)",
        "settings": settings.to_dict(),
        "pythia_config": src.config,
        "seed": int(seed),
        "versions": versions(),
        "counts": {"n_pythia_events": n_gen, "n_selected": n_sel},
        "cross_section": {
            "pythia_sigma_gen_mb": sigma_mb,
            "pythia_sigma_err_mb": sigma_err_mb,
            "n_pythia_events": n_gen,
            # selected cross-section: generated sigma times the selection efficiency of this chunk
            "selected_fb": sigma_mb * 1e12 * (n_sel / max(n_gen, 1)),
        },
        "timing": {"init_s": t_init, "pythia_s": t_pythia, "reconstruction_s": t_reco,
                   "total_s": time.perf_counter() - t0},
    }
    if path is not None:
        write_events(df, path, meta)
    meta["n_events"] = n_sel
    return meta


@dataclass(frozen=True)
class GenerationSummary:
    """What a :func:`generate_dijet` call produced."""

    output: str
    n_events: int
    n_chunks: int
    n_chunks_skipped: int
    wall_s: float
    settings: dict

    def to_dict(self) -> dict:
        import dataclasses

        return dataclasses.asdict(self)


def _settings_key(settings: GeneratorSettings) -> str:
    return json.dumps(settings.to_dict(), sort_keys=True)


def generate_dijet(
    output: str | os.PathLike,
    n_events: int,
    *,
    process: str = "qcd",
    preset: str = "lhco",
    seed: int = 1,
    chunk_size: int = 5000,
    n_workers: int | None = None,
    address=None,
    batch_size: int = 500,
    keep_chunks: bool = False,
    overwrite: bool = False,
    **overrides,
) -> GenerationSummary:
    """Generate ``n_events`` selected dijet events into ``output``.

    ``output`` is a dataset directory (chunk files + manifest) or a single ``.h5``/``.parquet``
    file; for a single file the chunks are staged in ``<output>.chunks/`` (resumable) and merged
    at the end. Settings come from ``preset`` (see :mod:`excess.data.settings`) plus ``overrides``.
    An existing single-file ``output`` is an :class:`~excess.errors.OutputError` unless ``overwrite``; a failure
    before any chunk is finished leaves no staging folder behind.
    """
    if int(n_events) <= 0:
        raise ConfigError(f"n_events must be positive, got {n_events}")
    if int(chunk_size) <= 0:
        raise ConfigError(f"chunk_size must be positive, got {chunk_size}")
    if not (SEED_MIN <= int(seed) <= SEED_MAX):
        raise ConfigError(f"seed must be in {SEED_MIN}..{SEED_MAX:,}, got {seed}")
    settings = GeneratorSettings.from_preset(preset, process=process, **overrides)
    output = Path(output)
    single = output.suffix.lower() in (".h5", ".hdf5", ".parquet")
    chunk_dir = output.with_name(output.name + ".chunks") if single else output
    if single and output.exists() and not overwrite:
        raise OutputError(f"{output}: exists; pass --force (overwrite=True) to replace it, or choose another output")
    if chunk_dir.exists() and not chunk_dir.is_dir():
        raise InputError(f"{chunk_dir}: exists and is not a directory")
    created = not chunk_dir.exists()
    ensure_dir(chunk_dir)
    try:
        return _generate_into(output, chunk_dir, single, n_events, settings, process, seed, chunk_size, n_workers,
                              address, batch_size, keep_chunks)
    except BaseException:
        if created and chunk_dir.is_dir() and not any(chunk_dir.glob("chunk-*.h5")):
            import shutil

            shutil.rmtree(chunk_dir, ignore_errors=True)  # nothing finished: leave nothing in the way
        raise


def _generate_into(output, chunk_dir, single, n_events, settings, process, seed, chunk_size, n_workers, address,
                   batch_size, keep_chunks) -> GenerationSummary:
    from ..executor import get_executor

    n_chunks = (int(n_events) + chunk_size - 1) // chunk_size
    sizes = [chunk_size] * (n_chunks - 1) + [int(n_events) - chunk_size * (n_chunks - 1)]
    seeds = [chunk_seed(seed, i) for i in range(n_chunks)]
    key = _settings_key(settings)
    todo, skipped = [], 0
    from .io import read_metadata

    for i, (size, s) in enumerate(zip(sizes, seeds)):
        path = chunk_dir / f"chunk-{i:05d}.h5"
        if path.exists():
            meta = read_metadata(path)
            same = json.dumps(meta.get("settings", {}), sort_keys=True) == key
            if same and meta.get("seed") == s and meta.get("counts", {}).get("n_selected") == size:
                skipped += 1
                continue
            raise InputError(
                f"{path}: an existing chunk was made with other settings, seed or size; "
                f"use another output or delete it"
            )
        todo.append((settings.to_dict(), size, s, str(path), batch_size))
    t0 = time.perf_counter()
    if todo:
        log.info("generating %d chunk(s) of %s events (%d already on disk)", len(todo), process, skipped)
        n_workers = n_workers or min(len(todo), os.cpu_count() or 1)
        with get_executor(n_workers=n_workers, address=address) as ex:
            bar = progress(total=sum(t[1] for t in todo), desc=f"{process} events", unit="ev")
            with bar:
                for _, meta in ex.map_unordered(generate_chunk, todo):
                    bar.update(meta["n_events"])
    manifest = {
        "format": "excess-events/1 chunk directory",
        "settings": settings.to_dict(),
        "seed": int(seed),
        "chunk_size": int(chunk_size),
        "n_events": int(n_events),
        "chunks": [f"chunk-{i:05d}.h5" for i in range(n_chunks)],
        "chunk_seeds": seeds,
        "versions": versions(),
    }
    atomic_write_json(chunk_dir / "manifest.json", manifest)
    if single:
        from .io import read_events, write_events

        df = read_events(chunk_dir)
        meta = dict(df.attrs.get("excess", {}))
        meta["source"] = str(output)
        write_events(df, output, meta)
        if not keep_chunks:
            import shutil

            shutil.rmtree(chunk_dir)
    return GenerationSummary(
        output=str(output),
        n_events=int(n_events),
        n_chunks=n_chunks,
        n_chunks_skipped=skipped,
        wall_s=time.perf_counter() - t0,
        settings=settings.to_dict(),
    )
