"""Quark and gluon jets: Pythia 8 + FastJet generation in the EnergyFlow recipe, and the EnergyFlow ``.npz`` reader.

Recipe (EnergyFlow ``qg_jets``; Komiske, Metodiev, Thaler, JHEP 01 (2019) 121):
    pp at 14 TeV; quark jets from ``q g -> Z(nu nu) q`` (``WeakBosonAndParton:qg2gmZq``), gluon jets from
    ``q qbar -> Z(nu nu) g`` (``WeakBosonAndParton:qqbar2gmZg``), ``WeakZ0:gmZmode = 2`` (pure Z),
    ``23:onIfAny = 12 14 16``; MPI and hadronisation on; pTHat 450-650 GeV (a window around the jet selection:
    pTHat >= 480 loses the low tail after showering, 450 is safe). All visible final-state particles
    (neutrinos dropped) are clustered with anti-kt R = 0.4; the hardest jet is kept if 500 < pT < 550 GeV and
    |y| < 1.7. Truth level, no detector.

Format (the EnergyFlow one, used for our own files too): ``X`` of shape ``(N, M, 4)`` with rows
``(pT [GeV], y, phi, PDG id)`` sorted by decreasing pT and zero-padded to ``M``; ``y`` 1 for quark and 0 for
gluon jets. :func:`generate_qg` writes one ``.npz`` per chunk (quark and gluon chunks alternate, each with its
own Pythia seed ``seed + 1000 * chunk``) plus a JSON sidecar; existing chunks are skipped (resume).
:func:`load_qg` reads one file, a list of files or a directory of them (e.g. the public 2M-jet
``QG_jets*.npz``), checks them, and pads them to a common ``M``.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .._util import atomic_path, atomic_write_json, get_logger
from ..errors import ConfigError, GenerationError, InputError
from .settings import QUIET_PYTHIA

__all__ = ["QGSettings", "qg_pythia_config", "generate_qg_chunk", "generate_qg", "load_qg", "write_qg_npz",
           "QGData"]

log = get_logger(__name__)



@dataclass(frozen=True)
class QGSettings:
    """Settings of the q/g generation (defaults: the EnergyFlow recipe)."""

    ecm: float = 14000.0
    pthat_min: float = 450.0
    pthat_max: float = 650.0
    mpi: bool = True
    hadronization: bool = True
    jet_radius: float = 0.4
    jet_pt_min: float = 500.0
    jet_pt_max: float = 550.0
    jet_y_max: float = 1.7

    def __post_init__(self):
        if not (0 < self.jet_pt_min < self.jet_pt_max):
            raise ConfigError(f"need 0 < jet_pt_min < jet_pt_max, got {self.jet_pt_min}, {self.jet_pt_max}")
        if self.pthat_min >= self.pthat_max:
            raise ConfigError(f"need pthat_min < pthat_max, got {self.pthat_min}, {self.pthat_max}")
        if not (0 < self.jet_radius <= 1.5):
            raise ConfigError(f"jet_radius must be in (0, 1.5], got {self.jet_radius}")

    def to_dict(self) -> dict:
        return asdict(self)


def qg_pythia_config(s: QGSettings, flavour: str, seed: int) -> list[str]:
    """Pythia ``readString`` lines for ``flavour`` ``"quark"`` or ``"gluon"``."""
    from .settings import SEED_MAX, SEED_MIN

    if flavour not in ("quark", "gluon"):
        raise ConfigError(f"flavour must be 'quark' or 'gluon', got {flavour!r}")
    if not (SEED_MIN <= int(seed) <= SEED_MAX):
        raise ConfigError(f"seed must be in {SEED_MIN}..{SEED_MAX:,}, got {seed}")
    process = "WeakBosonAndParton:qg2gmZq" if flavour == "quark" else "WeakBosonAndParton:qqbar2gmZg"
    return [
        f"Beams:eCM = {s.ecm:g}",
        "Random:setSeed = on",
        f"Random:seed = {int(seed)}",
        f"{process} = on",
        "WeakZ0:gmZmode = 2",
        "23:onMode = off",
        "23:onIfAny = 12 14 16",
        f"PhaseSpace:pTHatMin = {s.pthat_min:g}",
        f"PhaseSpace:pTHatMax = {s.pthat_max:g}",
        f"PartonLevel:MPI = {'on' if s.mpi else 'off'}",
        f"HadronLevel:all = {'on' if s.hadronization else 'off'}",
        *QUIET_PYTHIA,
    ]


def _leading_jets(batch, s: QGSettings) -> tuple[np.ndarray, list[np.ndarray]]:
    """Cluster a Pythia batch; return the passed-event mask and the (n_const, 4) constituent arrays of the
    hardest jet of each passed event."""
    import awkward as ak
    import fastjet

    from .generate import visible_particles
    from .jets import _kinematics

    counts, px, py, pz, e, ids = visible_particles(batch.prt)
    parts = ak.unflatten(ak.zip({"px": px, "py": py, "pz": pz, "E": e}, with_name="Momentum4D"), counts)
    jetdef = fastjet.JetDefinition(fastjet.antikt_algorithm, s.jet_radius)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cs = fastjet.ClusterSequence(parts, jetdef)
        jets = cs.inclusive_jets(min_pt=0.5 * s.jet_pt_min)
        cidx = cs.constituent_index(min_pt=0.5 * s.jet_pt_min)
    jpt = np.hypot(jets.px, jets.py)
    order = ak.argsort(jpt, axis=1, ascending=False)
    jets, cidx = jets[order], cidx[order]
    has = ak.to_numpy(ak.num(jets, axis=1)) > 0
    passed = np.zeros(len(counts), dtype=bool)
    out: list[np.ndarray] = []
    if not has.any():
        return passed, out
    lead = jets[has][:, 0]
    lpt, lrap, _ = _kinematics(*(ak.to_numpy(getattr(lead, f)) for f in ("px", "py", "pz", "E")))
    ok = (lpt > s.jet_pt_min) & (lpt < s.jet_pt_max) & (np.abs(lrap) < s.jet_y_max)
    ev_idx = np.nonzero(has)[0][ok]
    passed[ev_idx] = True
    lead_idx = cidx[has][:, 0][ok]
    offsets = np.concatenate([[0], np.cumsum(counts)])
    ppt, prap, pphi = _kinematics(px, py, pz, e)
    for k, idx in zip(ev_idx, ak.to_list(lead_idx)):
        g = offsets[k] + np.asarray(idx, dtype=np.int64)
        c = np.column_stack([ppt[g], prap[g], pphi[g], ids[g].astype(np.float64)])
        out.append(c[np.argsort(-c[:, 0], kind="stable")])
    return passed, out


def _pad(jets: list[np.ndarray], m: int | None = None) -> np.ndarray:
    m = max((len(j) for j in jets), default=0) if m is None else m
    X = np.zeros((len(jets), m, 4))
    for i, j in enumerate(jets):
        X[i, : len(j)] = j[:m]
    return X


def write_qg_npz(path, X: np.ndarray, y: np.ndarray) -> Path:
    """Write ``X``, ``y`` as an EnergyFlow-format ``.npz`` atomically."""
    path = Path(path)
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez_compressed(tmp, X=np.asarray(X, dtype=np.float64), y=np.asarray(y, dtype=np.float64))
    return path


def generate_qg_chunk(settings_dict: dict, flavour: str, n_jets: int, seed: int, path: str | None = None,
                      batch_size: int = 200) -> dict:
    """``n_jets`` selected ``flavour`` jets with one Pythia seed, written to ``path`` (``.npz``) atomically.

    A top-level function so chunks can run through :mod:`excess.executor`. Returns the chunk's metadata.
    """
    from .generate import silence_stdout, start_pythia, versions

    s = QGSettings(**settings_dict)
    if n_jets < 1:
        raise ConfigError(f"n_jets must be >= 1, got {n_jets}")
    cfg = qg_pythia_config(s, flavour, seed)
    t0, c0 = time.perf_counter(), time.process_time()
    pythia = start_pythia(cfg, f"{flavour} jets")
    t_init = time.perf_counter() - t0
    jets: list[np.ndarray] = []
    n_gen = 0
    for _ in range(100_000):
        if len(jets) >= n_jets:
            break
        need = n_jets - len(jets)
        with silence_stdout():  # Pythia and the FastJet banner
            batch = pythia.nextBatch(int(min(batch_size, max(20, 2 * need + 10))))
            n_gen += len(batch.prt)
            _, got = _leading_jets(batch, s)
        jets.extend(got[:need])
    else:  # pragma: no cover
        raise GenerationError(f"only {len(jets)} of {n_jets} {flavour} jets passed after {n_gen} events")
    X = _pad(jets)
    y = np.full(len(jets), 1.0 if flavour == "quark" else 0.0)
    info = pythia.infoPython()
    meta = {
        "generator": "pythia8mc + fastjet (excess.data.qg)",
        "flavour": flavour,
        "settings": s.to_dict(),
        "pythia_config": cfg,
        "seed": int(seed),
        "versions": versions(),
        "n_jets": len(jets),
        "n_pythia_events": n_gen,
        "sigma_gen_mb": float(info.sigmaGen()),
        # wall time of the process and its CPU time (on a shared machine the CPU time is the per-core cost)
        "timing": {"init_s": t_init, "total_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0},
    }
    if path is not None:
        write_qg_npz(path, X, y)
        atomic_write_json(str(path) + ".json", meta)
    return meta


def generate_qg(out_dir, n_jets: int, *, seed: int = 1, chunk_size: int = 5000, settings: QGSettings | None = None,
                n_workers: int = 1, address=None) -> dict:
    """Generate ``n_jets`` jets (half quark, half gluon) into ``out_dir`` as chunk files; resumable.

    Chunk ``i`` (``qg_{i:05d}_{quark|gluon}.npz``) holds quark jets for even ``i`` and gluon jets for odd ``i``,
    generated with Pythia seed ``seed + 1000 * i``. Finished chunks are skipped on a rerun with the same settings
    (a different setting or chunk size for an existing directory is an error). Chunks run through
    :func:`excess.executor.get_executor` (local processes, or Dask with ``address``).
    """
    from ..executor import get_executor
    from .generate import chunk_seed

    s = settings or QGSettings()
    if n_jets < 2 or chunk_size < 1:
        raise ConfigError(f"need n_jets >= 2 and chunk_size >= 1, got {n_jets}, {chunk_size}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    manifest = out / "qg_settings.json"
    key = {"settings": s.to_dict(), "seed": int(seed), "chunk_size": int(chunk_size)}
    if manifest.exists():
        old = json.loads(manifest.read_text())
        if old != key:
            raise ConfigError(f"{out} holds jets generated with other settings ({old}); use another directory")
    else:
        atomic_write_json(manifest, key)
    per_flavour = n_jets // 2
    n_chunks_f = -(-per_flavour // chunk_size)
    tasks, skipped = [], 0
    for c in range(n_chunks_f):
        size = min(chunk_size, per_flavour - c * chunk_size)
        for f, flavour in enumerate(("quark", "gluon")):
            i = 2 * c + f
            path = out / f"qg_{i:05d}_{flavour}.npz"
            if path.exists() and Path(str(path) + ".json").exists():
                skipped += 1
                continue
            tasks.append((s.to_dict(), flavour, size, chunk_seed(seed, i), str(path)))
    t0 = time.perf_counter()
    metas = []
    if tasks:
        with get_executor(n_workers=n_workers, address=address) as ex:
            metas = ex.map(generate_qg_chunk, tasks)
    wall = time.perf_counter() - t0
    n_new = sum(m["n_jets"] for m in metas)
    cpu = sum(m["timing"].get("cpu_s", m["timing"]["total_s"]) for m in metas)
    return {"out_dir": str(out), "n_chunks_generated": len(metas), "n_chunks_skipped": skipped,
            "n_jets_generated": n_new, "wall_s": wall, "cpu_s": cpu,
            "jets_per_s_per_core": n_new / cpu if cpu > 0 else None}


@dataclass(frozen=True)
class QGData:
    """Jets as ``X`` ``(N, M, 4)`` zero-padded ``(pT, y, phi, pid)`` and labels ``y`` (1 quark, 0 gluon)."""

    X: np.ndarray
    y: np.ndarray
    files: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.y)


def check_jets(X, y=None, *, name: str = "jets") -> tuple[np.ndarray, np.ndarray | None]:
    """Validate an EnergyFlow-format array (and labels): shape, finiteness, no empty jets, labels 0/1."""
    X = np.asarray(X)
    if X.ndim != 3 or X.shape[-1] != 4:
        raise InputError(f"{name}: X must have shape (n_jets, n_particles, 4) as (pt, y, phi, pid), got {X.shape}")
    X = X.astype(np.float64, copy=False)
    if not np.all(np.isfinite(X)):
        bad = int(np.argmax(~np.all(np.isfinite(X), axis=(1, 2))))
        raise InputError(f"{name}: X contains NaN or infinite values (first in jet {bad})")
    if X.shape[0] and np.any(X[:, :, 0] < 0):
        raise InputError(f"{name}: negative particle pT in X")
    empty = ~np.any(X[:, :, 0] > 0, axis=1)
    if empty.any():
        raise InputError(f"{name}: {int(empty.sum())} empty jet(s) (no particle with pT > 0), first at index "
                         f"{int(np.argmax(empty))}")
    if y is None:
        return X, None
    y = np.asarray(y)
    if y.shape != (X.shape[0],):
        raise InputError(f"{name}: y must have shape ({X.shape[0]},), got {y.shape}")
    if not np.all(np.isfinite(y.astype(float))):
        raise InputError(f"{name}: y contains NaN")
    labels = set(np.unique(y).tolist())
    if not labels <= {0, 1}:
        raise InputError(f"{name}: unknown flavour label(s) {sorted(labels - {0, 1})} in y (1 = quark, 0 = gluon)")
    return X, y.astype(np.int64)


def load_qg(source, *, max_jets: int | None = None) -> QGData:
    """Read EnergyFlow-format ``.npz`` file(s): a file, a directory (all ``*.npz`` in it, sorted) or a list.

    Arrays of different ``M`` are zero-padded to the largest; ``max_jets`` stops reading after that many
    jets. Bad files raise :class:`~excess.errors.InputError` naming the file.
    """
    if isinstance(source, (str, os.PathLike)):
        src = Path(source)
        if src.is_dir():
            files = sorted(src.glob("*.npz"))
            if not files:
                raise InputError(f"{src}: no .npz files in this directory")
        elif src.is_file():
            files = [src]
        else:
            raise InputError(f"{src}: no such file or directory")
    else:
        files = [Path(f) for f in source]
        if not files:
            raise InputError("load_qg: no files given")
    Xs, ys = [], []
    n = 0
    for f in files:
        try:
            with np.load(f, allow_pickle=False) as d:
                names = list(getattr(d, "files", []))
                if not hasattr(d, "files") or "X" not in names or "y" not in names:
                    raise InputError(f"{f}: needs arrays 'X' and 'y', has {sorted(names)}; write it with "
                                     "np.savez(path, X=..., y=...)")
                X, y = d["X"], d["y"]
        except InputError:
            raise
        except (OSError, ValueError, EOFError) as exc:
            why = "not a .npz archive" if "pickle" in str(exc) else str(exc)
            raise InputError(f"{f}: not a readable .npz file ({why}); write it with np.savez(path, X=..., y=...)") from None
        X, y = check_jets(X, y, name=str(f))
        if max_jets is not None:
            X, y = X[: max_jets - n], y[: max_jets - n]
        Xs.append(X)
        ys.append(y)
        n += len(y)
        if max_jets is not None and n >= max_jets:
            break
    m = max(X.shape[1] for X in Xs)
    X = np.concatenate([np.pad(x, ((0, 0), (0, m - x.shape[1]), (0, 0))) for x in Xs])
    return QGData(X, np.concatenate(ys), tuple(str(f) for f in files))
