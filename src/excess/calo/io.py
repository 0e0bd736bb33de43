"""CaloChallenge 2022 HDF5 files: ``incident_energies`` (N, 1) and ``showers`` (N, n_voxels), MeV.

Files written here are readable by the challenge's own scripts (same keys, shapes and dtype);
extra provenance goes into HDF5 attributes (``geometry``, ``generator``, ...) which the challenge
code ignores.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._util import atomic_path
from ..errors import InputError
from .geometry import CaloGeometry, geometry_for_voxels, load_geometry

__all__ = ["ShowerData", "read_showers", "write_showers"]

ENERGY_KEY = "incident_energies"
SHOWER_KEY = "showers"


@dataclass(frozen=True)
class ShowerData:
    """Showers with their incident energies (MeV) and, when known, the geometry and metadata."""

    incident_energies: np.ndarray  # (N,)
    showers: np.ndarray  # (N, n_voxels)
    geometry: CaloGeometry | None = None
    attrs: dict = field(default_factory=dict, compare=False)

    def __len__(self) -> int:
        return len(self.incident_energies)

    def subset(self, idx) -> ShowerData:
        return ShowerData(self.incident_energies[idx], self.showers[idx], self.geometry, dict(self.attrs))


def _validate(energies: np.ndarray, showers: np.ndarray, where: str, geometry: CaloGeometry | None) -> None:
    if showers.ndim != 2:
        raise InputError(f"{where}: '{SHOWER_KEY}' must be 2-d (N, n_voxels), got shape {showers.shape}")
    if energies.shape[0] != showers.shape[0]:
        raise InputError(
            f"{where}: '{ENERGY_KEY}' has {energies.shape[0]} rows but '{SHOWER_KEY}' has {showers.shape[0]}"
        )
    if geometry is not None:
        geometry.check_showers(showers, where=f"{where}: '{SHOWER_KEY}'")
    for key, arr in ((ENERGY_KEY, energies), (SHOWER_KEY, showers)):
        bad = ~np.isfinite(arr)
        if bad.any():
            row = int(np.argwhere(bad)[0][0])
            raise InputError(f"{where}: '{key}' has {int(bad.sum())} non-finite values (first in row {row})")
    if (energies <= 0).any():
        i = int(np.argmax(energies <= 0))
        raise InputError(f"{where}: '{ENERGY_KEY}' must be > 0 MeV, row {i} has {float(energies[i])!r}")
    if (showers < 0).any():
        i, j = (int(v) for v in np.argwhere(showers < 0)[0])
        raise InputError(
            f"{where}: '{SHOWER_KEY}' has negative energies ({int((showers < 0).sum())} voxels; "
            f"first: shower {i}, voxel {j} = {float(showers[i, j])!r} MeV)"
        )


def read_showers(
    path: str | Path,
    geometry: str | Path | CaloGeometry | None = None,
    *,
    max_showers: int | None = None,
) -> ShowerData:
    """Read a CaloChallenge-format file and validate it.

    ``geometry`` (a name, XML path or :class:`CaloGeometry`) fixes the expected voxel count; when
    omitted the file's ``geometry`` attribute is used, then the built-in geometry with that voxel count.
    Raises :class:`~excess.errors.InputError` naming the file and key for missing keys, wrong shapes,
    non-finite, non-positive incident or negative voxel energies.
    """
    import h5py

    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise InputError(f"{path}: not a readable HDF5 file ({exc})") from None
    with f:
        for key in (ENERGY_KEY, SHOWER_KEY):
            if key not in f:
                raise InputError(f"{path}: missing key '{key}' (found: {sorted(f.keys())})")
        sl = slice(None) if max_showers is None else slice(0, int(max_showers))
        energies = np.asarray(f[ENERGY_KEY][sl], dtype=np.float64)
        showers = np.asarray(f[SHOWER_KEY][sl], dtype=np.float32)
        attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
    if energies.ndim == 2 and energies.shape[1] == 1:
        energies = energies[:, 0]
    if energies.ndim != 1:
        raise InputError(f"{path}: '{ENERGY_KEY}' must have shape (N, 1), got {energies.shape}")
    geom = None
    if geometry is not None:
        geom = load_geometry(geometry)
    elif "geometry_xml" in attrs:
        geom = CaloGeometry.from_xml_string(str(attrs["geometry_xml"]), str(attrs.get("geometry", "custom")))
    elif showers.ndim == 2:
        geom = geometry_for_voxels(showers.shape[1])
    _validate(energies, showers, str(path), geom)
    if "metadata" in attrs:
        try:
            attrs["metadata"] = json.loads(attrs["metadata"])
        except (TypeError, ValueError):
            pass
    attrs.pop("geometry_xml", None)
    return ShowerData(energies, showers, geom, attrs)


def write_showers(
    path: str | Path,
    incident_energies: np.ndarray,
    showers: np.ndarray,
    *,
    geometry: CaloGeometry | None = None,
    metadata: dict | None = None,
    compression: str | None = "gzip",
) -> Path:
    """Write a CaloChallenge-format file atomically (float32 showers, (N, 1) incident energies)."""
    import h5py

    path = Path(path)
    energies = np.asarray(incident_energies, dtype=np.float64).reshape(-1)
    showers = np.asarray(showers, dtype=np.float32)
    _validate(energies, showers, str(path), geometry)
    with atomic_path(path, suffix=".h5") as tmp:
        with h5py.File(tmp, "w") as f:
            f.create_dataset(ENERGY_KEY, data=energies.reshape(-1, 1), compression=compression)
            f.create_dataset(SHOWER_KEY, data=showers, compression=compression, chunks=True if compression else None)
            if geometry is not None:
                f.attrs["geometry"] = geometry.name
                f.attrs["geometry_xml"] = geometry.to_xml_string()
            if metadata:
                f.attrs["metadata"] = json.dumps(metadata, default=str)
    return path
