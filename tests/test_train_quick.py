"""scripts/train_quick.sh: the pseudo-pair deraining recipe (paired L1 on clean crops under
rain measured on trainA); scripts/train_quick_gan.sh keeps DCD-GAN's quick configuration.
The launchers' interface (ITERS, OVERWRITE, usage, the refusal of a finished run) is tested for
every quick launcher in test_train_quick_haze.py."""
from __future__ import annotations

import os
import shlex

from options.train_options import TrainOptions
from tests.test_train_quick_haze import ECHO, run_script

SCRIPTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts")
QUICK = os.path.join(SCRIPTS, "train_quick.sh")
GAN = os.path.join(SCRIPTS, "train_quick_gan.sh")


def echoed(script: str, *args: str, env: dict, cwd) -> TrainOptions:
    done = run_script(script, *args, env={**ECHO, **env}, cwd=cwd)
    (command,) = [shlex.split(line) for line in done.stdout.splitlines()]
    assert command[0] == "train.py"
    return TrainOptions().parse(command[1:])


def test_command_is_the_pseudo_rain_recipe_with_the_budget(tmp_path):
    opt = echoed(QUICK, "data", "rain", env={"ITERS": "300"}, cwd=tmp_path)
    assert (opt.model, opt.dataset_mode, opt.direction) == ("paired", "pseudo_rain", "AtoB")
    assert (opt.global_residual, opt.skips, opt.normG, opt.ngf, opt.crop_size) == (True, True, "none", 16, 64)
    assert (opt.n_iters, opt.n_iters_decay, opt.pseudo_identity_share) == (150, 150, 0.3)
    assert (opt.init_type, opt.pseudo_rain_min_opacity, opt.pseudo_rain_veil) == ("residual", 0.7, "measured")
    assert (opt.global_residual, opt.rain_layer) == (True, "linear")
    assert opt.lr == 1e-4 and opt.lambda_under == 0.25 and opt.pseudo_identity_share_end == "auto"
    assert opt.name == "rain" and not opt.overwrite_run
    asked = echoed(QUICK, "data", "rain", "--pseudo_identity_share", "0.15", env={"OVERWRITE": "1"}, cwd=tmp_path)
    assert asked.overwrite_run and asked.pseudo_identity_share == 0.15 and asked.n_iters + asked.n_iters_decay == 4000


def test_the_gan_launcher_keeps_the_dcdgan_configuration(tmp_path):
    opt = echoed(GAN, "data", "rain", env={"ITERS": "300"}, cwd=tmp_path)
    assert (opt.model, opt.dcd_variant, opt.rain_layer, opt.lambda_IDT) == ("dcdgan", "official", "gray", 5.0)
    assert (opt.n_iters, opt.n_iters_decay) == (150, 150)
