"""The dehazing diagnostics (util/metrics.py: CIEDE2000, residual haze) and how evaluate_folders
and evaluate.py report them."""
from __future__ import annotations

import csv
import math

import numpy as np
import pytest
from PIL import Image

import evaluate
from util.dark_channel import dark_channel
from util.metrics import MetricsError, ciede2000, evaluate_folders, haze_scores, residual_haze


def texture(seed: int = 0, size: tuple[int, int] = (32, 40), high: int = 200) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, high, (*size, 3)).astype(np.uint8)


def lightness_of_grey(level: int) -> float:
    """CIE L* of an sRGB grey (D65), from the sRGB and CIELAB definitions."""
    c = level / 255
    luminance = ((c + 0.055) / 1.055) ** 2.4 if c > 0.04045 else c / 12.92
    f = luminance ** (1 / 3) if luminance > (6 / 29) ** 3 else luminance / (3 * (6 / 29) ** 2) + 4 / 29
    return 116 * f - 16


def test_ciede2000_of_two_greys_is_their_weighted_lightness_difference():
    # Neutral colours have no chroma or hue: CIEDE2000 reduces to |dL| / S_L,
    # S_L = 1 + 0.015 (L - 50)^2 / sqrt(20 + (L - 50)^2) at the mean lightness L.
    dark, light = lightness_of_grey(100), lightness_of_grey(130)
    mean = (dark + light) / 2
    expected = (light - dark) / (1 + 0.015 * (mean - 50) ** 2 / math.sqrt(20 + (mean - 50) ** 2))
    out, gt = np.full((4, 5, 3), 130, np.uint8), np.full((4, 5, 3), 100, np.uint8)
    assert ciede2000(out, gt) == pytest.approx(expected, abs=1e-3)
    assert ciede2000(gt, gt) == 0.0


def test_a_colour_cast_raises_ciede2000_more_than_the_same_change_in_grey():
    gt = texture()
    cast = gt.copy()
    cast[..., 2] += 40  # bluish
    grey_shift = gt + np.uint8(40 // 3)  # about the same added brightness, spread over all colours
    assert ciede2000(cast, gt) > 2 * ciede2000(grey_shift, gt) > 0
    stronger = gt.copy()
    stronger[..., 2] += 50
    assert ciede2000(stronger, gt) > ciede2000(cast, gt)


def test_residual_haze_is_the_added_dark_channel_in_levels():
    gt = texture()
    assert residual_haze(gt, gt) == 0.0
    assert residual_haze(gt + np.uint8(30), gt) == pytest.approx(30.0)  # a uniform lift, no clipping
    assert residual_haze(gt, gt + np.uint8(30)) == pytest.approx(-30.0)  # over-dehazed: too dark
    # a grey veil of weight w towards white: the dark channel becomes (1 - w) D + 255 w
    weight = 0.4
    veiled = np.round((1 - weight) * gt + weight * 255).astype(np.uint8)
    clear_dark = dark_channel(gt.astype(np.float64), 15).mean()
    assert residual_haze(veiled, gt) == pytest.approx(weight * (255 - clear_dark), abs=0.5)
    pixel_dark = gt.min(axis=2).mean()  # patch 1: the colour minimum
    assert residual_haze(veiled, gt, patch=1) == pytest.approx(weight * (255 - pixel_dark), abs=0.5)


def test_haze_scores_with_and_without_the_input():
    gt = texture()
    hazy = np.round(0.5 * gt + 0.5 * 230).astype(np.uint8)
    half = np.round(0.75 * gt + 0.25 * 230).astype(np.uint8)
    scores = haze_scores(half, hazy, gt)
    assert set(scores) == {"ciede2000", "residual_haze", "input_residual_haze"}
    assert 0 < scores["residual_haze"] < scores["input_residual_haze"]
    assert scores["input_residual_haze"] == pytest.approx(2 * scores["residual_haze"], rel=0.05)
    assert set(haze_scores(half, None, gt)) == {"ciede2000", "residual_haze"}
    with pytest.raises(ValueError, match="differ in size"):
        haze_scores(half[:8], None, gt)


@pytest.fixture()
def hazy_folders(tmp_path):
    """pred / input / gt: 'lifted' is the ground truth + 10 levels, 'exact' the ground truth itself."""
    dirs = {name: tmp_path / name for name in ("pred", "input", "gt")}
    for folder in dirs.values():
        folder.mkdir()
    for seed, name in enumerate(("exact", "lifted")):
        gt = texture(seed)
        hazy = np.round(0.5 * gt + 0.5 * 220).astype(np.uint8)
        pred = gt if name == "exact" else gt + np.uint8(10)
        for kind, image in (("pred", pred), ("input", hazy), ("gt", gt)):
            Image.fromarray(image).save(dirs[kind] / f"{name}.png")
    return dirs


def test_evaluate_folders_haze_task(hazy_folders):
    d = hazy_folders
    rows, mean = evaluate_folders(d["pred"], d["gt"], "rgb", input_dir=d["input"], task="haze")
    by_name = {r["name"]: r for r in rows}
    assert by_name["exact"]["residual_haze"] == 0.0 and by_name["exact"]["ciede2000"] == 0.0
    assert by_name["lifted"]["residual_haze"] == pytest.approx(10.0)
    assert all(r["input_residual_haze"] > 30 for r in rows)
    assert mean["residual_haze"] == pytest.approx(5.0)
    assert "rain_residue" not in mean and "rain_residue" not in rows[0]
    _, rain = evaluate_folders(d["pred"], d["gt"], "rgb", input_dir=d["input"])  # the old call: rain
    assert "rain_residue" in rain and "residual_haze" not in rain
    _, plain = evaluate_folders(d["pred"], d["gt"], "rgb", task="haze")  # no inputs, no diagnostics
    assert "residual_haze" not in plain
    with pytest.raises(MetricsError, match="task"):
        evaluate_folders(d["pred"], d["gt"], task="snow")


def test_evaluate_cli_prints_and_writes_the_haze_diagnostics(hazy_folders, tmp_path, capsys):
    d = hazy_folders
    out_csv = tmp_path / "scores.csv"
    assert evaluate.main(["--pred", str(d["pred"]), "--gt", str(d["gt"]), "--input", str(d["input"]),
                          "--channel", "rgb", "--csv", str(out_csv)]) == 0
    lines = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()}
    assert lines["name"] == ["name", "PSNR", "SSIM", "CIEDE2000", "haze", "input", "haze"]
    assert lines["lifted"][4] == "10.00" and lines["exact"][3:5] == ["0.000", "0.00"]
    with open(out_csv, newline="") as fh:
        scored = {row["name"]: row for row in csv.DictReader(fh)}
    assert list(scored["mean"]) == ["name", "psnr", "ssim", "ciede2000", "residual_haze", "input_residual_haze"]
    assert float(scored["mean"]["residual_haze"]) == pytest.approx(5.0)
    # --task rain keeps the deraining columns with RGB scores
    assert evaluate.main(["--pred", str(d["pred"]), "--gt", str(d["gt"]), "--input", str(d["input"]),
                          "--channel", "rgb", "--task", "rain"]) == 0
    assert "residue" in capsys.readouterr().out
