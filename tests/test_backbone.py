"""--netG nafnet: layer numbering, the generator interface, its output rule, every test-time
backend, and a tiny training run restored by test.py at an odd size."""
import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image

import train
from restoration.loading import load_generator
from models.networks import NafnetGenerator, define_generator
from models.networks.nafnet import LayerNorm2d, NAFBlock
from options.train_options import TrainOptions
from tests.conftest import tiny_flags, write_images
from restoration import cli
from runtime.backends import inference_network
from runtime.inference import restore, run_padded
from runtime.onnx_export import export_onnx

NAFNET_FLAGS = ["--netG", "nafnet", "--ngf", "4", "--nce_layers", "0,1,3,6"]


def opened(net: NafnetGenerator, seed: int = 0) -> NafnetGenerator:
    """`net` with non-zero block scales, as after some training: at init every NAF block is
    the identity, which would hide the blocks from a comparison."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for block in net.modules():
            if isinstance(block, NAFBlock):
                block.beta.normal_(0, 0.5)
                block.gamma.normal_(0, 0.5)
    return net


def image(h: int, w: int, batch: int = 1) -> torch.Tensor:
    torch.manual_seed(1)
    return torch.rand(batch, 3, h, w) * 2 - 1


def test_layer_numbering_and_encoder_features():
    ngf = 4
    net = define_generator("nafnet", ngf=ngf)
    assert isinstance(net, NafnetGenerator) and len(net.model) == 12 and net.size_multiple == 4
    assert net.encoder_layers == (0, 1, 3, 6)
    feats = net(image(32, 40), list(net.encoder_layers), encode_only=True)
    shapes = [tuple(f.shape[1:]) for f in feats]
    assert shapes == [(ngf, 32, 40), (ngf, 32, 40), (2 * ngf, 16, 20), (4 * ngf, 8, 10)]


def test_encode_only_stops_after_the_last_requested_layer_and_matches_the_full_pass():
    net = opened(define_generator("nafnet", ngf=4))
    called = []
    for index, layer in enumerate(net.model):
        layer.register_forward_hook(lambda m, i, o, index=index: called.append(index))
    x = image(32, 32)
    encoded = net(x, [1, 3], encode_only=True)
    assert max(called) == 3, "layers after the last requested one must not run"
    called.clear()
    out, feats = net(x, [1, 3])
    assert max(called) == len(net.model) - 1 and out.shape == x.shape
    assert len(feats) == len(encoded) == 2
    assert all(torch.equal(a, b) for a, b in zip(feats, encoded))
    assert torch.equal(out, net(x))


def test_each_upsampling_gets_the_encoder_level_of_its_resolution_added():
    net = opened(define_generator("nafnet", ngf=4))
    raw = {}
    for index in (7, 9):
        net.model[index].register_forward_hook(lambda m, i, o, index=index: raw.__setitem__(index, o))
    _, (level0, level1, up1, up0) = net(image(32, 32), [1, 3, 7, 9])
    assert torch.equal(up1, raw[7] + level1) and torch.equal(up0, raw[9] + level0)


def test_bad_layers_and_sizes_are_one_line_errors():
    net = define_generator("nafnet", ngf=4)
    with pytest.raises(ValueError, match=r"--nce_layers \[12\] do not exist; --netG nafnet has layers 0..11"):
        net(image(32, 32), [12], encode_only=True)
    with pytest.raises(ValueError, match="encode_only needs"):
        net(image(32, 32), None, encode_only=True)
    with pytest.raises(ValueError, match="multiples of 4 .*--crop_size"):
        net(image(30, 32))


def test_the_models_default_nce_layers_are_refused_naming_the_range(tmp_path, capsys):
    """DCD-GAN's 4,8,12,16 is a ResNet numbering: parsing says so in one line, exit 2."""
    flags = tiny_flags(tmp_path, tmp_path / "ck", "x") + ["--netG", "nafnet"]
    with pytest.raises(SystemExit) as exit_info:
        TrainOptions().parse(flags)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "--nce_layers 4,8,12,16" in err and "layers 0..11" in err and "\n" not in err
    assert TrainOptions().parse(flags + ["--nce_layers", "0,1,3,6"]).netG == "nafnet"


def test_a_new_block_is_the_identity_and_the_output_is_input_plus_head():
    block = NAFBlock(4)
    x = torch.randn(2, 4, 8, 8)
    assert torch.equal(block(x), x), "beta and gamma start at zero"
    net = opened(define_generator("nafnet", ngf=4))
    head = net.model[-1]
    x = image(16, 20)
    with torch.no_grad():
        correction = net(x) - x
        assert correction.abs().max() > 0.01
        nn.init.zeros_(head.weight)
        nn.init.zeros_(head.bias)
        assert torch.equal(net(x), x), "a zero head leaves the input unchanged"


