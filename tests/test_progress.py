"""Progress: tqdm's bar on a terminal, plain log lines in a file (issue 32, item 7)."""
from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
from pathlib import Path

from tqdm import tqdm

from tests.conftest import tiny_flags, write_images
from util.progress import PlainProgress, is_terminal, progress

REPO = Path(__file__).resolve().parent.parent


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_bar_is_kept_on_a_terminal_and_replaced_elsewhere():
    assert isinstance(progress(total=3, stream=Terminal(), file=Terminal()), tqdm)
    assert isinstance(progress(total=3, stream=io.StringIO()), PlainProgress)
    closed = io.StringIO()
    closed.close()
    assert not is_terminal(closed) and not is_terminal(None)


def test_plain_progress_writes_a_line_every_interval_and_at_the_end(caplog):
    clock = Clock()
    caplog.set_level(logging.INFO, logger="util.progress")
    with PlainProgress(total=10, initial=2, desc="epoch 3/5", first_step=42, interval_s=30, clock=clock) as bar:
        for step in range(8):
            clock.now += 10  # 10 s per iteration: a line after the 3rd and the 6th
            bar.update(1)
            bar.set_postfix({"D_A": f"{0.1 * step:.3f}"}, refresh=False)
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["epoch 3/5: 5/10 it (iteration 45), 10 s/it, D_A 0.100",
                     "epoch 3/5: 8/10 it (iteration 48), 10 s/it, D_A 0.400",
                     "epoch 3/5: 10/10 it (iteration 50), 10 s/it, D_A 0.700"]


def test_plain_progress_every_n_steps_over_an_iterable_and_disabled(caplog):
    caplog.set_level(logging.INFO, logger="util.progress")
    assert list(PlainProgress(range(5), desc="test", unit="img", every=2, clock=Clock())) == list(range(5))
    assert [r.getMessage() for r in caplog.records] == ["test: 2/5 img, 0 s/img", "test: 4/5 img, 0 s/img",
                                                         "test: 5/5 img, 0 s/img"]
    caplog.clear()
    with PlainProgress(total=4, every=1, disable=True) as bar:
        bar.update(4)
    assert caplog.records == []


def test_a_training_logged_to_a_file_has_plain_progress_lines_and_no_carriage_returns(tmp_path):
    data = tmp_path / "data"
    write_images(data / "trainA", 3, seed=1)
    write_images(data / "trainB", 3, seed=2)
    log = tmp_path / "train.log"
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    argv = tiny_flags(data, tmp_path / "ck", "t") + ["--n_epochs", "1", "--n_epochs_decay", "1"]
    with open(log, "w") as fh:
        done = subprocess.run([sys.executable, "train.py", *argv], cwd=REPO, env=env, stdout=fh, stderr=fh,
                              timeout=300)
    text = log.read_text()
    assert done.returncode == 0, text
    assert "\r" not in text
    ends = [line for line in text.splitlines() if ": epoch " in line and " it (iteration " in line]
    assert len(ends) == 2, text  # one at each epoch's end (the run is shorter than 30 s)
    assert "epoch 1/2: 3/3 it (iteration 3)" in ends[0] and "epoch 2/2: 3/3 it (iteration 6)" in ends[1]
    assert " s/it, " in ends[1] and "G_A " in ends[1]
