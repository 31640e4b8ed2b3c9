"""scripts/train_quick_haze_gan.sh: CDD-GAN with the haze layer on train_quick.sh's budget."""
from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

from options.train_options import TrainOptions
from tests.conftest import tiny_flags, write_images
from tests.test_train_quick_haze import ECHO, run_script

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "train_quick_haze_gan.sh"


def run(*args: str, env: dict, cwd: Path) -> subprocess.CompletedProcess:
    return run_script(SCRIPT, *args, env=env, cwd=cwd)


def test_command_is_cddgan_with_the_haze_layer_and_the_budget(tmp_path):
    done = run("data", "haze", env={**ECHO, "ITERS": "300"}, cwd=tmp_path)
    (command,) = [shlex.split(line) for line in done.stdout.splitlines()]
    assert command[0] == "train.py"
    opt = TrainOptions().parse(command[1:])
    assert (opt.model, opt.haze_layer, opt.rain_layer, opt.global_residual) == ("cddgan", "asm", "none", False)
    assert (opt.n_iters, opt.n_iters_decay, opt.crop_size, opt.ngf) == (150, 150, 96, 16)
    assert opt.name == "haze" and not opt.overwrite_run
    asked = run("data", "haze", "--lambda_rehaze", "1", env={**ECHO, "OVERWRITE": "1"}, cwd=tmp_path)
    opt = TrainOptions().parse(shlex.split(asked.stdout)[1:])
    assert opt.overwrite_run and opt.lambda_rehaze == 1.0 and opt.n_iters + opt.n_iters_decay == 4000


def test_trains_a_tiny_run(tmp_path):
    """The ITERS / OVERWRITE checks and the refusal of a finished run are quick_budget.sh's and
    train.py's, tested through train_quick_haze.sh (tests/test_train_quick_haze.py)."""
    write_images(tmp_path / "data" / "trainA", 2, seed=1)
    write_images(tmp_path / "data" / "trainB", 2, seed=2)
    tiny = tiny_flags(tmp_path / "data", tmp_path / "ck", "quick", model="cddgan")
    tiny = tiny[2:4] + tiny[6:]  # the script passes --dataroot and --name
    env = {"PATH": "/usr/bin:/bin", "PY": sys.executable, "ITERS": "2", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    args = (str(tmp_path / "data"), "quick", *tiny, "--crop_size", "32", "--lambda_rehaze", "1")
    first = run(*args, env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    assert (tmp_path / "ck" / "quick" / "latest.pt").is_file()
