"""One executor abstraction for everything embarrassingly parallel.

Generation chunks, search windows, folds and ensemble members are submitted as independent
tasks (a top-level function plus picklable arguments). By default they run in local worker
processes; with ``address=`` they run on a ``dask.distributed`` cluster (the engine HEP
already uses through coffea). ``n_workers=1`` runs serially in-process (easy to debug).

Example
-------
>>> from excess.executor import get_executor
>>> with get_executor(n_workers=2) as ex:
...     results = list(ex.map(pow, [(2, 3), (3, 2)]))
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

from .errors import ConfigError

__all__ = ["Executor", "SerialExecutor", "LocalExecutor", "DaskExecutor", "get_executor"]


class Executor:
    """Common interface: ``map(fn, args_list)`` yields ``(index, result)`` as tasks finish."""

    n_workers: int = 1

    def map_unordered(self, fn: Callable[..., Any], args_list: Sequence[tuple]) -> Iterator[tuple[int, Any]]:
        raise NotImplementedError

    def map(self, fn: Callable[..., Any], args_list: Iterable[tuple]) -> list[Any]:
        """Run ``fn(*args)`` for every args tuple; return results in input order."""
        args_list = list(args_list)
        out: list[Any] = [None] * len(args_list)
        for i, res in self.map_unordered(fn, args_list):
            out[i] = res
        return out

    def close(self) -> None:  # pragma: no cover - trivial
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class SerialExecutor(Executor):
    """Runs tasks one after the other in this process."""

    n_workers = 1

    def map_unordered(self, fn, args_list):
        for i, args in enumerate(args_list):
            yield i, fn(*args)


def _worker_init(threads: int) -> None:
    # Keep each worker single-threaded in BLAS/torch so n processes use n cores.
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    try:  # torch may not be imported yet; only set it if it is
        import sys

        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(threads)
    except Exception:  # pragma: no cover
        pass


class LocalExecutor(Executor):
    """Local worker processes (``spawn`` start method: safe with torch and Pythia)."""

    def __init__(self, n_workers: int | None = None, threads_per_worker: int = 1):
        self.n_workers = int(n_workers or os.cpu_count() or 1)
        if self.n_workers < 1:
            raise ConfigError(f"n_workers must be >= 1, got {n_workers}")
        self._pool = ProcessPoolExecutor(
            max_workers=self.n_workers,
            mp_context=mp.get_context("spawn"),
            initializer=_worker_init,
            initargs=(threads_per_worker,),
        )

    def map_unordered(self, fn, args_list):
        futures = {self._pool.submit(fn, *args): i for i, args in enumerate(args_list)}
        try:
            for fut in as_completed(futures):
                yield futures[fut], fut.result()
        except BaseException:
            for fut in futures:
                fut.cancel()
            raise

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class DaskExecutor(Executor):
    """Tasks on a ``dask.distributed`` cluster (a scheduler address or an existing Client)."""

    def __init__(self, address: Any):
        try:
            from distributed import Client
        except ImportError as exc:  # pragma: no cover - dask is a dependency
            raise ConfigError("dask.distributed is required for a scheduler address") from exc
        if isinstance(address, Client):
            self._client, self._own = address, False
        else:
            self._client, self._own = Client(address), True
        info = self._client.scheduler_info()
        self.n_workers = max(1, len(info.get("workers", {})))

    def map_unordered(self, fn, args_list):
        from distributed import as_completed as das_completed

        futures = [self._client.submit(fn, *args, pure=False) for args in args_list]
        index = {f.key: i for i, f in enumerate(futures)}
        try:
            for fut in das_completed(futures):
                yield index[fut.key], fut.result()
        except BaseException:
            self._client.cancel(futures)
            raise

    def close(self) -> None:
        if self._own:
            self._client.close()


def get_executor(n_workers: int | None = None, address: Any = None, threads_per_worker: int = 1) -> Executor:
    """Pick an executor: Dask if ``address`` is given, serial if ``n_workers == 1``, else local processes."""
    if address is not None:
        return DaskExecutor(address)
    if n_workers is not None and int(n_workers) < 1:
        raise ConfigError(f"n_workers must be >= 1, got {n_workers}")
    if n_workers == 1:
        return SerialExecutor()
    return LocalExecutor(n_workers, threads_per_worker=threads_per_worker)
