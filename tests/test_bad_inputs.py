"""Bad inputs: every unreadable file is named and skipped, every readable one is used.

Covers the image reader (corrupt, truncated, empty, non-image, FIFO, dangling link, unreadable,
odd modes, EXIF), the training data (scan at start, breakage mid-epoch, small images, empty or
missing folders) and test.py (restores what it can, lists the rest, exits 3).
"""
from __future__ import annotations

import io
import logging
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import train
from data import create_dataset
from data.image_folder import DatasetError, make_dataset
from options.train_options import TrainOptions
from tests.conftest import tiny_flags, write_images
from restoration import cli
from util.image_io import ImageReadError, load_rgb, probe_image

EXIT_SKIPPED = 3
EXIT_USAGE = 2


# ----- helpers shared with test_fuzz.py and test_security.py --------------------------------
def encode(array: np.ndarray, fmt: str = "PNG", mode: str | None = None, **params) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array, mode=mode).save(buffer, format=fmt, **params)
    return buffer.getvalue()


def noise(h: int = 24, w: int = 40, channels: int = 3, seed: int = 0) -> np.ndarray:
    shape = (h, w, channels) if channels > 1 else (h, w)
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> Path:
    """A checkpoints dir with run 't': a tiny DCD-GAN trained for one iteration."""
    tmp = tmp_path_factory.mktemp("trained")
    write_images(tmp / "data" / "trainA", 1, seed=1)
    write_images(tmp / "data" / "trainB", 1, seed=2)
    assert train.main(tiny_flags(tmp / "data", tmp / "ck", "t") + ["--max_iters", "1"]) == 0
    return tmp / "ck"


def run_test_script(checkpoints: Path, dataroot: Path, results: Path, *extra: str) -> int:
    return cli.main(["--dataroot", str(dataroot), "--name", "t", "--checkpoints_dir", str(checkpoints),
                     "--results_dir", str(results), "--gpu_ids", "-1", *extra])


def read_skipped(results: Path) -> dict[str, str]:
    text = (results / "t" / "test_latest" / "skipped.txt").read_text(encoding="utf-8")
    return dict(line.split("\t", 1) for line in text.splitlines())


