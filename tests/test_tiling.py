"""Tiled restoration (test.py --tile): bounded work per call, seams that do not show.

Without normalisation a tile differs from the whole image only where the network's
receptive field crosses the tile's border (reflection padding replaces the true
neighbours), and the feathered blend gives those pixels little weight: measured mean
|difference| about 0.3% of the output's spread, the largest below one 8-bit grey level.
Instance norm computes statistics per tile, so there tiles are an approximation whose
error shrinks with the tile size (an untrained resnet_9blocks on a photo: mean |diff|
about 0.7 of the output's std at tile 128, 0.36 at tile 320); use the largest tile that
fits in memory.
"""
import json

import pytest
import torch

from models.networks import define_generator
from scripts import benchmark_speed
from runtime.inference import restore


def generator(norm: str) -> torch.nn.Module:
    torch.manual_seed(0)
    # PyTorch's default init (not the 0.02-gain one) so outputs have a spread to compare.
    return define_generator("resnet_6blocks", ngf=8, norm=norm).eval()


def image(h: int, w: int) -> torch.Tensor:
    torch.manual_seed(1)
    return torch.rand(1, 3, h, w) * 2 - 1


def test_tile_at_least_the_image_is_exactly_whole_image_processing():
    net, x = generator("instance"), image(40, 52)
    assert torch.equal(restore(net, x, tile=64, overlap=16), restore(net, x))


def test_tiles_agree_with_whole_image_without_normalisation():
    net, x = generator("none"), image(96, 136)
    whole = restore(net, x)
    tiled = restore(net, x, tile=64, overlap=32)
    diff = (tiled - whole).abs()
    assert tiled.shape == whole.shape
    assert float(diff.mean()) < 0.01 * float(whole.std())
    assert float(diff.max()) < 2 / 255, "a seam would show as a change of a full grey level"


def test_each_network_call_sees_at_most_one_tile():
    """Memory is bounded by the tile: the network never receives more than tile x tile pixels."""
    net, x = generator("instance"), image(100, 150)
    seen = []
    net.model[0].register_forward_hook(lambda module, args, out: seen.append(tuple(args[0].shape[-2:])))
    out = restore(net, x, tile=48, overlap=16)
    assert out.shape == x.shape
    assert max(h for h, _ in seen) <= 48 and max(w for _, w in seen) <= 48
    # rows start at 0, 32, 52 and columns at 0, 32, 64, 96, 102: 3 x 5 tiles.
    assert len(seen) == 15


def test_overlap_must_be_smaller_than_the_tile():
    with pytest.raises(ValueError, match="tile_overlap"):
        restore(generator("none"), image(80, 80), tile=32, overlap=32)


def test_benchmark_measures_whole_and_tiled_restoration(capsys):
    assert benchmark_speed.main(["--tiled_memory", "96x64", "--tile", "48", "--tile_overlap", "16",
                                "--ngf", "4", "--netG", "resnet_6blocks", "--gpu_ids", "-1"]) == 0
    line = json.loads(capsys.readouterr().out)
    assert line["size"] == [96, 64]
    assert line["whole"]["peak_rss_mb"] > 0 and line["tiled"]["peak_rss_mb"] > 0
