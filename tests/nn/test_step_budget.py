"""The step budget of the training loop (``max_steps``): epochs stop growing with the sample size."""

import os

import numpy as np
import pytest

os.environ.setdefault("EXCESS_NO_PROGRESS", "1")
torch = pytest.importorskip("torch")

from excess.errors import ConfigError  # noqa: E402
from excess.nn.classifiers import MLPClassifier  # noqa: E402
from excess.nn.flows import ConditionalFlow  # noqa: E402
from excess.nn.training import budget_epochs, fit_torch  # noqa: E402


def test_budget_epochs():
    assert budget_epochs(40, 15, None) == 40  # no budget
    assert budget_epochs(40, 15, 600) == 40  # small set: the budget is not reached
    assert budget_epochs(40, 246, 2000) == 9  # large set: ceil(2000 / 246) whole epochs
    assert budget_epochs(40, 5000, 2000) == 1  # at least one epoch
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ConfigError, match="max_steps"):
            budget_epochs(40, 10, bad)


def _count_steps(n, max_steps, epochs=30, batch_size=10):
    lin = torch.nn.Linear(2, 1)
    x = torch.randn(n, 2, generator=torch.Generator().manual_seed(0))
    y = x @ torch.tensor([[1.0], [-2.0]])
    calls = []

    def loss(mod, xb, yb):
        calls.append(xb.shape[0])
        return ((mod(xb) - yb) ** 2).mean()

    res = fit_torch(lin, loss, (x, y), None, epochs=epochs, batch_size=batch_size, lr=1e-2, patience=None,
                    generator=torch.Generator().manual_seed(1), lr_schedule="cosine", max_steps=max_steps)
    return res, len(calls)


def test_fit_torch_step_budget_caps_the_steps_not_small_sets():
    small, steps_small = _count_steps(50, max_steps=200)  # 5 steps/epoch x 30 = 150 <= 200: unchanged
    assert small.epochs == 30 and len(small.train_loss) == 30 and steps_small == 150
    big, steps_big = _count_steps(1000, max_steps=200)  # 100 steps/epoch: 2 epochs, not 30
    assert big.epochs == 2 and len(big.train_loss) == 2 and steps_big == 200
    free, steps_free = _count_steps(1000, max_steps=None, epochs=3)
    assert free.epochs == 3 and steps_free == 300


def test_flow_and_mlp_take_the_budget():
    rng = np.random.default_rng(0)
    c = rng.uniform(3000, 4000, 1500)
    X = np.c_[rng.normal((c - 3500) / 500, 1.0), rng.gamma(2.0, 1.0 + (c - 3000) / 1000)]
    kw = dict(kind="maf", transforms=1, hidden=(8,), epochs=6, batch_size=100, random_state=0)
    # 1200 training rows / 100 = 12 steps per epoch; a 20-step budget plans 2 epochs
    flow = ConditionalFlow(**kw, max_steps=20).fit(X, c)
    assert flow.history_["epochs"] == 2 and flow.history_["stopped_epoch"] == 1
    assert ConditionalFlow(**kw).fit(X, c).history_["epochs"] == 6
    y = (X[:, 0] > 0).astype(int)
    mlp = MLPClassifier(hidden=(8,), epochs=6, batch_size=100, n_best=1, random_state=0, max_steps=20).fit(X, y)
    assert mlp.history_["epochs"] == 2
