"""Shipped models and the Python interface: export a tiny run's generator, restore with
test.py --pretrained (no checkpoints/ folder), one image file as --dataroot, and Restorer
on PIL images and arrays, whole and tiled; no-reference scores on the page and in quality.csv."""
from __future__ import annotations

import csv
import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import train
from restoration import Restorer, cli
from restoration.loading import load_generator, pretrained_path
from restoration.shipped import MAX_SHIPPED_MB, SHIPPED_KIND
from tests.conftest import tiny_flags, write_images
from tests.working_tree import tracked_files
from util.checkpoint import CheckpointError
from util.no_reference import niqe, piqe

REPO = Path(__file__).resolve().parent.parent


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


export_pretrained = load_script("export_pretrained")


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    """A tiny DCD-GAN with an EMA generator, trained 2 iterations, exported to tiny.pt."""
    tmp = tmp_path_factory.mktemp("shipped")
    root = tmp / "data"
    write_images(root / "trainA", 2, seed=1)
    write_images(root / "trainB", 2, seed=2)
    assert train.main(tiny_flags(root, tmp / "ck", "run") + ["--max_iters", "2", "--ema_decay", "0.9"]) == 0
    out = tmp / "models" / "tiny.pt"
    assert export_pretrained.main(["--name", "run", "--checkpoints_dir", str(tmp / "ck"), "--out", str(out)]) == 0
    return tmp, out


def test_the_file_holds_only_the_ema_generator_and_rebuilds_it(shipped):
    tmp, out = shipped
    state = torch.load(out, weights_only=True)
    assert state["kind"] == SHIPPED_KIND and list(state["nets"]) == ["G_A_ema"]
    assert state["test_nets"] == {"AtoB": "G_A_ema"} and "optimizers" not in state
    assert state["opt"]["ngf"] == 8 and state["opt"]["netG"] == "resnet_6blocks" and "lr" not in state["opt"]
    assert out.stat().st_size < MAX_SHIPPED_MB * 1e6
    net, source = load_generator(out)
    training, _ = load_generator(tmp / "ck" / "run" / "latest.pt")
    for (name, a), b in zip(net.state_dict().items(), training.state_dict().values()):
        assert torch.equal(a, b), name
    assert "epoch 1, iteration 2" in source.describe()
    card = out.with_suffix(".md").read_text()
    assert card.startswith("# tiny") and "`netG_A_ema`" in card and "TODO" in card
    assert "resnet_6blocks" in card and str(tmp / "data") in card


def test_half_weights_restore_like_float32(shipped, tmp_path):
    tmp, out = shipped
    half = tmp_path / "half.pt"
    assert export_pretrained.main(["--name", "run", "--checkpoints_dir", str(tmp / "ck"), "--out", str(half),
                                   "--half"]) == 0
    assert half.stat().st_size < 0.6 * out.stat().st_size
    image = np.random.default_rng(0).integers(0, 256, (40, 52, 3), dtype=np.uint8)
    difference = Restorer.from_pretrained(str(half)).restore(image).astype(int) - Restorer.from_pretrained(
        str(out)).restore(image)
    assert np.abs(difference).max() <= 2


def test_export_refuses_a_file_over_the_limit_and_a_bad_out(shipped, tmp_path, caplog):
    tmp, _ = shipped
    big = tmp_path / "big.pt"
    assert export_pretrained.main(["--name", "run", "--checkpoints_dir", str(tmp / "ck"), "--out", str(big),
                                   "--max_mb", "0.001"]) == 2
    assert not big.exists() and "over the 0.0 MB" in caplog.text
    with pytest.raises(SystemExit) as stop:
        export_pretrained.main(["--name", "run", "--out", str(tmp_path / "model.pth")])
    assert stop.value.code == 2
    assert export_pretrained.main(["--name", "nothing", "--checkpoints_dir", str(tmp / "ck"),
                                   "--out", str(tmp_path / "x.pt")]) == 2


def test_restorer_takes_pil_and_arrays_on_any_size_and_tiles(shipped):
    _, out = shipped
    restorer = Restorer.from_pretrained(str(out))
    rng = np.random.default_rng(1)
    array = rng.integers(0, 256, (37, 81, 3), dtype=np.uint8)
    restored = restorer.restore(array)
    assert isinstance(restored, np.ndarray) and restored.shape == array.shape and restored.dtype == np.uint8
    grey = Image.fromarray(array[..., 0], mode="L")
    as_pil = restorer.restore(grey)
    assert isinstance(as_pil, Image.Image) and as_pil.mode == "RGB" and as_pil.size == (81, 37)
    assert np.array_equal(restorer.restore(Image.fromarray(array)), restored)
    big = rng.integers(0, 256, (150, 170, 3), dtype=np.uint8)
    tiled = Restorer.from_pretrained(str(out), tile=64, tile_overlap=16).restore(big)
    assert tiled.shape == big.shape
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        restorer.restore(array.astype(np.float32))


def test_from_pretrained_by_name_in_a_folder_and_a_clear_error(shipped):
    _, out = shipped
    assert pretrained_path("tiny", out.parent) == out
    assert Restorer.from_pretrained("tiny", folder=out.parent).source.path == out
    with pytest.raises(CheckpointError, match="no shipped model .*available in .*: tiny"):
        pretrained_path("rain_missing", out.parent)


def run_test(*args) -> int:
    return cli.main(["--gpu_ids", "-1", *args])


