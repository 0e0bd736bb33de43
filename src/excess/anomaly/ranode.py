"""R-ANODE (Das, Kasieczka, Shih 2023): fit the signal directly in the SR with a frozen background model.

``p_data(x | m) = (1 - w) p_bg(x | m) + w p_sig(x | m)`` on SR data, with ``p_bg`` the SB flow (frozen,
interpolated into the SR) and a small signal flow ``p_sig`` and the signal fraction ``w = sigmoid(theta)``
learned jointly by maximum likelihood. The score is ``log p_sig - log p_bg``.

``n_members`` signal models (each its own flow and ``w``, from its own seed, on the same training
split) form the signal density ``p_sig = mean_k p_sig_k``. A single signal flow sometimes never locks
on to a small signal (it settles on a broad density that only re-describes the background); the
mixture keeps the members that did, which makes the score much less seed-dependent.
By default the members train one after the other; with ``batched_members=True`` they train together as
one batched model (:func:`SignalMembers`: their weights stacked, one ``torch.func.vmap`` call per step),
each with its own initialisation, ``w`` and batches, stopping when their summed validation loss has not
improved for ``patience`` epochs.

After training, ``w`` is re-estimated on held-out SR events with both densities fixed
(``signal_fraction_``), with its uncertainty from the observed Fisher information
(``signal_fraction_err_``; statistical only, conditional on the learned shapes), and
``n_signal_ = w * n_SR``.
"""

from __future__ import annotations

import functools
from typing import ClassVar

import numpy as np

from .._util import spawn_seeds
from ..errors import ConfigError
from ._device import fit_device
from .base import AnomalyMethod
from .density import DEFAULT_FLOW_GROUPS, FAST_FLOW, SharedBackgroundFlow, background_flow

__all__ = ["RANODE", "SignalMembers", "fit_signal_fraction"]

FAST_SIGNAL = {"kind": "maf", "transforms": 1, "hidden": (16, 16), "epochs": 15, "batch_size": 128}
DEFAULT_SIGNAL = {"kind": "maf", "transforms": 2, "hidden": (32, 32), "epochs": 100, "batch_size": 256, "lr": 1e-3,
                  "patience": 10}


def fit_signal_fraction(log_ratio: np.ndarray) -> tuple[float, float]:
    """MLE of ``w`` in ``prod_i [1 + w (r_i - 1)]`` (``r = p_sig/p_bg``) and its Fisher-information error."""
    from scipy.optimize import minimize_scalar

    r = np.exp(np.clip(log_ratio, -50, 50))

    def nll(w):
        return -np.sum(np.log1p(w * (r - 1)))

    upper = 1.0 - 1e-9
    res = minimize_scalar(nll, bounds=(0.0, upper), method="bounded", options={"xatol": 1e-7})
    w = float(res.x)
    f = 1 + w * (r - 1)
    info = float(np.sum(((r - 1) / f) ** 2))
    err = 1 / np.sqrt(info) if info > 0 else float("inf")
    return w, float(err)


def _mixture_nll(theta, lb, ls):
    """Per-event negative log-likelihood of ``(1 - w) p_bg + w p_sig`` with ``w = sigmoid(theta)``, from
    the log-densities ``lb`` (background) and ``ls`` (signal); broadcasts over a member axis."""
    import torch

    lw = torch.nn.functional.logsigmoid(theta)
    l1w = torch.nn.functional.logsigmoid(-theta)
    return -torch.logaddexp(l1w + lb, lw + ls)


