"""The rain layer's absorbing state (issue 29) and `--rain_layer gray_soft` and `linear`, which have none."""
from __future__ import annotations


import pytest
import torch
import torch.nn.functional as F

from models.networks.generators import define_generator
from models.networks.layers import RAIN_LAYERS, clamp_passing_gradient, residual_output, soft_rain_layer
from options.train_options import TrainOptions
from tests.conftest import tiny_flags

def images(seed: int = 0, low: float = -1.0, high: float = 1.0, size: int = 32) -> torch.Tensor:
    x = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(seed))
    return low + (high - low) * x


def saturated(rain_layer: str, sign: int = -1) -> torch.nn.Module:
    """A quick-configuration generator whose output conv's bias is -50: its last tanh sits at
    -1 (under `linear`, which has no tanh, the correction is -50), the state a diverging run
    ended in."""
    net = define_generator("resnet_6blocks", ngf=8, norm="none", global_residual=True, rain_layer=rain_layer,
                           rain_layer_sign=sign, skips=True)
    with torch.no_grad():
        net.model[-2].bias.fill_(-50.0)
    return net


def test_a_saturated_gray_layer_pins_idt_at_0_25_and_sparse_at_0_05_with_no_gradient():
    """The issue's reading: tanh at -1, x - leaky_relu(-1, 0.1) = x + 0.1. With the quick
    configuration's weights (--lambda_IDT 5, --lambda_sparse 1) the logged terms are exactly
    0.5 * 5 * 0.1 = 0.25 and 0.5 * 1 * 0.1 = 0.05 on pixels that do not clip."""
    g_a, g_b = saturated("gray"), saturated("gray", +1)
    clean, rainy = images(1, -0.85, 0.85), images(2, -0.85, 0.85)
    assert torch.allclose(g_a(clean), clean + 0.1, atol=1e-6)
    assert torch.allclose(g_b(rainy), rainy - 0.1, atol=1e-6)
    idt_A = 0.5 * 5 * F.l1_loss(g_a(clean), clean)
    sparse_A = 0.5 * 1 * F.l1_loss(g_a(rainy), rainy)
    assert idt_A.item() == pytest.approx(0.25, abs=1e-5) and sparse_A.item() == pytest.approx(0.05, abs=1e-5)
    # The saturated tanh passes (almost) no gradient back to any weight.
    (idt_A + sparse_A).backward()
    largest = max(p.grad.abs().max().item() for p in g_a.parameters() if p.grad is not None)
    assert largest < 1e-12


def test_soft_layer_is_never_negative_and_keeps_a_full_gradient_at_zero_rain():
    y = torch.randn(4, 3, 8, 8)
    assert (soft_rain_layer(y) >= 0).all()
    # Zero rain, approached from either side: d r / d y_c = +-1/3 (the mean of three channels).
    for side in (1e-4, -1e-4):
        pre = torch.full((1, 3, 4, 4), side, requires_grad=True)
        soft_rain_layer(torch.tanh(pre)).sum().backward()
        assert torch.allclose(pre.grad.abs(), torch.full_like(pre, 1 / 3), rtol=1e-3)
    # The gray layer at its saturated state passes nothing back to the pre-activation.
    pre = torch.full((1, 3, 4, 4), -50.0, requires_grad=True)
    x = torch.zeros(1, 3, 4, 4)
    residual_output(x, torch.tanh(pre), True, "gray").sum().backward()
    assert pre.grad.abs().max() == 0


@pytest.mark.parametrize("netG", ["resnet_6blocks", "nafnet"])
def test_soft_layer_restorer_cannot_brighten_and_degrader_cannot_darken(netG):
    torch.manual_seed(0)
    for sign in (-1, 1):
        net = define_generator(netG, ngf=8, global_residual=True, rain_layer="gray_soft", rain_layer_sign=sign)
        for p in net.parameters():  # large random weights: outputs far from zero, of both signs
            if p.dim() > 1:
                torch.nn.init.normal_(p, 0, 0.5)
        x = images(3)
        with torch.no_grad():
            out = net(x)
        change = out - x
        assert (change <= 0).all() if sign < 0 else (change >= 0).all()
        assert change.abs().max() > 0.01  # it does change the image
        assert torch.equal(change[:, 0], change[:, 1]) or torch.allclose(change[:, 0], change[:, 1], atol=1e-6) \
            or (out.abs() == 1).any()  # colourless, except where clipped


