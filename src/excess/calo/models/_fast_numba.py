"""The float32 CPU loops of the rational-quadratic spline inverse of :mod:`._fast` (numba).

:func:`soft_clamp` and :func:`rest` do what :func:`._fast._rqs_inverse_torch` does, each step the same
float32 operation in the same order (the cumulative sums accumulated in float64, as torch's ``cumsum``
does), one pass per shower instead of some forty torch operations over the whole block; the ``exp``
between them stays torch's (vectorised; numba's is scalar without Intel's SVML). Compiled at the first
call and cached on disk by numba; ``nogil``, so the chunks of :class:`~excess.calo.models.flow.CaloFlow`
run side by side on threads.
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["soft_clamp", "rest"]

f32 = np.float32
_jit = numba.njit(nogil=True, cache=True, error_model="numpy")


@_jit
def soft_clamp(phi, n_wh, c_wh, c_d):
    # zuko's soft clamp v / (1 + |v| / bound'), in place: widths and heights (first n_wh rows of each
    # shower's block) with bound' = |ln slope| / 2, the knot derivatives with |ln slope|
    B, P, F = phi.shape
    for b in range(B):
        for p in range(P):
            c = c_wh if p < n_wh else c_d
            for f in range(F):
                v = phi[b, p, f]
                phi[b, p, f] = v / (f32(1) + c * abs(v))


@_jit
def rest(e, y, K, bound, two_bound, out):
    # e: exp of the soft-clamped parameters (B, 3K-1, F): K widths, K heights, K-1 interior derivatives;
    # each step as in _rqs_inverse_torch, in float32 (cumulative sums in float64, as torch's cumsum)
    B, P, F = e.shape
    cs = np.empty((2, K, F), dtype=np.float32)
    acc = np.empty(F, dtype=np.float64)
    zero, one, two, four = f32(0), f32(1), f32(2), f32(4)
    for b in range(B):
        for w in range(2):
            acc[:] = 0.0
            for i in range(K):
                for f in range(F):
                    acc[f] += e[b, w * K + i, f]
                    cs[w, i, f] = acc[f]
        for f in range(F):
            yv = y[b, f]
            yu = (min(max(yv, -bound), bound) + bound) / two_bound
            sw, sh = cs[0, K - 1, f], cs[1, K - 1, f]
            t = yu * sh
            k = 0
            for i in range(K - 1):
                if cs[1, i, f] < t:
                    k += 1
            x1, y1 = cs[0, k, f] / sw, cs[1, k, f] / sh
            if k == 0:
                x0, y0, d0 = zero, zero, one
            else:
                x0, y0, d0 = cs[0, k - 1, f] / sw, cs[1, k - 1, f] / sh, e[b, 2 * K + k - 1, f]
            d1 = one if k == K - 1 else e[b, 2 * K + k, f]
            wk, hk = x1 - x0, y1 - y0
            s = hk / wk
            yr = max(yu - y0, zero)
            tt = d0 + d1 - two * s
            a = hk * (s - d0) + yr * tt
            bb = hk * d0 - yr * tt
            c = -s * yr
            z = two * c / (-bb - math.sqrt(max(bb * bb - four * a * c, zero)))
            x = (x0 + z * wk) * two_bound - bound
            out[b, f] = x if (yv > -bound and yv < bound) else yv


@_jit
def affine_neg_log_scale(phi, ln_slope):
    # zuko's monotonic affine: log_scale = scale / (1 + |scale / ln slope|); phi (B, 2, F) = shift, scale:
    # the scale row becomes -log_scale, in place
    B, _, F = phi.shape
    one = f32(1)
    for b in range(B):
        for f in range(F):
            v = phi[b, 1, f]
            phi[b, 1, f] = -(v / (abs(v / ln_slope) + one))


@_jit
def affine_apply(phi, y, out):
    # x = (y - shift) * exp(-log_scale), the exp already taken (row 1 of phi)
    B, _, F = phi.shape
    for b in range(B):
        for f in range(F):
            out[b, f] = (y[b, f] - phi[b, 0, f]) * phi[b, 1, f]


def warm_up() -> None:
    """Load (or compile) every loop for the array layouts the sampling path passes, outside any timed call."""
    p = np.zeros((2, 5, 3), dtype=f32)
    soft_clamp(p, 4, f32(1), f32(1))
    for y in (np.zeros((2, 3), dtype=f32), np.zeros((2, 4), dtype=f32)[:, 1:]):  # contiguous and strided
        rest(p, y, 2, f32(6), f32(12), np.empty((2, 3), dtype=f32))
        q = np.zeros((2, 2, 3), dtype=f32)
        affine_neg_log_scale(q, f32(-7))
        affine_apply(q, y, np.empty((2, 3), dtype=f32))
