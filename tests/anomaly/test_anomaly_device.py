"""The device setting through the anomaly methods, the search config, the CLI and the fold workers."""

import json

import numpy as np
import pytest
from anomaly_toys import SR, make_toy

from excess.anomaly import METHODS, make_method
from excess.config import parse_config
from excess.errors import ConfigError

torch = pytest.importorskip("torch")
NO_CUDA = not torch.cuda.is_available()
needs_no_cuda = pytest.mark.skipif(not NO_CUDA, reason="asserts the error of asking for a GPU that is not there")

# the methods' torch-using variants (the classifier methods' default HGB is CPU trees)
TORCH_PARAMS = {"supervised": {"classifier": "mlp"}, "idealized": {"classifier": "mlp"}, "cwola": {"classifier": "mlp"}}


@pytest.fixture(scope="module")
def toy():
    X, m, y = make_toy(n_bkg=900, n_sig=60, seed=4)
    Xb, mb, _ = make_toy(n_bkg=900, n_sig=0, seed=5)
    return X, m, y, Xb, mb


def _fit_kw(name, toy):
    X, m, y, Xb, mb = toy
    return {"y": y} if name == "supervised" else {"X_background": Xb, "m_background": mb} if name == "idealized" else {}


def _inner_devices(est) -> list[str]:
    """The ``device`` settings of the torch models a fitted method holds."""
    models = [getattr(est, a, None) for a in ("background_flow_", "data_flow_", "classifier_", "model_")]
    return [mod.device for mod in models if mod is not None and "device" in mod.get_params(deep=False)]


@pytest.mark.parametrize("name", METHODS)
def test_method_forwards_device_to_its_models(name, toy):
    X, m = toy[0], toy[1]
    est = make_method(name, fast=True, random_state=0, device="cpu", **TORCH_PARAMS.get(name, {}))
    assert est.get_params()["device"] == "cpu"
    est.fit(X, m, sr=SR, **_fit_kw(name, toy))
    assert est.device_ == "cpu"
    inner = _inner_devices(est)
    assert inner and set(inner) == {"cpu"}, inner  # every torch model got the method's setting, not its "auto"
    if name == "ranode":
        assert all(p.device.type == "cpu" for f in est.signal_flows_ for p in f.parameters())
    assert np.all(np.isfinite(est.score_samples(X, m)))


@pytest.mark.skipif(not NO_CUDA, reason="'auto' is the CPU only without a GPU")
@pytest.mark.parametrize("name", ["ranode", "cathode"])
def test_auto_and_cpu_give_identical_scores(name, toy):
    X, m = toy[0], toy[1]
    s = [make_method(name, fast=True, random_state=3, device=d).fit(X, m, sr=SR).score_samples(X, m)
         for d in ("auto", "cpu")]
    np.testing.assert_array_equal(s[0], s[1])


@needs_no_cuda
@pytest.mark.parametrize("name", METHODS)
def test_cuda_without_gpu_is_one_config_error(name, toy):
    est = make_method(name, fast=True, random_state=0, device="cuda", **TORCH_PARAMS.get(name, {}))
    with pytest.raises(ConfigError, match=rf"^{name}: device 'cuda' was asked for.*no CUDA GPU"):
        est.fit(toy[0], toy[1], sr=SR, **_fit_kw(name, toy))


def test_hgb_ignores_the_device_but_checks_its_form(toy):
    X, m = toy[0], toy[1]
    est = make_method("cwola", fast=True, random_state=0, device="cuda").fit(X, m, sr=SR)
    assert est.device_ == "cpu"  # HGB trees: no torch, no error even without a GPU
    with pytest.raises(ConfigError, match="cwola: device must be one of"):
        make_method("cwola", fast=True, device="gpu").fit(X, m, sr=SR)