def test_layer_norm_normalises_each_pixel_over_its_channels():
    norm = LayerNorm2d(6)
    x = torch.randn(2, 6, 5, 7) * 3 + 2
    y = norm(x)
    assert torch.allclose(y.mean(dim=1), torch.zeros(2, 5, 7), atol=1e-5)
    assert torch.allclose(y.var(dim=1, unbiased=False), torch.ones(2, 5, 7), atol=1e-3)
    assert norm(x.double()).dtype == torch.float64
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert norm(x.bfloat16()).dtype == torch.bfloat16


@pytest.mark.parametrize("rain_layer,sign", [("gray", -1), ("leaky", 1)])
def test_rain_layer_outputs(rain_layer, sign):
    net = opened(define_generator("nafnet", ngf=4, rain_layer=rain_layer, rain_layer_sign=sign))
    x = image(16, 16) * 0.5  # away from the clamp
    with torch.no_grad():
        change = net(x) - x
    assert change.abs().max() > 1e-3
    if rain_layer == "gray":
        assert torch.allclose(change[:, 0], change[:, 1]) and torch.allclose(change[:, 0], change[:, 2])
    # The rain layer leaky_relu(y, 0.1) is mostly positive: G_B (+1) mostly brightens.
    assert (change * sign).mean() > 0


def test_gradients_reach_every_parameter():
    net = define_generator("nafnet", ngf=4)
    x = image(16, 16) * 0.5
    net(x).square().mean().backward()
    scales = {name for name, _ in net.named_parameters() if name.endswith(("beta", "gamma"))}
    for name, p in net.named_parameters():
        if name in scales:
            assert p.grad.abs().sum() > 0, f"{name}: a block must be able to open"
    net.zero_grad()
    opened(net)(x).square().mean().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_odd_sizes_are_padded_back_and_tiles_agree():
    net = opened(define_generator("nafnet", ngf=4)).eval()
    x = image(37, 45)
    assert run_padded(net, x).shape == x.shape
    # Layer norm keeps no image statistics: tiles differ from the whole image only through
    # the borders and channel attention's average pool (measured: 0.25% of the correction's
    # spread on average).
    x = image(96, 136)
    whole = restore(net, x)
    tiled = restore(net, x, tile=64, overlap=32)
    assert tiled.shape == x.shape
    assert float((tiled - whole).abs().mean()) < 0.01 * float((whole - x).std())


@pytest.mark.parametrize("backend", ["channels_last", "winograd", "onnxruntime"])
def test_backends_restore_what_the_plain_network_does(backend):
    if backend == "onnxruntime":
        pytest.importorskip("onnxruntime")
    net = opened(define_generator("nafnet", ngf=8)).eval()
    x = image(37, 45)
    expected = restore(net, x)
    got = restore(inference_network(net, backend, torch.device("cpu")), x)
    assert (expected - x).std() > 0.05, "a correction too flat for the comparison to mean anything"
    assert got.shape == expected.shape
    assert float((got - expected).abs().max()) < 1e-3


def test_onnx_export_keeps_the_size_multiple(tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")
    net = opened(define_generator("nafnet", ngf=4)).eval()
    export_onnx(net, tmp_path / "g.onnx")
    session = onnxruntime.InferenceSession(str(tmp_path / "g.onnx"), providers=["CPUExecutionProvider"])
    for h, w in [(32, 48), (37, 45)]:
        x = image(h, w)
        got = torch.from_numpy(session.run(None, {"image": x.numpy()})[0])
        assert got.shape == x.shape
        assert torch.allclose(got, run_padded(net, x), atol=1e-4, rtol=0)


def test_dcdgan_trains_with_nafnet_and_test_py_restores_an_odd_size(tmp_path):
    root = tmp_path / "data"
    write_images(root / "trainA", 2, seed=1)
    write_images(root / "trainB", 2, seed=2)
    assert train.main(tiny_flags(root, tmp_path / "ck", "naf") + NAFNET_FLAGS + ["--max_iters", "2"]) == 0
    checkpoint = tmp_path / "ck" / "naf" / "latest.pt"
    net, _ = load_generator(checkpoint, "AtoB")
    assert isinstance(net, NafnetGenerator) and net.rain_layer_sign == -1
    state = torch.load(checkpoint, weights_only=True)
    assert isinstance(load_generator(checkpoint, "BtoA")[0], NafnetGenerator)
    assert any(name.endswith("beta") for name in state["nets"]["G_B"])

    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (37, 45, 3), dtype=np.uint8)).save(photos / "odd.png")
    assert cli.main(["--dataroot", str(photos), "--name", "naf", "--checkpoints_dir", str(tmp_path / "ck"),
                     "--results_dir", str(tmp_path / "results"), "--gpu_ids", "-1"]) == 0
    with Image.open(tmp_path / "results" / "naf" / "test_latest" / "images" / "odd.png") as img:
        assert img.mode == "RGB" and img.size == (45, 37)
