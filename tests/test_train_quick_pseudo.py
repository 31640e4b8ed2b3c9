"""scripts/train_quick_pseudo.sh: the pseudo-pair deraining recipe (paired L1 on clean crops under
rain measured on trainA) behind the quick launchers' interface (ITERS, OVERWRITE, the refusal of
a finished run); scripts/train_quick.sh stays DCD-GAN's quick configuration."""
from __future__ import annotations

import os
import shlex
import sys

from options.train_options import TrainOptions
from tests.conftest import write_images
from tests.test_train_quick_haze import ECHO, run_script
from tests.test_two_stage import paired_flags

SCRIPTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts")
QUICK = os.path.join(SCRIPTS, "train_quick_pseudo.sh")
GAN = os.path.join(SCRIPTS, "train_quick.sh")


def echoed(script: str, *args: str, env: dict, cwd) -> TrainOptions:
    done = run_script(script, *args, env={**ECHO, **env}, cwd=cwd)
    (command,) = [shlex.split(line) for line in done.stdout.splitlines()]
    assert command[0] == "train.py"
    return TrainOptions().parse(command[1:])


def test_command_is_the_pseudo_rain_recipe_with_the_budget(tmp_path):
    opt = echoed(QUICK, "data", "rain", env={"ITERS": "300"}, cwd=tmp_path)
    assert (opt.model, opt.dataset_mode, opt.direction) == ("paired", "pseudo_rain", "AtoB")
    assert (opt.global_residual, opt.skips, opt.normG, opt.ngf, opt.crop_size) == (True, True, "none", 16, 64)
    assert (opt.n_iters, opt.n_iters_decay, opt.pseudo_identity_share) == (150, 150, 0.15)
    assert opt.name == "rain" and not opt.overwrite_run
    asked = echoed(QUICK, "data", "rain", "--pseudo_identity_share", "0.3", env={"OVERWRITE": "1"}, cwd=tmp_path)
    assert asked.overwrite_run and asked.pseudo_identity_share == 0.3 and asked.n_iters + asked.n_iters_decay == 4000


def test_the_default_quick_launcher_keeps_the_dcdgan_configuration(tmp_path):
    opt = echoed(GAN, "data", "rain", env={"ITERS": "300"}, cwd=tmp_path)
    assert (opt.model, opt.dcd_variant, opt.rain_layer, opt.lambda_IDT) == ("dcdgan", "official", "gray", 5.0)
    assert (opt.n_iters, opt.n_iters_decay) == (150, 150)


def test_trains_on_pseudo_rain_then_refuses_the_finished_run(tmp_path):
    write_images(tmp_path / "data" / "trainA", 2, seed=1)
    write_images(tmp_path / "data" / "trainB", 2, seed=2)
    tiny = paired_flags(tmp_path / "data", tmp_path / "ck", "quick")
    tiny = [token for key, value in zip(tiny[::2], tiny[1::2]) if key not in ("--dataroot", "--name", "--model")
            for token in (key, value)]  # the script passes these
    env = {"PATH": "/usr/bin:/bin", "PY": sys.executable, "ITERS": "2", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    args = (str(tmp_path / "data"), "quick", *tiny, "--netG", "resnet_4blocks", "--crop_size", "32")
    first = run_script(QUICK, *args, env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "pseudo rain" in first.stderr and "trainA streaks lean" in first.stderr
    saved = (tmp_path / "ck" / "quick" / "latest.pt").read_bytes()
    again = run_script(QUICK, *args, env=env, cwd=tmp_path)
    assert again.returncode == 2 and "--overwrite_run" in again.stderr, again.stderr[-2000:]
    assert (tmp_path / "ck" / "quick" / "latest.pt").read_bytes() == saved, "the finished run is untouched"
