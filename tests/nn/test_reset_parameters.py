"""reset_parameters re-initialises linear, convolution and recurrent layers from the generator alone."""

import math

import pytest

torch = pytest.importorskip("torch")

from excess.nn.training import reset_parameters, torch_generator  # noqa: E402


def _net():
    return torch.nn.ModuleDict({"conv": torch.nn.Conv2d(3, 4, 3), "conv1": torch.nn.Conv1d(2, 2, 5, groups=2),
                                "gru": torch.nn.GRU(5, 7, batch_first=True), "lstm": torch.nn.LSTM(3, 6),
                                "lin": torch.nn.Linear(8, 2)})


def test_every_layer_kind_is_seeded_and_bounded():
    a, b = _net(), _net()  # torch's global generator gives them different weights
    reset_parameters(a, torch_generator(3))
    reset_parameters(b, torch_generator(3))
    for (name, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert torch.equal(pa, pb), name
    c = _net()
    reset_parameters(c, torch_generator(4))
    assert not torch.equal(a["conv"].weight, c["conv"].weight)
    assert not torch.equal(a["gru"].weight_hh_l0, c["gru"].weight_hh_l0)
    # torch's default bounds: 1/sqrt(fan_in) for convolutions, 1/sqrt(hidden) for recurrent layers
    assert a["conv"].weight.abs().max() <= 1 / math.sqrt(3 * 9)
    assert a["conv"].weight.abs().max() > 0.8 / math.sqrt(3 * 9)
    assert a["conv1"].weight.abs().max() <= 1 / math.sqrt(1 * 5)
    for p in a["gru"].parameters():
        assert p.abs().max() <= 1 / math.sqrt(7)
    assert a["lstm"].bias_hh_l0.abs().max() > 0.8 / math.sqrt(6)