@pytest.mark.parametrize("name, params, key", [
    ("cathode", {"flow_params": {"device": "cpu"}}, "flow_params"),
    ("cwola", {"classifier": "mlp", "classifier_params": {"device": "cpu"}}, "classifier_params"),
    ("cwola", {"classifier_params": {"device": "cpu"}}, "classifier_params"),
    ("autoencoder", {"model_params": {"device": "cpu"}}, "model_params"),
    ("ranode", {"signal_flow_params": {"device": "cpu"}}, "signal_flow_params"),
])
def test_device_inside_model_params_is_refused(name, params, key, toy):
    with pytest.raises(ConfigError, match=key):
        make_method(name, fast=True, device="cpu", **params).fit(toy[0], toy[1], sr=SR)


def test_config_key_is_validated_with_its_path():
    assert parse_config({"data": {"demo": True}}).run.device == "auto"
    assert parse_config({"data": {"demo": True}, "run": {"device": "CUDA:1"}}).run.device == "cuda:1"
    for bad in ("gpu", "cuda:x", 0):
        with pytest.raises(ConfigError, match=r"run\.device: .*device must be"):
            parse_config({"data": {"demo": True}, "run": {"device": bad}})
    with pytest.raises(ConfigError, match=r"method\.params: .*use run\.device"):
        parse_config({"data": {"demo": True}, "method": {"params": {"device": "cpu"}}})


def test_cli_check_and_demo_catch_a_bad_device(tmp_path, capsys):
    from excess.cli.main import main

    cfg = tmp_path / "c.yaml"
    cfg.write_text("data: {path: x.h5}\n")
    assert main(["search", str(cfg), "--check", "--device", "cuda:0"]) == 0
    assert "device: cuda:0" in capsys.readouterr().out
    assert main(["search", str(cfg), "--check", "--device", "gpu"]) == 1
    assert "run.device: device must be one of" in capsys.readouterr().err
    assert main(["demo", "-o", str(tmp_path / "demo"), "--device", "tpu"]) == 1
    assert "run.device" in capsys.readouterr().err and not (tmp_path / "demo").exists()


@pytest.fixture(scope="module")
def tiny_search(tmp_path_factory):
    from excess.data.io import write_events
    from excess.search.synthetic import toy_events

    d = tmp_path_factory.mktemp("dev")
    write_events(toy_events(3000, 80, random_state=3), d / "ev.h5")
    cfg = d / "cfg.yaml"
    cfg.write_text(f"data: {{path: {d / 'ev.h5'}}}\n"
                   "method: {name: cwola, params: {classifier: mlp, classifier_params: {epochs: 2, hidden: [8]}}}\n"
                   "scan: {windows: [[3300, 3700]], n_folds: 2, efficiencies: [0.1], global_toys: 0}\n"
                   "run: {seed: 1, workers: 1}\n")
    return d, cfg


def test_cli_device_reaches_provenance_and_the_fold_tasks(tiny_search, capsys):
    from excess.cli.main import main

    d, cfg = tiny_search
    assert main(["--quiet", "search", str(cfg), "-o", str(d / "run"), "--device", "cpu"]) == 0, capsys.readouterr().err
    prov = json.loads((d / "run" / "provenance.json").read_text())
    assert prov["device"] == {"setting": "cpu", "resolved": "cpu"}
    metrics = json.loads((d / "run" / "metrics.json").read_text())
    assert metrics["config"]["method"]["params"]["device"] == "cpu"  # the params every fold task builds from
    if NO_CUDA:  # a device that is not here fails before the run directory is made
        assert main(["--quiet", "search", str(cfg), "-o", str(d / "run2"), "--device", "cuda"]) == 1
        assert "run.device: device 'cuda' was asked for" in capsys.readouterr().err
        assert not (d / "run2").exists()


@needs_no_cuda
def test_device_reaches_a_worker_process(toy):
    """A fold task in a spawned worker resolves the method's device there (here: fails for a missing GPU)."""
    from excess.anomaly.base import FoldJob, run_fold
    from excess.executor import LocalExecutor
    from excess.search.selection import build_method

    X, m = toy[0], toy[1]
    job = FoldJob(build_method("cwola", {"classifier": "mlp", "device": "cuda"}), 1, X, m, X, m, SR)
    with LocalExecutor(1) as ex, pytest.raises(ConfigError, match="cwola: device 'cuda'"):
        ex.map(run_fold, [(job,)])
