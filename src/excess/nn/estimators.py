"""What the torch estimators of the wings share beyond the training loop: the fitted network kept as a state dict.

:class:`TorchStateMixin` is for scikit-learn estimators that train one network (``_build()``) with
:func:`~excess.nn.training.fit_torch` and keep the best epoch's weights as a CPU ``state_dict`` in ``state_``.
It gives them the training hyper-parameters (:meth:`~TorchStateMixin._common_init`), the fitted attributes
(:meth:`~TorchStateMixin._keep_fitted`), the network outputs on new inputs, rebuilt from ``state_`` the first time
after loading (:meth:`~TorchStateMixin._network_outputs`), and the ``state_dict`` persistence of
:mod:`excess.nn.io`. A subclass defines ``_build()``, ``_inputs(X, *args)`` (the numpy arrays the network
reads), ``_forward(net, *tensors)``, and where needed ``_check_inputs(X)`` (the validated ``X``) and
``_fitted_classes`` (``classes_``). Torch is imported lazily.
"""

from __future__ import annotations

import numpy as np

from ..errors import NotFittedError

__all__ = ["TorchStateMixin"]


class TorchStateMixin:
    """Fitted network in ``state_`` (CPU tensors), rebuilt lazily for prediction; see the module docstring."""

    #: ``classes_`` of a fitted (or loaded) estimator
    _fitted_classes = (0, 1)
    #: rows per batch when predicting
    _eval_batch_size = 4096

    def _common_init(self, epochs, batch_size, lr, patience, validation_fraction, random_state, device, **more):
        """Store the training hyper-parameters (and ``more`` named ones) as the constructor's arguments."""
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.device = device
        for key, value in more.items():
            setattr(self, key, value)

    def _keep_fitted(self, net, result) -> None:
        """After training: ``state_`` (the weights on the CPU), ``history_``, ``classes_``; ``net`` is reused."""
        self.state_ = {k: v.detach().cpu() for k, v in net.state_dict().items()}
        self.history_ = result.to_dict()
        self.classes_ = np.array(self._fitted_classes)
        self._net = net

    def _fitted_net(self, device):
        """The fitted network on ``device`` in eval mode (built from ``state_`` once after loading)."""
        net = getattr(self, "_net", None)
        if net is None:
            net = self._build()
            net.load_state_dict(self.state_)
            self._net = net
        return net.to(device).eval()

    def _check_inputs(self, X):
        """``X`` validated (override; the default takes it as it is)."""
        return X

    def _network_outputs(self, X, *args, forward=None):
        """The network's outputs on ``_inputs(X, *args)`` (a CPU tensor; batched on the estimator's device, without
        gradients) through ``forward(net, *batch)`` (default ``_forward``)."""
        import torch

        from .device import resolve_device
        from .training import batched_eval

        if not hasattr(self, "state_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted")
        arrays = self._inputs(self._check_inputs(X), *args)
        device = resolve_device(self.device)
        net = self._fitted_net(device)
        inputs = [torch.from_numpy(np.ascontiguousarray(a)) for a in arrays]
        fwd = self._forward if forward is None else forward
        return batched_eval(lambda *xs: fwd(net, *xs), inputs, batch_size=self._eval_batch_size, device=device)

    # state_dict persistence (excess.nn.io)
    def _get_state(self):
        return dict(self.state_), {}

    def _set_state(self, tensors, meta):
        self.state_ = dict(tensors)
        self.classes_ = np.array(self._fitted_classes)
        self._net = None
