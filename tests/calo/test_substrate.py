"""The calo wing on the shared substrate: estimators, old model files, devices, the epoch loop."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.base import clone

from excess.calo.evaluate import classifier_test
from excess.calo.models import MODEL_REGISTRY, CaloFlow, CaloVAE, CaloWGAN, get_model_class, load_model
from excess.cli.main import main
from excess.errors import ConfigError
from excess.nn.training import train_loop

OLD = Path(__file__).parent / "data" / "old_models"
no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")


def test_generators_are_sklearn_estimators(tiny_geometry):
    m = CaloVAE(tiny_geometry, latent_dim=3, hidden=(8,), random_state=7, device="cpu")
    c = clone(m)
    assert type(c) is CaloVAE and c is not m and c.get_params() == m.get_params()
    assert c.get_params()["latent_dim"] == 3 and c.get_params()["device"] == "cpu"
    assert "latent_dim=3" in repr(m)
    assert c.set_params(latent_dim=5) is c and c.latent_dim == 5 and m.latent_dim == 3
    with pytest.raises(ConfigError, match="no parameter 'n_layers'"):
        c.set_params(n_layers=2)
    assert set(CaloWGAN().get_params()) >= {"geometry", "n_critic", "random_state", "device"}


def test_a_subclass_keeping_its_parents_name_does_not_replace_it():
    class Tweaked(CaloFlow):
        pass

    assert MODEL_REGISTRY["flow"] is CaloFlow is get_model_class("flow") and Tweaked.name == "flow"


@pytest.mark.parametrize("name", ["flow", "vae", "wgan"])
def test_models_saved_by_the_old_code_load_and_generate_the_same_showers(name, tmp_path):
    m = load_model(OLD / name, device="cpu")
    assert m.name == name and m.device == "cpu" and m.best_epoch_ == 1
    # same showers up to float32 rounding: bit equality depends on the CPU's vector instructions (this test
    # failed at 1e-7 relative on a machine other than the one that wrote sample.npy)
    np.testing.assert_allclose(m.sample([2e3, 2e4, 5e4], random_state=4), np.load(OLD / name / "sample.npy"),
                               rtol=1e-5, atol=1e-6)
    # saving again writes no device and CPU tensors; a device in a file is ignored on load
    m.save(tmp_path / name)
    meta = json.loads((tmp_path / name / "model.json").read_text())
    assert "device" not in meta["params"]
    assert all(t.device.type == "cpu" for t in torch.load(tmp_path / name / "model.pt", weights_only=True).values())
    meta["params"]["device"] = "cuda:3"
    (tmp_path / name / "model.json").write_text(json.dumps(meta))
    assert load_model(tmp_path / name).device == "auto"


@no_cuda
def test_cuda_without_a_gpu_is_one_config_error(tiny_data, tiny_geometry, tmp_path, capsys):
    e, x = tiny_data
    with pytest.raises(ConfigError, match="no CUDA GPU"):
        CaloVAE(tiny_geometry, latent_dim=2, hidden=(8,), epochs=1, device="cuda").fit(x[:50], e[:50])
    m = load_model(OLD / "vae", device="cuda")
    with pytest.raises(ConfigError, match="no CUDA GPU"):
        m.sample([1e3])
    with pytest.raises(ConfigError, match="no CUDA GPU"):
        classifier_test(x[:40], e[:40], x[40:80], e[40:80], tiny_geometry, inputs="high", epochs=1, device="cuda")
    d = tmp_path / "vae"
    shutil.copytree(OLD / "vae", d)
    rc = main(["-q", "calo", "generate", "--model-dir", str(d), "-n", "3", "--device", "cuda", "-o", str(tmp_path / "g.h5")])
    err = capsys.readouterr().err
    assert rc != 0 and "no CUDA GPU" in err and len(err.strip().splitlines()) == 1 and not (tmp_path / "g.h5").exists()


def test_train_loop_batches_selection_and_stopping():
    """Calo's settings (small last batch dropped, mean of batch losses, a second kept criterion) and early stopping."""
    net = torch.nn.Linear(1, 1)
    seen, scores = [], iter([5.0, 3.0, 4.0, 1.0, 2.0, 6.0])

    def step(idx):
        seen.append(len(idx))
        with torch.no_grad():
            net.bias.add_(1.0)
        return float(len(idx))

    def evaluate(epoch, loss):
        return {"crit": next(scores), "other": -float(epoch)}

    res = train_loop(net, step, 10, epochs=6, batch_size=4, generator=torch.Generator().manual_seed(0), evaluate=evaluate,
                     select="crit", keep_also=("other",), drop_small_last=True, train_loss="batches", progress_bar=False)
    assert seen[:2] == [4, 4] and len(seen) == 12  # 10 rows: the 2-row last batch is dropped
    assert res.train_loss[0] == 4.0 and res.best_epoch == 3 and res.best_score == 1.0
    assert res.best_states[0][2]["bias"].item() == pytest.approx(net.bias.item() - 4)  # after epoch 3 (2 steps per epoch)
    assert res.best_by["other"][1] == 5 and [r["epoch"] for r in res.history] == list(range(6))
    # rows-weighted mean without dropping; patience stops after 2 epochs without improvement
    seen.clear()
    res = train_loop(net, step, 10, epochs=10, batch_size=4, generator=torch.Generator().manual_seed(0),
                     evaluate=lambda ep, loss: {"val_loss": [3.0, 2.0, 2.5, 2.2, 1.0][ep]}, select="val_loss", patience=2,
                     progress_bar=False)
    assert seen[:3] == [4, 4, 2] and res.train_loss[0] == pytest.approx((16 + 16 + 4) / 10) and res.stopped_epoch == 3
    # an epoch with a non-finite training loss is never kept
    res = train_loop(net, lambda idx: float("nan"), 4, epochs=2, batch_size=4, progress_bar=False)
    assert res.best_states == [] and len(res.history) == 2
