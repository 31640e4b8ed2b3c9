"""data/pseudo_rain_dataset.py: pseudo rainy pairs rendered from clean images, the streaks'
direction measured on the rainy ones."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.ndimage import gaussian_filter

from data.image_folder import DatasetError
from data.pseudo_rain_dataset import (BROAD_ANGLE, DISTRACTOR_GAP, VEIL_LEVEL, WIDTH, add_veil, distractor_angle,
                                      grown_identity_share, match_rain, measure_rain, measure_veil, pseudo_renders,
                                      pseudo_statistics, render_pseudo_rain, render_streaks, streak_kernel,
                                      with_distractors)
from options.train_options import TrainOptions
from tests.test_two_stage import paired_flags
from util.image_io import uint8_to_tensor
from util.rain_stats import layer_statistics, rain_layer_y


def smooth_clean(size: int = 64, seed: int = 0) -> np.ndarray:
    """HxWx3 uint8: a gentle gradient with a little texture (no streak-like structure)."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(60, 160, size)[None, :, None].repeat(size, axis=0).repeat(3, axis=2)
    return np.clip(ramp + rng.normal(0, 2, ramp.shape), 0, 255).astype(np.uint8)


def streaked(clean: np.ndarray, angle: float, seed: int) -> np.ndarray:
    """`clean` with bright straight streaks added at `angle` degrees from vertical."""
    rain = render_streaks(clean.shape[:2], np.random.default_rng(seed), (angle, angle))
    return np.clip(clean + 200 * rain[..., None], 0, 255).astype(np.uint8)


