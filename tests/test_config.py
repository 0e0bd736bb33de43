"""Search configuration: strict validation with key paths, overrides, the demo default."""

import pytest

from excess.config import DEMO_CONFIG, apply_overrides, load_config, parse_config
from excess.errors import ConfigError


def test_demo_config_is_valid():
    cfg = parse_config(DEMO_CONFIG)
    assert cfg.data.demo and cfg.method.name == "cwola"
    assert cfg.scan.features == ["mj1", "delta_mj", "tau21_j1", "tau21_j2"]


@pytest.mark.parametrize(
    "raw, match",
    [
        ({"data": {"path": "x.h5"}, "scan": {"n_fold": 3}}, r"scan\.n_fold: unknown key"),
        ({"data": {"path": "x.h5"}, "bogus": 1}, r"bogus: unknown key"),
        ({"data": {"path": "x.h5"}, "scan": {"n_folds": "five"}}, r"scan\.n_folds"),
        ({"data": {"path": "x.h5"}, "scan": {"efficiencies": [0.1, 1.5]}}, r"scan\.efficiencies\.1: .*\(0, 1\]"),
        ({"data": {"path": "x.h5"}, "method": {"name": "magic"}}, r"method\.name: .*unknown method 'magic'"),
        ({"data": {}}, r"data: .*give data\.path"),
        ({"data": {"path": "x.h5"}, "scan": {"windows": [[1, 2, 3]]}}, r"scan\.windows"),
        ({"data": {"path": "x.h5"}, "run": {"workers": 0}}, r"run\.workers"),
    ],
)
def test_errors_name_the_key(raw, match):
    with pytest.raises(ConfigError, match=match):
        parse_config(raw, "cfg.yaml")


def test_yaml_and_overrides(tmp_path):
    p = tmp_path / "cfg.yaml"
    p.write_text("data:\n  path: events.h5\nmethod:\n  name: cwola\n")
    cfg = load_config(p, ["method.name=cathode", "scan.efficiencies=[0.2, 0.05]", "run.seed=7"])
    assert cfg.method.name == "cathode" and cfg.scan.efficiencies == [0.2, 0.05] and cfg.run.seed == 7
    with pytest.raises(ConfigError, match="key.path=value"):
        apply_overrides({}, ["nonsense"])
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(tmp_path / "bad.yaml")
