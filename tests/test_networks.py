"""Shapes of G, D, F; encode-only stops before the decoder; anti-aliased resampling."""
import pytest
import torch

from models.networks import define_discriminator, define_generator, define_head
from models.networks.layers import BlurDownsample, BlurUpsample


@pytest.mark.parametrize("no_antialias", [False, True])
@pytest.mark.parametrize("size", [(32, 32), (48, 40)])
def test_generator_keeps_image_size(size, no_antialias):
    net = define_generator("resnet_9blocks", ngf=8, no_antialias=no_antialias, no_antialias_up=no_antialias)
    x = torch.randn(2, 3, *size)
    y = net(x)
    assert y.shape == x.shape
    assert y.abs().max() <= 1.0  # tanh output


def test_reference_layer_numbering():
    ngf = 8
    net = define_generator("resnet_9blocks", ngf=ngf)
    feats = net(torch.randn(1, 3, 32, 32), [0, 4, 8, 12, 16], encode_only=True)
    shapes = [tuple(f.shape[1:]) for f in feats]
    assert shapes == [(3, 38, 38), (2 * ngf, 32, 32), (4 * ngf, 16, 16), (4 * ngf, 8, 8), (4 * ngf, 8, 8)]


def test_encode_only_returns_requested_layers_and_skips_decoder():
    net = define_generator("resnet_9blocks", ngf=8)
    called = []
    for index, layer in enumerate(net.model):
        layer.register_forward_hook(lambda m, i, o, index=index: called.append(index))
    feats = net(torch.randn(1, 3, 32, 32), [4, 8], encode_only=True)
    assert len(feats) == 2
    assert max(called) == 8, "layers after the last requested one must not run"
    called.clear()
    out, feats = net(torch.randn(1, 3, 32, 32), [4, 8])
    assert max(called) == len(net.model) - 1 and out.shape == (1, 3, 32, 32)


def test_unknown_layer_is_a_clear_error():
    net = define_generator("resnet_6blocks", ngf=8)
    with pytest.raises(ValueError, match="do not exist"):
        net(torch.randn(1, 3, 32, 32), [99], encode_only=True)


@pytest.mark.parametrize("netD,expected", [("basic", (1, 1, 6, 6)), ("pixel", (1, 1, 64, 64))])
def test_discriminator_shapes(netD, expected):
    net = define_discriminator(netD, ndf=8)
    assert tuple(net(torch.randn(1, 3, 64, 64)).shape) == expected


def test_n_layers_discriminator_without_antialias():
    net = define_discriminator("n_layers", ndf=8, n_layers_D=2, no_antialias=True)
    assert net(torch.randn(2, 3, 64, 64)).shape[:2] == (2, 1)


def test_projection_head_samples_same_locations_and_normalises():
    head = define_head("mlp_sample", nc=16).build([3, 16])
    feats = [torch.randn(2, 3, 8, 8), torch.randn(2, 16, 3, 3)]
    samples, ids = head(feats, num_patches=10)
    assert samples[0].shape == (2 * 10, 16)
    assert samples[1].shape == (2 * 9, 16), "at most H*W patches are drawn"
    assert torch.allclose(samples[0].norm(dim=1), torch.ones(20), atol=1e-5)
    again, ids_again = head(feats, num_patches=10, patch_ids=ids)
    assert all(torch.equal(a, b) for a, b in zip(ids, ids_again))
    assert torch.allclose(again[0], samples[0])


def test_blur_resampling_preserves_constants_and_sizes():
    x = torch.full((1, 4, 8, 6), 0.7)
    down = BlurDownsample(4)(x)
    up = BlurUpsample(4)(x)
    assert down.shape == (1, 4, 4, 3) and torch.allclose(down, torch.full_like(down, 0.7))
    assert up.shape == (1, 4, 16, 12) and torch.allclose(up, torch.full_like(up, 0.7))


def test_global_residual_adds_the_input():
    net = define_generator("resnet_6blocks", ngf=8, global_residual=True)
    last_conv = net.model[-2]
    torch.nn.init.zeros_(last_conv.weight)
    torch.nn.init.zeros_(last_conv.bias)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    assert torch.equal(net(x), x), "a zero correction must give back the input"
    out, feats = net(x, [4])
    assert torch.equal(out, x) and len(feats) == 1


def test_generator_from_checkpoint_options_keeps_the_residual():
    from models.loading import generator_from_saved_options
    net = generator_from_saved_options({"netG": "resnet_6blocks", "ngf": 8, "global_residual": True})
    assert net.global_residual and len(net.model) == 4 + 8 + 6 + 8 + 3