def save(folder: Path, images: list[np.ndarray]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        Image.fromarray(image).save(folder / f"im{i:03d}.png")


def test_a_streak_is_a_thin_bright_segment_along_its_angle():
    kernel = streak_kernel(20.0, 0.0, 0.8)
    centre = kernel.shape[0] // 2
    assert kernel.max() == pytest.approx(1.0)
    assert kernel[centre - 9, centre] > 0.9 and kernel[centre + 9, centre] > 0.9, "vertical: along the column"
    assert kernel[centre, centre + 4] < 1e-3, "thin across"
    leaning = streak_kernel(20.0, 30.0, 0.8)  # positive leans right at the top
    assert leaning[centre - 8, centre + 4] > 0.5 and leaning[centre - 8, centre - 4] < 0.01


@pytest.mark.parametrize("angle", [-20.0, 15.0])
def test_rain_statistics_read_the_rendered_direction(angle):
    clean = torch.full((3, 96, 96), -0.4)
    rng = np.random.default_rng(1)
    layers = []
    for _ in range(10):
        rainy = render_pseudo_rain(clean, rng, (angle, angle))
        layers.append(rain_layer_y(np.round((rainy.permute(1, 2, 0).numpy() + 1) * 127.5).astype(np.uint8)))
    stats = layer_statistics(layers)
    # The structure tensor of thin streaks on a pixel grid overstates the lean a little.
    assert np.sign(stats["orientation"]) == np.sign(angle) and abs(stats["orientation"] - angle) < 15
    assert stats["coverage"] > 0.01


def test_rendering_only_brightens_up_to_the_veil_and_stays_in_range():
    clean = torch.full((3, 48, 48), -0.8)  # a dark scene: rain and veil can only lift it
    for seed in range(5):
        rainy = render_pseudo_rain(clean, np.random.default_rng(seed))
        assert rainy.shape == clean.shape and rainy.min() >= -1 and rainy.max() <= 1
        assert rainy.mean() > clean.mean()


def pseudo_rain(root: Path, *extra):
    from data import create_dataset
    flags = paired_flags(root, root / "ck") + ["--dataset_mode", "pseudo_rain", "--no_flip", *extra]
    return create_dataset(TrainOptions().parse(flags))


def test_dataset_pairs_are_rained_clean_crops_identity_pairs_and_repeatable(tmp_path):
    cleans = [smooth_clean(48, seed) for seed in range(4)]
    save(tmp_path / "trainB", cleans)
    save(tmp_path / "trainA", [streaked(c, 20.0, seed) for seed, c in enumerate(cleans)])
    rain_only = pseudo_rain(tmp_path, "--pseudo_identity_share", "0")
    low, high = rain_only.angles
    assert low < 20 < high and high - low < 2 * BROAD_ANGLE, "the direction is measured, not broad"
    sample = rain_only[(1, 2)]
    assert sample["A"].shape == sample["B"].shape == (3, 32, 32)
    samples = [rain_only[(i, e)] for i in range(4) for e in range(1, 4)]
    brighter = [s["A"].mean() > s["B"].mean() for s in samples]
    assert sum(brighter) >= len(samples) // 2, "rain brightens (a small crop may hold no streak)"
    assert all(torch.all(s["A"] >= s["B"] - 1e-6) for s in samples), "and never darkens: no veil by default"
    assert sample["A_paths"] == sample["B_paths"]
    assert torch.equal(rain_only[(1, 2)]["A"], sample["A"]), "a sample is the same every time it is drawn"
    mixed = pseudo_rain(tmp_path, "--pseudo_identity_share", "0.5")
    identity = [torch.equal(mixed[(i, e)]["A"], mixed[(i, e)]["B"]) for i in range(4) for e in range(1, 6)]
    assert 0 < sum(identity) < len(identity)


def test_streakless_rain_images_fall_back_to_broad_angles():
    angles, _ = measure_rain([smooth_clean(48, seed) for seed in range(4)])
    assert angles == (-BROAD_ANGLE, BROAD_ANGLE)


def test_the_check_warns_when_the_pseudo_rain_is_unlike_trainA_s(tmp_path, caplog):
    cleans = [smooth_clean(48, seed) for seed in range(4)]
    save(tmp_path / "trainB", cleans)
    faint = [np.clip(c.astype(int) + (np.arange(48) % 12 == 0)[None, :, None] * 18, 0, 255).astype(np.uint8)
             for c in cleans]  # a few faint vertical lines: little coverage, low brightness
    save(tmp_path / "trainA", faint)
    with caplog.at_level(logging.WARNING, logger="data.pseudo_rain_dataset"):
        pseudo_rain(tmp_path)
    assert "differs from trainA's rain" in caplog.text


def test_dataset_refuses_a_set_without_rainy_images_and_the_wrong_direction(tmp_path):
    save(tmp_path / "trainB", [smooth_clean(48)])
    (tmp_path / "trainA").mkdir()
    with pytest.raises(DatasetError, match="trainA"):
        pseudo_rain(tmp_path)
    save(tmp_path / "trainA", [smooth_clean(48)])
    with pytest.raises(DatasetError, match="--direction AtoB"):
        pseudo_rain(tmp_path, "--direction", "BtoA")


@pytest.mark.parametrize("flag,value", [("--pseudo_rain_calibration", "0"), ("--pseudo_rain_veil", "0.9"),
                                        ("--pseudo_rain_veil", "auto"),
                                        ("--pseudo_rain_noise", "-0.1"), ("--pseudo_rain_veil_unevenness", "0.8"),
                                        ("--pseudo_rain_distractors", "1.5"),
                                        ("--pseudo_rain_min_opacity", "0.1"), ("--pseudo_rain_min_opacity", "2"),
                                        ("--pseudo_rain_max_width", "0.1"), ("--pseudo_rain_max_width", "5")])
def test_flags_refuse_bad_values(tmp_path, flag, value):
    flags = paired_flags(tmp_path, tmp_path / "ck") + ["--dataset_mode", "pseudo_rain", flag, value]
    with pytest.raises(SystemExit) as exit_info:
        TrainOptions().parse(flags)
    assert exit_info.value.code == 2


def test_the_amount_of_rain_is_matched_to_trainA_s():
    cleans = [smooth_clean(64, seed) for seed in range(6)]
    crops = [uint8_to_tensor(clean) for clean in cleans]
    scales = {}
    for name, strength in (("faint", 0.3), ("strong", 1.0)):
        rainy = []
        for seed, clean in enumerate(cleans):
            rain = render_streaks((64, 64), np.random.default_rng(seed), (10.0, 10.0), (3.0 * strength, strength))
            rainy.append(np.clip(clean + 255 * rain[..., None], 0, 255).astype(np.uint8))
        angles, reference = measure_rain(rainy)
        scales[name] = match_rain(crops, reference, angles)
        matched = pseudo_statistics(crops, angles, scales[name])
        assert matched["coverage"] == pytest.approx(reference["coverage"], rel=0.3)
    assert scales["strong"][0] > scales["faint"][0] and scales["strong"][1] > scales["faint"][1]


@pytest.mark.parametrize("angles", [(-10.0, 10.0), (-40.0, 35.0), (5.0, 25.0)])
def test_distractors_lean_where_the_rain_never_does(angles):
    rng = np.random.default_rng(0)
    for _ in range(200):
        angle = distractor_angle(rng, angles)
        assert -90 <= angle < 90
        # Directions are modulo 180 degrees: the gap is measured both ways round.
        gap = min(abs(angle - a) % 180 for a in angles) if not angles[0] <= angle <= angles[1] else 0.0
        gap = min(gap, min(180 - abs(angle - a) % 180 for a in angles))
        assert gap >= DISTRACTOR_GAP - 1e-9


def test_distractor_lines_cross_the_rain_and_stay_in_range():
    clean = torch.full((3, 96, 96), 0.0)
    layers = []
    for seed in range(10):
        lined = with_distractors(clean, np.random.default_rng(seed), (-5.0, 5.0))
        assert lined.min() >= -1 and lined.max() <= 1
        assert not torch.equal(lined, clean), "every crop that gets distractors gets lines"
        brightened = torch.clamp(lined - clean, min=0) + torch.clamp(clean - lined, min=0)  # bright or dark lines
        layers.append(np.round(brightened.mean(0).numpy() * 255).astype(np.float64))
    stats = layer_statistics(layers)
    assert abs(stats["orientation"]) > 5 + DISTRACTOR_GAP / 2, "the lines lean well away from the rain"


def test_distractors_go_into_input_and_target_alike(tmp_path):
    cleans = [smooth_clean(48, seed) for seed in range(4)]
    save(tmp_path / "trainB", cleans)
    save(tmp_path / "trainA", [streaked(c, 0.0, seed) for seed, c in enumerate(cleans)])
    plain = pseudo_rain(tmp_path, "--pseudo_identity_share", "0.5")
    lined = pseudo_rain(tmp_path, "--pseudo_identity_share", "0.5", "--pseudo_rain_distractors", "0.5")
    keys = [(i, e) for i in range(4) for e in range(1, 8)]
    identity = [key for key in keys if torch.equal(plain[key]["A"], plain[key]["B"])]
    assert identity
    for key in identity:
        assert torch.equal(lined[key]["A"], lined[key]["B"]), "an identity pair stays an identity pair"
    changed = [not torch.equal(lined[key]["B"], plain[key]["B"]) for key in keys]
    assert 0 < sum(changed) < len(changed), "about half of the targets carry lines"
    rained = pseudo_rain(tmp_path, "--pseudo_identity_share", "0")
    rained_lined = pseudo_rain(tmp_path, "--pseudo_identity_share", "0", "--pseudo_rain_distractors", "0.5")
    for key in keys:
        if torch.equal(rained_lined[key]["B"], rained[key]["B"]):
            assert torch.equal(rained_lined[key]["A"], rained[key]["A"]), "without lines, the same rain as before"


def test_the_opacity_floor_keeps_faint_rain_learnable():
    cleans = [smooth_clean(64, seed) for seed in range(6)]
    crops = [uint8_to_tensor(clean) for clean in cleans]
    rainy = [np.clip(c + 255 * render_streaks((64, 64), np.random.default_rng(seed), (0.0, 0.0),
                                              (2.0, 0.15))[..., None], 0, 255).astype(np.uint8)
             for seed, c in enumerate(cleans)]
    angles, reference = measure_rain(rainy)
    free = match_rain(crops, reference, angles)
    floored = match_rain(crops, reference, angles, min_opacity=0.8)
    assert free[1] < 0.8 <= floored[1]


def textured_clean(size: int, seed: int) -> np.ndarray:
    """HxWx3 uint8 with dark and bright patches, so that the dark channel has room to rise."""
    rng = np.random.default_rng(seed)
    cells = rng.uniform(10, 200, size=(size // 8, size // 8, 3))
    return np.kron(cells, np.ones((8, 8, 1))).astype(np.uint8)


@pytest.mark.parametrize("opacity", [0.0, 0.15, 0.3])
def test_the_veil_is_measured_on_the_rainy_images(opacity):
    level = 255 * float(np.mean(VEIL_LEVEL))
    cleans = [textured_clean(64, seed) for seed in range(6)]
    veiled = [np.clip(c * (1 - opacity) + level * opacity, 0, 255).astype(np.uint8)
              for c in (textured_clean(64, seed) for seed in range(6, 12))]
    streaked = pseudo_renders([uint8_to_tensor(clean) for clean in cleans], (0.0, 0.0), (0.2, 0.2))
    largest = measure_veil(veiled, streaked)
    # Drawn up to twice the mean: the mean pseudo veil is trainA's.
    assert largest / 2 == pytest.approx(opacity, abs=0.05)


def test_dense_rain_is_not_read_as_a_veil():
    # Wide, dense, screen-blended streaks lift the dark channel of most small windows; the
    # measurement keeps to the low end of wide windows, where the scene shows between them.
    # (The median over 7-px windows read this rain as a veil of 0.09.)
    cleans = [textured_clean(96, seed) for seed in range(6)]

    def dense_rain(clean: np.ndarray, seed: int) -> np.ndarray:
        streaks = render_streaks((96, 96), np.random.default_rng(seed), (0.0, 0.0), (4.0, 1.5))
        streaks = np.clip(gaussian_filter(streaks, 1.0), 0, 1)[..., None]
        return np.clip(255 * (1 - (1 - clean / 255) * (1 - 0.8 * streaks)), 0, 255).astype(np.uint8)

    rainy = [dense_rain(clean, seed) for seed, clean in enumerate(cleans)]
    thin = pseudo_renders([uint8_to_tensor(clean) for clean in cleans], (0.0, 0.0), (0.2, 0.2))
    assert measure_veil(rainy, thin) < 0.05


def test_the_dataset_draws_veils_up_to_the_measured_opacity(tmp_path):
    cleans = [textured_clean(48, seed) for seed in range(4)]
    save(tmp_path / "trainB", cleans)
    level = 255 * float(np.mean(VEIL_LEVEL))
    save(tmp_path / "trainA", [np.clip(streaked(c, 0.0, seed) * 0.75 + level * 0.25, 0, 255).astype(np.uint8)
                                for seed, c in enumerate(cleans)])
    assert 0.3 < pseudo_rain(tmp_path).veil <= 0.5
    assert pseudo_rain(tmp_path, "--pseudo_rain_veil", "0.1").veil == 0.1
    save(tmp_path / "trainA", [streaked(c, 0.0, seed) for seed, c in enumerate(cleans)])
    assert pseudo_rain(tmp_path).veil < 0.05, "streaks alone are no veil"


def test_an_uneven_veil_is_a_smooth_field_around_the_even_one_which_draws_as_before():
    black = np.zeros((3, 48, 48))
    even = add_veil(black, np.random.default_rng(5), 0.4)
    assert np.array_equal(even, add_veil(black, np.random.default_rng(5), 0.4, 0.0))
    assert np.ptp(even) == 0  # even: one opacity times one level everywhere
    uneven = add_veil(black, np.random.default_rng(5), 0.4, 0.5)[0]
    assert np.ptp(uneven) > 0.05 * even.max()
    assert (uneven >= 0.5 * even.max() - 1e-9).all() and (uneven <= 1.5 * even.max() + 1e-9).all()
    assert np.abs(np.diff(uneven, axis=0)).max() < 0.05 * even.max()  # smooth: no step from one row to the next
    assert np.abs(np.diff(uneven, axis=1)).max() < 0.05 * even.max()


def test_the_dataset_renders_uneven_veils_when_asked(tmp_path):
    """Flat clean crops under a measured veil: without the flag each pseudo rainy crop's veil is
    even (the darkest pixel of each quarter of the crop, between the streaks, alike), with it not."""
    flat = np.full((48, 48, 3), 40, np.uint8)
    save(tmp_path / "trainB", [flat] * 4)
    level = 255 * float(np.mean(VEIL_LEVEL))
    save(tmp_path / "trainA", [np.clip(streaked(textured_clean(48, seed), 0.0, seed) * 0.7 + level * 0.3, 0, 255)
                               .astype(np.uint8) for seed in range(4)])

    def spread_of_veils(*flags: str) -> float:
        data = pseudo_rain(tmp_path, "--pseudo_identity_share", "0", *flags)
        spreads = []
        for i in range(4):
            rainy = data[i]["A"].numpy().min(axis=0)  # streaks only brighten: the lowest pixels are the veil
            half = rainy.shape[0] // 2
            spreads.append(np.ptp([rainy[:half, :half].min(), rainy[:half, half:].min(), rainy[half:, :half].min(),
                                   rainy[half:, half:].min()]))
        return float(max(spreads))

    assert spread_of_veils() < 0.01
    assert spread_of_veils("--pseudo_rain_veil_unevenness", "0.5") > 0.02


def across_sharpness(streaks: np.ndarray) -> float:
    """Mean step between neighbouring columns over the mean value: lower for wider vertical streaks."""
    return float(np.abs(np.diff(streaks, axis=1)).mean() / streaks.mean())


def test_a_wider_sigma_range_draws_wider_streaks_and_the_default_draws_as_before():
    def draw(widths=None):
        extra = {} if widths is None else {"widths": widths}
        return render_streaks((96, 96), np.random.default_rng(3), (0.0, 0.0), planes=1, **extra)

    assert np.array_equal(draw(), draw(WIDTH))
    thin, wide = draw((0.4, 0.4)), draw((2.5, 2.5))
    assert thin.max() > 0.1 and wide.max() > 0.1
    assert across_sharpness(wide) < 0.5 * across_sharpness(thin)


def test_the_dataset_draws_streaks_up_to_the_largest_width_asked(tmp_path):
    flat = np.full((48, 48, 3), 40, np.uint8)
    save(tmp_path / "trainB", [flat] * 4)
    save(tmp_path / "trainA", [streaked(textured_clean(48, seed), 0.0, seed) for seed in range(4)])

    def sharpness(*flags: str) -> float:
        data = pseudo_rain(tmp_path, "--pseudo_identity_share", "0", "--pseudo_rain_veil", "0", *flags)
        rain = [data[i]["A"].numpy().mean(axis=0) - data[i]["B"].numpy().mean(axis=0) for i in range(4)]
        return float(np.mean([across_sharpness(layer) for layer in rain]))

    assert pseudo_rain(tmp_path, "--pseudo_rain_max_width", "2.5").widths == (WIDTH[0], 2.5)
    assert sharpness("--pseudo_rain_max_width", "3") < sharpness()


def test_the_identity_share_moves_from_start_to_end_over_the_budget(tmp_path):
    cleans = [smooth_clean(48, seed) for seed in range(4)]
    save(tmp_path / "trainB", cleans)
    save(tmp_path / "trainA", [streaked(c, 20.0, seed) for seed, c in enumerate(cleans)])
    budget = ["--n_iters", "20", "--n_iters_decay", "20"]  # 40 iterations of 4 images: epochs 1 to 10
    ramp = pseudo_rain(tmp_path, *budget, "--pseudo_identity_share", "0", "--pseudo_identity_share_end", "0.9")
    assert ramp.last_epoch == 10
    assert [round(ramp.identity_share_at(e), 3) for e in (1, 4, 10, 12)] == [0.0, 0.3, 0.9, 0.9]
    rain_only = pseudo_rain(tmp_path, *budget, "--pseudo_identity_share", "0")
    assert all(torch.equal(ramp[(i, 1)]["A"], rain_only[(i, 1)]["A"]) for i in range(4)), "share 0 at first"
    at_end = [torch.equal(ramp[(i, 10)]["A"], ramp[(i, 10)]["B"]) for i in range(4)]
    rained_at_end = [torch.equal(rain_only[(i, 10)]["A"], rain_only[(i, 10)]["B"]) for i in range(4)]
    assert sum(at_end) >= 3 and sum(at_end) > sum(rained_at_end), "mostly identity pairs at the end"
    constant = pseudo_rain(tmp_path, *budget, "--pseudo_identity_share", "0.4")
    assert constant.identity_share_at(1) == constant.identity_share_at(10) == 0.4


def test_auto_grows_the_identity_share_with_the_budget_where_there_is_a_veil(tmp_path, caplog):
    veiled = 0.3
    assert grown_identity_share(0.3, 4000, veiled) is None, "the default budget keeps a constant share"
    assert grown_identity_share(0.3, 16000, veiled) == pytest.approx(0.45)
    assert grown_identity_share(0.3, 28000, veiled) == grown_identity_share(0.3, 120000, veiled) == 0.6
    assert grown_identity_share(0.5, 120000, veiled) == 0.6 and grown_identity_share(0.7, 120000, veiled) == 0.7
    assert grown_identity_share(0.3, 28000, 0.02) is None, "without a veil clean images are left alone anyway"
    cleans = [textured_clean(48, seed) for seed in range(4)]
    save(tmp_path / "trainB", cleans)
    level = 255 * float(np.mean(VEIL_LEVEL))
    save(tmp_path / "trainA", [np.clip(streaked(c, 0.0, seed) * 0.75 + level * 0.25, 0, 255).astype(np.uint8)
                                for seed, c in enumerate(cleans)])
    auto = ["--pseudo_identity_share", "0.3", "--pseudo_identity_share_end", "auto"]
    with caplog.at_level(logging.INFO, logger="data.pseudo_rain_dataset"):
        long_run = pseudo_rain(tmp_path, *auto, "--n_iters", "14000", "--n_iters_decay", "14000")
    assert "identity share 0.300 at epoch 1, 0.600 at epoch 7000" in caplog.text
    assert (long_run.identity_share_at(1), long_run.identity_share_at(long_run.last_epoch)) == (0.3, 0.6)
    # 3 images: the last epoch ends at iteration 4,002, past the budget the share depends on
    short_run = pseudo_rain(tmp_path, *auto, "--n_iters", "2000", "--n_iters_decay", "2000", "--max_dataset_size", "3")
    assert short_run.last_epoch * len(short_run) == 4002
    assert short_run.identity_share_end is None and short_run.identity_share_at(short_run.last_epoch) == 0.3
    save(tmp_path / "trainA", [streaked(c, 0.0, seed) for seed, c in enumerate(cleans)])
    with caplog.at_level(logging.INFO, logger="data.pseudo_rain_dataset"):
        unveiled = pseudo_rain(tmp_path, *auto, "--n_iters", "14000", "--n_iters_decay", "14000")
    assert "identity share 0.300 throughout" in caplog.text
    assert unveiled.veil < 0.1 and unveiled.identity_share_end is None
