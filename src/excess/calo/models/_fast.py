"""Fast sampling path of zuko masked autoregressive flows (inverse direction only, no gradients).

zuko inverts a masked autoregressive transform with ``passes`` network evaluations (two for the
coupling layers of :class:`~excess.calo.models.flow.CaloFlow`): every pass runs the whole masked
MLP on the partially known input and keeps the outputs it can trust. The same result costs less:

* the first layer's context part (and bias) is computed once and the contribution of each newly
  known group of features is added to it, instead of re-multiplying the whole input;
* each pass evaluates only the output rows of the group of features it inverts, and only the hidden
  units it needs: zuko's masked MLP gives its hidden units the outputs' dependency sets in turn, so in a
  coupling layer half of them see the context only; the first pass computes just those, the second
  just the others (the first pass's are final). The products skipped are those with masked, zero
  weights: ~40 % fewer multiply-adds per coupling layer, the same function;
* masked weights are multiplied out once, not at every call;
* the rational-quadratic spline is inverted without building the padded knot tensors for the
  forward direction and without broadcasting copies;
* on the CPU (float32), with ``loops=True``, the univariate inverses after the network run as compiled
  loops (numba, :mod:`._fast_numba`): for the spline, the soft clamp of all its parameters in place,
  torch's ``exp`` on the whole block, then one pass per feature for the cumulative sums (accumulated
  in float64, as torch's ``cumsum`` does), the bin, the knots and the quadratic; the affine map
  likewise. The same float32 operations in the same order as the torch version (which stays for
  other devices and dtypes and is what the loops are tested against); only torch's ``exp`` of a few
  derivatives, which takes another code path (scalar tail or not) with the memory layout, can differ
  in the last bit: ~2 % of the spline's outputs differ by float rounding, the affine's none.

:func:`inverse_sampler` turns a zuko ``Flow`` built from ``MaskedAutoregressiveTransform`` layers
(affine or :class:`zuko.transforms.MonotonicRQSTransform`) into a function ``f(context, z) -> x``
equal to ``flow(context).transform.inv(z)`` up to float rounding (tested against zuko). Anything
else raises :class:`NotImplementedError`, and callers fall back to zuko.
"""

from __future__ import annotations

import functools
import math

__all__ = ["inverse_sampler", "compiled"]


def _affine_inverse(phi, y, slope: float, loops: bool = False):
    """``phi`` (B, 2, F) fresh from the network (overwritten), ``y`` (B, F): with ``loops``, by compiled loops on
    float32 CPU tensors (see :func:`_rqs_inverse`; the same float32 operations, torch's ``exp``), else by torch."""
    import torch

    kernels = _numba_kernels() if loops and _compiled_loops_apply(phi, y) else None
    if kernels is not None:
        import numpy as np

        p = phi.contiguous().numpy()
        kernels.affine_neg_log_scale(p, np.float32(math.log(slope)))
        torch.from_numpy(p)[:, 1].exp_()
        out = np.empty(tuple(y.shape), dtype=np.float32)
        kernels.affine_apply(p, y.numpy(), out)
        return torch.from_numpy(out)

    shift, scale = phi[:, 0], phi[:, 1]
    t = torch.div(scale, math.log(slope))  # zuko: log_scale = scale / (1 + |scale / ln slope|)
    t.abs_().add_(1)
    log_scale = scale.div_(t)
    return torch.sub(y, shift).mul_(log_scale.neg_().exp_())


