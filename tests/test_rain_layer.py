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


def test_the_screen_layer_divides_a_grey_rain_out_channel_by_channel():
    """A streak of opacity 0.4 screened over lime (R 0.5, G 0.9, B 0.1) adds 0.2, 0.04 and 0.36: the
    restoring generator that outputs that grey rain (y = 0.8 in every channel) gets the lime back
    exactly, where subtracting one amount from every channel could not."""
    from models.networks.layers import screen_rain_output
    lime = torch.tensor([0.5, 0.9, 0.1]).view(1, 3, 1, 1)
    rainy = 1 - (1 - lime) * (1 - 0.4)
    y = torch.full((1, 3, 1, 1), 0.8)
    restored = screen_rain_output(rainy * 2 - 1, y, rain_layer_sign=-1)
    assert torch.allclose((restored + 1) / 2, lime, atol=1e-6)
    degraded = screen_rain_output(lime * 2 - 1, y, rain_layer_sign=+1)
    assert torch.allclose((degraded + 1) / 2, rainy, atol=1e-6)


def test_the_screen_layer_is_the_identity_at_zero_and_adds_the_colour_part():
    from models.networks.layers import screen_rain_output
    x = images(7)
    assert torch.allclose(screen_rain_output(x, torch.zeros_like(x), -1), x, atol=1e-6)
    colour = torch.tensor([0.2, -0.1, -0.1]).view(1, 3, 1, 1).expand_as(x)  # zero mean: no rain
    assert torch.allclose(screen_rain_output(x, colour, -1), x + colour, atol=1e-6)


def test_the_screen_layer_caps_the_rain_and_still_passes_its_gradient():
    """Past the cap the division would blow up; the value is held at the cap, and the L1 loss still
    moves the correction (no trap like the saturated tanh's)."""
    from models.networks.layers import SCREEN_MAX_RAIN, screen_rain_output
    x = torch.full((1, 3, 2, 2), 0.95)
    y = torch.full((1, 3, 2, 2), 5.0, requires_grad=True)  # rain 2.5 asked, 0.9 used
    out = screen_rain_output(x, y, -1)
    capped = ((x + 1) / 2 - SCREEN_MAX_RAIN) / (1 - SCREEN_MAX_RAIN) * 2 - 1
    assert torch.allclose(out, capped, atol=1e-5)
    F.l1_loss(out, torch.full_like(x, 1.0)).backward()
    assert (y.grad > 0).all(), "descent should lower the rain (the gradient against it is positive)"


def test_a_screen_generator_has_no_tanh_and_needs_the_global_residual():
    screen = define_generator("resnet_6blocks", ngf=8, norm="none", global_residual=True, rain_layer="screen")
    assert isinstance(screen.model[-1], torch.nn.Identity)
    x = images(8)
    assert screen(x).shape == x.shape and screen(x).min() >= -1 and screen(x).max() <= 1
    with pytest.raises(ValueError, match="--rain_layer screen.*--global_residual"):
        define_generator("resnet_6blocks", ngf=8, norm="none", rain_layer="screen")
