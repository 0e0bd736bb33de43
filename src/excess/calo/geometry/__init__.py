"""Calorimeter voxel geometries in the CaloChallenge 2022 binning-XML convention.

A geometry is a list of layers; each layer has radial bin edges ``r_edges`` (mm) and a number of
equal angular bins ``n_alpha`` spanning ``[-pi, pi)``. Layers listed with ``r_edges="0"`` carry no
voxels (dataset 1 lists all 24 ATLAS sampling layers and uses a handful).

Voxel order is exactly the challenge's: **radial bins fastest, then angular bins, then layers**,
i.e. the flat index of (layer block ``l``, angular bin ``a``, radial bin ``r``) is
``offset[l] + a * n_r[l] + r``. The built-in geometries are the published binning files of the
challenge (shipped with this package):

==================  ======  =======================================================
name                voxels  layout
==================  ======  =======================================================
``ds1-photons``     368     layers 0, 1, 2, 3, 12 (8, 160, 190, 5, 5 voxels)
``ds1-pions``       533     layers 0, 1, 2, 3, 12, 13, 14
``ds2``             6480    45 layers x 16 angular x 9 radial
``ds3``             40500   45 layers x 50 angular x 18 radial
==================  ======  =======================================================
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path

import numpy as np

from ...errors import ConfigError, InputError

__all__ = ["Layer", "CaloGeometry", "load_geometry", "BUILTIN_GEOMETRIES", "geometry_for_voxels"]

BUILTIN_GEOMETRIES: dict[str, str] = {
    "ds1-photons": "binning_dataset_1_photons.xml",
    "ds1-pions": "binning_dataset_1_pions.xml",
    "ds2": "binning_dataset_2.xml",
    "ds3": "binning_dataset_3.xml",
}


@dataclass(frozen=True)
class Layer:
    """One calorimeter layer: ``id`` as in the XML, radial edges in mm, angular bin count."""

    id: int
    r_edges: tuple[float, ...]
    n_alpha: int = 1

    def __post_init__(self):
        edges = np.asarray(self.r_edges, dtype=float)
        if edges.ndim != 1 or len(edges) < 1:
            raise ConfigError(f"layer {self.id}: r_edges must be a non-empty list, got {self.r_edges!r}")
        if np.any(np.diff(edges) <= 0) or edges[0] != 0:
            raise ConfigError(f"layer {self.id}: r_edges must start at 0 and increase, got {self.r_edges!r}")
        if int(self.n_alpha) < 1:
            raise ConfigError(f"layer {self.id}: n_bin_alpha must be >= 1, got {self.n_alpha!r}")

    @property
    def n_r(self) -> int:
        return len(self.r_edges) - 1

    @property
    def n_voxels(self) -> int:
        return self.n_r * self.n_alpha if self.n_r > 0 else 0

    @property
    def alpha_edges(self) -> np.ndarray:
        return np.linspace(-math.pi, math.pi, self.n_alpha + 1)


@dataclass(frozen=True)
class CaloGeometry:
    """A voxelised calorimeter geometry (see the module docstring for the voxel order)."""

    name: str
    layers: tuple[Layer, ...]
    particle: str = "electron"
    pid: int = 11
    attrs: dict = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self):
        if not any(layer.n_voxels for layer in self.layers):
            raise ConfigError(f"geometry {self.name!r} has no voxels")
        ids = [layer.id for layer in self.layers]
        if len(set(ids)) != len(ids):
            raise ConfigError(f"geometry {self.name!r}: duplicate layer ids {ids}")

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def regular(cls, name: str, n_layers: int, n_alpha: int, r_edges, *, particle: str = "electron", pid: int = 11):
        """A ds2/ds3-like geometry: ``n_layers`` identical layers (e.g. a tiny one for tests)."""
        edges = tuple(float(r) for r in r_edges)
        return cls(name, tuple(Layer(i, edges, int(n_alpha)) for i in range(int(n_layers))), particle, pid)

    @classmethod
    def from_xml(cls, path: str | Path, name: str | None = None) -> CaloGeometry:
        """Read a CaloChallenge binning XML file (``<Bins><Bin pid name><Layer .../>``)."""
        path = Path(path)
        try:
            root = ET.parse(path).getroot()
        except FileNotFoundError:
            raise InputError(f"{path}: geometry file not found") from None
        except ET.ParseError as exc:
            raise InputError(f"{path}: not a valid binning XML file ({exc})") from None
        return cls._from_root(root, name or path.stem, str(path))

    @classmethod
    def from_xml_string(cls, text: str, name: str = "custom") -> CaloGeometry:
        try:
            root = ET.fromstring(text)
        except ET.ParseError as exc:
            raise InputError(f"geometry {name!r}: not a valid binning XML ({exc})") from None
        return cls._from_root(root, name, name)

    @classmethod
    def _from_root(cls, root, name: str, where: str) -> CaloGeometry:
        bins = root.findall("Bin") if root.tag == "Bins" else ([root] if root.tag == "Bin" else [])
        if len(bins) != 1:
            raise InputError(f"{where}: expected exactly one <Bin> element under <Bins>, found {len(bins)}")
        b = bins[0]
        layers = []
        for el in b.findall("Layer"):
            try:
                lid = int(el.attrib["id"])
                edges = tuple(float(s) for s in el.attrib["r_edges"].split(","))
                n_alpha = int(el.attrib.get("n_bin_alpha", 1))
            except KeyError as exc:
                raise InputError(f"{where}: <Layer> lacks attribute {exc.args[0]!r}") from None
            except ValueError as exc:
                raise InputError(f"{where}: bad <Layer> attribute ({exc})") from None
            layers.append(Layer(lid, edges, n_alpha))
        if not layers:
            raise InputError(f"{where}: no <Layer> elements")
        attrs = {k: v for k, v in b.attrib.items() if k not in ("pid", "name")}
        return cls(name, tuple(layers), b.attrib.get("name", "electron"), int(b.attrib.get("pid", 0)), attrs)

    def to_xml_string(self) -> str:
        extra = "".join(f' {k}="{v}"' for k, v in self.attrs.items())
        lines = ["<Bins>", f'   <Bin pid="{self.pid}"{extra} name="{self.particle}">']
        for layer in self.layers:
            edges = ",".join(f"{r:g}" for r in layer.r_edges)
            lines.append(f'      <Layer id="{layer.id}" r_edges="{edges}" n_bin_alpha="{layer.n_alpha}" />')
        lines += ["   </Bin>", "</Bins>", ""]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"name": self.name, "xml": self.to_xml_string()}

    @classmethod
    def from_dict(cls, d: dict) -> CaloGeometry:
        return cls.from_xml_string(d["xml"], d.get("name", "custom"))

    # ---- structure ----------------------------------------------------------------------
    @cached_property
    def active_layers(self) -> tuple[Layer, ...]:
        """Layers that carry voxels, in file order (the order of the voxel blocks)."""
        return tuple(layer for layer in self.layers if layer.n_voxels > 0)

    @property
    def n_layers(self) -> int:
        return len(self.active_layers)

    @property
    def layer_ids(self) -> tuple[int, ...]:
        return tuple(layer.id for layer in self.active_layers)

    @cached_property
    def layer_sizes(self) -> np.ndarray:
        return np.array([layer.n_voxels for layer in self.active_layers], dtype=np.int64)

    @cached_property
    def offsets(self) -> np.ndarray:
        """Start index of each active layer's block; ``offsets[-1] == n_voxels``."""
        return np.concatenate([[0], np.cumsum(self.layer_sizes)]).astype(np.int64)

    @property
    def n_voxels(self) -> int:
        return int(self.offsets[-1])

    def layer_slice(self, i: int) -> slice:
        """Slice of the ``i``-th active layer (not the XML id) in a flat shower vector."""
        return slice(int(self.offsets[i]), int(self.offsets[i + 1]))

    @property
    def is_regular(self) -> bool:
        """All active layers have the same binning (ds2, ds3): showers reshape to (L, A, R)."""
        first = self.active_layers[0]
        return all(layer.r_edges == first.r_edges and layer.n_alpha == first.n_alpha for layer in self.active_layers)

    def voxel_index(self, layer: int, alpha: int, r: int) -> int:
        """Flat index of (active layer ``layer``, angular bin ``alpha``, radial bin ``r``)."""
        lay = self.active_layers[layer]
        if not (0 <= alpha < lay.n_alpha and 0 <= r < lay.n_r):
            raise IndexError(f"(alpha={alpha}, r={r}) outside layer {lay.id} ({lay.n_alpha} x {lay.n_r})")
        return int(self.offsets[layer]) + alpha * lay.n_r + r

    @cached_property
    def voxel_table(self) -> dict[str, np.ndarray]:
        """Per-voxel arrays: active-layer index, angular and radial bin, r and alpha centres, x=eta, y=phi.

        As in the challenge's ``XMLHandler``: r at the mid-point of the radial bin, alpha at the
        centre of the angular bin in ``[-pi, pi)``, ``eta = r cos(alpha)``, ``phi = r sin(alpha)``.
        """
        cols: dict[str, list] = {k: [] for k in ("layer", "alpha_bin", "r_bin", "r", "alpha", "eta", "phi")}
        for i, lay in enumerate(self.active_layers):
            edges = np.asarray(lay.r_edges)
            rc = 0.5 * (edges[1:] + edges[:-1])
            ae = lay.alpha_edges
            ac = 0.5 * (ae[1:] + ae[:-1])
            a_idx, r_idx = np.meshgrid(np.arange(lay.n_alpha), np.arange(lay.n_r), indexing="ij")  # r fastest
            a_idx, r_idx = a_idx.ravel(), r_idx.ravel()
            cols["layer"].append(np.full(lay.n_voxels, i))
            cols["alpha_bin"].append(a_idx)
            cols["r_bin"].append(r_idx)
            cols["r"].append(rc[r_idx])
            cols["alpha"].append(ac[a_idx])
            cols["eta"].append(rc[r_idx] * np.cos(ac[a_idx]))
            cols["phi"].append(rc[r_idx] * np.sin(ac[a_idx]))
        return {k: np.concatenate(v) for k, v in cols.items()}

    def layer_sums(self, showers: np.ndarray) -> np.ndarray:
        """Energy per active layer, shape (N, n_layers)."""
        showers = np.asarray(showers)
        return np.add.reduceat(showers, self.offsets[:-1], axis=1)

    def check_showers(self, showers: np.ndarray, where: str = "showers") -> None:
        """Raise :class:`InputError` unless ``showers`` is (N, n_voxels) for this geometry."""
        if showers.ndim != 2 or showers.shape[1] != self.n_voxels:
            raise InputError(
                f"{where}: shape {tuple(showers.shape)} does not match geometry {self.name!r} "
                f"({self.n_voxels} voxels per shower)"
            )

    def __repr__(self) -> str:
        return f"CaloGeometry({self.name!r}, {self.n_layers} layers, {self.n_voxels} voxels, particle={self.particle!r})"


def load_geometry(name_or_path: str | Path | CaloGeometry) -> CaloGeometry:
    """A built-in geometry by name (``ds1-photons``, ``ds1-pions``, ``ds2``, ``ds3``) or a binning XML path."""
    if isinstance(name_or_path, CaloGeometry):
        return name_or_path
    key = str(name_or_path)
    if key in BUILTIN_GEOMETRIES:
        text = resources.files(__name__).joinpath(BUILTIN_GEOMETRIES[key]).read_text()
        return CaloGeometry.from_xml_string(text, key)
    path = Path(key)
    if path.suffix.lower() == ".xml" or path.exists():
        return CaloGeometry.from_xml(path)
    raise ConfigError(f"unknown geometry {key!r}: use one of {sorted(BUILTIN_GEOMETRIES)} or a binning XML path")


def geometry_for_voxels(n_voxels: int) -> CaloGeometry | None:
    """The built-in geometry with ``n_voxels`` voxels, if exactly one matches."""
    sizes = {"ds1-photons": 368, "ds1-pions": 533, "ds2": 6480, "ds3": 40500}
    names = [k for k, v in sizes.items() if v == n_voxels]
    return load_geometry(names[0]) if len(names) == 1 else None