def _rqs_inverse(phi, y, bins: int, bound: float, slope: float, loops: bool = False):
    """Inverse of zuko's ``MonotonicRQSTransform`` (see :func:`_rqs_inverse_torch`): with ``loops``, by the
    compiled loops of :func:`_numba_kernels` for float32 CPU tensors when numba is there, else by torch."""
    kernels = _numba_kernels() if loops and _compiled_loops_apply(phi, y) else None
    if kernels is None:  # other devices and dtypes, and torch.compile (which fuses the torch version)
        return _rqs_inverse_torch(phi, y, bins, bound, slope)
    import numpy as np
    import torch

    ls = abs(math.log(slope))
    p = phi.contiguous().numpy()
    f32 = np.float32
    kernels.soft_clamp(p, 2 * bins, f32(2 / ls), f32(1 / ls))
    torch.from_numpy(p).exp_()  # torch's vectorised exp (numba's is scalar without SVML)
    out = np.empty(tuple(y.shape), dtype=np.float32)
    kernels.rest(p, y.numpy(), bins, f32(bound), f32(2 * bound), out)
    return torch.from_numpy(out)


def _compiled_loops_apply(phi, y) -> bool:
    """Whether the univariate inverses run as compiled loops: float32 CPU tensors, not inside torch.compile
    (which fuses the torch version itself)."""
    import torch

    compiling = getattr(getattr(torch, "compiler", None), "is_compiling", lambda: False)()
    return phi.device.type == "cpu" and phi.dtype == torch.float32 and y.dtype == torch.float32 and not compiling


@functools.lru_cache(maxsize=1)
def _numba_kernels():
    """The module :mod:`._fast_numba` with its loops loaded (compiled once, then read from numba's cache on disk:
    ~3 s of CPU in every new process, measured on a loaded 2-core machine), or ``None`` when numba cannot be
    imported."""
    try:
        from . import _fast_numba

        _fast_numba.warm_up()
    except ImportError:  # pragma: no cover - numba comes with shap, a dependency
        return None
    except (RuntimeError, OSError) as exc:  # pragma: no cover - e.g. no writable place for numba's cache
        import warnings

        warnings.warn(f"the compiled sampling loops could not be loaded ({exc}); sampling with torch operations",
                      RuntimeWarning, stacklevel=2)
        return None
    return _fast_numba


def compiled_loops_available() -> bool:
    """Whether numba can be imported (it comes with shap, a dependency of excess)."""
    import importlib.util

    return importlib.util.find_spec("numba") is not None


def compiled_loops_loaded() -> bool:
    """Whether this process has loaded the compiled loops already (so using them costs nothing more)."""
    return _numba_kernels.cache_info().currsize > 0 and _numba_kernels() is not None


def _rqs_inverse_torch(phi, y, bins: int, bound: float, slope: float):
    """Inverse of zuko's ``MonotonicRQSTransform``; ``phi`` (B, 3K-1, F) holds the unconstrained
    widths, heights and interior derivatives parameter-major (features innermost, so that every
    reduction over the bins adds contiguous rows), ``y`` is (B, F). ``phi`` comes fresh from the
    network and is overwritten.

    Only what the inverse needs is computed at full size (the soft clamp, exp and cumulative sums of
    widths and heights, in place); normalisation and the derivatives are applied to the one bin each
    ``y`` is in. Every element goes through the same float operations as before (in place or not).
    """
    import torch

    K = bins
    B, F = y.shape
    ls = abs(math.log(slope))

    def soft_clamp(v, c):
        return v / (1 + (c / ls) * v.abs())

    # widths and heights at once: soft clamp, then exp (a softmax by hand: the soft clamp bounds the logits
    # by |ln slope| / 2, so exp cannot overflow), then the cumulative sums, unnormalised
    wh = phi[:, : 2 * K]
    t = wh.abs()
    t.mul_(2 / ls).add_(1)
    wh.div_(t).exp_()
    del t
    cwh = wh.view(B, 2, K, F).cumsum(2)  # (B, 2, K, F): widths, heights
    cw, ch = cwh[:, 0], cwh[:, 1]
    s_wh = cwh[:, :, -1:]  # (B, 2, 1, F) normalisations
    yu = ((y.clamp(-bound, bound) + bound) / (2 * bound)).unsqueeze(1)  # position in [0, 1]
    k = (ch[:, :-1] < yu * s_wh[:, 1]).sum(1, keepdim=True)  # bin 0..K-1, (B, 1, F)
    km1 = (k - 1).clamp_min(0)
    first = k == 0
    zero = torch.zeros((), dtype=phi.dtype, device=phi.device)
    # knots k-1 and k of widths and heights in one gather: (B, 2, 2, F) = [w/h][k-1, k]
    kk = torch.cat([km1, k], dim=1).unsqueeze(1).expand(B, 2, 2, F)
    g = cwh.gather(2, kk) / s_wh
    x1, y1 = g[:, 0, 1:], g[:, 1, 1:]
    x0 = torch.where(first, zero, g[:, 0, :1])
    y0 = torch.where(first, zero, g[:, 1, :1])
    wk, hk = x1 - x0, y1 - y0
    d = phi[:, 2 * K :]  # interior knot derivatives (K-1); the two end knots have derivative 1
    dd = soft_clamp(d.gather(1, torch.cat([km1, k.clamp_max(K - 2)], dim=1)), 1)
    d0 = torch.where(first, zero, dd[:, :1]).exp()
    d1 = torch.where(k == K - 1, zero, dd[:, 1:]).exp()
    # zuko's formulas, in units of 2 * bound (z is scale-invariant)
    s = hk / wk
    yr = (yu - y0).clamp_min(0)
    t = d0 + d1 - 2 * s
    a = hk * (s - d0) + yr * t
    b = hk * d0 - yr * t
    c = -s * yr
    z = 2 * c / (-b - (b * b - 4 * a * c).clamp_min(0).sqrt())
    x = (x0 + z * wk).squeeze(1) * (2 * bound) - bound
    inside = (y > -bound) & (y < bound)
    return torch.where(inside, x, y)


