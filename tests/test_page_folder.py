"""test.py's results folder: never deletes what it reads or what it did not write, one run at
a time, and logs that read well when redirected (issue 32, items 1, 2 and 7)."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from restoration import cli
from restoration.page_folder import LOCK_NAME, MANIFEST_NAME
from tests.conftest import save_tiny_dcdgan, write_images

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """checkpoints/t/latest.pt of a tiny dcdgan (no training needed to restore with it)."""
    tmp = tmp_path_factory.mktemp("tiny")
    write_images(tmp / "data" / "trainA", 1)
    write_images(tmp / "data" / "trainB", 1)
    save_tiny_dcdgan(tmp / "data", tmp / "ck", "t")
    return tmp / "ck"


def flags(checkpoints, dataroot, results, *extra):
    return ["--dataroot", str(dataroot), "--name", "t", "--checkpoints_dir", str(checkpoints),
            "--results_dir", str(results), "--gpu_ids", "-1", *extra]


def run_test(checkpoints, dataroot, results, *extra) -> int:
    return cli.main(flags(checkpoints, dataroot, results, *extra))


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture
def earlier_run(checkpoints, tmp_path):
    """A results folder R/t/test_latest written by one run over 4 inputs with ground truth."""
    root = tmp_path / "paired"
    write_images(root / "testA", 4, seed=1)
    write_images(root / "testB", 4, seed=2)
    results = tmp_path / "R"
    assert run_test(checkpoints, root, results) == 0
    page = results / "t" / "test_latest"
    assert len(names(page / "images")) == 4 and len(names(page / "gt")) == 4
    return results, page


# ----- item 1: never delete what the run reads, nor what no run wrote --------------------------
def test_restoring_the_earlier_outputs_is_refused_and_deletes_nothing(checkpoints, earlier_run, caplog):
    results, page = earlier_run
    before = {p.name: p.read_bytes() for p in (page / "images").iterdir()}
    assert run_test(checkpoints, page / "images", results) == 2
    assert {p.name: p.read_bytes() for p in (page / "images").iterdir()} == before
    refusal = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(refusal) == 1 and f"--dataroot '{page / 'images'}'" in refusal[0] and f"'{page}'" in refusal[0]
    assert "copy the images elsewhere or pick another --results_dir" in refusal[0]
    # One input file of the folder is refused as well.
    assert run_test(checkpoints, page / "images" / "img000.png", results) == 2
    assert len(names(page / "images")) == 4


def test_ground_truth_inside_the_results_folder_is_refused(checkpoints, earlier_run, tmp_path, caplog):
    results, page = earlier_run
    write_images(tmp_path / "rainy", 4, seed=3)
    assert run_test(checkpoints, tmp_path / "rainy", results, "--gt_dir", str(page / "gt")) == 2
    assert len(names(page / "gt")) == 4, "the ground truth was deleted"
    assert f"--gt_dir '{page / 'gt'}'" in caplog.text and "lies inside" in caplog.text


def test_a_linked_input_folder_leading_into_the_results_folder_is_refused(checkpoints, earlier_run, tmp_path,
                                                                         caplog):
    results, page = earlier_run
    (tmp_path / "link").symlink_to(page / "images")
    assert run_test(checkpoints, tmp_path / "link", results) == 2
    assert len(names(page / "images")) == 4
    assert f"which leads to '{os.path.realpath(page / 'images')}'" in caplog.text
    # A folder of links to single files there, too.
    (tmp_path / "links").mkdir()
    (tmp_path / "links" / "a.png").symlink_to(page / "images" / "img001.png")
    assert run_test(checkpoints, tmp_path / "links", results) == 2
    assert len(names(page / "images")) == 4


def test_a_users_file_in_the_results_folder_stays(checkpoints, earlier_run, tmp_path, caplog):
    results, page = earlier_run
    mine = page / "images" / "mine.png"
    mine.write_bytes(b"my own picture")
    (page / "inputs" / "notes.txt").write_text("mine too")
    write_images(tmp_path / "other", 2, seed=5, prefix="other")
    caplog.clear()
    assert run_test(checkpoints, tmp_path / "other", results) == 0
    assert names(page / "images") == ["mine.png", "other000.png", "other001.png"]
    assert mine.read_bytes() == b"my own picture" and (page / "inputs" / "notes.txt").is_file()
    assert not (page / "gt").exists() and not (page / "metrics.csv").exists(), "the earlier run's files are gone"
    kept = [r.getMessage() for r in caplog.records if "no run of test.py wrote" in r.getMessage()]
    assert len(kept) == 1 and "images/mine.png" in kept[0] and "inputs/notes.txt" in kept[0]

    # A file of the user's that this run would overwrite: refused, the file untouched.
    (page / "images" / "img000.png").write_bytes(b"also mine")
    os.unlink(page / MANIFEST_NAME)  # as in a results folder of an older version: nothing is known as written
    assert run_test(checkpoints, tmp_path / "paired", results) == 2
    assert (page / "images" / "img000.png").read_bytes() == b"also mine"
    assert "would overwrite (images/img000.png" in caplog.text


def test_a_replaced_or_tampered_record_deletes_nothing_else(checkpoints, earlier_run, tmp_path):
    results, page = earlier_run
    outside = tmp_path / "precious.png"
    outside.write_bytes(b"x")
    (page / "images" / "img001.png").write_bytes(b"replaced by the user")  # not the size the run recorded
    with open(page / MANIFEST_NAME, "a") as fh:
        for rel in ("../../../precious.png", str(outside), "images/../../../precious.png", "train.lock"):
            fh.write(json.dumps({"path": rel, "size": 1}) + "\n")
        fh.write('{"path": "images/img00')  # a torn last line
    write_images(tmp_path / "other", 1, seed=5, prefix="other")
    assert run_test(checkpoints, tmp_path / "other", results) == 0
    assert outside.read_bytes() == b"x"
    assert names(page / "images") == ["img001.png", "other000.png"]


# ----- item 2: one run at a time ---------------------------------------------------------------
def script_command(checkpoints, dataroot, results, *extra) -> list[str]:
    return [sys.executable, str(REPO / "test.py"), *flags(checkpoints, dataroot, results, *extra)]


def subprocess_env() -> dict:
    return dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")


def test_a_second_run_into_a_busy_results_folder_is_refused(checkpoints, tmp_path):
    write_images(tmp_path / "many", 40, size=(64, 64), seed=1)
    write_images(tmp_path / "few", 2, seed=2, prefix="few")
    results, page = tmp_path / "R", tmp_path / "R" / "t" / "test_latest"
    lock = page / LOCK_NAME
    with open(tmp_path / "first.log", "w") as log:
        first = subprocess.Popen(script_command(checkpoints, tmp_path / "many", results), cwd=REPO,
                                 env=subprocess_env(), stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 120
        while not (lock.is_file() and lock.read_text().startswith(f"{first.pid} ")):
            assert first.poll() is None and time.monotonic() < deadline, (tmp_path / "first.log").read_text()
            time.sleep(0.005)
        first.send_signal(signal.SIGSTOP)  # holds the lock while the second run starts, whatever the machine's load
        second = subprocess.run(script_command(checkpoints, tmp_path / "few", results), cwd=REPO, env=subprocess_env(),
                                 capture_output=True, text=True, timeout=300)
    finally:
        first.send_signal(signal.SIGCONT)
    assert first.wait(timeout=300) == 0, (tmp_path / "first.log").read_text()
    assert second.returncode == 2, second.stderr
    errors = [line for line in second.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and f"PID {first.pid} on {socket.gethostname()}" in errors[0]
    assert str(page) in errors[0]
    assert len(names(page / "images")) == 40 and not (page / "images" / "few000.png").exists()
    assert not lock.exists(), "the lock is released at the end"
    # The folder is free again: the second run now succeeds.
    assert subprocess.run(script_command(checkpoints, tmp_path / "few", results), cwd=REPO, env=subprocess_env(),
                          capture_output=True, timeout=300).returncode == 0
    assert names(page / "images") == ["few000.png", "few001.png"]


def test_a_lock_left_by_a_dead_run_is_free(checkpoints, tmp_path, caplog):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    page = tmp_path / "R" / "t" / "test_latest"
    page.mkdir(parents=True)
    (page / LOCK_NAME).write_text(f"{dead.pid} {socket.gethostname()}\n")
    write_images(tmp_path / "imgs", 1)
    assert run_test(checkpoints, tmp_path / "imgs", tmp_path / "R") == 0
    assert f"stale lock {page / LOCK_NAME} left by PID {dead.pid}" in caplog.text
    assert not (page / LOCK_NAME).exists()


# ----- item 7: plain progress lines where stderr is a file -------------------------------------
def test_redirected_progress_has_no_carriage_returns(checkpoints, tmp_path):
    write_images(tmp_path / "imgs", 3)
    with open(tmp_path / "test.log", "w") as log:
        result = subprocess.run(script_command(checkpoints, tmp_path / "imgs", tmp_path / "R"), cwd=REPO,
                                env=subprocess_env(), stdout=log, stderr=log, timeout=300)
    text = (tmp_path / "test.log").read_bytes()  # bytes: read_text would turn each '\r' into a line break
    assert result.returncode == 0, text
    assert b"\r" not in text
    assert b"test: 3/3 img" in text
