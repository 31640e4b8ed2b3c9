"""evaluate.py: exit codes, printed table and CSV."""
import csv
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import evaluate

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
