"""restoration/: one loader for every kind of restorer (a checkpoint, a shipped model, a method
without training), the methods' registry, test.py --model METHOD and the benchmark's method rows.

The methods are a stand-in written here (restoration/methods.py registers the real ones): a
module that brightens by --fake_gain levels, registered by monkeypatching METHOD_MODULES.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import restoration.loading as loading
from restoration import Restorer, cli, methods, open_restorer
from restoration.export import export_generator
from restoration.methods import MethodError, add_method_options, build_method, method_names
from scripts import benchmark_quality as bench
from scripts import export_onnx
from tests.conftest import save_tiny_dcdgan, write_images
from util.checkpoint import CheckpointError

FAKE_METHOD = '''
import numpy as np

NAME = "fake"


def add_options(parser):
    parser.add_argument("--fake_gain", type=int, default=10, help="levels added to every pixel")


class Brighten:
    def __init__(self, gain):
        self.gain = gain

    def restore_array(self, image):
        return np.clip(image.astype(np.int16) + self.gain, 0, 255).astype(np.uint8)

    def describe(self):
        return f"fake (brighten by {self.gain})"


def from_options(opt):
    return Brighten(opt.fake_gain)
'''


@pytest.fixture
def fake_method(tmp_path, monkeypatch):
    """Registers the method `fake` (and `missing`, whose module does not exist)."""
    folder = tmp_path / "methods"
    folder.mkdir()
    (folder / "fake_method_for_tests.py").write_text(FAKE_METHOD)
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setattr(methods, "METHOD_MODULES", {"fake": "fake_method_for_tests", "missing": "no_such_method_mod"})
    yield "fake"
    sys.modules.pop("fake_method_for_tests", None)


def brightened(image: np.ndarray, gain: int) -> np.ndarray:
    return np.clip(image.astype(np.int16) + gain, 0, 255).astype(np.uint8)


def test_the_registry_lists_importable_methods_and_builds_them_with_their_defaults(fake_method):
    assert method_names() == ["fake"]  # `missing` is registered but not in the checkout
    assert build_method("fake", None).describe() == "fake (brighten by 10)"
    assert build_method("fake", {"fake_gain": 3}).describe() == "fake (brighten by 3)"
    opt = argparse.Namespace(fake_gain=7, tile=0, name="unrelated")  # test.py's whole namespace
    assert build_method("fake", opt).describe() == "fake (brighten by 7)"
    parser = add_method_options(argparse.ArgumentParser())
    assert parser.parse_args(["--fake_gain", "4"]).fake_gain == 4
    with pytest.raises(MethodError, match="no method without training named 'missing'.*known: fake"):
        build_method("missing", None)
    with pytest.raises(MethodError, match="has no option fake_gian"):
        build_method("fake", {"fake_gian": 3})


def test_open_restorer_takes_exactly_one_source(fake_method):
    for sources in ({}, {"method": "fake", "pretrained": "rain_synthetic"}):
        with pytest.raises(ValueError, match="exactly one of checkpoint, pretrained and method"):
            open_restorer(**sources)


def test_a_method_restores_like_a_model_from_python(fake_method):
    image = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    restorer = Restorer.from_method("fake", {"fake_gain": 5}, tile=64)
    assert restorer.source.kind == "method" and restorer.source.describe() == "fake (brighten by 5)"
    assert restorer.source.digest == "" and "method fake (brighten by 5)" in restorer.backend_choice
    assert np.array_equal(restorer.restore_array(image), brightened(image, 5))
    assert np.array_equal(np.asarray(restorer.restore(Image.fromarray(image))), brightened(image, 5))
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        restorer.restore_array(image[..., 0])


def test_a_method_that_changes_the_shape_is_refused(fake_method):
    restorer = open_restorer(method="fake")
    restorer.method.restore_array = lambda image: image[1:]
    with pytest.raises(TypeError, match="must return the same shape in uint8"):
        restorer.restore_array(np.zeros((8, 8, 3), np.uint8))


def test_test_py_model_method_restores_without_a_checkpoint_and_names_the_method(fake_method, tiny_dataroot,
                                                                                 tmp_path):
    results = tmp_path / "results"
    assert cli.main(["--dataroot", str(tiny_dataroot), "--model", "fake", "--fake_gain", "3", "--gpu_ids", "-1",
                     "--checkpoints_dir", str(tmp_path / "no_checkpoints"), "--results_dir", str(results),
                     "--nr_metrics", "false"]) == 0
    page = results / "fake" / "test_method"
    inputs = sorted((tiny_dataroot / "testA").iterdir())
    assert sorted(p.name for p in (page / "images").iterdir()) == [p.with_suffix(".png").name for p in inputs]
    for path in inputs:
        restored = np.asarray(Image.open(page / "images" / path.with_suffix(".png").name))
        assert np.array_equal(restored, brightened(np.asarray(Image.open(path).convert("RGB")), 3))
    assert (page / "metrics.txt").read_text().splitlines()[-1] == "method: fake (brighten by 3)"
    assert "method: fake (brighten by 3)" in (page / "index.html").read_text()
    with open(page / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2 and all(r["checkpoint_sha256"] == "" for r in rows)
    assert not (tmp_path / "no_checkpoints").exists()


def test_a_method_with_pretrained_or_backwards_is_bad_usage(fake_method, tmp_path, capsys):
    for extra in (["--pretrained", "rain_synthetic"], ["--direction", "BtoA"]):
        with pytest.raises(SystemExit) as refused:
            cli.main(["--dataroot", str(tmp_path), "--model", "fake", "--gpu_ids", "-1", *extra])
        assert refused.value.code == 2
        assert "--model fake" in capsys.readouterr().err


@pytest.fixture
def shipped_with_wrong_card(tmp_path) -> Path:
    """checkpoints/run/latest.pt: a shipped model whose card (latest.md) states another SHA-256."""
    data = tmp_path / "data"
    write_images(data / "trainA", 1, seed=1)
    write_images(data / "trainB", 1, seed=2)
    save_tiny_dcdgan(data, tmp_path / "training", "t")
    shipped = tmp_path / "checkpoints" / "run" / "latest.pt"
    export_generator(tmp_path / "training" / "t" / "latest.pt", shipped)
    shipped.with_suffix(".md").write_text(f"| file | 0.1 MB, SHA-256 `{'0' * 64}` |\n")
    return shipped


def test_every_loader_checks_a_shipped_model_against_its_card(shipped_with_wrong_card, tmp_path, caplog):
    """export_onnx and the benchmark once loaded shipped files without the card's check."""
    shipped = shipped_with_wrong_card
    with pytest.raises(CheckpointError, match="is damaged or was replaced"):
        loading.load_generator(shipped)
    with pytest.raises(CheckpointError, match="is damaged or was replaced"):
        bench.score_checkpoint(shipped, tmp_path / "data", "y", 0)
    assert export_onnx.main(["--name", "run", "--checkpoints_dir", str(shipped.parent.parent),
                             "--out", str(tmp_path / "g.onnx")]) == 2
    assert "is damaged or was replaced" in caplog.text and not (tmp_path / "g.onnx").exists()


