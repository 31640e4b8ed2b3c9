"""evaluate.py: exit codes, printed table and CSV; the rain residue and dark artifact columns of
evaluate.py --input and of test.py's metrics."""
import csv
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import evaluate
from tests.conftest import save_tiny_dcdgan
from restoration import cli
from util.metrics import dark_artifacts, rain_residue

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture()
def folders(tmp_path):
    pred_dir, gt_dir = tmp_path / "pred", tmp_path / "gt"
    pred_dir.mkdir()
    gt_dir.mkdir()
    rng = np.random.default_rng(0)
    for name, offset in (("b", 10), ("a", 0)):
        gt = rng.integers(0, 240, (32, 32, 3)).astype(np.uint8)
        Image.fromarray(gt).save(gt_dir / f"{name}.png")
        Image.fromarray(gt + np.uint8(offset)).save(pred_dir / f"{name}.png")
    return pred_dir, gt_dir


def test_prints_table_and_writes_csv(folders, tmp_path, capsys):
    pred_dir, gt_dir = folders
    out_csv = tmp_path / "out" / "scores.csv"
    status = evaluate.main(["--pred", str(pred_dir), "--gt", str(gt_dir), "--channel", "rgb", "--csv", str(out_csv)])
    assert status == 0
    printed = capsys.readouterr().out
    assert "a " in printed and "b " in printed and "mean" in printed
    with open(out_csv, newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["name", "psnr", "ssim"]
    assert [r[0] for r in rows[1:]] == ["a", "b", "mean"]
    assert rows[1][1] == "inf" and float(rows[1][2]) == pytest.approx(1.0)
    assert float(rows[2][1]) == pytest.approx(20 * math.log10(255 / 10), abs=1e-4)
    assert rows[3][1] == "inf"


def test_missing_ground_truth_exits_2_with_message(folders, caplog):
    pred_dir, gt_dir = folders
    (gt_dir / "b.png").unlink()
    status = evaluate.main(["--pred", str(pred_dir), "--gt", str(gt_dir)])
    assert status == 2
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "b.png" in errors[0]


def test_command_line_failure_is_one_line_without_traceback(folders):
    pred_dir, gt_dir = folders
    (gt_dir / "a.png").unlink()
    proc = subprocess.run(
        [sys.executable, "evaluate.py", "--pred", str(pred_dir), "--gt", str(gt_dir)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "a.png" in lines[0]


@pytest.fixture()
def rainy_folders(tmp_path):
    """pred / input / gt: 'half' keeps half of a streak's brightness, 'blotch' has a 3x3 dark blotch."""
    dirs = {name: tmp_path / name for name in ("pred", "input", "gt")}
    for folder in dirs.values():
        folder.mkdir()
    gt = np.full((20, 20, 3), 100, np.uint8)
    rainy, half, blotch = gt.copy(), gt.copy(), gt.copy()
    rainy[2:18, 5] += 60
    half[2:18, 5] += 30
    blotch[8:11, 8:11] -= 30
    for name, pred, inp in (("half", half, rainy), ("blotch", blotch, gt)):
        for kind, image in (("pred", pred), ("input", inp), ("gt", gt)):
            Image.fromarray(image).save(dirs[kind] / f"{name}.png")
    return dirs


def test_input_adds_rain_residue_and_dark_artifacts(rainy_folders, tmp_path, capsys):
    d = rainy_folders
    out_csv = tmp_path / "scores.csv"
    assert evaluate.main(["--pred", str(d["pred"]), "--gt", str(d["gt"]), "--input", str(d["input"]),
                          "--csv", str(out_csv)]) == 0
    lines = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()}
    assert lines["name"] == ["name", "PSNR", "SSIM", "residue", "dark", "%"]
    assert lines["half"][3:] == ["0.500", "0.00"]
    assert lines["blotch"][3:] == ["-", "2.25"]  # no rain pixels; 9 of 400 pixels
    assert lines["mean"][3] == "0.500" and float(lines["mean"][4]) == pytest.approx(1.125, abs=0.006)
    assert "over the 1 images with rain" in " ".join(lines["mean"])
    with open(out_csv, newline="") as fh:
        rows = {row["name"]: row for row in csv.DictReader(fh)}
    assert list(rows) == ["blotch", "half", "mean"]
    assert rows["blotch"]["rain_residue"] == "" and float(rows["blotch"]["dark_artifacts"]) == pytest.approx(9 / 400)
    assert float(rows["half"]["rain_residue"]) == pytest.approx(0.5)
    assert float(rows["mean"]["rain_residue"]) == pytest.approx(0.5)
    assert float(rows["mean"]["dark_artifacts"]) == pytest.approx(9 / 800, abs=1e-6)


def test_input_errors_name_the_file_and_the_flag(rainy_folders, caplog, capsys):
    d = rainy_folders
    (d["input"] / "half.png").unlink()
    assert evaluate.main(["--pred", str(d["pred"]), "--gt", str(d["gt"]), "--input", str(d["input"])]) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "no input for" in errors[0] and "half.png" in errors[0]
    with pytest.raises(SystemExit) as stop:
        evaluate.main(["--pred", str(d["pred"]), "--no_reference", "--input", str(d["input"])])
    assert stop.value.code == 2 and "--input" in capsys.readouterr().err


def test_test_py_reports_residue_and_dark_artifacts_where_there_is_ground_truth(tiny_dataroot, tmp_path, caplog):
    save_tiny_dcdgan(tiny_dataroot, tmp_path / "ck", "t")
    assert cli.main(["--dataroot", str(tiny_dataroot), "--name", "t", "--checkpoints_dir", str(tmp_path / "ck"),
                     "--results_dir", str(tmp_path / "results"), "--gpu_ids", "-1",
                     "--nr_metrics", "false"]) == 0
    out = tmp_path / "results" / "t" / "test_latest"
    with open(out / "metrics.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2
    for row in rows:
        restored, rainy, gt = (np.asarray(Image.open(out / sub / row["name"])) for sub in ("images", "inputs", "gt"))
        expected = rain_residue(restored, rainy, gt)
        assert expected is not None  # independent random images: the input is far brighter in places
        assert float(row["rain_residue"]) == pytest.approx(expected, rel=1e-9)
        assert float(row["dark_artifacts"]) == pytest.approx(dark_artifacts(restored, rainy, gt), rel=1e-9)
    mean_residue = np.mean([float(r["rain_residue"]) for r in rows])
    mean_dark = np.mean([float(r["dark_artifacts"]) for r in rows])
    summary = (out / "metrics.txt").read_text().splitlines()[0]
    assert f"rain residue {mean_residue:.3f} (2 images with rain)" in summary
    assert f"dark artifacts {100 * mean_dark:.2f}% of pixels" in summary
    assert summary in caplog.text
