"""data/pseudo_haze_dataset.py: pseudo hazy pairs rendered from clear images with the haze's
density and airlight measured on the hazy ones."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from data.image_folder import DatasetError
from data.pseudo_haze_dataset import clear_transmission, haze_record, render_pseudo_haze, smooth_depth
from options.train_options import TrainOptions
from tests.test_two_stage import paired_flags


def textured_clear(size: int = 96, seed: int = 0) -> np.ndarray:
    """HxWx3 in [0, 1] with a dark pixel in every 15-px patch (the prior's assumption holds)."""
    rng = np.random.default_rng(seed)
    image = 0.3 + 0.6 * rng.random((size, size, 3))
    image[::7, ::7] = 0.0
    return image


def hazed(clear: np.ndarray, transmission, airlight) -> np.ndarray:
    t = np.broadcast_to(np.asarray(transmission, dtype=np.float64), clear.shape[:2])[..., None]
    return clear * t + np.asarray(airlight) * (1.0 - t)


def save(folder: Path, images: list[np.ndarray]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        Image.fromarray(np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)).save(folder / f"im{i:03d}.png")


def test_record_reads_a_known_haze():
    airlight = np.array([0.9, 0.8, 0.7])
    ramp = np.linspace(0.05, 0.9, 96)[None, :].repeat(96, axis=0)  # 10th percentile 0.135, 90th 0.815
    far, near, measured = haze_record(hazed(textured_clear(), ramp, airlight))
    assert np.allclose(measured, airlight, atol=0.03)
    # The prior keeps 5% of the haze (omega 0.95) and a patch's minimum reaches up to 7 px
    # towards thinner haze: both raise the estimate a little.
    assert 0.13 < far < 0.25 and 0.8 < near < 0.95


def test_rendering_follows_the_scattering_model_between_the_record_s_bounds():
    rng = np.random.default_rng(3)
    clear = torch.full((3, 40, 40), -0.6)  # 0.2 on [0, 1]
    hazy = render_pseudo_haze(clear, (0.5, 0.5, np.array([0.8, 0.8, 0.8])), noise=0.0, rng=rng)
    hazy01 = (hazy + 1) / 2
    low = 0.2 * 0.55 + 0.77 * 0.45  # t and A at the edges of their jitter
    high = 0.2 * 0.45 + 0.83 * 0.55
    assert hazy01.min() >= low - 1e-5 and hazy01.max() <= high + 1e-5
    assert hazy01.mean() > 0.4, "haze lifts a dark scene towards the airlight"
    noisy = render_pseudo_haze(clear, (0.5, 0.5, np.array([0.8, 0.8, 0.8])), noise=0.05,
                               rng=np.random.default_rng(4))
    assert noisy.std() > hazy.std()


def test_depth_spans_the_unit_interval_smoothly():
    depth = smooth_depth((64, 80), np.random.default_rng(0))
    assert depth.shape == (64, 80) and depth.min() == 0 and abs(depth.max().item() - 1) < 1e-6
    assert depth.diff(dim=0).abs().max() < 0.2 and depth.diff(dim=1).abs().max() < 0.2


def pseudo_haze(root: Path, *extra):
    from data import create_dataset
    flags = paired_flags(root, root / "ck") + ["--dataset_mode", "pseudo_haze", "--no_flip", *extra]
    return create_dataset(TrainOptions().parse(flags))


def test_dataset_pairs_are_hazed_clear_crops_identity_pairs_and_repeatable(tmp_path):
    clears = [textured_clear(48, seed) for seed in range(4)]
    save(tmp_path / "trainB", clears)
    save(tmp_path / "trainA", [hazed(c, 0.4, [0.85, 0.85, 0.9]) for c in clears])
    hazy_only = pseudo_haze(tmp_path, "--pseudo_identity_share", "0", "--pseudo_haze_noise", "0")
    sample = hazy_only[(1, 2)]
    assert sample["A"].shape == sample["B"].shape == (3, 32, 32)
    assert sample["A"].mean() > sample["B"].mean() + 0.2, "the measured haze is heavy and bright"
    assert sample["A_paths"] == sample["B_paths"]
    assert torch.equal(hazy_only[(1, 2)]["A"], sample["A"]), "a sample is the same every time it is drawn"
    mixed = pseudo_haze(tmp_path, "--pseudo_identity_share", "0.5")
    identity = [torch.equal(mixed[(i, e)]["A"], mixed[(i, e)]["B"]) for i in range(4) for e in range(1, 6)]
    assert 0 < sum(identity) < len(identity)


def test_dataset_refuses_a_set_without_hazy_images_and_the_wrong_direction(tmp_path):
    save(tmp_path / "trainB", [textured_clear(48)])
    (tmp_path / "trainA").mkdir()
    with pytest.raises(DatasetError, match="trainA"):
        pseudo_haze(tmp_path)
    save(tmp_path / "trainA", [textured_clear(48)])
    with pytest.raises(DatasetError, match="--direction AtoB"):
        pseudo_haze(tmp_path, "--direction", "BtoA")


@pytest.mark.parametrize("flag,value", [("--pseudo_haze_noise", "0.5"), ("--pseudo_haze_calibration", "0")])
def test_flags_refuse_bad_values(tmp_path, flag, value):
    flags = paired_flags(tmp_path, tmp_path / "ck") + ["--dataset_mode", "pseudo_haze", flag, value]
    with pytest.raises(SystemExit) as exit_info:
        TrainOptions().parse(flags)
    assert exit_info.value.code == 2


def test_the_prior_s_reading_of_clear_images_is_divided_out():
    bright = textured_clear()
    bright[:64] = 0.85  # a bright flat surface over two thirds (sky, a wall): the prior sees haze in it
    assert clear_transmission(bright) < 0.5
    ramp = np.linspace(0.3, 0.7, 96)[None, :].repeat(96, axis=0)
    hazy = hazed(textured_clear(), ramp, [0.9, 0.9, 0.9])
    raw_far, raw_near, _ = haze_record(hazy)
    far, near, _ = haze_record(hazy, clear_reading=0.8)
    assert far == pytest.approx(max(raw_far / 0.8, 0.1)) and near == pytest.approx(min(raw_near / 0.8, 1.0))
    assert clear_transmission(textured_clear()) == pytest.approx(1.0, abs=0.06), "a dark pixel in every patch"
