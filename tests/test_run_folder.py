"""A run's folder is never replaced by accident, never shared by two trainings, and a resume
with other networks is refused before anything is loaded or written."""
from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys

import pytest

import train
from restoration.loading import load_generator
from tests.conftest import tiny_flags, write_images
from util.run_lock import LOCK_NAME, RunLock

EXIT_USAGE = 2


@pytest.fixture
def dataroot(tmp_path):
    write_images(tmp_path / "data" / "trainA", 2, seed=1)
    write_images(tmp_path / "data" / "trainB", 2, seed=2)
    return tmp_path / "data"


def flags(dataroot, tmp_path, *extra: str) -> list[str]:
    # 2 images: 2 iterations per epoch, 2 epochs, every epoch saved.
    return tiny_flags(dataroot, tmp_path / "ck", "run") + ["--n_epochs", "1", "--n_epochs_decay", "1",
                                                           "--save_epoch_freq", "1", *extra]


@pytest.fixture
def trained(dataroot, tmp_path):
    assert train.main(flags(dataroot, tmp_path)) == 0
    return tmp_path / "ck" / "run"


def snapshot(run_dir):
    return {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}


def test_an_existing_run_is_not_overwritten_without_asking(trained, dataroot, tmp_path, caplog):
    before = snapshot(trained)
    assert train.main(flags(dataroot, tmp_path)) == EXIT_USAGE
    message = caplog.records[-1].getMessage()
    assert str(trained) in message and "--continue_train" in message and "--overwrite_run" in message
    assert snapshot(trained) == before, "nothing of the run was touched"


def test_overwrite_run_starts_over_without_the_old_epochs(trained, dataroot, tmp_path):
    (trained / "9.pt").write_bytes((trained / "1.pt").read_bytes())  # an epoch the new run never reaches
    assert train.main(flags(dataroot, tmp_path, "--overwrite_run", "--n_epochs_decay", "0")) == 0
    assert sorted(p.name for p in trained.glob("*.pt")) == ["1.pt", "latest.pt"]


def test_a_second_training_of_the_same_run_is_refused_naming_the_first(dataroot, tmp_path, caplog):
    with RunLock(tmp_path / "ck" / "run"):
        assert train.main(flags(dataroot, tmp_path)) == EXIT_USAGE
    message = caplog.records[-1].getMessage()
    assert f"PID {os.getpid()} on {socket.gethostname()}" in message and LOCK_NAME in message
    assert not (tmp_path / "ck" / "run" / "latest.pt").exists()
    assert not (tmp_path / "ck" / "run" / LOCK_NAME).exists(), "the lock went with its holder"


def test_a_stale_lock_is_named_and_taken_over(dataroot, tmp_path, caplog):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    lock = tmp_path / "ck" / "run" / LOCK_NAME
    lock.parent.mkdir(parents=True)
    lock.write_text(f"{dead.stdout.strip()} {socket.gethostname()}\n")  # left by a process killed with -9
    with caplog.at_level(logging.WARNING):
        assert train.main(flags(dataroot, tmp_path, "--n_epochs_decay", "0")) == 0
    assert f"stale lock {lock} left by PID {dead.stdout.strip()}" in caplog.text
    assert not lock.exists()


def test_resuming_with_other_networks_names_the_flags_and_changes_nothing(trained, dataroot, tmp_path, caplog):
    before = snapshot(trained)
    changed = flags(dataroot, tmp_path, "--continue_train", "--n_epochs", "3", "--ngf", "16", "--netF_nc", "32",
                    "--no_antialias")
    assert train.main(changed) == EXIT_USAGE
    message = caplog.records[-1].getMessage()
    assert "\n" not in message and "size mismatch" not in message
    assert ("was trained with --ngf 8 and without --no_antialias and with --netF_nc 16; these options ask for --ngf 16 "
            "and --no_antialias and --netF_nc 32") in message
    assert snapshot(trained) == before, "train_opt.txt is written only after the checkpoint loaded"


def test_the_loaded_epoch_is_the_one_that_was_saved(trained, caplog):
    with caplog.at_level(logging.INFO):
        load_generator(trained / "1.pt")
        load_generator(trained / "latest.pt")
    assert "1.pt (epoch 1, iteration 2," in caplog.text and "latest.pt (epoch 2, iteration 4," in caplog.text


def test_a_checkpoints_dir_that_is_a_file_is_a_one_line_error(dataroot, tmp_path, caplog):
    (tmp_path / "ck").write_text("not a folder")
    assert train.main(flags(dataroot, tmp_path)) == EXIT_USAGE
    message = caplog.records[-1].getMessage()
    assert message.startswith(f"cannot write to '{tmp_path / 'ck' / 'run'}'") and "--checkpoints_dir" in message
