"""The dark channel prior: its numerical pieces (util/dark_channel.py) against brute force, and
the method (restoration/dark_channel_prior.py) on hand-made hazy images whose transmission and
airlight are known."""
from __future__ import annotations

import argparse

import numpy as np
import pytest

from restoration import dark_channel_prior as dcp
from restoration.dark_channel_prior import DarkChannelPrior
from util.dark_channel import box_filter, dark_channel, guided_filter
from util.metrics import psnr

AIRLIGHT = np.array([0.8, 0.85, 0.9])
SKY_ROWS = 16  # rows of pure airlight (t = 0) at the top of the hazy test image


def clear_texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A random colour texture whose dark channel is 0: one colour of every pixel is black."""
    clear = rng.uniform(0.1, 0.9, (height, width, 3))
    rows, cols = np.indices((height, width))
    clear[rows, cols, rng.integers(0, 3, (height, width))] = 0.0
    return clear


def hazy_scene(transmission: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(hazy uint8, clear uint8) through I = J t + A (1 - t), with SKY_ROWS of pure airlight on top."""
    height, width = transmission.shape
    clear = clear_texture(np.random.default_rng(seed), height, width)
    t = transmission.copy()
    t[:SKY_ROWS] = 0.0
    hazy = clear * t[..., None] + AIRLIGHT * (1.0 - t[..., None])
    return to_uint8(hazy), to_uint8(clear)


def to_uint8(img: np.ndarray) -> np.ndarray:
    return np.round(np.clip(img, 0, 1) * 255).astype(np.uint8)


# ----- the numerical pieces ---------------------------------------------------------------

def test_dark_channel_is_the_patch_minimum_of_the_colour_minimum():
    img = np.random.default_rng(1).random((12, 9, 3))
    got = dark_channel(img, 5)
    colour_min = img.min(axis=2)
    for y in range(12):
        for x in range(9):
            window = colour_min[max(0, y - 2):y + 3, max(0, x - 2):x + 3]
            assert got[y, x] == window.min()
    assert np.array_equal(dark_channel(img, 1), colour_min)
    # a patch larger than the image: the whole image's minimum everywhere
    assert np.all(dark_channel(img, 31) == colour_min.min())


def test_box_filter_is_the_mean_over_the_clipped_window():
    values = np.random.default_rng(2).random((7, 11))
    got = box_filter(values, 2)
    for y in range(7):
        for x in range(11):
            assert got[y, x] == pytest.approx(values[max(0, y - 2):y + 3, max(0, x - 2):x + 3].mean(), abs=1e-12)
    assert np.allclose(box_filter(values, 0), values)
    assert np.allclose(box_filter(values, 50), values.mean())
    stacked = np.stack([values, 2 * values], axis=2)
    assert np.allclose(box_filter(stacked, 2)[..., 1], 2 * got)


def test_guided_filter_keeps_the_guides_edges_and_smooths_the_rest():
    guide = np.zeros((40, 40))
    guide[:, 20:] = 1.0
    noisy = guide + np.random.default_rng(3).normal(0, 0.1, guide.shape)
    out = guided_filter(guide, noisy, 4, 1e-3)
    assert np.abs(out - guide).std() < 0.3 * np.abs(noisy - guide).std()  # noise removed
    assert out[:, 22:].mean() - out[:, :18].mean() > 0.95  # the step stays sharp
    # a source that is a linear function of the guide passes through unchanged (eps -> 0)
    ramp = np.random.default_rng(4).random((30, 30))
    assert np.allclose(guided_filter(ramp, 0.5 * ramp + 0.2, 3, 1e-9), 0.5 * ramp + 0.2, atol=1e-5)


def test_pieces_reject_bad_arguments():
    with pytest.raises(ValueError, match="patch"):
        dark_channel(np.zeros((4, 4, 3)), 0)
    with pytest.raises(ValueError, match="radius"):
        box_filter(np.zeros((4, 4)), -1)
    with pytest.raises(ValueError, match="eps"):
        guided_filter(np.zeros((4, 4)), np.zeros((4, 4)), 1, 0.0)
    with pytest.raises(ValueError, match="one size"):
        guided_filter(np.zeros((4, 4)), np.zeros((4, 5)), 1, 1e-3)


# ----- the method on scenes of known haze ---------------------------------------------------

def test_exact_recovery_without_refinement_and_with_omega_1():
    hazy, clear = hazy_scene(np.full((96, 80), 0.6))
    method = DarkChannelPrior(omega=1.0, refine="none")
    transmission, airlight = method.estimate(hazy)
    assert np.allclose(airlight, AIRLIGHT, atol=1 / 255)
    below_sky = slice(SKY_ROWS + 8, None)  # a patch's half away from the sky's edge
    assert np.abs(transmission[below_sky] - 0.6).max() < 0.01
    restored = method.restore_array(hazy)
    assert psnr(restored[below_sky], clear[below_sky], "rgb") > 40