# ----- bad files ---------------------------------------------------------------------------
def png_claiming(width: int, height: int) -> bytes:
    """A well-formed PNG header announcing a huge image (a decompression bomb)."""
    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def write_bad_files(folder: Path) -> dict[str, str]:
    """Unreadable files of every kind; returns name -> a word its skip reason must contain."""
    folder.mkdir(parents=True, exist_ok=True)
    png = encode(noise())
    (folder / "zero.png").write_bytes(b"")
    (folder / "notes.jpg").write_text("not a picture, just notes\n")
    (folder / "garbage.png").write_bytes(np.random.default_rng(1).bytes(500))
    (folder / "truncated.png").write_bytes(png[: len(png) // 2])
    (folder / "wrong_magic.png").write_bytes(b"\x00" * 8 + png[8:])
    (folder / "bomb.png").write_bytes(png_claiming(60000, 60000))
    os.mkfifo(folder / "fifo.png")
    os.symlink(folder / "no_such_file.png", folder / "dangling.png")
    (folder / "locked.png").write_bytes(png)  # made unreadable by `deny_reading`
    return {"zero.png": "empty", "notes.jpg": "UnidentifiedImageError", "garbage.png": "UnidentifiedImageError",
            "truncated.png": "truncated", "wrong_magic.png": "UnidentifiedImageError",
            "bomb.png": "DecompressionBombError",
            "fifo.png": "not a regular file", "dangling.png": "FileNotFoundError", "locked.png": "PermissionError"}


@pytest.fixture
def deny_reading(monkeypatch):
    """Files named locked.* raise PermissionError on open (tests run as root, where chmod 000 reads fine)."""
    real_open = Image.open

    def guarded_open(fp, *args, **kwargs):
        if Path(str(fp)).stem == "locked":
            raise PermissionError(13, "Permission denied", str(fp))
        return real_open(fp, *args, **kwargs)

    monkeypatch.setattr(Image, "open", guarded_open)


def test_every_bad_file_raises_an_error_naming_it_and_why(tmp_path, deny_reading):
    expected = write_bad_files(tmp_path)
    for name, reason in expected.items():
        with pytest.raises(ImageReadError) as info:
            load_rgb(tmp_path / name)
        assert info.value.path == str(tmp_path / name) and name in str(info.value)
        assert reason in info.value.reason, (name, info.value.reason)
    # The cheap header probe catches all of them except the truncated pixel data.
    for name in set(expected) - {"truncated.png"}:
        with pytest.raises(ImageReadError):
            probe_image(tmp_path / name)
    assert probe_image(tmp_path / "truncated.png") == (40, 24)


# ----- odd but valid files -----------------------------------------------------------------
def write_odd_images(folder: Path) -> dict[str, tuple[int, int]]:
    """Valid images in every awkward mode and name; returns name -> expected RGB (width, height)."""
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(noise(seed=2)).save(folder / "rain drop 01.png")
    Image.fromarray(noise(seed=3)).save(folder / "régen_雨.png")
    Image.fromarray(noise(channels=1, seed=4), mode="L").save(folder / "grey.png")
    rgba = noise(channels=4, seed=5)
    rgba[0, 0, 3] = 0
    Image.fromarray(rgba, mode="RGBA").save(folder / "alpha.png")
    Image.fromarray(noise(seed=6)).convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(folder / "palette.png")
    deep = np.full((24, 40), 65535, dtype=np.uint16)
    deep[:, :20] = 0
    Image.fromarray(deep).save(folder / "deep16.png")
    Image.fromarray(noise(seed=7)).convert("CMYK").save(folder / "cmyk.jpg")
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    Image.fromarray(noise(seed=8)).save(folder / "phone.jpg", exif=exif)
    sizes = {name: (40, 24) for name in ("rain drop 01.png", "régen_雨.png", "grey.png", "alpha.png",
                                         "palette.png", "deep16.png", "cmyk.jpg")}
    sizes["phone.jpg"] = (24, 40)
    return sizes


def test_odd_modes_become_8bit_rgb(tmp_path):
    sizes = write_odd_images(tmp_path)
    for name, size in sizes.items():
        img = load_rgb(tmp_path / name)
        assert img.mode == "RGB" and img.size == size, name
    alpha = np.asarray(load_rgb(tmp_path / "alpha.png"))
    assert alpha[0, 0].tolist() == [255, 255, 255], "transparent pixels are composited on white"
    deep = np.asarray(load_rgb(tmp_path / "deep16.png"))
    assert deep[0, 0].tolist() == [0, 0, 0] and deep[0, -1].tolist() == [255, 255, 255], "16-bit range is rescaled"
    palette_src = Image.open(tmp_path / "palette.png").convert("RGB")
    assert np.array_equal(np.asarray(load_rgb(tmp_path / "palette.png")), np.asarray(palette_src))


def test_float_tiff_in_0_to_1_keeps_its_brightness(tmp_path):
    """Scientific and HDR tools write float TIFFs scaled to [0, 1]; clipping at 1 made them black."""
    ramp = np.tile(np.linspace(0.0, 1.0, 40, dtype=np.float32), (24, 1))
    Image.fromarray(ramp).save(tmp_path / "scan.tif")
    grey = np.asarray(load_rgb(tmp_path / "scan.tif"))[0, :, 0].astype(int)
    assert grey[0] == 0 and grey[-1] == 255 and abs(grey[20] - round(20 / 39 * 255)) <= 1


# ----- training data -----------------------------------------------------------------------
def dataset_for(root: Path, tmp_path: Path, *extra: str):
    return create_dataset(TrainOptions().parse(tiny_flags(root, tmp_path / "ck") + list(extra)))


def test_training_scan_names_and_drops_unreadable_files(tmp_path, deny_reading, caplog):
    root = tmp_path / "data"
    bad = write_bad_files(root / "trainA")
    sizes = write_odd_images(root / "trainA")
    write_images(root / "trainB", 2)
    with caplog.at_level(logging.WARNING):
        dataset = dataset_for(root, tmp_path)
    assert sorted(Path(p).name for p in dataset.A_paths) == sorted(set(sizes) | {"truncated.png"})
    assert f"{len(bad) - 1} of {len(bad) + len(sizes)} images in '{root / 'trainA'}'" in caplog.text
    for name in set(bad) - {"truncated.png"}:
        assert str(root / "trainA" / name) in caplog.text
    # The truncated file passes the header scan; loading it falls through to the next file.
    caplog.clear()
    for index in range(len(dataset)):
        sample = dataset[(index, 0)]
        assert sample["A"].shape == (3, 32, 32) and Path(sample["A_paths"]).name in sizes
    assert "truncated.png" in caplog.text


def test_file_broken_after_the_scan_is_skipped_mid_epoch(tmp_path, caplog):
    root = tmp_path / "data"
    paths = write_images(root / "trainA", 3)
    write_images(root / "trainB", 3, seed=1)
    dataset = dataset_for(root, tmp_path, "--serial_batches")
    paths[1].write_bytes(b"overwritten by a crashed copy")
    paths[2].unlink()
    samples = [dataset[(i, 0)] for i in range(3)]
    assert [s["A_paths"] for s in samples] == [str(paths[0])] * 3
    assert str(paths[1]) in caplog.text and str(paths[2]) in caplog.text


def test_small_images_are_upscaled_with_one_warning_per_file(tmp_path, caplog):
    root = tmp_path / "data"
    small = write_images(root / "trainA", 2, size=(20, 26))
    write_images(root / "trainB", 2, size=(40, 40), seed=1)
    dataset = dataset_for(root, tmp_path, "--preprocess", "crop")
    with caplog.at_level(logging.WARNING):
        for epoch in range(3):
            for index in range(len(dataset)):
                assert dataset[(index, epoch)]["A"].shape == (3, 32, 32)
    for path in small:
        assert caplog.text.count(f"{path}: 26x20 is smaller than --crop_size 32") == 1


@pytest.mark.parametrize("problem", ["missing trainA", "empty trainB", "trainA all unreadable",
                                     "trainB only non-images"])
def test_training_refuses_an_unusable_dataset_naming_the_folder(tmp_path, caplog, problem):
    root = tmp_path / "data"
    write_images(root / "trainA", 2)
    write_images(root / "trainB", 2, seed=1)
    folder = root / ("trainA" if "trainA" in problem else "trainB")
    for path in folder.iterdir():
        path.unlink()
    if problem == "missing trainA":
        folder.rmdir()
    elif problem == "trainA all unreadable":
        (folder / "a.png").write_bytes(b"")
        (folder / "b.jpg").write_text("text")
    elif problem == "trainB only non-images":
        (folder / "readme.txt").write_text("images go here")
    assert train.main(tiny_flags(root, tmp_path / "ck")) == EXIT_USAGE
    assert str(folder) in caplog.text
    assert not (tmp_path / "ck" / "tiny" / "latest.pt").exists()


# ----- test.py -----------------------------------------------------------------------------
def test_test_script_restores_every_readable_image_and_lists_the_rest(checkpoints, tmp_path, deny_reading):
    folder = tmp_path / "photos"
    bad = write_bad_files(folder)
    sizes = write_odd_images(folder)
    (folder / "folder.png").mkdir()  # a directory with an image name is no file: ignored
    results = tmp_path / "results"
    assert run_test_script(checkpoints, folder, results) == EXIT_SKIPPED
    out = results / "t" / "test_latest"
    for name, size in sizes.items():
        with Image.open(out / "images" / Path(name).with_suffix(".png")) as img:
            assert img.mode == "RGB" and img.size == size, name
    assert len(list((out / "images").iterdir())) == len(sizes)
    skipped = read_skipped(results)
    assert sorted(skipped) == sorted(str(folder / name) for name in bad)
    for name, reason in bad.items():
        assert reason in skipped[str(folder / name)]
    page = (out / "index.html").read_text(encoding="utf-8")
    assert "régen_雨.png" in page and "rain drop 01.png" in page

    # A clean rerun exits 0 and removes the stale list.
    for name in bad:
        os.unlink(folder / name)
    assert run_test_script(checkpoints, folder, results) == 0
    assert not (out / "skipped.txt").exists()


def test_unreadable_ground_truth_keeps_the_output_without_metrics(checkpoints, tmp_path, caplog):
    root = tmp_path / "paired"
    write_images(root / "testA", 2)
    write_images(root / "testB", 2, seed=1)
    (root / "testB" / "img001.png").write_bytes(b"")
    results = tmp_path / "results"
    assert run_test_script(checkpoints, root, results) == 0
    out = results / "t" / "test_latest"
    assert sorted(p.name for p in (out / "images").iterdir()) == ["img000.png", "img001.png"]
    assert (out / "metrics.csv").read_text().count("img0") == 1
    assert "img001.png" in caplog.text and "file is empty" in caplog.text


@pytest.mark.parametrize("problem", ["no testA", "empty testA", "missing folder"])
def test_test_script_refuses_missing_or_empty_folders(checkpoints, tmp_path, caplog, problem):
    root = tmp_path / "data"
    write_images(root / "trainA", 1)
    if problem == "empty testA":
        (root / "testA").mkdir()
    dataroot = tmp_path / "nowhere" if problem == "missing folder" else root
    assert run_test_script(checkpoints, dataroot, tmp_path / "results") == EXIT_USAGE
    expected = dataroot if problem == "missing folder" else root / "testA"
    assert str(expected) in caplog.text


def test_make_dataset_lists_each_file_once_whatever_its_name(tmp_path):
    sizes = write_odd_images(tmp_path)
    (tmp_path / "folder.png").mkdir()
    os.symlink(tmp_path, tmp_path / "folder.png" / "loop")  # a link to a parent: os.walk alone would recurse
    assert sorted(Path(p).name for p in make_dataset(tmp_path)) == sorted(sizes)
    with pytest.raises(DatasetError, match="not a folder"):
        make_dataset(tmp_path / "missing")
