"""Fuzz: a folder of randomly mangled image files through test.py and the training loader.

Every file that can be decoded must be processed, every other one skipped by name, and
nothing may crash. The corpus is seeded, so a failure reproduces.
"""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from data import create_dataset
from options.train_options import TrainOptions
from tests.conftest import tiny_flags, write_images
from tests.test_bad_inputs import EXIT_SKIPPED, checkpoints, encode, noise, read_skipped, run_test_script  # noqa: F401
from training.trainer import build_loader
from util.image_io import IMG_EXTENSIONS, ImageReadError, load_rgb

# PIL warns, rather than fails, on some damaged TIFFs it can still decode: expected here.
pytestmark = pytest.mark.filterwarnings("ignore:(Truncated File Read|Corrupt EXIF data):UserWarning")

FORMATS = {"PNG": ".png", "JPEG": ".jpg", "BMP": ".bmp", "TIFF": ".tif", "WEBP": ".webp"}


def sources(rng: random.Random) -> list[bytes]:
    """Valid encodings of small images in several formats and modes."""
    out = []
    for i, fmt in enumerate(FORMATS):
        h, w = rng.randint(8, 40), rng.randint(8, 40)
        out.append(encode(noise(h, w, seed=i), fmt))
        if fmt in ("PNG", "TIFF"):
            out.append(encode(noise(h, w, channels=1, seed=i), fmt, mode="L"))
            out.append(encode(noise(h, w, channels=4, seed=i), fmt, mode="RGBA"))
    return out


def mangle(data: bytes, others: list[bytes], rng: random.Random) -> bytes:
    kind = rng.choice(["flip", "truncate", "header", "splice", "zero", "insert"])
    buf = bytearray(data)
    if kind == "flip":
        for _ in range(rng.randint(1, 24)):
            buf[rng.randrange(len(buf))] ^= 1 << rng.randrange(8)
    elif kind == "truncate":
        del buf[rng.randrange(len(buf)):]
    elif kind == "header":  # another format's first bytes on this body
        donor = rng.choice(others)
        size = rng.randint(2, 32)
        buf[:size] = donor[:size]
    elif kind == "splice":  # this header on another file's body
        donor = rng.choice(others)
        cut = rng.randint(8, 64)
        buf = buf[:cut] + donor[cut:]
    elif kind == "zero":
        start = rng.randrange(len(buf))
        end = min(len(buf), start + rng.randint(1, 64))
        buf[start:end] = bytes(end - start)
    else:
        at = rng.randrange(len(buf))
        buf[at:at] = rng.randbytes(rng.randint(1, 32))
    return bytes(buf)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, set[str], set[str]]:
    """36 mangled files and 6 intact ones under random image extensions.

    Returns the folder, the names the oracle (`load_rgb` here) can decode, and the intact names.
    """
    folder = tmp_path_factory.mktemp("fuzz") / "testA"
    folder.mkdir()
    rng = random.Random(2024)
    valid = sources(rng)
    intact = set()
    for i in range(42):
        data = rng.choice(valid)
        name = f"f{i:02d}{rng.choice(IMG_EXTENSIONS)}"
        if i % 7 == 0:
            intact.add(name)
        else:
            data = mangle(data, valid, rng)
        (folder / name).write_bytes(data)
    decodable = set()
    for path in folder.iterdir():
        try:
            load_rgb(path)
            decodable.add(path.name)
        except ImageReadError:
            pass
    assert intact <= decodable
    assert 6 < len(decodable) < 42, "the corpus should mix readable and unreadable files"
    return folder, decodable, intact


def test_test_script_processes_every_decodable_file_and_skips_the_rest(checkpoints, corpus, tmp_path):  # noqa: F811
    folder, decodable, _ = corpus
    results = tmp_path / "results"
    assert run_test_script(checkpoints, folder, results) == EXIT_SKIPPED
    out = results / "t" / "test_latest" / "images"
    assert sorted(p.name for p in out.iterdir()) == sorted(Path(n).stem + ".png" for n in decodable)
    skipped = read_skipped(results)
    assert sorted(Path(p).name for p in skipped) == sorted({p.name for p in folder.iterdir()} - decodable)
    assert all(reason.strip() for reason in skipped.values())


def test_training_loader_uses_only_decodable_files(corpus, tmp_path):
    folder, decodable, intact = corpus
    write_images(folder.parent / "trainB", 2, size=(36, 36))
    (folder.parent / "trainA").symlink_to(folder, target_is_directory=True)
    opt = TrainOptions().parse(tiny_flags(folder.parent, tmp_path / "ck") + ["--serial_batches"])
    dataset = create_dataset(opt)
    assert intact <= {Path(p).name for p in dataset.A_paths}
    loader, sampler = build_loader(dataset, opt)
    for epoch in (1, 2):
        sampler.set_epoch(epoch)
        seen = set()
        for batch in loader:
            assert batch["A"].shape == (1, 3, 32, 32) and np.isfinite(batch["A"].numpy()).all()
            seen.add(Path(batch["A_paths"][0]).name)
        assert seen == decodable, "every decodable file is used, and only those"
