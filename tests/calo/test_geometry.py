from __future__ import annotations

import xml.etree.ElementTree as ET
from importlib import resources

import numpy as np
import pytest

from excess.calo.geometry import BUILTIN_GEOMETRIES, CaloGeometry, Layer, geometry_for_voxels, load_geometry
from excess.errors import ConfigError, InputError


@pytest.mark.parametrize(
    "name, n_voxels, layer_ids",
    [
        ("ds1-photons", 368, (0, 1, 2, 3, 12)),
        ("ds1-pions", 533, (0, 1, 2, 3, 12, 13, 14)),
        ("ds2", 6480, tuple(range(45))),
        ("ds3", 40500, tuple(range(45))),
    ],
)
def test_builtin_voxel_counts(name, n_voxels, layer_ids):
    g = load_geometry(name)
    assert g.n_voxels == n_voxels
    assert g.layer_ids == layer_ids
    assert geometry_for_voxels(n_voxels).name == name


def test_ds2_ds3_binning():
    g2, g3 = load_geometry("ds2"), load_geometry("ds3")
    assert g2.is_regular and g3.is_regular
    assert (g2.active_layers[0].n_alpha, g2.active_layers[0].n_r) == (16, 9)
    assert (g3.active_layers[0].n_alpha, g3.active_layers[0].n_r) == (50, 18)
    assert g2.active_layers[0].r_edges[-1] == pytest.approx(41.85)
    assert load_geometry("ds1-photons").active_layers[2].r_edges[:4] == (0, 2, 5, 10)


@pytest.mark.parametrize("name", ["ds1-photons", "ds1-pions", "ds2"])
def test_voxel_order_matches_xml(name):
    """Radial bins fastest, then angular, then layer - recomputed from the raw XML."""
    text = resources.files("excess.calo.geometry").joinpath(BUILTIN_GEOMETRIES[name]).read_text()
    g = load_geometry(name)
    vt = g.voxel_table
    idx = 0
    for el in ET.fromstring(text).find("Bin").findall("Layer"):
        edges = [float(v) for v in el.attrib["r_edges"].split(",")]
        n_a = int(el.attrib["n_bin_alpha"])
        n_r = len(edges) - 1
        for a in range(n_a if n_r > 0 else 0):
            for r in range(n_r):
                assert vt["r_bin"][idx] == r and vt["alpha_bin"][idx] == a
                assert vt["r"][idx] == pytest.approx(0.5 * (edges[r] + edges[r + 1]))
                layer = g.layer_ids.index(int(el.attrib["id"]))
                assert vt["layer"][idx] == layer
                assert g.voxel_index(layer, a, r) == idx
                idx += 1
    assert idx == g.n_voxels
    # a layer block reshapes to (n_alpha, n_r), as the challenge's plotting code does
    lay = g.active_layers[1]
    block = np.arange(g.n_voxels)[g.layer_slice(1)].reshape(lay.n_alpha, lay.n_r)
    assert block[1, 0] - block[0, 0] == lay.n_r


def test_xml_round_trip(tmp_path):
    g = load_geometry("ds1-pions")
    p = tmp_path / "geo.xml"
    p.write_text(g.to_xml_string())
    g2 = CaloGeometry.from_xml(p)
    assert g2.layers == g.layers and g2.particle == "pion" and g2.pid == 211
    assert CaloGeometry.from_dict(g.to_dict()).layers == g.layers


def test_bad_geometries(tmp_path):
    with pytest.raises(ConfigError, match="unknown geometry"):
        load_geometry("ds9")
    bad = tmp_path / "bad.xml"
    bad.write_text("<Bins><Bin><Layer id='0' n_bin_alpha='1'/></Bin></Bins>")
    with pytest.raises(InputError, match="r_edges"):
        CaloGeometry.from_xml(bad)
    with pytest.raises(InputError, match="not found"):
        CaloGeometry.from_xml(tmp_path / "missing.xml")
    with pytest.raises(ConfigError, match="increase"):
        Layer(0, (0.0, 5.0, 3.0), 1)


def test_layer_sums(tiny_geometry):
    x = np.arange(2 * tiny_geometry.n_voxels, dtype=float).reshape(2, -1)
    s = tiny_geometry.layer_sums(x)
    assert s.shape == (2, 3)
    np.testing.assert_allclose(s.sum(1), x.sum(1))
    np.testing.assert_allclose(s[0, 1], x[0, 20:40].sum())