def test_test_py_pretrained_restores_a_folder_with_scores_and_no_checkpoints(shipped, tmp_path, monkeypatch):
    _, out = shipped
    monkeypatch.chdir(tmp_path)  # no checkpoints/ folder here
    photos = tmp_path / "photos"
    write_images(photos, 2, size=(200, 100), seed=3)
    write_images(photos, 1, size=(40, 48), seed=4, prefix="small")
    assert run_test("--dataroot", str(photos), "--pretrained", str(out), "--results_dir", "res") == 0
    page_dir = tmp_path / "res" / "tiny" / "test_pretrained"
    assert sorted(p.name for p in (page_dir / "images").iterdir()) == ["img000.png", "img001.png", "small000.png"]
    assert not (page_dir / "metrics.csv").exists() and not (tmp_path / "checkpoints").exists()
    with open(page_dir / "quality.csv") as fh:
        rows = {row["name"]: row for row in csv.DictReader(fh)}
    restored = np.asarray(Image.open(page_dir / "images" / "img000.png"))
    rainy = np.asarray(Image.open(photos / "img000.png"))
    assert float(rows["img000.png"]["niqe"]) == pytest.approx(niqe(restored), rel=1e-9)
    assert float(rows["img000.png"]["input_piqe"]) == pytest.approx(piqe(rainy), rel=1e-9)
    assert rows["small000.png"]["niqe"] == "" and rows["small000.png"]["piqe"] != ""
    summary = (page_dir / "metrics.txt").read_text()
    assert "output NIQE" in summary and "input NIQE" in summary and "(NIQE on 2: it needs 192 x 96 pixels)" in summary
    page = (page_dir / "index.html").read_text()
    assert "<title>tiny / pretrained</title>" in page and f"checkpoint: {out}" in page
    assert "input NIQE" in page and "PIQE" in page


def test_one_image_file_as_dataroot_with_ground_truth(shipped, tmp_path):
    _, out = shipped
    write_images(tmp_path / "rainy", 2, seed=5)
    write_images(tmp_path / "clean", 2, seed=6)
    assert run_test("--dataroot", str(tmp_path / "rainy" / "img001.png"), "--pretrained", str(out),
                    "--gt_dir", str(tmp_path / "clean"), "--results_dir", str(tmp_path / "res")) == 0
    page_dir = tmp_path / "res" / "tiny" / "test_pretrained"
    assert [p.name for p in (page_dir / "images").iterdir()] == ["img001.png"]
    with open(page_dir / "metrics.csv") as fh:
        assert [row["name"] for row in csv.DictReader(fh)] == ["img001.png"]
    assert (page_dir / "quality.csv").is_file()  # no-reference scores also with ground truth
    (tmp_path / "notes.txt").write_text("not an image")
    assert run_test("--dataroot", str(tmp_path / "notes.txt"), "--pretrained", str(out)) == 2


def test_a_missing_shipped_model_or_another_direction_is_a_one_line_error(tmp_path, caplog, capsys):
    write_images(tmp_path / "imgs", 1)
    assert run_test("--dataroot", str(tmp_path / "imgs"), "--pretrained", "no_such_model",
                    "--results_dir", str(tmp_path / "res")) == 2
    assert "no shipped model" in caplog.text and "no_such_model.pt" in caplog.text
    with pytest.raises(SystemExit) as stop:
        run_test("--dataroot", str(tmp_path / "imgs"), "--pretrained", "x", "--direction", "BtoA")
    assert stop.value.code == 2 and "restores (AtoB) only" in capsys.readouterr().err


def test_nr_metrics_can_be_switched_off(shipped, tmp_path):
    _, out = shipped
    write_images(tmp_path / "imgs", 1)
    assert run_test("--dataroot", str(tmp_path / "imgs"), "--pretrained", str(out), "--nr_metrics", "false",
                    "--results_dir", str(tmp_path / "res")) == 0
    assert not (tmp_path / "res" / "tiny" / "test_pretrained" / "quality.csv").exists()


def test_script_runs_as_a_command(shipped, tmp_path):
    tmp, _ = shipped
    out = tmp_path / "cmd.pt"
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "export_pretrained.py"), "--name", "run",
                           "--checkpoints_dir", str(tmp / "ck"), "--out", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert out.is_file() and out.with_suffix(".md").is_file()


# The committed models only: one a user exported into pretrained/ (with a card still to fill) is theirs.
@pytest.mark.parametrize("model_file", tracked_files("pretrained/*.pt"), ids=lambda p: p.stem)
def test_every_committed_model_has_a_filled_card_and_restores(model_file):
    assert model_file.stat().st_size <= MAX_SHIPPED_MB * 1024 * 1024
    card = model_file.with_suffix(".md")
    assert card.is_file() and "TODO" not in card.read_text(), f"{card}: the model card is missing or unfilled"
    restorer = Restorer.from_pretrained(model_file.stem)
    if torch.load(model_file, weights_only=True)["opt"].get("haze_layer", "none") != "none":
        # A dehazer: a textured scene under a grey veil (t = 0.5, A = 0.9) must come out darker
        # and with more contrast, towards the scene (which has 2x the hazy image's contrast).
        rng = np.random.default_rng(0)
        scene = rng.uniform(0.0, 0.6, (48, 64, 3))
        hazy = np.round((scene * 0.5 + 0.9 * 0.5) * 255).astype(np.uint8)
        restored = np.asarray(restorer.restore(Image.fromarray(hazy))).astype(np.float64)
        assert restored.shape == hazy.shape
        assert restored.std() > hazy.std() * 1.5 and restored.mean() < hazy.mean(), "the veil was not lifted"
        return
    rainy = np.full((40, 52, 3), 128, np.uint8)
    rainy[:, ::6] = 250  # bright vertical streaks on grey
    restored = np.asarray(restorer.restore(Image.fromarray(rainy)))
    assert restored.shape == rainy.shape
    assert restored[:, ::6].mean() < rainy[:, ::6].mean(), "the streaks were not dimmed at all"
