"""Fast sampling path of zuko masked autoregressive flows (inverse direction only, no gradients).

zuko inverts a masked autoregressive transform with ``passes`` network evaluations (two for the
coupling layers of :class:`~excess.calo.models.flow.CaloFlow`): every pass runs the whole masked
MLP on the partially known input and keeps the outputs it can trust. The same result costs less:

* the first layer's context part (and bias) is computed once and the contribution of each newly
  known group of features is added to it, instead of re-multiplying the whole input;
* each pass evaluates only the output rows of the group of features it inverts;
* masked weights are multiplied out once, not at every call;
* the rational-quadratic spline is inverted without building the padded knot tensors for the
  forward direction and without broadcasting copies.

:func:`inverse_sampler` turns a zuko ``Flow`` built from ``MaskedAutoregressiveTransform`` layers
(affine or :class:`zuko.transforms.MonotonicRQSTransform`) into a function ``f(context, z) -> x``
equal to ``flow(context).transform.inv(z)`` up to float rounding (tested against zuko). Anything
else raises :class:`NotImplementedError`, and callers fall back to zuko.
"""

from __future__ import annotations

import functools
import math

__all__ = ["inverse_sampler", "compiled"]


def _affine_inverse(phi, y, slope: float):
    shift, scale = phi[:, 0], phi[:, 1]
    log_scale = scale / (1 + (scale / math.log(slope)).abs())
    return (y - shift) * (-log_scale).exp()


def _rqs_inverse(phi, y, bins: int, bound: float, slope: float):
    """Inverse of zuko's ``MonotonicRQSTransform``; ``phi`` (B, 3K-1, F) holds the unconstrained
    widths, heights and interior derivatives parameter-major (features innermost, so that every
    reduction over the bins adds contiguous rows), ``y`` is (B, F).

    Only what the inverse needs is computed at full size (the soft clamp, exp and cumulative sums of
    widths and heights); normalisation and the derivatives are applied to the one bin each ``y`` is in.
    """
    import torch

    K = bins
    ls = abs(math.log(slope))

    def soft_clamp(v, c):
        return v / (1 + (c / ls) * v.abs())

    # softmax by hand: the soft clamp bounds the logits by |ln slope| / 2, so exp cannot overflow
    cw = torch.cumsum(soft_clamp(phi[:, :K], 2).exp(), dim=1)  # (B, K, F), unnormalised
    ch = torch.cumsum(soft_clamp(phi[:, K : 2 * K], 2).exp(), dim=1)
    sw, sh = cw[:, -1:], ch[:, -1:]  # (B, 1, F) normalisations
    yu = ((y.clamp(-bound, bound) + bound) / (2 * bound)).unsqueeze(1)  # position in [0, 1]
    k = (ch[:, :-1] < yu * sh).sum(1, keepdim=True)  # bin 0..K-1, (B, 1, F)
    km1 = (k - 1).clamp_min(0)
    first = k == 0
    zero = torch.zeros((), dtype=phi.dtype, device=phi.device)
    x1, y1 = cw.gather(1, k) / sw, ch.gather(1, k) / sh
    x0 = torch.where(first, zero, cw.gather(1, km1) / sw)
    y0 = torch.where(first, zero, ch.gather(1, km1) / sh)
    wk, hk = x1 - x0, y1 - y0
    d = phi[:, 2 * K :]  # interior knot derivatives (K-1); the two end knots have derivative 1
    d0 = torch.where(first, zero, soft_clamp(d.gather(1, km1), 1)).exp()
    d1 = torch.where(k == K - 1, zero, soft_clamp(d.gather(1, k.clamp_max(K - 2)), 1)).exp()
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
    """One masked autoregressive transform, prepared for inversion."""

    def __init__(self, t):
        import torch
        from zuko.nn import MaskedLinear
        from zuko.transforms import MonotonicAffineTransform, MonotonicRQSTransform

        uni = t.univariate
        base = uni.func if isinstance(uni, functools.partial) else uni
        kw = dict(uni.keywords) if isinstance(uni, functools.partial) else {}
        if isinstance(uni, functools.partial) and uni.args:
            raise NotImplementedError("positional arguments of the univariate transform")
        if base is MonotonicAffineTransform and set(kw) <= {"slope"}:
            self.inverse = functools.partial(_affine_inverse, slope=float(kw.get("slope", 1e-3)))
        elif base is MonotonicRQSTransform and set(kw) <= {"bound", "slope"}:
            bins = int(t.shapes[0][0])
            self.inverse = functools.partial(_rqs_inverse, bins=bins, bound=float(kw.get("bound", 5.0)),
                                             slope=float(kw.get("slope", 1e-3)))
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
        self.total = int(t.total)
        order = t.order.long()
        self.passes = int(t.passes)
        self.groups = [torch.nonzero(order == g).squeeze(1) for g in range(self.passes)]
        self.W1x = [W[0][:, :features][:, g].t().contiguous() for g in self.groups]  # (|g|, H)
        self.W1c = W[0][:, features:].t().contiguous() if context else None  # (C, H)
        self.b1 = b[0]
        self.mid = [(w.t().contiguous(), bb) for w, bb in zip(W[1:-1], b[1:-1])]
        # output rows parameter-major: phi of a group comes out as (B, total, |g|)
        rows = [(torch.arange(self.total, device=order.device)[:, None] + g[None, :] * self.total).reshape(-1)
                for g in self.groups]
        self.Wout = [W[-1][r].t().contiguous() for r in rows]  # (H, total * |g|)
        self.bout = [b[-1][r] for r in rows]

    def __call__(self, c, y):
        import torch

        B = y.shape[0]
        acc = self.b1 if self.W1c is None else torch.addmm(self.b1, c, self.W1c)
        if acc.dim() == 1:
            acc = acc.expand(B, -1)
        x = torch.empty_like(y)
        for p, g in enumerate(self.groups):
            h = acc.clamp_min(0)
            for w, bb in self.mid:
                h = torch.addmm(bb, h, w).clamp_min_(0)
            phi = torch.addmm(self.bout[p], h, self.Wout[p]).view(B, self.total, len(g))
            xg = self.inverse(phi, y[:, g])
            x[:, g] = xg
            if p + 1 < self.passes:
                acc = torch.addmm(acc, xg, self.W1x[p])
        return x


def inverse_sampler(flow):
    """``f(context, z) -> x`` equal to ``flow(context).transform.inv(z)`` for a zuko flow of masked
    autoregressive transforms (see the module docstring); raises ``NotImplementedError`` otherwise."""
    from zuko.flows.autoregressive import MaskedAutoregressiveTransform

    layers = []
    transform = flow.transform
    for t in getattr(transform, "transforms", [transform]):
        if not isinstance(t, MaskedAutoregressiveTransform):
            raise NotImplementedError(f"transform {type(t).__name__}")
        layers.append(_Layer(t))

    def f(c, z):
        import torch

        with torch.no_grad():
            x = z
            for layer in reversed(layers):
                x = layer(c, x)
            return x

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
