"""test.py: any size, any mode, every image, same-size RGB outputs, metrics with ground truth;
each run's results its own, naming their checkpoint."""
import csv
import hashlib
import os

import numpy as np
import pytest
from PIL import Image

import evaluate
import restoration.restorer as restorer_module
import train
from options.test_options import TestOptions
from tests.conftest import tiny_flags, write_images
from restoration import cli
from restoration.cli import RestoreOptions
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
    return cli.main(["--dataroot", str(dataroot), "--name", "t", "--checkpoints_dir", str(trained / "ck"),
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
        cli.main(["--help"])
    shown = capsys.readouterr().out
    assert "--tile_overlap" in shown and "--metric_channel" in shown
    assert not any(flag in shown for flag in ("--ngf", "--lambda_NCE", "--dcd_variant", "--lr"))
    assert "--model METHOD" in shown and "without training" in shown  # --model names only a method without training
    opt = TestOptions().parse(["--dataroot", "x", "--model", "dcdgan", "--ngf", "8", "--tile", "64"])
    assert opt.tile == 64 and not hasattr(opt, "ngf")
    assert "test.py ignores --model dcdgan --ngf 8" in caplog.text
    caplog.clear()
    opt = RestoreOptions().parse(["--dataroot", "x", "--model", "dcdgan", "--ngf", "8", "--tile", "64"])
    assert opt.tile == 64 and opt.model is None and not hasattr(opt, "ngf")  # a trained model: the checkpoint's
    assert "test.py ignores --model dcdgan --ngf 8" in caplog.text


# ----- each run's results are its own, and say which checkpoint made them ---------------------
def test_a_second_run_leaves_only_its_own_outputs_naming_its_checkpoint(trained, tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    write_images(first / "testA", 3, seed=5)
    write_images(first / "testB", 3, seed=6)
    write_images(second, 1, seed=7, prefix="other")
    results = tmp_path / "results"
    assert run_test(trained, first, "--results_dir", str(results)) == 0
    out = results / "t" / "test_latest"
    assert (out / "metrics.csv").is_file() and (out / "gt").is_dir()
    assert run_test(trained, second, "--results_dir", str(results)) == 0
    assert sorted(p.name for p in (out / "images").iterdir()) == ["other000.png"]
    for stale in ("metrics.csv", "gt"):
        assert not (out / stale).exists(), f"{stale} of the first run would describe another run"
    assert "PSNR" not in (out / "metrics.txt").read_text()  # only this run's no-reference scores
    with open(out / "quality.csv") as fh:
        assert [row["name"] for row in csv.DictReader(fh)] == ["other000.png"]
    checkpoint = trained / "ck" / "t" / "latest.pt"
    digest = hashlib.sha256(checkpoint.read_bytes()).hexdigest()[:12]
    page = (out / "index.html").read_text(encoding="utf-8")
    assert f"checkpoint: {checkpoint} (epoch 1, iteration 2, sha256 {digest})" in page

    assert run_test(trained, first, "--results_dir", str(results)) == 0
    assert f"sha256 {digest}" in (out / "metrics.txt").read_text().splitlines()[-1]
    with open(out / "metrics.csv") as fh:
        assert {row["checkpoint_sha256"] for row in csv.DictReader(fh)} == {digest}


def test_names_that_are_not_utf8_are_restored_and_listed(trained, tmp_path):
    root = tmp_path / "paired"
    write_images(root / "testA", 1, seed=5)
    write_images(root / "testB", 1, seed=6)
    raw = b"rain\xff\xfe"  # Latin-1 bytes from an old camera: not UTF-8
    for side in ("testA", "testB"):
        os.rename(root / side / "img000.png", os.path.join(os.fsencode(root / side), raw + b".png"))
    results = tmp_path / "results"
    assert run_test(trained, root, "--results_dir", str(results)) == 0
    out = results / "t" / "test_latest"
    assert os.listdir(os.fsencode(out / "images")) == [raw + b".png"]
    assert "rain\\xff\\xfe.png" in (out / "metrics.csv").read_text(encoding="utf-8")
    assert "rain\\xff\\xfe.png" in (out / "index.html").read_text(encoding="utf-8")
    assert "images/rain%FF%FE.png" in (out / "index.html").read_text(encoding="utf-8"), "the link finds the file"

    csv_path = tmp_path / "scores.csv"
    assert evaluate.main(["--pred", str(out / "images"), "--gt", str(root / "testB"), "--csv", str(csv_path)]) == 0
    assert "rain\\xff\\xfe" in csv_path.read_text(encoding="utf-8")


def test_an_image_too_small_for_ssim_loses_only_its_own_scores(trained, tmp_path, caplog):
    root = tmp_path / "paired"
    write_images(root / "testA", 2, seed=5)
    write_images(root / "testB", 2, seed=6)
    write_images(root / "testA", 1, size=(8, 9), seed=7, prefix="small")
    write_images(root / "testB", 1, size=(8, 9), seed=8, prefix="small")
    results = tmp_path / "results"
    assert run_test(trained, root, "--results_dir", str(results)) == 0
    out = results / "t" / "test_latest"
    with open(out / "metrics.csv") as fh:
        assert [row["name"] for row in csv.DictReader(fh)] == ["img000.png", "img001.png"]
    assert (out / "images" / "small000.png").is_file()
    assert "no metrics for small000.png" in caplog.text
    # A border that leaves nothing of an image is refused, as evaluate.py refuses it (issue 32).
    assert run_test(trained, root, "--results_dir", str(results), "--crop_border", "30") == 2  # > every image
    assert caplog.records[-1].getMessage().startswith("--crop_border 30 leaves nothing of the 40x48 image")


def test_an_image_too_large_for_memory_is_skipped_with_a_hint(trained, tmp_path, monkeypatch):
    write_images(tmp_path / "photos", 1, size=(20, 24), prefix="small")
    write_images(tmp_path / "photos", 1, size=(90, 120), prefix="huge")
    restore = restorer_module.restore

    def allocator(net, x, tile, overlap):
        if x.shape[-1] > 100 and not tile:
            raise RuntimeError("[enforce fail at alloc_cpu.cpp:121] DefaultCPUAllocator: can't allocate memory: "
                               "you tried to allocate 95883599872 bytes. Error code 12 (Cannot allocate memory)")
        return restore(net, x, tile, overlap)

    monkeypatch.setattr(restorer_module, "restore", allocator)
    results = tmp_path / "results"
    assert run_test(trained, tmp_path / "photos", "--results_dir", str(results)) == 3
    out = results / "t" / "test_latest"
    assert [p.name for p in (out / "images").iterdir()] == ["small000.png"]
    skipped = (out / "skipped.txt").read_text()
    assert "huge000.png" in skipped and "out of memory for a 120x90 image: rerun with --tile 512" in skipped
    assert run_test(trained, tmp_path / "photos", "--results_dir", str(results), "--tile", "64") == 0


def test_a_results_dir_that_is_a_file_is_a_one_line_error(trained, tmp_path, caplog):
    write_images(tmp_path / "photos", 1)
    (tmp_path / "results").write_text("not a folder")
    assert run_test(trained, tmp_path / "photos", "--results_dir", str(tmp_path / "results")) == 2
    message = caplog.records[-1].getMessage()
    assert message.startswith("cannot write the results:") and str(tmp_path / "results") in message