@functools.lru_cache(maxsize=1)
def _signal_members_class():
    """:class:`SignalMembers`, defined on first use (torch is imported lazily)."""
    import torch

    class _LogProb(torch.nn.Module):
        def __init__(self, flow):
            super().__init__()
            self.flow = flow

        def forward(self, z, c):
            return self.flow(c).log_prob(z)

    class SignalMembers(torch.nn.Module):
        """``K`` signal flows of one architecture and their ``theta`` (``w = sigmoid(theta)``), evaluated as one
        batched model: the flows' parameters are stacked along a leading member axis and one
        ``torch.func.vmap`` call runs all members on a batch of shape (B, K, ...) (member k sees column k).

        Trained parameters go back into the flows with :meth:`unstack`.
        """

        def __init__(self, flows, theta0: float, learn_w: bool = True):
            super().__init__()
            from torch.func import stack_module_state

            params, buffers = stack_module_state(list(flows))
            self._names = sorted(params), sorted(buffers)
            self.stacked = torch.nn.ParameterDict({n.replace(".", "__"): torch.nn.Parameter(t.detach().clone())
                                                   for n, t in params.items()})
            for n, t in buffers.items():
                self.register_buffer("buf__" + n.replace(".", "__"), t.clone())
            theta = torch.full((len(flows),), float(theta0))
            self.theta = torch.nn.Parameter(theta, requires_grad=bool(learn_w))
            # not a submodule: it only lends its code to functional_call; the density is evaluated inside the
            # call (a zuko flow returns a lazy distribution that would otherwise run on the template's weights)
            self._template = [_LogProb(flows[0])]
            self._flows = list(flows)

        def _state(self):
            pn, bn = self._names
            return ({n: self.stacked[n.replace(".", "__")] for n in pn},
                    {n: getattr(self, "buf__" + n.replace(".", "__")) for n in bn})

        def _prefixed(self):
            params, buffers = self._state()
            return ({"flow." + n: t for n, t in params.items()}, {"flow." + n: t for n, t in buffers.items()})

        def log_prob(self, z, c):
            """``log p_sig_k(z[:, k] | c[:, k])`` of each member k: (B, K)."""
            from torch.func import functional_call, vmap

            tmpl = self._template[0]
            if next(tmpl.parameters()).device != z.device:
                tmpl.to(z.device)
            params, buffers = self._prefixed()

            def one(pk, bk, zk, ck):
                return functional_call(tmpl, (pk, bk), (zk, ck))

            return vmap(one, in_dims=(0, 0, 1, 1), out_dims=1)(params, buffers, z, c)

        def unstack(self) -> list:
            """The member flows (on the CPU) holding the trained parameters."""
            params, buffers = self._state()
            out = []
            for k, f in enumerate(self._flows):
                f.load_state_dict({n: t[k].detach().cpu() for n, t in {**params, **buffers}.items()})
                out.append(f.cpu())
            return out

    return SignalMembers


def SignalMembers(flows, theta0: float, learn_w: bool = True):
    """The signal flows of R-ANODE as one batched model (see :func:`_signal_members_class`)."""
    return _signal_members_class()(flows, theta0, learn_w)


