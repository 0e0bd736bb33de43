"""CaloFlow-like conditional normalizing flow (zuko), trained in one go by maximum likelihood.

Two flows factorise the density (Krause & Shih, CaloFlow, arXiv:2106.05285):

* **energy flow** ``p(u | E_inc)``: a neural spline flow on the ``L`` energy variables (total energy
  fraction and per-layer energy ratios, see :mod:`excess.calo.preprocessing`);
* **shape flow** ``p(v | u, E_inc)``: an affine (or spline) flow on the normalised voxel energies.
  With ``block="shower"`` it covers all voxels at once (ds1: 368 voxels); with ``block="layer"``
  one flow, shared by all layers, models each layer's voxels conditioned on the layer (one-hot),
  the energy variables and ``E_inc`` (iCaloFlow-like), which keeps ds2/ds3 (6480 / 40500 voxels)
  trainable on a CPU. ``block="auto"`` takes ``"shower"`` up to 1024 voxels, else ``"layer"``
  (layer blocks need equal-sized layers). With ``block="shower"``, layers of at most
  ``small_layer_voxels`` voxels are modelled by a third flow, ``p(v_small | u, E_inc)``.

The flows are *coupling* flows (masked autoregressive networks with two passes, random
permutations per transform drawn from the model's seed), so sampling costs two network passes
per transform, not one per dimension: fast generation was a design goal. Sampling goes through
:mod:`excess.calo.models._fast` (the same inverse as zuko's, computed with about a third of the
work) and optionally ``torch.compile``. Generated features are clipped to ``[-clip, clip]``
(standardised units) before the inverse preprocessing.
"""

from __future__ import annotations

import numpy as np

from ...errors import ConfigError
from .base import ShowerGenerator

__all__ = ["CaloFlow"]


def _rqs_kw(bins: int) -> dict:
    import functools

    import zuko

    # bound 6: the standardised features lie within +-5 but for ~1e-4 of them (identity beyond the bound)
    return dict(univariate=functools.partial(zuko.transforms.MonotonicRQSTransform, bound=6.0),
                shapes=[(bins,), (bins,), (bins - 1,)])


def _coupling_flow(features: int, context: int, transforms: int, hidden: tuple[int, ...], spline: bool, bins: int, generator,
                   marginal_bins: int = 0, marginal_hidden: tuple[int, ...] = (128, 128)):
    import torch
    from zuko.flows import Flow, MaskedAutoregressiveTransform, UnconditionalDistribution
    from zuko.distributions import DiagNormal

    kw = dict(hidden_features=tuple(hidden), passes=min(2, features))
    if spline:
        kw.update(_rqs_kw(bins))
    ts = []
    if marginal_bins:  # data side: a spline per feature whose knots depend on the context only (one pass)
        ts.append(MaskedAutoregressiveTransform(features, context, passes=1, hidden_features=tuple(marginal_hidden),
                                                **_rqs_kw(int(marginal_bins))))
    for i in range(transforms):
        order = torch.randperm(features, generator=generator) if features > 2 else (torch.arange(features) if i % 2 == 0 else torch.arange(features).flip(0))
        ts.append(MaskedAutoregressiveTransform(features, context, order=order, **kw))
    base = UnconditionalDistribution(DiagNormal, torch.zeros(features), torch.ones(features), buffer=True)
    return Flow(ts, base)


def _map_chunks(f, chunks, workers: int) -> list:
    """``[f(*c) for c in chunks]`` on ``workers`` threads (the calling thread if 1), torch single-threaded in each.

    On a few CPU cores, whole chunks side by side beat splitting every small matrix product over the
    cores (no synchronisation per operation, each chunk stays in one core's cache); torch releases the
    GIL inside its operations. The torch thread count is restored afterwards.
    """
    from concurrent.futures import ThreadPoolExecutor

    import torch

    def run(c):
        torch.set_num_threads(1)
        return f(*c)

    old = torch.get_num_threads()
    if old == 1:
        return [f(*c) for c in chunks]
    try:
        if workers < 2:
            return [run(c) for c in chunks]
        with ThreadPoolExecutor(max_workers=workers) as ex:
            return list(ex.map(run, chunks))
    finally:
        torch.set_num_threads(old)


