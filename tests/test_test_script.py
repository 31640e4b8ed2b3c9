"""test.py: any size, any mode, every image, same-size RGB outputs, metrics with ground truth."""
import csv

import numpy as np
import pytest
from PIL import Image

import test as test_script
import train
from options.test_options import TestOptions
from tests.conftest import tiny_flags, write_images
from util.metrics import psnr, ssim


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny DCD-GAN trained for two iterations, shared by the tests below."""
    tmp = tmp_path_factory.mktemp("trained")
    root = tmp / "data"
    write_images(root / "trainA", 2, seed=1)
    write_images(root / "trainB", 2, seed=2)
    assert train.main(tiny_flags(root, tmp / "ck", "t") + ["--max_iters", "2"]) == 0
    return tmp


def run_test(trained, dataroot, *extra):
    return test_script.main(["--dataroot", str(dataroot), "--name", "t", "--checkpoints_dir", str(trained / "ck"),
                             "--results_dir", str(trained / "results"), "--gpu_ids", "-1", *extra])


def test_any_size_and_mode_gives_same_size_rgb(trained, tmp_path):
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (77, 123, 3), dtype=np.uint8)).save(folder / "wide.png")
    Image.fromarray(rng.integers(0, 255, (200, 300, 3), dtype=np.uint8)).save(folder / "sub" / "big.jpg")
    Image.fromarray(rng.integers(0, 255, (50, 31), dtype=np.uint8), mode="L").save(folder / "grey.png")
    Image.fromarray(rng.integers(0, 255, (33, 45, 4), dtype=np.uint8), mode="RGBA").save(folder / "alpha.png")
    Image.fromarray(rng.integers(0, 255, (9, 13, 3), dtype=np.uint8)).save(folder / "tiny.bmp")
    assert run_test(trained, folder) == 0
    out = trained / "results" / "t" / "test_latest"
    expected = {"wide.png": (123, 77), "sub/big.png": (300, 200), "grey.png": (31, 50), "alpha.png": (45, 33),
                "tiny.png": (13, 9)}
    for name, size in expected.items():
        with Image.open(out / "images" / name) as img:
            assert img.mode == "RGB" and img.size == size, name
    assert (out / "index.html").is_file()
    assert not (out / "metrics.csv").exists(), "no ground truth, no metrics"


def test_every_image_is_processed_and_num_test_limits(trained, tmp_path):
    write_images(tmp_path / "many" / "testA", 60, size=(20, 24))
    assert run_test(trained, tmp_path / "many", "--name", "t", "--results_dir", str(tmp_path / "r60")) == 0
    assert len(list((tmp_path / "r60" / "t" / "test_latest" / "images").glob("*.png"))) == 60
    assert run_test(trained, tmp_path / "many", "--results_dir", str(tmp_path / "r5"), "--num_test", "5") == 0
    assert len(list((tmp_path / "r5" / "t" / "test_latest" / "images").glob("*.png"))) == 5


def test_metrics_against_ground_truth(trained, tmp_path):
    root = tmp_path / "paired"
    write_images(root / "testA", 3, seed=5)
    write_images(root / "testB", 3, seed=6)
    assert run_test(trained, root) == 0
    out = trained / "results" / "t" / "test_latest"
    with open(out / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3
    for row in rows:
        restored = np.asarray(Image.open(out / "images" / row["name"]))
        gt = np.asarray(Image.open(root / "testB" / row["name"]).convert("RGB"))
        rainy = np.asarray(Image.open(root / "testA" / row["name"]).convert("RGB"))
        assert float(row["psnr"]) == pytest.approx(psnr(restored, gt, "y"), rel=1e-9)
        assert float(row["ssim"]) == pytest.approx(ssim(restored, gt, "y"), rel=1e-9)
        assert float(row["input_psnr"]) == pytest.approx(psnr(rainy, gt, "y"), rel=1e-9)
    assert "output PSNR" in (out / "metrics.txt").read_text()


def test_missing_checkpoint_is_a_clear_error(trained, tmp_path, caplog):
    write_images(tmp_path / "imgs", 1)
    assert run_test(trained, tmp_path / "imgs", "--epoch", "77") == 2
    assert "77.pt" in caplog.text and "does not exist" in caplog.text


def test_help_lists_only_test_flags_and_training_flags_are_ignored(capsys, caplog):
    with pytest.raises(SystemExit):
        test_script.main(["--help"])
    shown = capsys.readouterr().out
    assert "--tile_overlap" in shown and "--metric_channel" in shown
    assert not any(flag in shown for flag in ("--ngf", "--lambda_NCE", "--dcd_variant", "--model", "--lr"))
    opt = TestOptions().parse(["--dataroot", "x", "--model", "dcdgan", "--ngf", "8", "--tile", "64"])
    assert opt.tile == 64 and not hasattr(opt, "ngf")
    assert "test.py ignores --model dcdgan --ngf 8" in caplog.text
