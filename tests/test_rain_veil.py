"""`--rain_layer linear_veil`: streaks corrected per pixel, one veil lifted from the whole image."""
from __future__ import annotations

import pytest
import torch

from models.networks.generators import define_generator
from models.networks.rain_veil import LEVEL_BIAS, VEIL_CHANNELS, VEIL_MAX, veil_of, veiled_output
from options.train_options import TrainOptions
from tests.conftest import tiny_flags


def images(seed: int = 0, size: int = 16) -> torch.Tensor:
    return torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 1.6 - 0.8


def veil_channels(opacity: float, level: float, size: int = 16) -> torch.Tensor:
    """A last-layer output with no streak correction and the veil (opacity, grey level)."""
    y = torch.zeros(2, 3 + VEIL_CHANNELS, size, size)
    y[:, 3] = opacity / VEIL_MAX
    y[:, 4:] = torch.logit(torch.tensor(level)) - LEVEL_BIAS
    return y


def generator(**kwargs) -> torch.nn.Module:
    return define_generator("resnet_4blocks", ngf=8, norm="none", global_residual=True, rain_layer="linear_veil",
                            skips=True, **kwargs)


def test_the_last_conv_gives_the_veil_channels_and_a_zero_conv_is_the_identity():
    net = generator()
    assert net.closing_conv.out_channels == 3 + VEIL_CHANNELS
    with torch.no_grad():
        net.closing_conv.weight.zero_()
        net.closing_conv.bias.zero_()
    x = images()
    assert torch.allclose(net(x), x, atol=1e-6)


def test_laying_and_lifting_the_same_veil_gives_the_image_back():
    x, y = images(), veil_channels(0.4, 0.9)
    opacity, level = veil_of(y)
    assert torch.allclose(opacity, torch.full_like(opacity, 0.4)) and torch.allclose(level, torch.full_like(level, 0.9))
    veiled = veiled_output(x, y, rain_layer_sign=1)
    expected = 2 * (((x + 1) / 2) * 0.6 + 0.4 * 0.9) - 1  # I = J (1 - o) + o L
    assert torch.allclose(veiled, expected, atol=1e-5)
    assert torch.allclose(veiled_output(veiled, y, rain_layer_sign=-1), x, atol=1e-5)


def test_the_veil_is_one_decision_for_the_whole_image():
    """Moving the veil channels in one corner changes every pixel alike (their mean is the
    veil); moving the streak channels there changes only that corner."""
    x, y = images(), veil_channels(0.2, 0.8)
    base = veiled_output(x, y, -1)
    corner = y.clone()
    corner[:, 3, :4, :4] += 2.0
    moved = veiled_output(x, corner, -1) - base
    far = moved[..., 8:, 8:]
    assert far.abs().mean() > 0.01  # the far side of the image moved too
    lifted = veiled_output(x, veil_channels(0.2 + VEIL_MAX * 2.0 * 16 / 256, 0.8), -1) - base
    assert torch.allclose(moved, lifted, atol=1e-5)  # exactly as a uniform veil of the mean opacity
    streak = y.clone()
    streak[:, :3, :4, :4] += 0.5
    changed = (veiled_output(x, streak, -1) - base).abs().amax(dim=1)
    assert changed[:, :4, :4].min() > 0 and changed[:, 4:, :].max() == 0 and changed[:, :, 4:].max() == 0


def test_no_veil_still_passes_the_gradient_that_would_lift_one():
    """At opacity 0, held there from below, a loss that wants a grey under the veil's level
    darker (what lifting a veil does to it) reaches the veil channel; one that wants it
    brighter (a negative veil) does not."""
    x = torch.full((2, 3, 16, 16), 0.2)  # 0.6 on [0, 1], under the level 0.8
    for wanted, reaches in ((-0.4, True), (0.4, False)):
        y = veil_channels(-0.01, 0.8)
        assert veil_of(y)[0].max() == 0.0
        y.requires_grad_(True)
        (veiled_output(x, y, -1) - wanted).abs().mean().backward()
        assert (y.grad[:, 3].abs().sum() > 0) == reaches


