"""The device setting: resolved in one place, clear errors, CPU results unchanged, GPU-saved models load on CPU."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from excess.errors import ConfigError  # noqa: E402
from excess.nn.classifiers import MLPClassifier  # noqa: E402
from excess.nn.device import check_device_spec, resolve_device  # noqa: E402
from excess.nn.flows import ConditionalFlow  # noqa: E402
from excess.nn.io import load_model, save_model  # noqa: E402
from excess.nn.mlp import mlp  # noqa: E402


def test_auto_is_cpu_without_gpu(monkeypatch):
    monkeypatch.delenv("EXCESS_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device(None).type == expected
    assert resolve_device("CPU").type == "cpu"


def test_env_variable_replaces_auto(monkeypatch):
    monkeypatch.setenv("EXCESS_DEVICE", "cpu")
    assert resolve_device("auto").type == "cpu"
    monkeypatch.setenv("EXCESS_DEVICE", "tpu")
    with pytest.raises(ConfigError, match="EXCESS_DEVICE"):
        resolve_device("auto")


@pytest.mark.parametrize("bad", ["gpu", "cuda:x", "", "cuda0"])
def test_malformed_spec_is_a_config_error(bad):
    with pytest.raises(ConfigError, match="device must be one of"):
        check_device_spec(bad)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_missing_cuda_is_one_clear_error():
    with pytest.raises(ConfigError, match="no CUDA GPU"):
        resolve_device("cuda:0")
    X = np.random.default_rng(0).normal(size=(40, 2))
    with pytest.raises(ConfigError, match="no CUDA GPU"):
        MLPClassifier(epochs=1, device="cuda").fit(X, np.arange(40) % 2)


def test_mlp_builder_layout():
    net = mlp((3, 8, 8, 1))
    assert [type(m).__name__ for m in net] == ["Linear", "ReLU", "Linear", "ReLU", "Linear"]
    assert list(net.state_dict())[:2] == ["0.weight", "0.bias"]
    assert isinstance(mlp((2, 4, 1), "leaky_relu")[1], torch.nn.LeakyReLU)
    with pytest.raises(ConfigError):
        mlp((3,))
    with pytest.raises(ConfigError, match="activation"):
        mlp((3, 4, 1), "swish2")


def test_cpu_and_auto_give_identical_models(monkeypatch):
    monkeypatch.setenv("EXCESS_DEVICE", "cpu")
    rng = np.random.default_rng(1)
    X, c = rng.normal(size=(300, 2)), rng.uniform(size=300)
    a = ConditionalFlow(transforms=1, hidden=(8,), epochs=2, random_state=3, device="cpu").fit(X, c)
    b = ConditionalFlow(transforms=1, hidden=(8,), epochs=2, random_state=3, device="auto").fit(X, c)
    np.testing.assert_array_equal(a.log_prob(X, c), b.log_prob(X, c))
    np.testing.assert_array_equal(a.sample(c, random_state=0), b.sample(c, random_state=0))


def test_saved_device_is_not_carried_and_can_be_set(tmp_path):
    rng = np.random.default_rng(2)
    X, y = rng.normal(size=(80, 2)), np.arange(80) % 2
    clf = MLPClassifier(hidden=(4,), epochs=2, random_state=0, device="cpu").fit(X, y)
    save_model(clf, tmp_path / "m")
    params = json.loads((tmp_path / "m" / "hyperparameters.json").read_text())["params"]
    assert params["device"] == "auto"  # a GPU-trained model loads on a CPU-only machine
    loaded = load_model(tmp_path / "m", device="cpu")
    assert loaded.device == "cpu"
    np.testing.assert_allclose(loaded.predict_proba(X), clf.predict_proba(X))


def test_old_module_name_in_saved_files_still_loads(tmp_path):
    rng = np.random.default_rng(3)
    X, c = rng.normal(size=(60, 2)), rng.uniform(size=60)
    flow = ConditionalFlow(transforms=1, hidden=(4,), epochs=1, random_state=0).fit(X, c)
    save_model(flow, tmp_path / "f")
    cfg_file = tmp_path / "f" / "hyperparameters.json"
    cfg = json.loads(cfg_file.read_text())
    cfg["class"] = "excess.models.flows.ConditionalFlow"
    del cfg["params"]["device"]  # written before the device setting existed
    cfg_file.write_text(json.dumps(cfg))
    np.testing.assert_allclose(load_model(tmp_path / "f").log_prob(X, c), flow.log_prob(X, c))


def test_dropout_is_reproducible_and_leaves_the_global_generator_alone():
    rng = np.random.default_rng(4)
    X, y = rng.normal(size=(200, 3)), np.arange(200) % 2
    after = []
    for outer in (123, 124):  # if fit seeded torch's global generator, both draws after it would agree
        torch.manual_seed(outer)
        clf = MLPClassifier(hidden=(16,), dropout=0.5, epochs=3, random_state=5, device="cpu").fit(X, y)
        after.append(torch.rand(4))
        if outer == 123:
            first = clf.predict_proba(X)
    assert not torch.equal(after[0], after[1])
    np.testing.assert_array_equal(first, clf.predict_proba(X))  # same seed, same dropout masks