def test_a_shipped_file_is_hashed_once_per_load(shipped_with_wrong_card, monkeypatch):
    shipped = shipped_with_wrong_card
    hashed = []
    real_digest = loading.file_digest
    monkeypatch.setattr(loading, "file_digest", lambda path, *args: hashed.append(path) or real_digest(path, *args))
    full = real_digest(shipped, 64)
    shipped.with_suffix(".md").write_text(f"| file | 0.1 MB, SHA-256 `{full}` |\n")  # now the card is right
    restorer = open_restorer(checkpoint=shipped, backend="torch")
    assert hashed == [shipped] and restorer.source.digest == full[:12]


def test_the_benchmark_scores_a_method_as_a_row_without_training(fake_method, tiny_dataroot, tmp_path):
    out = tmp_path / "bench"
    assert bench.main(["--dataroot", str(tiny_dataroot), "--models", "fake", "--iters", "1", "--gpu_ids", "-1",
                       "--seeds", "0,1", "--out", str(out)]) == 0
    (run,) = json.loads((out / "results.json").read_text())["runs"]
    assert run["spec"] == "fake" and run["iterations"] == 0 and run["trained_params"] == 0 and "error" not in run
    assert run["images"] == 2 and run["clean_psnr"] is not None
    assert not (out / "checkpoints").exists()
    restored = out / "results" / "fake" / "test_method" / "images"
    for path in sorted((tiny_dataroot / "testA").iterdir()):
        image = np.asarray(Image.open(path).convert("RGB"))
        assert np.array_equal(np.asarray(Image.open(restored / path.with_suffix(".png").name)), brightened(image, 10))
    assert "| fake |" in (out / "table.md").read_text()
    assert bench.main(["--dataroot", str(tiny_dataroot), "--models", "fake:variant", "--iters", "1",
                       "--out", str(tmp_path / "o")]) == 2
