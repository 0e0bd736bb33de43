"""The anomaly methods' ``device``: one setting per method, forwarded to every torch model it trains.

Every method takes ``device="auto"`` (see :mod:`excess.nn.device`): its flows, MLP classifiers,
autoencoders and R-ANODE's signal models all compute there. The device is the method's parameter
and nowhere else: a ``device`` key inside ``flow_params``/``classifier_params``/``model_params`` is
refused, so one run cannot silently put two models on two devices. HGB ensembles are CPU trees and
ignore it (the setting's form is still checked).
"""

from __future__ import annotations

from ..errors import ConfigError

__all__ = ["fit_device", "uses_torch", "with_device"]


def with_device(params: dict | None, device, key: str) -> dict:
    """``params`` (a method's ``flow_params``-like dict) plus the method's ``device``."""
    out = dict(params or {})
    if "device" in out:
        raise ConfigError(f"{key}: 'device' is not set here; give it as the method's device parameter "
                          "(run.device in a search config, --device on the command line)")
    out["device"] = device
    return out


def fit_device(method, uses_torch: bool = True) -> str:
    """The method's resolved device at the start of ``fit`` (``"cpu"`` when it trains no torch model).

    Asking for an accelerator that is not there fails here, before any work, as one
    :class:`~excess.errors.ConfigError` naming the method.
    """
    from ..nn.device import check_device_spec, resolve_device

    try:
        if not uses_torch:
            check_device_spec(method.device)
            return "cpu"
        return str(resolve_device(method.device))
    except ConfigError as exc:
        raise ConfigError(f"{method.name}: {exc}") from None


def uses_torch(method) -> bool:
    """Whether ``method`` (an unfitted instance) trains a torch model; False for HGB-only classifier methods."""
    hook = getattr(method, "_uses_torch", None)
    return True if hook is None else bool(hook())