class _Layer:
    """One masked autoregressive transform, prepared for inversion.

    The layer works in a column layout of its own: ``layout`` lists the natural feature index of each
    column. A coupling layer (two passes) puts each pass's group of features in contiguous columns, so
    that the groups are slices, not gathers and scatters; a one-pass layer (the context-only marginal
    splines) takes the layout of its input as it is. The output layer of the network is split into
    blocks of at most ``block_columns`` columns, a block of whole features each, whose univariate
    inverses run one block at a time: matrix products with fewer output columns ran ~1.5x faster per
    flop on the 2-core machine (the output of one block stays in cache), and so do the spline's
    element-wise steps on a block.
    """

    block_columns = 1024

    def __init__(self, t, layout_in, loops: bool = False):
        import torch
        from zuko.nn import MaskedLinear
        from zuko.transforms import MonotonicAffineTransform, MonotonicRQSTransform

        uni = t.univariate
        base = uni.func if isinstance(uni, functools.partial) else uni
        kw = dict(uni.keywords) if isinstance(uni, functools.partial) else {}
        if isinstance(uni, functools.partial) and uni.args:
            raise NotImplementedError("positional arguments of the univariate transform")
        if base is MonotonicAffineTransform and set(kw) <= {"slope"}:
            self.inverse = functools.partial(_affine_inverse, slope=float(kw.get("slope", 1e-3)), loops=loops)
        elif base is MonotonicRQSTransform and set(kw) <= {"bound", "slope"}:
            bins = int(t.shapes[0][0])
            self.inverse = functools.partial(_rqs_inverse, bins=bins, bound=float(kw.get("bound", 5.0)),
                                             slope=float(kw.get("slope", 1e-3)), loops=loops)
        else:
            raise NotImplementedError(f"univariate transform {base!r}")
        mods = list(t.hyper)
        linears = [m for m in mods if isinstance(m, MaskedLinear)]
        acts = [m for m in mods if not isinstance(m, MaskedLinear)]
        if (len(linears) != len(acts) + 1 or any(type(a) is not torch.nn.ReLU for a in acts)
                or any(not isinstance(m, (MaskedLinear, torch.nn.ReLU)) for m in mods)):
            raise NotImplementedError("only MaskedMLPs of linear layers and ReLUs")
        features = int(t.order.shape[0])
        context = linears[0].in_features - features
        with torch.no_grad():
            W = [(lin.weight * lin.mask).detach().clone() for lin in linears]
            b = [lin.bias.detach().clone() for lin in linears]
        masks = [lin.mask.detach().bool().cpu() for lin in linears]
        self.total = int(t.total)
        order = t.order.long().cpu()
        self.passes = int(t.passes)
        layout_in = torch.as_tensor(layout_in, dtype=torch.long)
        if self.passes == 1:
            groups = [layout_in]
            self.layout = layout_in
        else:
            groups = [torch.nonzero(order == g).squeeze(1) for g in range(self.passes)]
            self.layout = torch.cat(groups)
        # columns of the input (in layout_in) to take, None when the layouts agree
        pos = torch.empty_like(layout_in)
        pos[layout_in] = torch.arange(len(layout_in))
        take = pos[self.layout]
        dev = W[0].device
        self.take = None if torch.equal(take, torch.arange(len(take))) else take.to(dev)
        self.sizes = [len(g) for g in groups]
        # The pass at which each hidden unit is final: 1 + the last group of features it depends on (0: the context
        # only). zuko's masked MLP gives the hidden units every dependency set of the outputs in turn, so with two
        # passes half of them see the context only: the first pass needs only those, and the second pass
        # recomputes only the others. Units are sorted by that pass; cuts[i][p] is the first unit of pass p in
        # hidden layer i. The skipped products are those with masked (zero) weights: the same function.
        P = self.passes
        need = _last_dependency(masks[0][:, :features], order + 1)  # order: each feature's group
        perms, self.cuts = [], []
        for i in range(len(linears) - 1):
            if i > 0:
                need = _last_dependency(masks[i][:, perms[-1]], need[perms[-1]])
            keep = torch.nonzero(need < P).squeeze(1)  # units after the last pass feed no output
            perms.append(keep[torch.argsort(need[keep], stable=True)])
            self.cuts.append([int((need[keep] < p).sum()) for p in range(P + 1)])
        last = need[perms[-1]]  # the last hidden layer's units, sorted
        for g_id, g in enumerate(groups):  # an output may only need units final by its pass
            rows = (torch.arange(self.total)[:, None] + g[None, :] * self.total).reshape(-1)
            if (masks[-1][rows][:, perms[-1]] & (last > g_id)[None, :]).any():
                raise NotImplementedError("a masked MLP whose outputs depend on later groups")
        W0 = W[0][perms[0].to(dev)]
        self.W1x = [W0[:, :features][:, g.to(dev)].t().contiguous() for g in groups]  # (|g|, H)
        self.W1c = W0[:, features:].t().contiguous() if context else None  # (C, H)
        self.b1 = b[0][perms[0].to(dev)]
        self.mid = [(w[perms[i + 1].to(dev)][:, perms[i].to(dev)].t().contiguous(), bb[perms[i + 1].to(dev)])
                    for i, (w, bb) in enumerate(zip(W[1:-1], b[1:-1]))]
        # output rows parameter-major within blocks of whole features: block j of group p comes out as (B, total, |block|)
        self.out = []
        per_block = max(1, self.block_columns // self.total)
        Wout = W[-1][:, perms[-1].to(dev)]
        for p, g in enumerate(groups):
            end = self.cuts[-1][p + 1]  # the units final by this pass
            blocks = []
            for i in range(0, len(g), per_block):
                gb = g[i : i + per_block].to(dev)
                r = (torch.arange(self.total, device=dev)[:, None] + gb[None, :] * self.total).reshape(-1)
                blocks.append((i, len(gb), Wout[r][:, :end].t().contiguous(), b[-1][r]))  # (H_p, total * |block|)
            self.out.append(blocks)

    def __call__(self, c, y):
        """``y`` (B, F) in the input layout -> x (B, F) in ``self.layout``."""
        import torch

        if self.take is not None:
            y = y.index_select(1, self.take)
        B = y.shape[0]
        # first hidden layer before its ReLU, units sorted by pass; each pass's slice is made final in place
        acc = self.b1.expand(B, -1).clone() if self.W1c is None else torch.addmm(self.b1, c, self.W1c)
        hs = [acc] + [acc.new_empty(B, len(bb)) for _, bb in self.mid]
        xs, start = [], 0
        for p, n in enumerate(self.sizes):
            lo, hi = self.cuts[0][p], self.cuts[0][p + 1]
            acc[:, lo:hi].clamp_min_(0)
            for i, (w, bb) in enumerate(self.mid):
                lo, hi, end = self.cuts[i + 1][p], self.cuts[i + 1][p + 1], self.cuts[i][p + 1]
                if hi > lo:  # this pass's units of layer i + 1, from the units of layer i final by now
                    hs[i + 1][:, lo:hi] = torch.addmm(bb[lo:hi], hs[i][:, :end], w[:end, lo:hi]).clamp_min_(0)
            h = hs[-1][:, : self.cuts[-1][p + 1]]
            yg = y[:, start : start + n]
            parts = [self.inverse(torch.addmm(bo, h, wo).view(B, self.total, m), yg[:, i : i + m])
                     for i, m, wo, bo in self.out[p]]
            xg = parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
            xs.append(xg)
            if p + 1 < self.passes and self.cuts[0][p + 1] < acc.shape[1]:
                lo = self.cuts[0][p + 1]  # the later units see this group
                acc[:, lo:].addmm_(xg, self.W1x[p][:, lo:])
            start += n
        return xs[0] if len(xs) == 1 else torch.cat(xs, dim=1)


def _last_dependency(mask, need_in):
    """Per row of ``mask`` (units x inputs, bool): the largest ``need_in`` of the inputs it connects to, 0 if none."""
    import torch

    vals = torch.where(mask, need_in[None, :], torch.zeros((), dtype=need_in.dtype))
    return vals.max(dim=1).values if mask.shape[1] else torch.zeros(mask.shape[0], dtype=need_in.dtype)


def inverse_sampler(flow, *, loops: bool = False):
    """``f(context, z) -> x`` equal to ``flow(context).transform.inv(z)`` for a zuko flow of masked
    autoregressive transforms (see the module docstring); raises ``NotImplementedError`` otherwise."""
    from zuko.flows.autoregressive import MaskedAutoregressiveTransform

    import torch

    transform = flow.transform
    ts = list(getattr(transform, "transforms", [transform]))
    for t in ts:
        if not isinstance(t, MaskedAutoregressiveTransform):
            raise NotImplementedError(f"transform {type(t).__name__}")
    layers = []
    layout = torch.arange(int(ts[-1].order.shape[0])) if ts else None
    for t in reversed(ts):  # in the order of the inverse
        layers.append(_Layer(t, layout, loops))
        layout = layers[-1].layout
    # back to the natural order of the features at the end (None: already there)
    back = None if layout is None or torch.equal(layout, torch.arange(len(layout))) else torch.argsort(layout)
    if back is not None and layers:
        back = back.to(layers[0].b1.device)

    def f(c, z):
        with torch.no_grad():
            x = z
            for layer in layers:
                x = layer(c, x)
            return x if back is None else x.index_select(1, back)

    return f


def compiled(f):
    """``f`` through ``torch.compile`` (dynamic shapes: one compilation serves every batch size).

    Compilation happens at the first call and needs a working C++ compiler; a failure there is
    reported as one :class:`~excess.errors.ConfigError` saying so.
    """
    import torch

    from ...errors import ConfigError

    cf = torch.compile(f, dynamic=True)
    state = {"ok": False}

    def g(c, z):
        if state["ok"]:
            return cf(c, z)
        try:
            out = cf(c, z)
        except Exception as exc:  # compilation errors surface at the first call
            raise ConfigError(f"torch.compile of the sampling path failed ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
                              "sample without compile=True") from exc
        state["ok"] = True
        return out

    return g
