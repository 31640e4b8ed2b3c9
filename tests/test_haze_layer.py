"""`--haze_layer asm` (models/networks/haze.py): the scattering-model output of the ResNet
generators, its options and checkpoints, and CDD-GAN's re-hazing term (`--lambda_rehaze`)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from data import create_dataset
from models import create_model
from models.loading import architecture_differences
from restoration.loading import load_generator
from models.networks import define_generator
from models.networks.haze import (HAZE_CHANNELS, check_haze_layer, dark_channel_map, haze_output, remove_haze,
                                  render_haze, scattering_parameters)
from options.base_options import OptionError
from options.train_options import TrainOptions
from restoration.dark_channel_prior import DarkChannelPrior
from tests.conftest import tiny_flags
from tests.test_dark_channel import hazy_scene
from util.dark_channel import dark_channel
from util.weight_init import init_weights

HAZE = ["--haze_layer", "asm"]


def haze_net(sign: int = -1, t_min: float = 0.1, **kwargs) -> torch.nn.Module:
    torch.manual_seed(0)
    return define_generator("resnet_6blocks", ngf=8, haze_layer="asm", t_min=t_min, rain_layer_sign=sign, **kwargs)


def last_conv(net: torch.nn.Module) -> torch.nn.Conv2d:
    convs = [m for m in net.model if isinstance(m, torch.nn.Conv2d)]
    return convs[-1]


# ----- the formulas -----------------------------------------------------------------------

def test_rendering_then_removing_haze_gives_back_the_scene():
    clear = torch.rand(2, 3, 8, 8)
    transmission = torch.rand(2, 1, 8, 8) * 0.9 + 0.1
    airlight = torch.rand(2, 3, 1, 1)
    hazy = render_haze(clear, transmission, airlight)
    assert torch.allclose(remove_haze(hazy, transmission, airlight), clear, atol=1e-5)
    ones = torch.ones_like(transmission)
    assert torch.equal(render_haze(clear, ones, airlight), clear)  # t = 1: no haze
    assert torch.allclose(render_haze(clear, torch.zeros_like(transmission), airlight), airlight.expand_as(clear))


def test_parameters_lie_in_their_ranges_whatever_the_last_layer():
    y = torch.randn(2, HAZE_CHANNELS, 6, 6) * 50
    transmission, airlight = scattering_parameters(y, 0.2)
    assert transmission.shape == (2, 1, 6, 6) and airlight.shape == (2, 3, 1, 1)
    assert transmission.min() >= 0.2 and transmission.max() <= 1.0
    assert airlight.min() >= 0.0 and airlight.max() <= 1.0
    start, light = scattering_parameters(torch.zeros(1, HAZE_CHANNELS, 4, 4), 0.1)
    assert 0.85 < start.min() and 0.75 < light.min() < 0.9  # a light veil at initialisation


def test_degrading_then_restoring_with_one_last_layer_gives_back_the_input():
    x = torch.rand(2, 3, 8, 8) * 2 - 1
    y = torch.randn(2, HAZE_CHANNELS, 8, 8)
    hazed = haze_output(x, y, 0.1, sign=1)
    assert torch.allclose(haze_output(hazed, y, 0.1, sign=-1), x, atol=1e-4)
    assert (hazed - x).abs().max() > 0.01


# ----- the generator ----------------------------------------------------------------------

def test_shapes_range_and_layer_numbering_match_the_plain_generator():
    plain = define_generator("resnet_6blocks", ngf=8)
    net = haze_net()
    assert len(net.model) == len(plain.model)
    assert last_conv(net).out_channels == HAZE_CHANNELS
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        out = net(x)
        out_feats, feats = net(x, [0, 4, 8])
        encoded = net(x, [0, 4, 8], encode_only=True)
    assert out.shape == x.shape and out.min() >= -1 and out.max() <= 1
    assert torch.equal(out, out_feats)
    expected = plain(x, [0, 4, 8], encode_only=True)
    assert [f.shape for f in feats] == [f.shape for f in encoded] == [f.shape for f in expected]


def test_restorer_with_full_transmission_is_the_identity():
    net = haze_net()
    conv = last_conv(net)
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.copy_(torch.tensor([30.0, 0.0, 0.0, 0.0]))  # t = 1 everywhere
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(net(x), x, atol=1e-5)
        transmission, _ = net.scattering(x)
    assert torch.allclose(transmission, torch.ones_like(transmission))


def test_restorer_adds_contrast_and_degrader_pulls_towards_the_airlight():
    restorer, degrader = haze_net(-1), haze_net(+1)
    x = torch.rand(1, 3, 32, 32) * 1.2 - 0.6
    with torch.no_grad():
        restored, hazed = restorer(x), degrader(x)
        transmission, airlight = degrader.scattering(x)
    # G_B pulls every pixel towards the airlight; G_A pushes it away (more contrast)
    towards = (((hazed + 1) / 2 - airlight).abs() <= ((x + 1) / 2 - airlight).abs() + 1e-6).float().mean()
    assert towards == 1.0
    assert restored.std() > x.std() > hazed.std()
    assert torch.allclose(restorer.scattering(x)[0], transmission)  # the same weights: the same estimate


def test_gradients_reach_transmission_and_airlight():
    net = haze_net(skips=True)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    net(x).square().mean().backward()
    grad = last_conv(net).weight.grad
    assert grad[0].abs().sum() > 0, "no gradient to the transmission channel"
    assert all(grad[c].abs().sum() > 0 for c in (1, 2, 3)), "no gradient to the airlight channels"


def test_bad_combinations_are_one_line_errors():
    with pytest.raises(ValueError, match="pass only one"):
        define_generator("resnet_6blocks", ngf=8, haze_layer="asm", rain_layer="gray")
    with pytest.raises(ValueError, match="pass only one"):
        define_generator("resnet_6blocks", ngf=8, haze_layer="asm", global_residual=True)
    with pytest.raises(ValueError, match="ResNet"):
        define_generator("nafnet", ngf=8, haze_layer="asm")
    with pytest.raises(ValueError, match="--t_min"):
        check_haze_layer("asm", 0.0, "none", False, 3, 3)
    with pytest.raises(ValueError, match="--haze_layer"):
        check_haze_layer("fog", 0.1, "none", False, 3, 3)
    with pytest.raises(ValueError, match="--haze_layer"):
        define_generator("resnet_6blocks", ngf=8).scattering(torch.zeros(1, 3, 8, 8))


@pytest.mark.parametrize("extra, message", [
    (["--rain_layer", "gray"], "pass only one"), (["--global_residual"], "pass only one"),
    (["--t_min", "1"], "--t_min"), (["--netG", "nafnet"], "ResNet"),
])
def test_training_options_refuse_bad_combinations(tiny_dataroot, tmp_path, extra, message):
    with pytest.raises(OptionError, match=message):
        TrainOptions().validate(TrainOptions().gather_options(
            tiny_flags(tiny_dataroot, tmp_path, model="cddgan") + HAZE + extra))


def test_rehaze_needs_the_haze_layer(tiny_dataroot, tmp_path):
    flags = tiny_flags(tiny_dataroot, tmp_path, model="cddgan") + ["--lambda_rehaze", "1"]
    with pytest.raises(OptionError, match="--haze_layer asm"):
        TrainOptions().validate(TrainOptions().gather_options(flags))
    with pytest.raises(OptionError, match="--rehaze_max_power"):
        TrainOptions().validate(TrainOptions().gather_options(flags + HAZE + ["--rehaze_max_power", "0.5"]))


# ----- in a model: training step, re-hazing term, checkpoints --------------------------------

def cddgan(dataroot, tmp_path, *extra):
    opt = TrainOptions().parse(tiny_flags(dataroot, tmp_path / "ck", name="haze", model="cddgan") + HAZE
                               + ["--t_min", "0.2", *extra])
    torch.manual_seed(0)
    model = create_model(opt)
    model.setup()
    dataset = create_dataset(opt)
    model.set_input(torch.utils.data.default_collate([dataset[(0, 1)]]))
    return model


def test_rehaze_term_is_logged_and_trains_the_restorer(tiny_dataroot, tmp_path):
    model = cddgan(tiny_dataroot, tmp_path, "--lambda_rehaze", "2")
    model.optimize_parameters()
    losses = model.get_current_losses()
    assert 0 < losses["rehaze"] <= 4.0  # 2 x an L1 between images in [-1, 1]
    model.forward()
    model.netG_A.zero_grad()
    model.rehaze_loss().backward()
    assert last_conv(model.netG_A).weight.grad.abs().sum() > 0  # the term alone reaches G_A
    plain = cddgan(tiny_dataroot, tmp_path / "plain")
    plain.optimize_parameters()
    assert "rehaze" not in plain.get_current_losses()


def test_rehaze_loss_is_zero_when_the_restorer_undoes_any_haze_exactly(tiny_dataroot, tmp_path):
    model = cddgan(tiny_dataroot, tmp_path, "--lambda_rehaze", "1")
    conv = last_conv(model.netG_A)
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.copy_(torch.tensor([30.0, 0.0, 0.0, 0.0]))  # t = 1: the identity, and no haze rendered
    model.forward()
    assert model.rehaze_loss().item() == pytest.approx(0.0, abs=1e-6)


def test_checkpoint_round_trip_rebuilds_the_haze_layer(tiny_dataroot, tmp_path):
    model = cddgan(tiny_dataroot, tmp_path, "--haze_init", "dcp")
    model.optimize_parameters()
    model.save("latest", {"epoch": 1, "epoch_iter": 1, "total_iters": 1})
    net, source = load_generator(tmp_path / "ck" / "haze" / "latest.pt")
    assert (net.haze_layer, net.t_min, net.haze_init, net.rain_layer_sign) == ("asm", 0.2, "dcp", -1)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    model.netG_A.eval()
    with torch.no_grad():
        assert torch.allclose(net(x), model.netG_A(x), atol=1e-6)
    assert source.options["haze_layer"] == "asm"
    assert architecture_differences(source.options, {**source.options, "haze_layer": "none"}) == \
        {"haze_layer": ("asm", "none")}
    assert architecture_differences(source.options, {**source.options, "t_min": 0.1}) == {"t_min": (0.2, 0.1)}
    assert architecture_differences(source.options, {**source.options, "haze_init": "none"}) == \
        {"haze_init": ("dcp", "none")}


def test_a_saturated_restorer_still_learns_to_raise_its_transmission():
    net = haze_net()
    conv = last_conv(net)
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.copy_(torch.tensor([-6.0, 30.0, 30.0, 30.0]))  # t = 0.34, A = 1: J below 0 everywhere
    x = torch.rand(1, 3, 32, 32) * 1.2 - 1  # I in [0, 0.6]
    out = net(x)
    assert torch.all(out == -1)  # saturated: the clamp holds the values
    torch.nn.functional.l1_loss(out, x).backward()
    assert conv.bias.grad[0] < 0, "descent must raise t (a plain clamp leaves no gradient here)"


def test_restorer_fits_a_hazy_image_of_known_transmission():
    torch.manual_seed(0)
    clear = torch.rand(1, 3, 32, 32) * 0.8 + 0.1
    transmission = torch.linspace(0.35, 0.9, 32).view(1, 1, 32, 1).expand(1, 1, 32, 32)
    hazy = render_haze(clear, transmission, torch.tensor([0.85, 0.88, 0.92]).view(1, 3, 1, 1)) * 2 - 1
    net = init_weights(haze_net(norm="none"), "xavier", 0.02)  # as training initialises it
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.5, 0.999))
    start = torch.nn.functional.l1_loss(net(hazy), clear * 2 - 1).item()
    for _ in range(100):
        loss = torch.nn.functional.l1_loss(net(hazy), clear * 2 - 1)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.7 * start
    with torch.no_grad():
        estimate, _ = net.scattering(hazy)
    assert torch.corrcoef(torch.stack([estimate.flatten(), transmission.flatten()]))[0, 1] > 0.5


# ----- --haze_init dcp ------------------------------------------------------------------------

@pytest.mark.parametrize("patch, size", [(1, 12), (5, 12), (15, 12), (15, 40)])
def test_tensor_dark_channel_matches_the_numpy_one(patch, size):
    image = torch.rand(2, 3, size, size + 3, dtype=torch.float64)
    got = dark_channel_map(image, patch)
    for index in range(2):
        expected = dark_channel(image[index].permute(1, 2, 0).numpy(), patch)
        assert np.allclose(got[index, 0].numpy(), expected)


def test_dcp_start_is_the_dark_channel_priors_restoration():
    hazy, _ = hazy_scene(np.linspace(0.4, 0.9, 64)[:, None] * np.ones((1, 48)))
    expected = DarkChannelPrior(refine="none", t0=0.1).restore_array(hazy)
    net = haze_net(haze_init="dcp")
    conv = last_conv(net)
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.zero_()  # y = 0: the prior itself
        x = torch.from_numpy(hazy).permute(2, 0, 1)[None].float() / 127.5 - 1
        restored = ((net(x)[0].permute(1, 2, 0) + 1) * 127.5).round().clamp(0, 255).byte().numpy()
        transmission, airlight = net.scattering(x)
    reference_t, reference_airlight = DarkChannelPrior(refine="none").estimate(hazy)
    assert np.allclose(airlight.flatten().numpy(), reference_airlight, atol=1e-6)
    assert np.allclose(transmission[0, 0].numpy(), np.maximum(reference_t, 0.1), atol=2e-3)
    assert np.abs(restored.astype(int) - expected).max() <= 2
    # the degrading generator keeps its own start: the prior is for restoring
    degrader, plain = haze_net(+1, haze_init="dcp"), haze_net(+1)
    with torch.no_grad():
        assert torch.equal(degrader(x), plain(x))


def test_haze_init_needs_the_haze_layer():
    with pytest.raises(ValueError, match="--haze_layer asm"):
        define_generator("resnet_6blocks", ngf=8, haze_init="dcp")
    with pytest.raises(ValueError, match="--haze_init"):
        define_generator("resnet_6blocks", ngf=8, haze_layer="asm", haze_init="guess")
    with pytest.raises(ValueError, match="ResNet"):
        define_generator("nafnet", ngf=8, haze_init="dcp")


@pytest.mark.parametrize("haze_init", ["none", "dcp"])
def test_onnx_export_matches_torch_at_other_sizes_and_batches(haze_init):
    onnxruntime = pytest.importorskip("onnxruntime")
    import io

    from runtime.onnx_export import export_onnx

    net = haze_net(haze_init=haze_init).eval()
    for module in net.modules():  # weights of PyTorch's scale: outputs far from the start
        if isinstance(module, torch.nn.Conv2d):
            module.reset_parameters()
    buffer = io.BytesIO()
    export_onnx(net, buffer)
    session = onnxruntime.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    # Two bright blocks: 36 pixels of the haziest (dark channel 0.8, grey) and behind them 36 of
    # a brighter colour (dark channel 0.79). At the export's 70 x 66 the top 0.1% are 4 pixels,
    # all grey; at 240 x 200 they are 48, and the airlight is the brighter colour.
    blocks = torch.rand(1, 3, 240, 200) * 0.3
    blocks[..., 20:40, 20:40] = 0.8
    blocks[..., 100:120, 100:120] = torch.tensor([0.79, 1.0, 1.0])[:, None, None]
    for x in (blocks * 2 - 1, torch.rand(2, 3, 100, 64) * 2 - 1):
        with torch.no_grad():
            expected = net(x).numpy()
        assert np.abs(session.run(None, {"image": x.numpy()})[0] - expected).max() < 1e-4


def test_a_transmission_at_one_still_feels_a_pull_back():
    # The first version's sigmoid stuck at t = 1 (both generators the identity within 100
    # iterations of every short run); the straight-through clamp passes the gradient there.
    net = haze_net()
    conv = last_conv(net)
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.copy_(torch.tensor([30.0, 0.0, 0.0, 0.0]))  # far beyond t = 1
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    transmission, _ = net.scattering(x)
    assert torch.all(transmission == 1)
    assert torch.equal(net(x), x.clamp(-1, 1))  # t = 1: the identity
    (-net(x).mean()).backward()  # an objective that wants the image brighter (less haze removed: more contrast)
    assert conv.bias.grad[0] != 0, "at t = 1 the gradient must still reach t"
