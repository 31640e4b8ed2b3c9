"""PSNR / SSIM against values computed independently of util.metrics; rain residue and dark
artifacts on hand-made images whose values are known."""
import math

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image

from util.image_io import load_rgb
from util.metrics import (FLAT_WINDOW, MetricsError, dark_artifacts, evaluate_folders, local_std, psnr,
                          rain_residue, rgb_to_y, ssim)


def _smooth_image(seed: int, size: int = 40) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    base = np.stack([np.sin(6 * xx + c) * np.cos(4 * yy - c) for c in range(3)], axis=2)
    img = 128 + 80 * base + rng.normal(0, 10, base.shape)
    return np.clip(img, 0, 255).round().astype(np.uint8)


def _ssim_reference(a: np.ndarray, b: np.ndarray) -> float:
    """Wang et al.'s SSIM on one float channel: 11x11 Gaussian window (sigma 1.5), 'valid'."""
    taps = np.arange(-5, 6)
    g = np.exp(-(taps**2) / (2 * 1.5**2))
    window = np.outer(g, g) / np.outer(g, g).sum()

    def local_mean(x):
        return np.einsum("ijkl,kl->ij", sliding_window_view(x, (11, 11)), window)

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_a, mu_b = local_mean(a), local_mean(b)
    var_a = local_mean(a * a) - mu_a**2
    var_b = local_mean(b * b) - mu_b**2
    cov = local_mean(a * b) - mu_a * mu_b
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / (
        (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    )
    return float(ssim_map.mean())


def test_y_of_pure_colours():
    colours = np.array([[[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255]]], np.uint8)
    np.testing.assert_allclose(rgb_to_y(colours)[0], [16.0, 235.0, 81.481, 144.553, 40.966], atol=1e-9)
    assert rgb_to_y(colours).dtype == np.float64


def test_identical_images():
    img = _smooth_image(0)
    assert psnr(img, img) == math.inf
    assert psnr(img, img, channel="rgb") == math.inf
    assert ssim(img, img) == pytest.approx(1.0)
    assert ssim(img, img, channel="rgb") == pytest.approx(1.0)


def test_constant_offset_gives_computable_psnr():
    gt = np.random.default_rng(1).integers(0, 240, (24, 24, 3)).astype(np.uint8)
    pred = gt + np.uint8(10)
    assert psnr(pred, gt, channel="rgb") == pytest.approx(20 * math.log10(255 / 10), abs=1e-9)
    # The same offset on every channel moves Y by 10 * 219 / 255.
    assert psnr(pred, gt, channel="y") == pytest.approx(20 * math.log10(255 / (10 * 219 / 255)), abs=1e-9)


def test_gaussian_noise_psnr_matches_sigma():
    rng = np.random.default_rng(2)
    gt = np.full((128, 128, 3), 128, np.uint8)
    pred = np.clip(128 + rng.normal(0, 5, gt.shape), 0, 255).round().astype(np.uint8)
    # Rounding adds a uniform error of variance 1/12 on top of sigma^2.
    assert psnr(pred, gt, channel="rgb") == pytest.approx(10 * math.log10(255**2 / (25 + 1 / 12)), abs=0.1)


def test_ssim_matches_direct_formula():
    gt = _smooth_image(3)
    pred = np.clip(gt.astype(int) + np.random.default_rng(4).integers(-20, 21, gt.shape), 0, 255).astype(np.uint8)
    assert ssim(pred, gt, channel="y") == pytest.approx(_ssim_reference(rgb_to_y(pred), rgb_to_y(gt)), abs=1e-9)
    per_channel = [_ssim_reference(pred[..., c].astype(float), gt[..., c].astype(float)) for c in range(3)]
    assert ssim(pred, gt, channel="rgb") == pytest.approx(np.mean(per_channel), abs=1e-9)


def test_crop_border_ignores_the_border():
    gt = _smooth_image(5)
    pred = gt.copy()
    pred[:3] = 0
    assert psnr(pred, gt) < 30
    assert psnr(pred, gt, crop_border=3) == math.inf
    assert ssim(pred, gt, crop_border=3) == pytest.approx(1.0)


def test_bad_inputs_raise_value_error():
    a = np.zeros((20, 20, 3), np.uint8)
    with pytest.raises(ValueError, match=r"\(20, 20, 3\).*\(20, 21, 3\)"):
        psnr(a, np.zeros((20, 21, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        ssim(a.astype(np.float32), a)
    with pytest.raises(ValueError, match="channel"):
        psnr(a, a, channel="lab")
    with pytest.raises(ValueError, match="11x11"):
        ssim(a[:8, :8], a[:8, :8])


def _write(path, array):
    Image.fromarray(array).save(path)


def test_evaluate_folders_matches_by_stem(tmp_path):
    pred_dir, gt_dir = tmp_path / "pred", tmp_path / "gt"
    pred_dir.mkdir()
    gt_dir.mkdir()
    for i in range(2):
        gt = _smooth_image(10 + i)
        _write(gt_dir / f"img{i}.jpg", gt)
        _write(pred_dir / f"img{i}.png", np.clip(gt.astype(int) + 3, 0, 255).astype(np.uint8))
    _write(gt_dir / "unused.png", _smooth_image(20))
    (pred_dir / "notes.txt").write_text("not an image")
    rows, mean = evaluate_folders(pred_dir, gt_dir, channel="rgb")
    assert [r["name"] for r in rows] == ["img0", "img1"]
    for row in rows:
        pred = np.asarray(load_rgb(pred_dir / f"{row['name']}.png"))
        gt = np.asarray(load_rgb(gt_dir / f"{row['name']}.jpg"))
        assert row["psnr"] == pytest.approx(psnr(pred, gt, channel="rgb"))
        assert row["ssim"] == pytest.approx(ssim(pred, gt, channel="rgb"))
    assert mean["count"] == 2
    assert mean["psnr"] == pytest.approx((rows[0]["psnr"] + rows[1]["psnr"]) / 2)
    assert mean["ssim"] == pytest.approx((rows[0]["ssim"] + rows[1]["ssim"]) / 2)


def test_evaluate_folders_errors_name_the_file(tmp_path):
    pred_dir, gt_dir = tmp_path / "pred", tmp_path / "gt"
    pred_dir.mkdir()
    gt_dir.mkdir()
    with pytest.raises(MetricsError, match="no images"):
        evaluate_folders(pred_dir, gt_dir)
    _write(pred_dir / "a.png", _smooth_image(0, 32))
    with pytest.raises(MetricsError, match=r"a\.png"):
        evaluate_folders(pred_dir, gt_dir)
    _write(gt_dir / "a.png", _smooth_image(0, 40))
    with pytest.raises(MetricsError, match=r"size mismatch.*a\.png.*a\.png"):
        evaluate_folders(pred_dir, gt_dir)
    (gt_dir / "a.png").write_bytes(b"")
    with pytest.raises(MetricsError, match="empty"):
        evaluate_folders(pred_dir, gt_dir)
    with pytest.raises(MetricsError, match="not a folder"):
        evaluate_folders(tmp_path / "missing", gt_dir)
    _write(gt_dir / "a.png", _smooth_image(0, 32))
    _write(gt_dir / "a.jpg", _smooth_image(0, 32))
    with pytest.raises(MetricsError, match="share the stem"):
        evaluate_folders(pred_dir, gt_dir)


# ----- rain residue and dark artifacts --------------------------------------------------------
def _flat(value: int, size=(20, 20)) -> np.ndarray:
    return np.full((*size, 3), value, np.uint8)


def _checkerboard(size=(20, 20)) -> np.ndarray:
    """Y std about 17 levels in every 7 x 7 window: far from flat."""
    yy, xx = np.mgrid[0:size[0], 0:size[1]]
    return np.where(((yy + xx) % 2)[..., None] == 0, 80, 120).repeat(3, axis=2).astype(np.uint8)


# A streak of 16 pixels, 60 RGB levels (51.5 Y levels) brighter than the ground truth.
STREAK = (slice(2, 18), 5)


def _rainy(gt: np.ndarray, amount: int = 60) -> np.ndarray:
    rainy = gt.copy()
    rainy[STREAK] += np.uint8(amount)
    return rainy


def test_rain_residue_is_the_share_of_added_brightness_left():
    gt = _flat(100)
    rainy = _rainy(gt)
    halfway = _rainy(gt, 30)
    assert rain_residue(halfway, rainy, gt) == pytest.approx(0.5, abs=1e-12)
    assert rain_residue(gt, rainy, gt) == 0.0
    assert rain_residue(rainy, rainy, gt) == 1.0
    brighter = _rainy(gt, 100)  # more than the rain added: clipped to 1
    assert rain_residue(brighter, rainy, gt) == 1.0
    darker = gt.copy()
    darker[STREAK] -= np.uint8(20)  # darker than the ground truth: clipped to 0
    assert rain_residue(darker, rainy, gt) == 0.0
    half_gone = rainy.copy()
    half_gone[2:10, 5] = 100  # 8 of the 16 streak pixels removed, 8 untouched
    assert rain_residue(half_gone, rainy, gt) == pytest.approx(0.5, abs=1e-12)


def test_rain_residue_counts_only_pixels_the_rain_brightened_by_more_than_15_levels():
    gt = _flat(100)
    # +17 RGB is 14.6 Y levels, +18 is 15.5: only the second is rain.
    assert rain_residue(_rainy(gt, 17), _rainy(gt, 17), gt) is None
    assert rain_residue(_rainy(gt, 18), _rainy(gt, 18), gt) == 1.0
    assert rain_residue(gt, gt, gt) is None
    rainy = _rainy(gt)
    rainy[0, :] += np.uint8(10)  # faint, below the threshold: left in the output, ignored
    halfway = _rainy(gt, 30)
    halfway[0, :] += np.uint8(10)
    assert rain_residue(halfway, rainy, gt) == pytest.approx(0.5, abs=1e-12)


def test_dark_artifacts_count_a_blotch_on_flat_ground_truth_over_all_pixels():
    gt = _flat(100)
    out = gt.copy()
    out[8:11, 8:11] -= np.uint8(30)  # 25.8 Y levels darker than input and ground truth
    assert dark_artifacts(out, gt, gt) == pytest.approx(9 / 400, abs=1e-15)
    shallow = gt.copy()
    shallow[8:11, 8:11] -= np.uint8(15)  # 12.9 levels: within the tolerance
    assert dark_artifacts(shallow, gt, gt) == 0.0
    dark_input = gt.copy()
    dark_input[8:11, 8:11] -= np.uint8(40)  # the output is darker than the ground truth only
    assert dark_artifacts(out, dark_input, gt) == 0.0


def test_dark_artifacts_ignore_textured_ground_truth():
    gt = _checkerboard()
    out = gt.copy()
    out[8:11, 8:11] -= np.uint8(30)
    assert dark_artifacts(out, gt, gt) == 0.0
    # Left half flat, right half textured: only the blotch on the flat half counts.
    gt = np.concatenate([_flat(100), _checkerboard()], axis=1)
    out = gt.copy()
    out[8:11, 5:8] -= np.uint8(30)
    out[8:11, 30:33] -= np.uint8(30)
    assert dark_artifacts(out, gt, gt) == pytest.approx(9 / 800, abs=1e-15)


def test_local_std_matches_a_direct_window_with_reflected_borders():
    y = rgb_to_y(_smooth_image(7, 24))
    half = FLAT_WINDOW // 2
    windows = sliding_window_view(np.pad(y, half, mode="symmetric"), (FLAT_WINDOW, FLAT_WINDOW))
    np.testing.assert_allclose(local_std(y, FLAT_WINDOW), windows.std(axis=(2, 3)), atol=1e-6)
    assert np.all(local_std(np.full((10, 10), 101.88), FLAT_WINDOW) < 1e-6)


def test_diagnostics_refuse_mismatched_images():
    with pytest.raises(ValueError, match="differ in size"):
        rain_residue(_flat(100), _flat(100, (20, 21)), _flat(100))
    with pytest.raises(ValueError, match="uint8"):
        dark_artifacts(_flat(100).astype(np.float32), _flat(100), _flat(100))


def _folder_triple(tmp_path):
    """pred/input/gt folders: 'half' removes half the streak, 'clean' has no rain, 'blotch' a blotch."""
    dirs = [tmp_path / name for name in ("pred", "input", "gt")]
    for folder in dirs:
        folder.mkdir()
    gt = _flat(100)
    blotch = gt.copy()
    blotch[8:11, 8:11] -= np.uint8(30)
    for name, (pred, inp) in {"half": (_rainy(gt, 30), _rainy(gt)), "clean": (gt, gt), "blotch": (blotch, gt)}.items():
        for folder, image in zip(dirs, (pred, inp, gt)):
            _write(folder / f"{name}.png", image)
    return dirs


def test_evaluate_folders_with_inputs_adds_residue_and_dark_artifacts(tmp_path):
    pred_dir, input_dir, gt_dir = _folder_triple(tmp_path)
    rows, mean = evaluate_folders(pred_dir, gt_dir, input_dir=input_dir)
    by_name = {r["name"]: r for r in rows}
    assert by_name["half"]["rain_residue"] == pytest.approx(0.5)
    assert by_name["clean"]["rain_residue"] is None and by_name["blotch"]["rain_residue"] is None
    assert [by_name[n]["dark_artifacts"] for n in ("half", "clean")] == [0.0, 0.0]
    assert by_name["blotch"]["dark_artifacts"] == pytest.approx(9 / 400)
    assert mean["rain_residue"] == pytest.approx(0.5) and mean["rain_residue_count"] == 1
    assert mean["dark_artifacts"] == pytest.approx(9 / 400 / 3)
    plain_rows, plain_mean = evaluate_folders(pred_dir, gt_dir)
    assert "rain_residue" not in plain_rows[0] and "dark_artifacts" not in plain_mean
    _, no_rain = evaluate_folders(gt_dir, gt_dir, input_dir=gt_dir)
    assert no_rain["rain_residue"] is None and no_rain["rain_residue_count"] == 0


def test_evaluate_folders_input_errors_name_the_file(tmp_path):
    pred_dir, input_dir, gt_dir = _folder_triple(tmp_path)
    (input_dir / "half.png").unlink()
    with pytest.raises(MetricsError, match=r"no input for '.*half\.png'"):
        evaluate_folders(pred_dir, gt_dir, input_dir=input_dir)
    _write(input_dir / "half.png", _flat(100, (20, 24)))
    with pytest.raises(MetricsError, match=r"size mismatch.*half\.png.*24x20"):
        evaluate_folders(pred_dir, gt_dir, input_dir=input_dir)
