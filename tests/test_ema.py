"""util/ema.py: a frozen copy that follows a module's weights as an exponential moving average."""
import pytest
import torch

from util.ema import EMA


def test_the_copy_is_frozen_and_separate():
    net = torch.nn.Linear(3, 2)
    ema = EMA(net)
    assert not any(p.requires_grad for p in ema.module.parameters())
    assert all(p.requires_grad for p in net.parameters())
    with torch.no_grad():
        net.weight.add_(1.0)
    assert not torch.equal(ema.module.weight, net.weight), "the copy must not share storage"


def test_update_moves_each_parameter_towards_the_source_and_copies_buffers():
    net = torch.nn.BatchNorm1d(4)
    ema = EMA(net)
    start = ema.module.weight.clone()
    with torch.no_grad():
        net.weight.fill_(3.0)
    net(torch.randn(8, 4))  # training mode: the running statistics move
    ema.update(0.9)
    assert torch.allclose(ema.module.weight, 0.9 * start + 0.1 * 3.0)
    assert torch.equal(ema.module.running_mean, net.running_mean)
    assert int(ema.module.num_batches_tracked) == 1
    ema.update(1.0)  # decay 1 keeps the average
    assert torch.allclose(ema.module.weight, 0.9 * start + 0.1 * 3.0)
    ema.update(0.0)  # decay 0 copies the source
    assert torch.equal(ema.module.weight, net.weight)
    with pytest.raises(ValueError, match="decay"):
        ema.update(1.5)


def test_state_dict_round_trip():
    torch.manual_seed(0)
    ema = EMA(torch.nn.Linear(3, 2))
    ema.update(0.5)
    other = EMA(torch.nn.Linear(3, 2))
    other.load_state_dict(ema.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(ema.module.parameters(), other.module.parameters()))
