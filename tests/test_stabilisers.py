"""The small-data stabilisers: --diffaug, --lambda_R1 / --r1_every, --normD spectral."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from models import create_model
from models.diffaug import AUGMENTATIONS, DiffAugment, parse_policy
from models.losses import GANLoss, discriminator_loss, r1_penalty
from models.networks.discriminators import define_discriminator
from options.train_options import TrainOptions
from tests.conftest import tiny_flags, tiny_model_flags

POSITION = {"epoch": 1, "epoch_iter": 0, "total_iters": 0}


def images(seed: int = 0, batch: int = 2, size: int = 16) -> torch.Tensor:
    return torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.mark.parametrize("kind", sorted(AUGMENTATIONS))
def test_each_augmentation_keeps_the_shape_and_passes_gradients(kind):
    x = images().requires_grad_(True)
    torch.manual_seed(0)
    y = DiffAugment(kind)(x)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert not torch.equal(y, x), f"{kind} changed nothing"
    y.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_translation_shifts_the_image_and_fills_with_zero():
    x = torch.arange(64.0).view(1, 1, 8, 8).repeat(1, 3, 1, 1)
    torch.manual_seed(3)
    y = AUGMENTATIONS["translation"](x)
    # Some shift (dy, dx) with |d| <= 1 (1/8 of 8 px) maps x onto y, zeros where it came from outside.
    matches = []
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            shifted = torch.zeros_like(x)
            src = x[..., max(0, -dy):8 - max(0, dy), max(0, -dx):8 - max(0, dx)]
            shifted[..., max(0, dy):8 - max(0, -dy), max(0, dx):8 - max(0, -dx)] = src
            matches.append(torch.equal(shifted, y))
    assert sum(matches) == 1


def test_cutout_zeros_a_square_of_half_the_size():
    x = torch.ones(4, 3, 16, 16)
    torch.manual_seed(0)
    y = AUGMENTATIONS["cutout"](x)
    for image in y:
        zeros = (image[0] == 0)
        assert 0 < zeros.sum() <= 64  # an 8 x 8 square, less where it reaches over the border
        assert torch.equal(image[0], image[1]) and torch.equal(image[1], image[2])


def test_real_and_fake_get_the_same_kinds_with_different_draws():
    """One DiffAugment serves both; each call draws anew, so the same image twice differs."""
    augment = DiffAugment("color,translation,cutout")
    x = images(batch=1)
    torch.manual_seed(0)
    first, second = augment(x), augment(x)
    assert not torch.equal(first, second)
    assert augment.kinds == ("color", "translation", "cutout")


def test_discriminator_loss_augments_real_and_fake_and_the_generator_gets_a_gradient_through_it():
    seen = []

    class Recorder(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 1, 3, padding=1)

        def forward(self, x):
            seen.append(x)
            return self.conv(x)

    net_D, real, fake = Recorder(), images(1), images(2)
    discriminator_loss(GANLoss("lsgan"), net_D, real, fake, augment=DiffAugment("color"))
    assert len(seen) == 2 and not torch.equal(seen[0], real) and not torch.equal(seen[1], fake)
    # The generator's term: a gradient reaches the fake through the augmentation.
    fake = images(2).requires_grad_(True)
    GANLoss("lsgan")(net_D(DiffAugment("color,translation,cutout")(fake)), True).backward()
    assert fake.grad.abs().sum() > 0


def test_an_unknown_policy_is_refused_in_one_line(tiny_dataroot, tmp_path, capsys):
    with pytest.raises(ValueError, match="unknown augmentation 'blur'"):
        parse_policy("color,blur")
    with pytest.raises(SystemExit) as exit_info:
        TrainOptions().parse(tiny_flags(tiny_dataroot, tmp_path) + ["--diffaug", "colour"])
    assert exit_info.value.code == 2 and "--diffaug" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        TrainOptions().parse(tiny_flags(tiny_dataroot, tmp_path, model="cut") + ["--lambda_R1", "1"])


def test_r1_of_a_linear_discriminator_is_its_squared_weight_norm():
    """D(x) = sum(w * x) has gradient w everywhere: R1 = |w|^2 for every image."""
    net_D = nn.Conv2d(3, 1, 4, bias=False)  # a 4x4 input gives one output: the sum of w * x
    with torch.no_grad():
        net_D.weight.copy_(torch.arange(48.0).view(1, 3, 4, 4) / 10)
    value = r1_penalty(net_D, torch.randn(5, 3, 4, 4)).detach()
    assert value.item() == pytest.approx(float((net_D.weight.detach() ** 2).sum()), rel=1e-5)
    # Quadratic D(x) = sum(x^2): gradient 2x, R1 = 4 |x|^2 (a check that the input's value matters).
    x = torch.randn(2, 3, 4, 4)
    quadratic = r1_penalty(lambda t: (t ** 2).sum(dim=(1, 2, 3)), x).detach()
    assert quadratic.item() == pytest.approx(float((4 * x.pow(2).flatten(1).sum(1)).mean()), rel=1e-5)


def test_r1_penalty_trains_the_discriminator():
    net_D = nn.Conv2d(3, 1, 3)
    r1_penalty(net_D, images()).backward()
    assert net_D.weight.grad is not None and net_D.weight.grad.abs().sum() > 0


def tiny_model(dataroot, checkpoints, *extra, model="dcdgan"):
    opt = TrainOptions().parse(tiny_model_flags(model, dataroot, checkpoints) + list(extra))
    torch.manual_seed(0)
    net = create_model(opt)
    net.setup()
    return net


def one_step(net, dataroot):
    from data import create_dataset
    batch = next(iter(torch.utils.data.DataLoader(create_dataset(net.opt), batch_size=1)))
    net.set_input(batch)
    net.optimize_parameters()
    return net.get_current_losses()


@pytest.mark.parametrize("model", ["dcdgan", "cycle_gan"])
def test_lazy_r1_is_logged_every_r1_every_steps_with_its_weight(tiny_dataroot, tmp_path, model):
    net = tiny_model(tiny_dataroot, tmp_path, "--lambda_R1", "2", "--r1_every", "2", model=model)
    calls = []
    original = net.compute_D_loss

    def spy():
        terms = original()
        calls.append(sorted(terms))
        return terms
    net.compute_D_loss = spy
    for _ in range(3):
        losses = one_step(net, tiny_dataroot)
    assert ["D_A", "D_B", "R1_A", "R1_B"] == calls[0] == calls[2] and "R1_A" not in calls[1]
    assert losses["R1_A"] >= 0 and net.d_steps == 3
    # The logged term is 0.5 * lambda_R1 * r1_every times the penalty.
    net.set_requires_grad([net.netD_A], True)
    net.d_steps = 4  # a step on which R1 is due
    expected = 0.5 * 2 * 2 * r1_penalty(net.netD_A, net.real_B).item()
    assert net.compute_D_loss()["R1_A"].detach().item() == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("flags", [["--diffaug", "color,translation,cutout"], ["--normD", "spectral"],
                                   ["--lambda_R1", "1", "--r1_every", "1"]])
@pytest.mark.parametrize("model", ["dcdgan", "dcl", "cycle_gan", "cddgan"])
def test_one_training_step_per_flag(tiny_dataroot, tmp_path, flags, model):
    net = tiny_model(tiny_dataroot, tmp_path, *flags, model=model)
    before = {k: v.clone() for k, v in net.netD_A.state_dict().items()}
    losses = one_step(net, tiny_dataroot)
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values())
    after = net.netD_A.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)


def test_diffaug_reaches_the_generator_step(tiny_dataroot, tmp_path):
    net = tiny_model(tiny_dataroot, tmp_path, "--diffaug", "cutout")
    seen = []
    net.netD_A.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach()))
    one_step(net, tiny_dataroot)
    # The generator's GAN term (first D_A call) saw fake_B with a zeroed square; fake_B has none.
    assert (seen[0] == 0).any() and not (net.fake_B == 0).any()


def test_spectral_norm_discriminator_bounds_each_convolution():
    net = define_discriminator("n_layers", 3, 8, 2, "spectral")
    net.train()
    for _ in range(30):  # the power iteration converges over training forwards
        net(images())
    net.eval()
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert convs and all(not isinstance(m, nn.InstanceNorm2d) for m in net.modules())
    for conv in convs:
        sigma = torch.linalg.matrix_norm(conv.weight.flatten(1), ord=2)
        assert sigma.item() == pytest.approx(1.0, abs=0.05)


def test_spectral_norm_checkpoint_round_trip_and_resume(tiny_dataroot, tmp_path):
    net = tiny_model(tiny_dataroot, tmp_path, "--normD", "spectral")
    one_step(net, tiny_dataroot)
    keys = net.netD_A.state_dict().keys()
    assert any(k.endswith("parametrizations.weight.original") for k in keys) and any(k.endswith("_u") for k in keys)
    net.save("latest", POSITION)
    resumed = tiny_model(tiny_dataroot, tmp_path, "--normD", "spectral", "--continue_train")
    for name in ("D_A", "D_B"):
        saved, loaded = net.net(name).state_dict(), resumed.net(name).state_dict()
        assert all(torch.equal(saved[k], loaded[k]) for k in saved)
    net.netD_A.eval()
    resumed.netD_A.eval()
    x = images(5, 1, 32)
    assert torch.equal(net.netD_A(x), resumed.netD_A(x))
    one_step(resumed, tiny_dataroot)  # and it trains on
    # A resume with another --normD is refused before any weight is loaded.
    from util.checkpoint import CheckpointError
    with pytest.raises(CheckpointError, match="normD"):
        tiny_model(tiny_dataroot, tmp_path, "--continue_train")
