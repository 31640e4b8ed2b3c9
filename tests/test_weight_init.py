"""util/weight_init.py: `--init_type residual` for generators without normalisation."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from models.networks.generators import ResnetBlock, ResnetGenerator
from util.weight_init import init_weights


def quick_generator(init_type: str, gain: float = 0.02) -> ResnetGenerator:
    """The quick recipes' restoring generator: no norm, global residual, skips, ngf 16."""
    torch.manual_seed(0)
    net = ResnetGenerator(ngf=16, norm="none", global_residual=True, skips=True)
    return init_weights(net, init_type, gain)


def encoder_scale(net: ResnetGenerator, x: torch.Tensor) -> float:
    """Standard deviation of the activations that enter the residual blocks."""
    first_block = next(i for i, layer in enumerate(net.model) if isinstance(layer, ResnetBlock))
    with torch.no_grad():
        return float(net.model[:first_block](x).std())


def test_residual_init_starts_at_the_identity_with_unit_scale_activations():
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    net = quick_generator("residual")
    with torch.no_grad():
        assert torch.equal(net(x), x), "zero output conv under a global residual: the identity"
        for block in (m for m in net.modules() if isinstance(m, ResnetBlock)):
            h = torch.randn(1, 64, 16, 16)
            assert torch.equal(block(h), h), "every residual block passes its input unchanged"
    assert 0.2 < encoder_scale(net, x) < 5


def test_the_old_default_init_starves_a_generator_without_normalisation():
    """Why `residual` exists: xavier at gain 0.02 (the paired model's default) shrinks the signal."""
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    assert encoder_scale(quick_generator("xavier"), x) < 0.01
    assert encoder_scale(quick_generator("residual"), x) > 100 * encoder_scale(quick_generator("xavier"), x)


def test_residual_init_learns_from_the_first_steps():
    torch.manual_seed(1)
    clean = torch.rand(4, 3, 32, 32) * 1.6 - 0.8
    rainy = clean.clone()
    rainy[..., ::6] = 0.95  # bright vertical lines: the generator has to remove them
    net = quick_generator("residual")
    optimiser = torch.optim.Adam(net.parameters(), lr=2e-4, betas=(0.5, 0.999))
    first = None
    for _ in range(30):
        loss = (net(rainy) - clean).abs().mean()
        first = loss.item() if first is None else first
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert loss.item() < 0.8 * first
    with torch.no_grad():
        assert not torch.equal(net(rainy), rainy), "it has left the identity"


def test_closing_convs_add_no_parameters_to_the_checkpoint():
    net = quick_generator("residual")
    assert not any("closing_conv" in key for key in net.state_dict())
    plain = ResnetGenerator(ngf=16, norm="none", global_residual=True, skips=True)
    assert net.state_dict().keys() == plain.state_dict().keys()


def test_unknown_init_type_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="residual"):
        init_weights(nn.Conv2d(3, 3, 3), "bogus")
