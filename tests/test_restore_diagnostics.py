"""test.py's summary with ground truth: the dehazing diagnostics on RGB (`--metric_channel rgb`),
and a plain warning when the restored images score below their own inputs."""
from __future__ import annotations

import csv
import logging

import numpy as np
from PIL import Image

from restoration import batch, cli
from tests.test_restoration import fake_method  # noqa: F401 (fixture)


def write_pairs(root, degrade, count=3, size=48, seed=0):
    """testA = degrade(clean), testB = clean: smooth random scenes with a little texture."""
    rng = np.random.default_rng(seed)
    for folder in ("testA", "testB"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    for i in range(count):
        base = rng.uniform(0.05, 0.6, size=(1, 1, 3))
        texture = rng.uniform(0.0, 0.3, size=(size, size, 3))
        clean = np.clip(base + texture, 0, 1)
        Image.fromarray((clean * 255).round().astype(np.uint8)).save(root / "testB" / f"{i}.png")
        Image.fromarray((degrade(clean) * 255).round().astype(np.uint8)).save(root / "testA" / f"{i}.png")


def read_rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_dehazing_scores_carry_colour_difference_and_residual_haze(tmp_path):
    airlight, t = np.array([0.9, 0.9, 0.85]), 0.45
    write_pairs(tmp_path / "hazy", lambda j: j * t + airlight * (1 - t))
    assert cli.main(["--dataroot", str(tmp_path / "hazy"), "--model", "dcp", "--metric_channel", "rgb",
                     "--dcp_patch", "5", "--dcp_radius", "10", "--results_dir", str(tmp_path / "r"),
                     "--nr_metrics", "false"]) == 0
    page = tmp_path / "r" / "dcp" / "test_method"
    rows = read_rows(page / "metrics.csv")
    assert len(rows) == 3 and {"ciede2000", "residual_haze", "input_residual_haze"} <= set(rows[0])
    assert "rain_residue" not in rows[0]
    for row in rows:  # the prior removes most of a uniform veil: less haze and higher PSNR than the input
        assert float(row["residual_haze"]) < float(row["input_residual_haze"]) / 2
        assert float(row["psnr"]) > float(row["input_psnr"])
    text = (page / "metrics.txt").read_text()
    assert "CIEDE2000" in text and "residual haze" in text and "WORSE" not in text


def test_outputs_worse_than_their_inputs_are_said_plainly(tmp_path, fake_method, caplog):  # noqa: F811
    write_pairs(tmp_path / "data", lambda j: np.clip(j + 0.02, 0, 1))  # inputs 5 levels brighter than the truth
    argv = ["--dataroot", str(tmp_path / "data"), "--model", "fake", "--nr_metrics", "false"]
    with caplog.at_level(logging.WARNING):
        assert cli.main([*argv, "--fake_gain", "40", "--results_dir", str(tmp_path / "bad")]) == 0
    text = (tmp_path / "bad" / "fake" / "test_method" / "metrics.txt").read_text()
    assert "WORSE than their inputs" in text and "3 of 3 images below their input" in text
    assert any("WORSE than their inputs" in r.message and r.levelno == logging.WARNING for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING):  # a method that brightens by 0 leaves the inputs as they are
        assert cli.main([*argv, "--fake_gain", "0", "--results_dir", str(tmp_path / "same")]) == 0
    same = (tmp_path / "same" / "fake" / "test_method" / "metrics.txt").read_text()
    assert "WORSE" not in same and "all but UNCHANGED" in same
    assert not any("WORSE" in r.message for r in caplog.records)
    assert any("all but UNCHANGED" in r.message and r.levelno == logging.WARNING for r in caplog.records)


def test_outputs_that_keep_most_of_their_rain_are_said_plainly(tmp_path, fake_method, caplog):  # noqa: F811
    def rain(clean):  # bright vertical streaks on every fourth column: the rain pixels
        rainy = clean.copy()
        rainy[:, ::4] = np.clip(rainy[:, ::4] + 0.3, 0, 1)
        return rainy
    write_pairs(tmp_path / "data", rain)
    argv = ["--dataroot", str(tmp_path / "data"), "--model", "fake", "--nr_metrics", "false"]
    with caplog.at_level(logging.WARNING):  # darkening by 8 levels removes about a tenth of a +76-level rain
        assert cli.main([*argv, "--fake_gain", "-8", "--results_dir", str(tmp_path / "little")]) == 0
    text = (tmp_path / "little" / "fake" / "test_method" / "metrics.txt").read_text()
    rows = read_rows(tmp_path / "little" / "fake" / "test_method" / "metrics.csv")
    assert all(float(r["psnr"]) > float(r["input_psnr"]) and float(r["rain_residue"]) > 0.8 for r in rows)
    assert "removed little of this rain" in text and "WORSE" not in text and "UNCHANGED" not in text
    assert any("removed little of this rain" in r.message and r.levelno == logging.WARNING for r in caplog.records)
    for residue in (None, 0.5, 0.79):  # no rain pixel anywhere, or most of the rain gone
        assert batch.rain_left_text({"rain_residue": residue}) is None
    assert "keep 80% of the rain" in batch.rain_left_text({"rain_residue": 0.8})