class CaloFlow(ShowerGenerator):
    """Conditional two-stage normalizing flow for calorimeter showers.

    Parameters
    ----------
    geometry : str or CaloGeometry
    block : {"auto", "shower", "layer"}
        Dimension of the shape flow (see the module docstring).
    energy_transforms, energy_hidden, energy_bins
        Spline coupling flow on the energy variables.
    shape_transforms, shape_hidden
        Coupling flow on the normalised voxels.
    shape_spline : bool
        Rational-quadratic spline (True) or affine (False, faster) shape transforms.
    shape_marginal_bins : int
        If > 0 (default 8), the shape flow starts (data side) with one rational-quadratic spline of
        this many bins per voxel whose knots depend on the context only: it shapes each voxel's
        (often two-peaked: empty or hit) distribution given the energies, which the affine coupling
        layers cannot. On the ds1-like benchmark it took the low-level classifier AUC from 0.90 to
        0.72 (10 coupling layers of 512 hidden units, 20k training showers; see the README). It costs
        about 3x the training time of six affine coupling layers of 256 and much of the generation
        time; 0 leaves it out.
    small_layer_voxels : int
        With ``block="shower"``, layers of at most this many voxels (ds1: the 8-voxel presampler and
        the two 5-voxel back layers) get a flow of their own, ``p(v_small | u, E_inc)``, with spline
        coupling layers (``small_transforms``, ``small_hidden``); the other layers stay in the main
        shape flow. In one 368-voxel flow these 18 voxels get little of the capacity, and their
        hit patterns (empty, one, two hit voxels) came out wrong. 0 keeps every voxel in one flow.
    small_transforms, small_hidden
        The small layers' spline coupling flow.
    epochs, batch_size, lr, weight_decay, noise_mev, clip, random_state, device
        Training settings (Adam with cosine learning-rate decay, gradient norm clipped at 5).
    sparsity_calibration : bool
        Fit per-layer, per-energy output thresholds on the training showers after training, so that
        the fraction of empty voxels matches (see :mod:`excess.calo.preprocessing`).
    """

    name = "flow"
    _can_compile = True
    # what a saved model.json without these keys was built with (saved before they existed)
    _absent_param_defaults = {"small_layer_voxels": 0}
    _max_rows = 2**23  # rows x features per zuko (fast=False) shape-flow pass (~ a few GB of activations)

    def __init__(
        self,
        geometry="ds1-photons",
        *,
        block: str = "auto",
        energy_transforms: int = 4,
        energy_hidden: tuple[int, ...] = (64, 64),
        energy_bins: int = 8,
        shape_transforms: int = 6,
        shape_hidden: tuple[int, ...] = (256, 256),
        shape_spline: bool = False,
        shape_marginal_bins: int = 8,
        small_layer_voxels: int = 16,
        small_transforms: int = 6,
        small_hidden: tuple[int, ...] = (128, 128),
        epochs: int = 30,
        batch_size: int = 256,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        noise_mev: float = 0.01,
        clip: float = 8.0,
        sparsity_calibration: bool = True,
        random_state: int | None = 0,
        device="auto",
    ):
        self._store_params(locals())

    # ------------------------------------------------------------------------------------
    def _block_mode(self) -> str:
        g = self.geometry_
        if self.block not in ("auto", "shower", "layer"):
            raise ConfigError(f"block must be 'auto', 'shower' or 'layer', got {self.block!r}")
        mode = self.block if self.block != "auto" else ("shower" if g.n_voxels <= 1024 else "layer")
        if mode == "layer" and len(set(g.layer_sizes.tolist())) != 1:
            raise ConfigError(f"block='layer' needs layers of equal size; geometry {g.name!r} has {g.layer_sizes.tolist()}")
        return mode

    def _split_voxels(self):
        """(main voxel indices, small-layer voxel indices or None) of the shower-mode shape stage."""
        g = self.geometry_
        V = g.n_voxels
        if self.mode_ != "shower" or int(self.small_layer_voxels) <= 0:
            return np.arange(V), None
        small = [i for i, n in enumerate(g.layer_sizes.tolist()) if n <= int(self.small_layer_voxels)]
        if not small or len(small) == g.n_layers:
            return np.arange(V), None
        idx = np.concatenate([np.arange(V)[g.layer_slice(i)] for i in small])
        return np.setdiff1d(np.arange(V), idx), idx

    def _build(self, n_features: int, n_energy: int, generator):
        import torch

        from ...nn.training import reset_parameters

        L = n_energy
        V = n_features - L
        self.mode_ = self._block_mode()
        if self.mode_ == "shower":
            main, small = self._split_voxels()
            dim, ctx = len(main), 1 + L
        else:
            main, small = None, None
            dim, ctx = V // L, 1 + 2 * L
        self.main_index_ = None if small is None else torch.as_tensor(main)
        self.small_index_ = None if small is None else torch.as_tensor(small)
        energy = _coupling_flow(L, 1, int(self.energy_transforms), tuple(self.energy_hidden), True, int(self.energy_bins), generator)
        shape = _coupling_flow(dim, ctx, int(self.shape_transforms), tuple(self.shape_hidden), bool(self.shape_spline), 8, generator,
                               marginal_bins=int(self.shape_marginal_bins))
        parts = {"energy": energy, "shape": shape}
        if small is not None:
            parts["small"] = _coupling_flow(len(small), ctx, int(self.small_transforms), tuple(self.small_hidden), True, 8, generator,
                                            marginal_bins=int(self.shape_marginal_bins), marginal_hidden=tuple(self.small_hidden))
        module = torch.nn.ModuleDict(parts)
        reset_parameters(module, generator)
        return module

    def _make_optimizers(self):
        import torch

        self.optimizer_ = torch.optim.AdamW(self.module_.parameters(), lr=float(self.lr), weight_decay=float(self.weight_decay))
        self.scheduler_ = None  # created at the first step, when the number of batches is known

    def _shape_context(self, c, e_part):
        import torch

        ctx = torch.cat([c, e_part], dim=1)
        if self.mode_ == "shower":
            return ctx
        L = e_part.shape[1]
        B = ctx.shape[0]
        eye = torch.eye(L, dtype=ctx.dtype, device=ctx.device)
        return torch.cat([ctx.repeat_interleave(L, dim=0), eye.repeat(B, 1)], dim=1)

    def log_prob(self, x, c):
        """Log-density of standardised features ``x`` (B, L+V) given condition ``c`` (B, 1) (torch)."""
        L = self.preprocessor_.n_energy
        e_part, v = x[:, :L], x[:, L:]
        lp = self.module_["energy"](c).log_prob(e_part)
        ctx = self._shape_context(c, e_part)
        if self.mode_ == "shower" and self.small_index_ is not None:
            lp = lp + self.module_["shape"](ctx).log_prob(v[:, self.main_index_.to(v.device)])
            lp = lp + self.module_["small"](ctx).log_prob(v[:, self.small_index_.to(v.device)])
        elif self.mode_ == "shower":
            lp = lp + self.module_["shape"](ctx).log_prob(v)
        else:
            B = x.shape[0]
            lp = lp + self.module_["shape"](ctx).log_prob(v.reshape(B * L, -1)).reshape(B, L).sum(1)
        return lp

    # the shape stage does not affect E_tot/E_inc: keep it at the epoch of best validation likelihood
    _validation_loss_parts = ("shape", "small")

    def _validation_loss(self, x, c) -> float:
        """Mean negative log-likelihood per feature of standardised validation features (no gradients)."""
        import torch

        with torch.no_grad():
            return float(torch.cat([-self.log_prob(x[i : i + 4096], c[i : i + 4096]) for i in range(0, len(x), 4096)]).mean()
                         / x.shape[1])

    def _train_step(self, x, c, generator) -> float:
        import torch

        if self.scheduler_ is None:  # cosine decay over the whole run
            n = getattr(self, "n_batches_hint_", None) or 1
            self.scheduler_ = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer_, T_max=max(1, int(self.epochs) * n))
        loss = -self.log_prob(x, c).mean() / x.shape[1]
        self.optimizer_.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.module_.parameters(), 5.0)
        self.optimizer_.step()
        self.scheduler_.step()
        return loss.item()

    # rows x features per chunk of the fast sampling path: small enough to stay in a core's cache (ds1 at batch 10k,
    # one thread: 0.160 ms per shower with 2^16 against 0.197 with 2^18, on a loaded 2-core machine)
    _chunk_elements = 2**16

    def _fast_samplers(self):
        """Each flow part's fast inverse (:mod:`._fast`), rebuilt whenever a weight changed (every in-place
        update bumps a tensor's version counter); ``None`` if a flow is not supported."""
        compile_ = bool(getattr(self, "_compile_sampling", False))
        loops = bool(getattr(self, "_sampling_loops", False)) and not compile_
        key = (compile_, loops, tuple((id(p), p._version, p.device) for p in self.module_.parameters()))
        cache = getattr(self, "_fast_cache_", None)
        if cache is None or cache[0] != key:
            from ._fast import compiled, inverse_sampler

            try:
                samplers = {part: inverse_sampler(flow, loops=loops) for part, flow in self.module_.items()}
            except NotImplementedError:
                if compile_:
                    raise ConfigError("compile=True needs the fast sampling path, which this flow's transforms do not support") from None
                samplers = None
            if samplers is not None and compile_:
                samplers = {part: compiled(f) for part, f in samplers.items()}
            self._fast_cache_ = cache = (key, samplers)
        return cache[1]

    def _inverse(self, part: str, ctx, z, fast: bool):
        """``module_[part](ctx).transform.inv(z)`` in chunks, by the fast path where it applies."""
        import torch

        samplers = self._fast_samplers() if fast else None
        if samplers is not None:
            f = samplers[part]
            rows = max(1, self._chunk_elements // max(z.shape[1], 1))
        else:
            flow = self.module_[part]

            def f(c, zz):
                return flow(c).transform.inv(zz)

            rows = max(1, self._max_rows // max(z.shape[1], 1))  # bound the memory of one network pass
        n = ctx.shape[0]
        if samplers is not None and ctx.device.type == "cpu" and not getattr(self, "_compile_sampling", False):
            # at least one chunk per thread, each single-threaded (compiled samplers stay on the calling thread),
            # and as many chunks of equal size on every thread (before, ds1's small-layer flow cut 10k rows into
            # 3 chunks on 2 threads: 7280 rows on one thread, 2720 on the other)
            threads = torch.get_num_threads()
            rows = max(1, min(rows, -(-n // threads)))
            if threads > 1:
                n_chunks = -(-n // rows)
                n_chunks = -(-n_chunks // threads) * threads  # rounded up to a multiple of the thread count
                rows = max(1, -(-n // n_chunks))
            chunks = [(ctx[i : i + rows], z[i : i + rows]) for i in range(0, n, rows)]
            return torch.cat(_map_chunks(f, chunks, min(threads, len(chunks))))
        if n <= rows:
            return f(ctx, z)
        return torch.cat([f(ctx[i : i + rows], z[i : i + rows]) for i in range(0, n, rows)])

    #: voxel values (showers x voxels) from which one ``sample`` call loads the compiled loops by itself
    _loops_min_elements = 2**25

    def sample(self, incident_energies, *, batch_size: int = 10_000, random_state=None, compile: bool = False,
               compiled_loops: bool | None = None) -> np.ndarray:
        """As :meth:`ShowerGenerator.sample`; ``compiled_loops`` runs the univariate inverses of the flows (splines
        and affine maps) on the CPU as compiled float32 loops (numba) instead of some forty torch operations each.
        The showers are the same up to float32 rounding (most values bit-identical). Loading the loops costs
        about 3 s of CPU once per process, so ``None`` (the default) uses them when they are loaded already or when
        the call generates at least 2^25 voxel values (~90k ds1 or ~5k ds2 showers); ``True`` always, ``False``
        never. Steady state, they took ds1's CPU time per shower from ~0.18 to ~0.13 ms (one thread, batch 10k,
        in turn in one process, on a loaded 2-core machine).
        """
        from ._fast import compiled_loops_available, compiled_loops_loaded

        if compiled_loops is None:
            work = np.size(incident_energies) * self.geometry_.n_voxels
            compiled_loops = compiled_loops_loaded() or work >= self._loops_min_elements
        self._sampling_loops = bool(compiled_loops) and compiled_loops_available()
        try:
            return super().sample(incident_energies, batch_size=batch_size, random_state=random_state, compile=compile)
        finally:
            self._sampling_loops = False

    def _sample_energy(self, c, generator, fast: bool = True):
        import torch

        L = self.preprocessor_.n_energy
        z = torch.randn(c.shape[0], L, generator=generator).to(c.device)
        return self._inverse("energy", c, z, fast).clamp(-self.clip, self.clip)

    def _generate_energy_ratio(self, c, generator) -> np.ndarray:
        from ...nn.training import as_numpy

        e_part = self._sample_energy(c, generator)
        return self.preprocessor_.energy_ratio(as_numpy(e_part[:, 0]))

    def _generate(self, c, generator, fast: bool = True):
        """Standardised features of new showers for conditions ``c``; ``fast=False`` inverts the flows
        with zuko itself (the reference the fast path is tested against)."""
        import torch

        e_part = self._sample_energy(c, generator, fast)
        ctx = self._shape_context(c, e_part)
        V = self.preprocessor_.n_features - self.preprocessor_.n_energy
        if self.mode_ == "shower" and self.small_index_ is not None:
            v = torch.empty(ctx.shape[0], V, device=ctx.device)
            for part, idx in (("shape", self.main_index_), ("small", self.small_index_)):
                z = torch.randn(ctx.shape[0], len(idx), generator=generator).to(ctx.device)
                v[:, idx.to(ctx.device)] = self._inverse(part, ctx, z, fast)
        else:
            dim = V if self.mode_ == "shower" else V // self.preprocessor_.n_energy
            z = torch.randn(ctx.shape[0], dim, generator=generator).to(ctx.device)
            v = self._inverse("shape", ctx, z, fast)
        v = v.clamp(-self.clip, self.clip).reshape(c.shape[0], -1)
        return torch.cat([e_part, v], dim=1)
