"""Run configurations of ``excess search``: pydantic models, strict.

Unknown keys and wrong types are errors naming the key path (``scan.efficiencies.1: ...``).
The resolved configuration (defaults filled in) is saved in every run directory.

Example (YAML)::

    data:
      path: events.h5            # excess HDF5/Parquet, LHCO feature file, CATHODE .npy, or ROOT
      tree: Events               # ROOT only
      columns: {mjj: Mjj}        # map excess column -> column in the file
      background_path: null      # reference background (idealized AD only)
    method:
      name: cwola
      params: {}
    scan:
      features: [mj1, delta_mj, tau21_j1, tau21_j2]
      efficiencies: [0.1, 0.03, 0.01, 0.003, 0.001, 0.0003, 0.0001]
      n_folds: 5
      windows: null              # null: sliding windows over the data range
      window_width: 400
      global_toys: 200
    run:
      output: runs/my-search
      seed: 1
      workers: null              # local processes (default: all cores)
      scheduler: null            # dask.distributed address, e.g. tcp://10.0.0.1:8786
      device: auto               # torch device of every model: auto (CUDA when present), cpu, cuda, cuda:N, mps
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .data.schema import STANDARD_FEATURES
from .errors import ConfigError

__all__ = ["SearchConfig", "load_config", "apply_overrides", "DEMO_CONFIG"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataConfig(_Strict):
    path: str | None = Field(None, description="Event file or chunk directory. Required unless `demo: true`.")
    demo: bool = Field(False, description="Use the packaged LHCO-like demo dataset (generated with excess).")
    tree: str | None = Field(None, description="TTree name for ROOT files.")
    columns: dict[str, str] = Field(default_factory=dict, description="excess column -> column name in the file.")
    scale_to_gev: float = Field(1.0, gt=0, description="Multiply mass columns by this (e.g. 1000 for TeV).")
    background_path: str | None = Field(None, description="Reference background sample (idealized AD only).")
    max_events: int | None = Field(None, gt=0)
    drop_nonfinite: bool = Field(False, description="Drop events with NaN/inf in mjj or the features (the count per "
                                 "column is recorded in provenance.json) instead of stopping with an error.")

    @model_validator(mode="after")
    def _need_input(self):
        if not self.demo and not self.path:
            raise ValueError("give data.path, or data.demo: true")
        if self.demo and self.path:
            raise ValueError("give data.path or data.demo: true, not both")
        return self

    @field_validator("columns")
    @classmethod
    def _distinct_sources(cls, v):
        seen: dict[str, str] = {}
        for dst, src in v.items():
            if src in seen:
                raise ValueError(f"file column {src!r} is mapped twice (to {seen[src]!r} and {dst!r})")
            seen[src] = dst
        return v


class MethodConfig(_Strict):
    name: str = Field("cwola", description="supervised, idealized, cwola, anode, cathode, ranode, autoencoder, vae, "
                      "antelope")
    params: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments of the method's constructor.")

    @field_validator("params")
    @classmethod
    def _no_device(cls, v):
        if "device" in v:
            raise ValueError("the device is set once for the run: use run.device (or --device), not method.params.device")
        return v

    @field_validator("name")
    @classmethod
    def _known(cls, v):
        known = ("supervised", "idealized", "cwola", "anode", "cathode", "ranode", "autoencoder", "vae", "antelope")
        if v not in known:
            raise ValueError(f"unknown method {v!r}; choose one of {', '.join(known)}")
        return v


def _efficiency(e: float) -> float:
    if not (math.isfinite(e) and 0 < e <= 1):
        raise ValueError(f"a background efficiency must be in (0, 1], got {e}")
    return e


def _window(w: list[float]) -> list[float]:
    if len(w) not in (2, 4):
        raise ValueError(f"a window is [sr_lo, sr_hi] or [sr_lo, sr_hi, sb_lo, sb_hi], got {w}")
    if not all(math.isfinite(x) for x in w):
        raise ValueError(f"window edges must be finite numbers (GeV), got {w}")
    if not w[0] < w[1]:
        raise ValueError(f"signal region [{w[0]:g}, {w[1]:g}] must have sr_lo < sr_hi (GeV); did you mean "
                         f"[{w[1]:g}, {w[0]:g}]?")
    if w[0] <= 0:
        raise ValueError(f"window edges must be > 0 GeV, got {w}")
    if len(w) == 4:
        sr_lo, sr_hi, sb_lo, sb_hi = w
        if not (0 <= sb_lo < sr_lo and sr_hi < sb_hi):
            raise ValueError(f"the sidebands [{sb_lo:g}, {sr_lo:g}] and [{sr_hi:g}, {sb_hi:g}] must lie outside the "
                             f"signal region and not overlap it: need 0 <= sb_lo < sr_lo < sr_hi < sb_hi, got {w}")
    return w


def _feature(f: str) -> str:
    if f in ("mjj", "label"):
        raise ValueError(f"{f!r} cannot be a feature: " + ("mjj is the resonant feature the windows cut on"
                                                             if f == "mjj" else "the truth label would leak the answer"))
    if not f.strip():
        raise ValueError("empty feature name")
    return f


class ScanConfig(_Strict):
    features: list[Annotated[str, AfterValidator(_feature)]] = Field(default_factory=lambda: list(STANDARD_FEATURES),
                                                                      min_length=1)
    efficiencies: list[Annotated[float, AfterValidator(_efficiency)]] = Field(
        default_factory=lambda: [0.1, 0.03, 0.01, 0.003, 0.001, 0.0003, 0.0001], min_length=1,
        description="Background (sideband) efficiencies of the score cuts; cuts with fewer than min_selected "
        "selected sideband events have no result.")
    n_folds: int = Field(5, ge=2, le=20)
    windows: list[Annotated[list[float], AfterValidator(_window)]] | None = Field(None, min_length=1, description="[[sr_lo, sr_hi], ...] or [[sr_lo, sr_hi, sb_lo, sb_hi], ...] in GeV")
    window_width: float | None = Field(None, gt=0, description="Width of default sliding SRs (GeV).")
    window_step: float | None = Field(None, gt=0)
    sideband_width: float | None = Field(None, gt=0)
    global_toys: int = Field(200, ge=0)
    null_toys: int = Field(0, ge=0, description="Permutation pseudo-experiments per window (mjj shuffled): "
                           "p-values calibrated for learned selections; costs null_toys x the training.")
    alpha: float = Field(0.05, gt=0, lt=1, description="Size of the f3-vs-f4 function-choice test.")
    fit_functions: list[int] = Field(default_factory=lambda: [3, 4])
    function_test: str = Field("lrt", pattern="^(lrt|f-test)$")
    min_selected: int = Field(20, ge=1)
    # sensitivity at the frontier (issue 22): decorrelation and the background model of the selection
    decorrelation: str = Field("auto", pattern="^(auto|quantile|ratio|flow|copula|none)$",
                               description="Features' decorrelation from mjj: auto = copula for cwola, none for "
                               "the conditional-density methods; copula = joint decorrelation by a conditional "
                               "Gaussian-copula whitening after the quantile map (cheap, smooth in mjj); flow = joint "
                               "(conditional MAF) decorrelation (excess.search.decorrelation).")
    decorrelation_params: dict[str, Any] = Field(default_factory=dict, description="Arguments of the transform "
                                                 "(and fit_on: auto|window|sidebands|heldout, heldout_fraction).")
    background_model: str = Field("efficiency", pattern="^(efficiency|profile|signal_fit|sideband|dijet_signal)$",
                                  description="efficiency: observed inclusive counts x sideband efficiency fit; "
                                  "profile: the SR counted with the efficiency profiled and the signal's leakage "
                                  "into the sidebands modelled; "
                                  "signal_fit: the efficiency model fitted over the whole window with a Gaussian "
                                  "signal template; sideband: dijet fit of the selected events; dijet_signal: "
                                  "dijet fit of the selected events over the whole window plus a Gaussian signal "
                                  "template (the ANTELOPE mT search's default).")
    signal_width: float = Field(0.04, gt=0, lt=0.5, description="signal_fit, profile, dijet_signal: template width "
                                "/ SR centre (0.04: the dijet mass resolution; broad signals such as semi-visible "
                                "jets in mT need more, e.g. 0.08).")
    efficiency_degree: Literal["auto", "average"] | Annotated[int, Field(ge=0, le=3)] = Field(
        "auto", description="Degree of the logit-polynomial efficiency fit in ln mjj; auto: 0, 1 or 2 by a "
        "likelihood-ratio test in the sidebands; average: degrees 1 and 2 averaged with Akaike weights, their "
        "spread added to the error (efficiency model only).")
    resonant: str = Field("mjj", min_length=1, description="The column the windows cut on and the dijet-type "
                          "functions fit (mjj; mT for a transverse-mass bump hunt).")

    @field_validator("features", "efficiencies")
    @classmethod
    def _distinct(cls, v, info):
        dup = sorted({x for x in v if v.count(x) > 1})
        if dup:
            raise ValueError(f"{info.field_name} must be distinct; {dup} appear more than once")
        return v

    @field_validator("windows")
    @classmethod
    def _wins(cls, v):
        if v is not None:
            seen = {}
            for i, w in enumerate(v):
                key = tuple(w)
                if key in seen:
                    raise ValueError(f"windows {seen[key]} and {i} are the same window {list(w)}")
                seen[key] = i
        return v

    @field_validator("fit_functions")
    @classmethod
    def _funcs(cls, v):
        if not v or any(f not in (3, 4) for f in v):
            raise ValueError(f"fit_functions must be a non-empty subset of [3, 4], got {v}")
        return v

    @model_validator(mode="after")
    def _resonant_not_a_feature(self):
        if self.resonant in self.features:
            raise ValueError(f"scan.features: {self.resonant!r} is the resonant feature the windows cut on "
                             "(scan.resonant); it cannot be a feature")
        return self

    @model_validator(mode="after")
    def _decorrelation_features(self):
        if self.decorrelation == "ratio":
            from .search.decorrelation import MASS_LIKE

            if not any(f in MASS_LIKE for f in self.features):
                raise ValueError(f"decorrelation 'ratio' divides mass-like features ({', '.join(MASS_LIKE)}) by mjj; "
                                 f"features are {self.features}")
        return self


class RunConfig(_Strict):
    output: str = Field("runs/search", description="Run directory.")
    seed: int = Field(1, ge=0)
    workers: int | None = Field(None, ge=1)
    scheduler: str | None = Field(None, description="dask.distributed scheduler address.")
    device: str = Field("auto", description="Torch device of every model of the method: auto (CUDA when present, "
                        "else CPU), cpu, cuda, cuda:N or mps. HGB classifiers run on the CPU whatever it says.")

    @field_validator("device", mode="before")
    @classmethod
    def _device(cls, v):
        from .nn.device import check_device_spec  # no torch import: the form only

        if not isinstance(v, str):
            raise ValueError(f"device must be a string (auto, cpu, cuda, cuda:N or mps), got {v!r}")
        try:
            return check_device_spec(v)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None


class SearchConfig(_Strict):
    data: DataConfig
    method: MethodConfig = Field(default_factory=MethodConfig)
    scan: ScanConfig = Field(default_factory=ScanConfig)
    run: RunConfig = Field(default_factory=RunConfig)

    @model_validator(mode="after")
    def _method_needs(self):
        if self.method.name == "idealized" and not self.data.background_path:
            raise ValueError("data.background_path: method 'idealized' needs a background-only reference sample; "
                             "give its file here")
        return self


DEMO_CONFIG: dict = {
    "data": {"demo": True},
    "method": {"name": "cwola", "params": {}},
    "scan": {"efficiencies": [0.1, 0.02, 0.005], "n_folds": 5, "global_toys": 100},
    "run": {"output": "runs/demo", "seed": 1},
}


def _format_error(exc: ValidationError, source: str) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err["loc"]) or "(top level)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        msg = msg.removeprefix("Value error, ")
        if not err["loc"] and ": " in msg:  # a rule across sections names its own key path
            parts.append(msg)
            continue
        parts.append(f"{loc}: {msg}")
    return f"{source}: invalid configuration: " + "; ".join(parts)


def parse_config(raw: dict, source: str = "config") -> SearchConfig:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the configuration must be a mapping, got {type(raw).__name__}")
    try:
        return SearchConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_error(exc, source)) from None


def _set_path(d: dict, dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    cur = d
    for k in keys[:-1]:
        nxt = cur.get(k)
        if nxt is None:
            nxt = cur[k] = {}
        if not isinstance(nxt, dict):
            raise ConfigError(f"override {dotted!r}: {k!r} is not a section")
        cur = nxt
    cur[keys[-1]] = value


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    """Apply ``key.path=value`` overrides (values parsed as YAML: numbers, lists, booleans)."""
    import copy

    import yaml

    out = copy.deepcopy(raw)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key.path=value")
        key, val = item.split("=", 1)
        _set_path(out, key.strip(), yaml.safe_load(val))
    return out


#: keys holding paths; relative values written in a config file are relative to the file's folder
PATH_KEYS = (("data", "path"), ("data", "background_path"), ("run", "output"))


def resolve_relative_paths(raw: Any, folder: Path) -> Any:
    """Make the relative paths of a config file (``data.path``, ``data.background_path``, ``run.output``)
    relative to ``folder`` (the config file's), so a search runs the same from any working directory.
    Values given with ``--set`` are command-line arguments and stay relative to the working directory."""
    import copy

    if not isinstance(raw, dict):
        return raw
    out = copy.deepcopy(raw)
    for section, key in PATH_KEYS:
        sec = out.get(section)
        if isinstance(sec, dict) and isinstance(sec.get(key), str) and sec[key].strip():
            p = Path(sec[key]).expanduser()
            if not p.is_absolute():
                sec[key] = os.path.normpath(folder / p)
    return out


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> SearchConfig:
    """Read a YAML config (or the demo default when ``path`` is None), apply overrides, validate."""
    import yaml

    if path is None:
        raw, source = dict(DEMO_CONFIG), "demo config"
    else:
        p = Path(path)
        if not p.exists():
            raise ConfigError(f"{p}: no such config file")
        if p.is_dir():
            raise ConfigError(f"{p}: is a folder; give the YAML config file")
        try:
            raw = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{p}: not valid YAML ({exc})") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{p}: cannot read the config file ({getattr(exc, 'strerror', None) or exc})") from None
        source = str(p)
        raw = resolve_relative_paths(raw, p.resolve().parent)
    if overrides:
        raw = apply_overrides(raw, overrides)
    return parse_config(raw, source)