@pytest.mark.parametrize("airlight", ["brightest", "mean"])
@pytest.mark.parametrize("refine, max_error, min_psnr", [("none", 0.05, 28), ("guided", 0.1, 22)])
def test_paper_defaults_recover_airlight_transmission_and_scene(airlight, refine, max_error, min_psnr):
    rows = np.linspace(0.45, 0.9, 128)[:, None] * np.ones((1, 96))  # denser haze towards the top
    hazy, clear = hazy_scene(rows)
    method = DarkChannelPrior(airlight=airlight, refine=refine)
    transmission, estimated = method.estimate(hazy)
    assert np.allclose(estimated, AIRLIGHT, atol=2 / 255)
    inner = (slice(40, -8), slice(8, -8))
    # omega 0.95 leaves 5% of the haze (t a little high); the guided filter imprints the random
    # texture of the grey guide on t, but stays centred on the truth
    error = transmission[inner] - rows[inner]
    assert np.abs(error).mean() < max_error and abs(np.median(error)) < 0.05
    restored = method.restore_array(hazy)
    assert psnr(restored[inner], clear[inner], "rgb") > min_psnr
    assert psnr(restored[inner], clear[inner], "rgb") > psnr(hazy[inner], clear[inner], "rgb") + 6


def test_brightest_and_mean_airlight_differ_where_a_white_object_sits_in_the_haze():
    hazy, _ = hazy_scene(np.full((64, 64), 0.6))
    hazy[:SKY_ROWS, 24:40] = 255  # a white object in the sky: a few of the haziest pixels are white
    brightest = DarkChannelPrior(top=0.02).estimate(hazy)[1]
    mean = DarkChannelPrior(top=0.02, airlight="mean").estimate(hazy)[1]
    assert np.allclose(brightest, 1.0)
    assert np.all(np.abs(mean - AIRLIGHT) < 0.8 * np.abs(brightest - AIRLIGHT))  # mostly the sky's colour


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (5, 5), (14, 3)])
def test_images_smaller_than_the_patch(shape):
    image = np.random.default_rng(5).integers(0, 256, (*shape, 3)).astype(np.uint8)
    out = DarkChannelPrior().restore_array(image)
    assert out.shape == image.shape and out.dtype == np.uint8


@pytest.mark.parametrize("level", [0, 1, 128, 255])
def test_flat_grey_images_stay_as_they_are(level):
    image = np.full((20, 24, 3), level, np.uint8)
    transmission, airlight = DarkChannelPrior().estimate(image)
    assert np.all(np.isfinite(transmission)) and np.all(airlight > 0)
    assert np.array_equal(DarkChannelPrior().restore_array(image), image)


def test_grey_hazy_image_stays_grey():
    hazy, _ = hazy_scene(np.full((48, 48), 0.5))
    grey = np.repeat(hazy.mean(axis=2, keepdims=True).astype(np.uint8), 3, axis=2)
    out = DarkChannelPrior().restore_array(grey)
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 1], out[..., 2])


@pytest.mark.parametrize("kwargs, flag", [
    ({"patch": 0}, "--dcp_patch"), ({"omega": 0.0}, "--dcp_omega"), ({"omega": 1.5}, "--dcp_omega"),
    ({"top": 0.0}, "--dcp_top"), ({"airlight": "max"}, "--dcp_airlight"), ({"refine": "matting"}, "--dcp_refine"),
    ({"radius": 0}, "--dcp_radius"), ({"eps": 0.0}, "--dcp_eps"), ({"t0": 0.0}, "--dcp_t0"),
])
def test_bad_parameters_name_their_flag(kwargs, flag):
    with pytest.raises(ValueError, match=flag) as err:
        DarkChannelPrior(**kwargs)
    assert "\n" not in str(err.value)


def test_input_must_be_rgb_uint8():
    for bad in (np.zeros((8, 8), np.uint8), np.zeros((8, 8, 3), np.float32), np.zeros((0, 4, 3), np.uint8)):
        with pytest.raises(ValueError, match="dark channel prior"):
            DarkChannelPrior().restore_array(bad)


def test_options_have_the_papers_defaults_and_build_the_method():
    parser = argparse.ArgumentParser()
    dcp.add_options(parser)
    method = dcp.from_options(parser.parse_args([]))
    assert dcp.NAME == "dcp"
    assert (method.patch, method.omega, method.top, method.airlight) == (15, 0.95, 0.001, "brightest")
    assert (method.refine, method.radius, method.eps, method.t0) == ("guided", 60, 1e-3, 0.1)
    assert "patch 15" in method.describe() and "\n" not in method.describe()
    tuned = dcp.from_options(parser.parse_args(["--dcp_patch", "7", "--dcp_airlight", "mean", "--dcp_refine", "none"]))
    assert (tuned.patch, tuned.airlight, tuned.refine) == (7, "mean", "none")
    assert "unrefined" in tuned.describe()
