"""scripts/train_quick_haze.sh: train_quick.sh's interface (ITERS, OVERWRITE, the refusal of a
finished run) with the pseudo-pair dehazing recipe (paired L1 on pseudo hazy pairs, haze layer)."""
from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from options.train_options import TrainOptions
from tests.conftest import write_images
from tests.test_two_stage import paired_flags

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "train_quick_haze.sh"
ECHO = {"PATH": "/usr/bin:/bin", "PY": "echo"}  # the script prints the command instead of running it


def run_script(script: Path, *args: str, env: dict, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(script), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def run(*args: str, env: dict, cwd: Path) -> subprocess.CompletedProcess:
    return run_script(SCRIPT, *args, env=env, cwd=cwd)


def test_command_is_the_pseudo_pair_recipe_with_the_haze_layer_and_the_budget(tmp_path):
    done = run("data", "haze", env={**ECHO, "ITERS": "300"}, cwd=tmp_path)
    (command,) = [shlex.split(line) for line in done.stdout.splitlines()]
    assert command[0] == "train.py"
    opt = TrainOptions().parse(command[1:])
    assert (opt.model, opt.dataset_mode, opt.pseudo_haze_density) == ("paired", "pseudo_haze", "broad")
    assert (opt.haze_layer, opt.rain_layer, opt.global_residual, opt.skips) == ("asm", "none", False, True)
    assert (opt.n_iters, opt.n_iters_decay, opt.crop_size, opt.ngf) == (150, 150, 96, 16)
    assert opt.name == "haze" and not opt.overwrite_run
    asked = run("data", "haze", "--pseudo_haze_noise", "0", env={**ECHO, "OVERWRITE": "1"}, cwd=tmp_path)
    opt = TrainOptions().parse(shlex.split(asked.stdout)[1:])
    assert opt.overwrite_run and opt.pseudo_haze_noise == 0 and opt.n_iters + opt.n_iters_decay == 3000


@pytest.mark.parametrize("script", [SCRIPT, SCRIPT.with_name("train_quick_haze_gan.sh"),
                                    SCRIPT.with_name("train_quick.sh"), SCRIPT.with_name("train_quick_gan.sh")],
                         ids=["haze", "haze_gan", "rain", "rain_gan"])
@pytest.mark.parametrize("env, message", [({"ITERS": "4e3"}, "ITERS must be"), ({"OVERWRITE": "yes"}, "OVERWRITE"),
                                          ({}, "usage")])
def test_bad_budget_or_arguments_exit_2_with_one_line(tmp_path, env, message, script):
    args = ("data", "haze") if env else ("data",)
    done = run_script(script, *args, env={**ECHO, **env}, cwd=tmp_path)
    assert done.returncode == 2 and message in done.stderr and not done.stdout
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("script, says", [(SCRIPT, "pseudo haze measured on 2 hazy images"),
                                           (SCRIPT.with_name("train_quick.sh"), "trainA streaks lean")],
                         ids=["haze", "rain"])
def test_pseudo_pair_launchers_train_then_refuse_the_finished_run(tmp_path, script, says):
    write_images(tmp_path / "data" / "trainA", 2, seed=1)
    write_images(tmp_path / "data" / "trainB", 2, seed=2)
    tiny = paired_flags(tmp_path / "data", tmp_path / "ck", "quick")
    tiny = [token for key, value in zip(tiny[::2], tiny[1::2]) if key not in ("--dataroot", "--name", "--model")
            for token in (key, value)]  # the script passes these
    env = {"PATH": "/usr/bin:/bin", "PY": sys.executable, "ITERS": "2", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    args = (str(tmp_path / "data"), "quick", *tiny, "--netG", "resnet_4blocks", "--crop_size", "32")
    first = run_script(script, *args, env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    assert says in first.stderr
    saved = (tmp_path / "ck" / "quick" / "latest.pt").read_bytes()
    again = run_script(script, *args, env=env, cwd=tmp_path)
    assert again.returncode == 2 and "--overwrite_run" in again.stderr, again.stderr[-2000:]
    assert (tmp_path / "ck" / "quick" / "latest.pt").read_bytes() == saved, "the finished run is untouched"
