"""--netG dilated: the full-resolution transmission / airlight estimator behind the haze layer."""
from __future__ import annotations

import pytest
import torch

from models.networks.generators import define_generator


def dilated(**kwargs):
    return define_generator("dilated", ngf=8, haze_layer="asm", **kwargs)


def test_restores_any_size_through_the_scattering_model():
    torch.manual_seed(0)
    net = dilated()
    x = torch.rand(2, 3, 37, 41) * 2 - 1
    out = net(x)
    assert out.shape == x.shape and out.min() >= -1 and out.max() <= 1
    transmission, airlight = net.scattering(x)
    assert transmission.shape == (2, 1, 37, 41) and airlight.shape == (2, 3, 1, 1)
    assert transmission.min() >= 0.1 and transmission.max() <= 1
    # J = (I - A (1 - t)) / t, clamped to the image range: the layer, not a free image.
    expected = ((x + 1) / 2 - airlight * (1 - transmission)) / transmission
    assert torch.allclose(out, (2 * expected - 1).clamp(-1, 1), atol=1e-5)
    out.mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())


def test_degrading_generator_adds_haze_and_features_can_be_asked_for():
    net = define_generator("dilated", ngf=8, haze_layer="asm", rain_layer_sign=1)
    x = torch.zeros(1, 3, 24, 24) - 0.8  # a dark scene
    assert net(x).mean() > x.mean(), "haze lifts a dark scene towards the airlight"
    out, feats = net(x, layers=[0, 4])
    assert out.shape == x.shape and [f.shape[1] for f in feats] == [8, 8]
    assert len(net(x, layers=[2], encode_only=True)) == 1
    with pytest.raises(ValueError, match="nce_layers"):
        net(x, layers=[99])


@pytest.mark.parametrize("kwargs, message", [({"haze_layer": "none"}, "--haze_layer asm"),
                                             ({"haze_layer": "asm", "skips": True}, "--skips"),
                                             ({"haze_layer": "asm", "rain_layer": "gray"}, "--rain_layer")])
def test_refuses_what_it_cannot_build(kwargs, message):
    with pytest.raises(ValueError, match=message):
        define_generator("dilated", ngf=8, **kwargs)