def test_the_opacity_stays_within_its_bounds():
    y = veil_channels(0.0, 0.8)
    y[:, 3] = 10.0
    assert veil_of(y)[0].max() == pytest.approx(VEIL_MAX)
    y[:, 3] = -10.0
    assert veil_of(y)[0].min() == 0.0


def test_flags_that_cannot_carry_a_veil_are_refused_in_one_line():
    with pytest.raises(ValueError, match="--rain_layer linear_veil.*--global_residual"):
        define_generator("resnet_4blocks", ngf=8, norm="none", rain_layer="linear_veil")
    with pytest.raises(ValueError, match="--input_nc 3 --output_nc 3"):
        define_generator("resnet_4blocks", input_nc=1, output_nc=1, ngf=8, norm="none", global_residual=True,
                         rain_layer="linear_veil")
    with pytest.raises(ValueError, match="linear_veil is built into the ResNet generators"):
        define_generator("nafnet", ngf=8, rain_layer="linear_veil")


def test_a_checkpoint_is_rebuilt_with_its_veil_channels(tiny_dataroot, tmp_path):
    from models.loading import generator_from_saved_options
    opt = TrainOptions().parse(tiny_flags(tiny_dataroot, tmp_path) + ["--rain_layer", "linear_veil",
                                                                     "--global_residual", "--normG", "none"])
    saved = generator(rain_layer_sign=-1)
    net = generator_from_saved_options({**vars(opt), "netG": "resnet_4blocks", "ngf": 8, "skips": True}, "G_A")
    net.load_state_dict(saved.state_dict())
    x = images()
    assert torch.equal(net(x), saved(x))


def test_onnx_export_matches_torch_at_another_size():
    onnxruntime = pytest.importorskip("onnxruntime")
    import io

    from runtime.onnx_export import export_onnx

    net = generator().eval()
    for module in net.modules():  # weights of PyTorch's scale: a veil and streaks far from the start
        if isinstance(module, torch.nn.Conv2d):
            module.reset_parameters()
    with torch.no_grad():
        net.closing_conv.bias[3] = 0.5  # a veil of opacity about 0.3
    buffer = io.BytesIO()
    export_onnx(net, buffer)
    session = onnxruntime.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    x = images(size=48)
    with torch.no_grad():
        expected = net(x)
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    assert float(veil_of(net.model(x))[0].min()) > 0.1  # the comparison covers a lifted veil
    assert abs(got - expected.numpy()).max() < 1e-4


def test_the_quick_recipe_trains_with_the_veil_and_test_py_restores_with_it(tmp_path):
    import train
    from restoration import cli
    from tests.conftest import write_images

    root = tmp_path / "data"
    write_images(root / "trainA", 4, size=(64, 64), seed=1)
    write_images(root / "trainB", 4, size=(64, 64), seed=2)
    write_images(root / "testA", 2, size=(50, 70), seed=3)
    flags = ["--dataroot", str(root), "--checkpoints_dir", str(tmp_path / "ck"), "--name", "veil", "--model", "paired",
             "--dataset_mode", "pseudo_rain", "--global_residual", "--rain_layer", "linear_veil", "--skips",
             "--normG", "none", "--ngf", "8", "--netG", "resnet_4blocks", "--init_type", "residual",
             "--preprocess", "crop", "--crop_size", "32", "--pseudo_rain_calibration", "4", "--max_iters", "3",
             "--gpu_ids", "-1", "--num_threads", "0", "--display_id", "0"]
    assert train.main(flags) == 0
    assert cli.main(["--dataroot", str(root), "--name", "veil", "--checkpoints_dir", str(tmp_path / "ck"),
                     "--results_dir", str(tmp_path / "results"), "--gpu_ids", "-1"]) == 0
    restored = sorted((tmp_path / "results" / "veil" / "test_latest" / "images").glob("*.png"))
    assert [p.name for p in restored] == ["img000.png", "img001.png"]