def test_a_saturated_soft_layer_darkens_and_so_is_not_the_cheap_state():
    """Where the gray layer's absorbing state brightens by 0.1 at an identity cost of 0.25, the
    same saturated weights under gray_soft subtract half the range (r = 1, clipped at black): an
    identity cost over four times higher, a state the objective pushes away from, not a cheap
    place to rest."""
    clean = images(1, -0.85, 0.85)
    net = saturated("gray_soft")
    out = net(clean)
    assert (out <= clean).all()
    assert 0.5 * 5 * F.l1_loss(out, clean).item() > 4 * 0.25


def test_gray_soft_is_a_rain_layer_flag(tiny_dataroot, tmp_path):
    assert "gray_soft" in RAIN_LAYERS
    opt = TrainOptions().parse(tiny_flags(tiny_dataroot, tmp_path) + ["--rain_layer", "gray_soft", "--global_residual"])
    assert opt.rain_layer == "gray_soft"


def test_the_gray_layer_restores_exactly_as_it_always_did():
    """A --rain_layer gray generator (the earlier shipped model's, the GAN recipe's) outputs the
    input minus leaky_relu(mean over channels of the last tanh, 0.1), bit for bit: gray_soft
    changed nothing there."""
    torch.manual_seed(0)
    net = define_generator("resnet_6blocks", ngf=8, norm="none", global_residual=True, rain_layer="gray", skips=True)
    assert net.rain_layer == "gray"
    captured = {}
    tanh = [m for m in net.modules() if isinstance(m, torch.nn.Tanh)][-1]
    tanh.register_forward_hook(lambda module, args, out: captured.update(y=out))
    x = images(4, size=64)
    with torch.no_grad():
        out = net(x)
    expected = (x - F.leaky_relu(captured["y"].mean(dim=1, keepdim=True), 0.1)).clamp(-1.0, 1.0)
    assert torch.equal(out, expected)


def test_a_pushed_down_tanh_output_passes_no_gradient_and_the_linear_one_does():
    """Under the tanh the output is the input darkened by half the range, x - 1, and stays so:
    the saturated tanh lets the L1 loss to the clean image move no weight. With `linear` the
    output is black (x - 50, clamped), but the loss pulls the output conv's bias back up."""
    x, target = images(5), images(6)
    for rain_layer in ("none", "linear"):
        net = saturated(rain_layer)
        out = net(x)
        expected = (x - 1.0).clamp(-1.0, 1.0) if rain_layer == "none" else torch.full_like(x, -1.0)
        assert torch.allclose(out, expected, atol=1e-6)
        F.l1_loss(out, target).backward()
        bias_grad = net.model[-2].bias.grad
        if rain_layer == "linear":
            assert (bias_grad < -0.1).all(), "the gradient should raise the bias (descent goes against it)"
        else:
            assert bias_grad.abs().max() < 1e-12


def test_the_linear_layer_has_no_tanh_and_keeps_the_layer_numbers():
    plain = define_generator("resnet_6blocks", ngf=8, norm="none", global_residual=True)
    linear = define_generator("resnet_6blocks", ngf=8, norm="none", global_residual=True, rain_layer="linear")
    assert isinstance(plain.model[-1], torch.nn.Tanh) and isinstance(linear.model[-1], torch.nn.Identity)
    assert len(plain.model) == len(linear.model)
    assert plain.state_dict().keys() == linear.state_dict().keys()


def test_clamp_passing_gradient_clamps_values_and_passes_the_identity_gradient():
    x = torch.tensor([-3.0, -0.5, 0.0, 0.7, 2.0], requires_grad=True)
    out = clamp_passing_gradient(x)
    assert torch.equal(out.detach(), torch.tensor([-1.0, -0.5, 0.0, 0.7, 1.0]))
    (out * torch.arange(5.0)).sum().backward()
    assert torch.equal(x.grad, torch.arange(5.0))


def test_linear_needs_the_global_residual():
    with pytest.raises(ValueError, match="--rain_layer linear.*--global_residual"):
        define_generator("resnet_6blocks", ngf=8, norm="none", rain_layer="linear")


def test_a_linear_checkpoint_is_rebuilt_without_its_tanh(tiny_dataroot, tmp_path):
    from models.loading import generator_from_saved_options
    opt = TrainOptions().parse(tiny_flags(tiny_dataroot, tmp_path) + ["--rain_layer", "linear", "--global_residual",
                                                                     "--normG", "none"])
    net = generator_from_saved_options(vars(opt), "G_A")
    assert not any(isinstance(m, torch.nn.Tanh) for m in net.modules())
