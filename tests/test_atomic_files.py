"""Files written whole or not at all (util/atomic_file.py): readable like an ordinary write,
and a full disk reported in one line with nothing half-written left behind.

A full disk is simulated: every file the atomic writer opens accepts `room` bytes, then
raises ENOSPC, as a write(2) on a full device does.
"""
from __future__ import annotations

import errno
import os
import stat

import numpy as np
import pytest
import torch

import train
from datasets import make_synthetic, prepare
from tests.conftest import tiny_flags, write_images
from restoration import cli
from tests.test_prepare import _img
from util.atomic_file import DiskFullError, atomic_write
from util.checkpoint import load_checkpoint, save_checkpoint
from util.html import save_test_page
from util.image_io import save_image

EXIT_USAGE = 2


class FillingFile:
    """A file on a device with `room` bytes free."""

    def __init__(self, fh, room: int):
        self._fh, self._room = fh, room

    def write(self, data) -> int:
        self._room -= len(data)
        if self._room < 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        return self._fh.write(data)

    def __getattr__(self, name):
        return getattr(self._fh, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self._fh.close()


@pytest.fixture
def full_disk(monkeypatch):
    """Call with the bytes each atomically written file may take before the device is full."""
    real_fdopen = os.fdopen

    def fill_after(room: int) -> None:
        monkeypatch.setattr(os, "fdopen", lambda fd, *args, **kwargs: FillingFile(real_fdopen(fd, *args, **kwargs),
                                                                                  room))
    return fill_after


def leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.rglob("*.tmp"))


# ----- permissions --------------------------------------------------------------------------
@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_files_get_the_permissions_of_an_ordinary_write(tmp_path, umask):
    previous = os.umask(umask)
    try:
        save_checkpoint({"nets": {}}, tmp_path / "latest.pt")
        save_image(np.zeros((4, 4, 3), np.uint8), tmp_path / "out.png")
        save_test_page(tmp_path, [], "page")
        with open(tmp_path / "ordinary.txt", "w") as fh:
            fh.write("x")
    finally:
        os.umask(previous)
    expected = 0o666 & ~umask
    assert stat.S_IMODE((tmp_path / "ordinary.txt").stat().st_mode) == expected
    for name in ("latest.pt", "out.png", "index.html"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == expected, name


# ----- a full disk ---------------------------------------------------------------------------
def test_a_full_disk_keeps_the_previous_checkpoint_and_names_device_and_file(tmp_path, full_disk):
    path = tmp_path / "latest.pt"
    save_checkpoint({"nets": {"G": {"w": torch.ones(10)}}}, path)
    before = path.read_bytes()
    full_disk(1000)
    with pytest.raises(DiskFullError) as info:
        save_checkpoint({"nets": {"G": {"w": torch.ones(100_000)}}}, path)
    message = str(info.value)
    assert message.startswith("no space left on /") and f"while writing '{path}'" in message
    assert "\n" not in message
    assert path.read_bytes() == before and leftovers(tmp_path) == []
    assert torch.equal(load_checkpoint(path)["nets"]["G"]["w"], torch.ones(10))


def test_text_and_images_are_removed_when_the_disk_fills(tmp_path, full_disk):
    full_disk(10)
    with pytest.raises(DiskFullError):
        save_image(np.zeros((64, 64, 3), np.uint8), tmp_path / "a.png")
    with pytest.raises(DiskFullError):
        with atomic_write(tmp_path / "page.html", "w") as fh:
            fh.write("x" * 100)
    assert list(tmp_path.iterdir()) == []


def test_training_stops_with_one_line_and_keeps_its_checkpoint(tmp_path, full_disk, caplog):
    write_images(tmp_path / "data" / "trainA", 2, seed=1)
    write_images(tmp_path / "data" / "trainB", 2, seed=2)
    flags = tiny_flags(tmp_path / "data", tmp_path / "ck", "run") + ["--n_epochs", "1", "--n_epochs_decay", "1"]
    assert train.main(flags + ["--n_epochs_decay", "0"]) == 0
    run_dir = tmp_path / "ck" / "run"
    before = (run_dir / "latest.pt").read_bytes()
    full_disk(200_000)  # room for pages and images, not for a checkpoint
    assert train.main(flags + ["--continue_train"]) == EXIT_USAGE
    message = caplog.records[-1].getMessage()
    assert "no space left on" in message and "latest.pt" in message
    assert (run_dir / "latest.pt").read_bytes() == before and leftovers(run_dir) == []


def test_test_script_stops_with_one_line(tmp_path, full_disk, caplog):
    write_images(tmp_path / "data" / "trainA", 1, seed=1)
    write_images(tmp_path / "data" / "trainB", 1, seed=2)
    assert train.main(tiny_flags(tmp_path / "data", tmp_path / "ck", "t") + ["--max_iters", "1"]) == 0
    write_images(tmp_path / "photos", 1)
    full_disk(100)
    status = cli.main(["--dataroot", str(tmp_path / "photos"), "--name", "t", "--gpu_ids", "-1",
                       "--checkpoints_dir", str(tmp_path / "ck"), "--results_dir", str(tmp_path / "res")])
    assert status == EXIT_USAGE
    message = caplog.records[-1].getMessage()
    assert "no space left on" in message and "img000.png" in message
    assert leftovers(tmp_path / "res") == []


def test_dataset_builders_stop_with_one_line(tmp_path, full_disk, capsys, caplog):
    source = tmp_path / "photos"
    _img(source / "wide.png", 0, size=(300, 120))
    full_disk(100)
    assert make_synthetic.main(["--source", str(source), "--out", str(tmp_path / "synthetic"), "--split", "stripes",
                                "--size", "48", "--test_size", "48", "--crops_per_image", "1"]) == EXIT_USAGE
    assert "no space left on" in caplog.records[-1].getMessage()

    release = tmp_path / "Rain800"  # side-by-side pairs: every half is decoded and written anew
    for i in range(1, 5):
        _img(release / "rain" / "training" / f"{i}.jpg", i, size=(20, 8))
        _img(release / "rain" / "test_syn" / f"{i}.jpg", 10 + i, size=(20, 8))
    caplog.clear()
    assert prepare.main(["rain800", "--archive", str(release), "--out", str(tmp_path / "rain800")]) == EXIT_USAGE
    (message,) = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert message.startswith("no space left on") and ".png" in message
    assert not (tmp_path / "rain800").exists() and leftovers(tmp_path) == []
