"""Where torch computes: one ``device`` setting, resolved here and nowhere else.

Every torch path of excess (flows, classifiers, autoencoders, calorimeter models, taggers, ...) takes a
``device`` argument with the same meaning:

* ``"auto"`` (the default): the first CUDA GPU when torch sees one, else the CPU. Apple's ``"mps"`` is
  never picked automatically (some of zuko's spline operations are not implemented there); ask for it.
* ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"``, or a :class:`torch.device`.

Asking for an accelerator that is not there is one clear :class:`~excess.errors.ConfigError`, not a
torch traceback. On the CPU the numbers are identical to a run that never heard of devices: random
numbers always come from CPU generators (:func:`torch_generator`), and data are moved to the device
after they are drawn. Saved models hold CPU tensors only, so a model trained on a GPU loads anywhere.

The environment variable ``EXCESS_DEVICE`` replaces ``"auto"`` (for example ``EXCESS_DEVICE=cpu`` on a
shared GPU machine); an explicit argument always wins.
"""

from __future__ import annotations

import os
import re

from ..errors import ConfigError

__all__ = ["DEVICE_HELP", "resolve_device", "check_device_spec", "describe_device"]

DEVICE_HELP = 'Torch device: "auto" (CUDA when present, else CPU), "cpu", "cuda", "cuda:N" or "mps".'

_SPEC = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def check_device_spec(device) -> str:
    """Validate the *form* of a device setting without importing torch (for configs and ``--check``)."""
    if device is None:
        return "auto"
    if not isinstance(device, str):  # a torch.device
        return str(device)
    spec = device.strip().lower()
    if not _SPEC.match(spec):
        raise ConfigError(f"device must be one of auto, cpu, cuda, cuda:N or mps, got {device!r}")
    return spec


def resolve_device(device="auto"):
    """The :class:`torch.device` that ``device`` names on this machine (see the module docstring)."""
    import torch

    if isinstance(device, torch.device):
        spec = str(device)
    else:
        spec = check_device_spec(device)
    if spec == "auto":
        env = os.environ.get("EXCESS_DEVICE", "").strip()
        if env and env.lower() != "auto":
            try:
                return resolve_device(env)
            except ConfigError as exc:
                raise ConfigError(f"EXCESS_DEVICE: {exc}") from None
        return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(
                f"device {spec!r} was asked for, but torch sees no CUDA GPU on this machine "
                f"(torch {torch.__version__}, CUDA build: {torch.version.cuda or 'no'}); use device='cpu' or 'auto'"
            )
        index = int(spec.split(":")[1]) if ":" in spec else 0
        if index >= torch.cuda.device_count():
            raise ConfigError(f"device {spec!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
        return torch.device(spec)
    if spec == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ConfigError("device 'mps' was asked for, but torch's Apple-silicon backend is not available here")
        return torch.device("mps")
    return torch.device(spec)


def describe_device(device="auto") -> str:
    """A human-readable name of the resolved device, for logs and provenance (e.g. ``cuda:0 (NVIDIA H200)``)."""
    import torch

    dev = resolve_device(device)
    if dev.type == "cuda":
        index = dev.index if dev.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return str(dev)