class RANODE(SharedBackgroundFlow, AnomalyMethod):
    """Frozen SB background flow + learnable signal fraction and signal flow on SR data.

    Parameters
    ----------
    flow_params : background flow hyperparameters (:class:`~excess.nn.flows.ConditionalFlow`)
    signal_flow_params : hyperparameters of the small signal flow (kind, transforms, hidden, epochs, ...)
    w_init : initial signal fraction
    learn_w : learn ``w`` jointly (True) or keep it fixed at ``w_init``
    n_members : signal models averaged into ``p_sig`` (see the module docstring)
    validation_fraction : SR events held out for early stopping and the ``w`` estimate
    background_flow : path of a saved SB flow to reuse instead of training one
    batched_members : train the ``n_members`` signal flows as one batched model (:func:`SignalMembers`,
        one vmapped call per step, joint early stopping on their summed validation loss): 1.3-2.8x less
        CPU for the signal flows on a 60k-event window; its sensitivity is not yet checked against the
        default, one member after the other (False)
    flow_groups : under out-of-fold scoring, SB flows per window, each shared by a group of folds and
        trained on the sidebands of the other folds (2: ~4x less flow training); None: one per fold;
        "auto": 2 in windows with >= ``AUTO_GROUPS_MIN_SB`` sideband events, else one per fold
        (default :data:`~excess.anomaly.density.DEFAULT_FLOW_GROUPS`;
        :class:`~excess.anomaly.density.SharedBackgroundFlow`)
    random_state : seed
    device : where the background flow and the signal models train and evaluate ("auto": CUDA when
        present, else CPU); random numbers are drawn on the CPU, so on the CPU a seed gives the same
        numbers as before devices existed

    Fitted: ``signal_flows_`` (one per member), ``members_`` (each member's trained ``w`` and training
    history), ``w_trained_`` (their mean), ``signal_fraction_`` / ``signal_fraction_err_``, ``n_signal_``.
    """

    name = "ranode"
    uses_sb = True
    min_sr = 50
    min_sb = 50
    FAST_PARAMS: ClassVar[dict] = {"flow_params": FAST_FLOW, "signal_flow_params": FAST_SIGNAL, "n_members": 2}

    def _requires_sb(self) -> bool:
        return self.background_flow is None

    def __init__(self, flow_params: dict | None = None, signal_flow_params: dict | None = None, w_init: float = 0.01,
                 learn_w: bool = True, n_members: int = 3, validation_fraction: float = 0.3,
                 background_flow: str | None = None, random_state=None, device="auto",
                 flow_groups: int | str | None = DEFAULT_FLOW_GROUPS, batched_members: bool = False):
        self.flow_groups = flow_groups
        self.batched_members = batched_members
        self.flow_params = flow_params
        self.signal_flow_params = signal_flow_params
        self.w_init = w_init
        self.learn_w = learn_w
        self.n_members = n_members
        self.validation_fraction = validation_fraction
        self.background_flow = background_flow
        self.random_state = random_state
        self.device = device

    def _fit(self, data, rng):
        import torch

        from ..nn.flows import build_zuko_flow
        from ..nn.training import fit_torch, reset_parameters, torch_generator, train_val_split

        if not 0 < self.w_init < 1:
            raise ConfigError(f"w_init must be in (0, 1), got {self.w_init}")
        if int(self.n_members) < 1:
            raise ConfigError(f"n_members must be >= 1, got {self.n_members}")
        p = {**DEFAULT_SIGNAL, **(self.signal_flow_params or {})}
        unknown = set(p) - {"kind", "transforms", "hidden", "bins", "epochs", "batch_size", "lr", "patience"}
        if unknown:
            hint = " (the device is the method's device parameter)" if "device" in unknown else ""
            raise ConfigError(f"unknown signal_flow_params {sorted(unknown)}{hint}")
        self.device_ = fit_device(self)
        device = torch.device(self.device_)
        bg = background_flow(self, data, rng)
        self.background_flow_ = bg
        member_seeds = spawn_seeds(rng, int(self.n_members))
        # both densities live in the background flow's preprocessed space: same Jacobian, cancels in ratios
        z, _ = bg.to_latent(data.X_sr)
        lbg = bg.log_prob_latent(z, data.m_sr)
        tr, va = train_val_split(data.n_sr, self.validation_fraction, rng, min_val=10)
        zt = torch.as_tensor(z, dtype=torch.float32)
        ct = bg.context_tensor(data.m_sr[:, None])
        lt = torch.as_tensor(lbg, dtype=torch.float32)
        theta0 = float(np.log(self.w_init) - np.log1p(-self.w_init))

        def member(seed):  # a signal flow, initialised from the member's seed, and its training-loop seed
            s_init, s_loop = spawn_seeds(np.random.default_rng(seed), 2)
            sig = build_zuko_flow(p["kind"], z.shape[1], bg.n_context_, p["transforms"], p["hidden"], p.get("bins", 8))
            reset_parameters(sig, torch_generator(s_init))  # on the CPU; fit_torch moves model and data
            return sig, s_loop

        if self.batched_members:
            self._fit_batched(p, member_seeds, member, zt, ct, lt, tr, va, theta0, rng, device)
        else:
            def nll(model, zb, cb, lb):
                return _mixture_nll(model.theta, lb, model.flow(cb).log_prob(zb)).mean()

            self.signal_flows_, self.members_ = [], []
            for k, seed in enumerate(member_seeds):
                sig, s_loop = member(seed)
                model = torch.nn.Module()
                model.flow = sig
                model.theta = torch.nn.Parameter(torch.tensor(theta0), requires_grad=bool(self.learn_w))
                params = [q for q in model.parameters() if q.requires_grad]
                res = fit_torch(
                    model, nll, (zt[tr], ct[tr], lt[tr]), (zt[va], ct[va], lt[va]),
                    epochs=int(p["epochs"]), batch_size=int(p["batch_size"]), lr=float(p["lr"]),
                    patience=int(p["patience"]), generator=torch_generator(s_loop),
                    desc=f"ranode[signal {k + 1}/{len(member_seeds)}]", parameters=params, device=device,
                )
                self.signal_flows_.append(sig)
                self.members_.append({"w_trained": float(torch.sigmoid(model.theta).item()), "history": res.to_dict()})
        self.w_trained_ = float(np.mean([mm["w_trained"] for mm in self.members_]))
        lr_va = self._log_ratio_latent(z[va], data.m_sr[va], lbg[va])
        self.signal_fraction_, self.signal_fraction_err_ = fit_signal_fraction(lr_va)
        self.n_signal_ = self.signal_fraction_ * data.n_sr
        self.n_signal_err_ = self.signal_fraction_err_ * data.n_sr

    def _fit_batched(self, p, member_seeds, member, zt, ct, lt, tr, va, theta0, rng, device):
        """The signal flows trained as one batched model (``batched_members=True``); ``member(seed)`` makes
        one initialised signal flow and its loop seed."""
        import torch

        from ..nn.training import fit_torch, torch_generator

        # the members train as one batched model (one vmapped call per step instead of n_members): each
        # member keeps its own initialisation, its own w and its own batches (a fixed per-member shuffle
        # of the training rows under the shared epoch permutation); the summed loss gives each member the
        # gradient it would get alone (Adam is per parameter); training stops when the members' summed
        # validation loss has not improved for ``patience`` epochs (gradients are clipped on all members jointly)
        flows, orders = [], []
        for seed in member_seeds:
            sig, s_loop = member(seed)
            flows.append(sig)
            orders.append(torch.randperm(len(tr), generator=torch_generator(s_loop)))
        (s_epochs,) = spawn_seeds(rng, 1)
        model = SignalMembers(flows, theta0, learn_w=bool(self.learn_w))
        order = torch.stack(orders, dim=1)  # (n_train, K): row i of member k is training row order[i, k]
        train = (zt[tr][order], ct[tr][order], lt[tr][order])
        k = len(flows)
        val = tuple(t[va].unsqueeze(1).expand(-1, k, *t.shape[1:]) for t in (zt, ct, lt))

        def nll(model, zb, cb, lb):  # batches (B, K, ...): the sum over members of each member's mean NLL
            return _mixture_nll(model.theta, lb, model.log_prob(zb, cb)).mean(0).sum()

        res = fit_torch(
            model, nll, train, val, epochs=int(p["epochs"]), batch_size=int(p["batch_size"]), lr=float(p["lr"]),
            patience=int(p["patience"]), generator=torch_generator(s_epochs), desc=f"ranode[{k} signal flows]",
            parameters=[q for q in model.parameters() if q.requires_grad], device=device,
        )
        self.signal_flows_ = model.unstack()
        w = torch.sigmoid(model.theta.detach().cpu()).tolist()
        self.members_ = [{"w_trained": float(wk), "history": res.to_dict()} for wk in w]

    def _log_ratio_latent(self, z, m, lbg):
        import torch
        from scipy.special import logsumexp

        from ..nn.device import resolve_device
        from ..nn.training import batched_eval

        bg = self.background_flow_
        device = resolve_device(self.device)
        zt = torch.as_tensor(z, dtype=torch.float32)
        ct = bg.context_tensor(np.asarray(m)[:, None])
        ls = []
        for f in self.signal_flows_:
            f.to(device)
            ls.append(batched_eval(lambda zb, cb, f=f: f(cb).log_prob(zb), (zt, ct), device=device).double().numpy())
        ls = np.stack(ls)

        return logsumexp(ls, axis=0) - np.log(len(self.signal_flows_)) - lbg

    def _score(self, X, m):
        bg = self.background_flow_
        z, _ = bg.to_latent(X)
        return self._log_ratio_latent(z, m, bg.log_prob_latent(z, m))
