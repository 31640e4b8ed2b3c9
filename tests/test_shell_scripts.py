"""The shell scripts take their arguments as documented and refuse what cannot work."""
from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

from options.train_options import TrainOptions
from tests.conftest import CONTRASTIVE_FLAGS, tiny_flags, without_flags, write_images

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = REPO / "scripts"
ECHO = {"PATH": "/usr/bin:/bin", "PY": "echo"}  # the scripts print the command instead of running it


def echoed(script: str, *args: str, cwd: Path, env: dict | None = None) -> list[list[str]]:
    """The commands `script` would run, each split into its arguments."""
    out = subprocess.run(["bash", str(SCRIPTS / script), *args], cwd=cwd, env=env or ECHO, capture_output=True,
                         text=True).stdout
    return [shlex.split(line) for line in out.splitlines()]


def test_test_dcdgan_takes_a_flag_as_a_flag_and_the_folder_from_the_current_directory(tmp_path):
    (tmp_path / "photos").mkdir()
    (command,) = echoed("test_dcdgan.sh", "photos", "--gpu_ids", "-1", cwd=tmp_path)
    assert command == ["test.py", "--dataroot", str(tmp_path / "photos"), "--name", "dcdgan_rain100l",
                       "--gpu_ids", "-1"]
    (command,) = echoed("test_dcdgan.sh", str(tmp_path / "photos"), "mine", "--epoch", "3", cwd=REPO)
    assert command == ["test.py", "--dataroot", str(tmp_path / "photos"), "--name", "mine", "--epoch", "3"]


def test_start_visdom_refuses_a_port_out_of_range(tmp_path):
    result = subprocess.run(["bash", str(SCRIPTS / "start_visdom.sh"), "99999"], capture_output=True, text=True,
                            env={**ECHO, "VISDOM_DIR": str(tmp_path / "visdom")}, timeout=60)
    assert result.returncode == 2 and "99999" in result.stderr and "65535" in result.stderr
    assert not (tmp_path / "visdom").exists(), "nothing was started"


def test_demo_and_quick_training_start_over_only_when_asked(tmp_path):
    # A demo run left in the working tree by `make demo` must not change what this test reads.
    demo_env = {**ECHO, "DEMO_DATA": str(tmp_path / "demo_data"), "CHECKPOINTS_DIR": str(tmp_path / "demo_ck"),
                "RESULTS_DIR": str(tmp_path / "demo_results")}
    train_line = [c for c in echoed("demo.sh", cwd=tmp_path, env=demo_env) if c and c[0] == "train.py"][0]
    assert "--overwrite_run" not in train_line
    TrainOptions().parse(train_line[1:])
    (quick,) = echoed("train_quick.sh", "data", "run", cwd=tmp_path)
    assert "--overwrite_run" not in quick
    (asked,) = echoed("train_quick.sh", "data", "run", cwd=tmp_path, env={**ECHO, "OVERWRITE": "1"})
    assert "--overwrite_run" in asked
    (resumed,) = echoed("train_quick.sh", "data", "run", "--continue_train", cwd=tmp_path)
    assert "--overwrite_run" not in resumed and TrainOptions().parse(resumed[1:]).continue_train


def test_quick_training_refuses_to_replace_a_finished_run_unless_asked(tmp_path):
    write_images(tmp_path / "data" / "trainA", 2, seed=1)
    write_images(tmp_path / "data" / "trainB", 2, seed=2)
    tiny = tiny_flags(tmp_path / "data", tmp_path / "ck", "quick")
    # The script passes --dataroot, --name and --model paired (whose --lambda_under a GAN lacks);
    # the contrastive flags are dropped too, the paired model has none.
    tiny = without_flags(tiny, {"--dataroot", "--name", "--model", *CONTRASTIVE_FLAGS})
    env = {"PATH": "/usr/bin:/bin", "PY": sys.executable, "ITERS": "2", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    command = ["bash", str(SCRIPTS / "train_quick.sh"), str(tmp_path / "data"), "quick", *tiny]
    first = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr[-2000:]
    saved = (tmp_path / "ck" / "quick" / "latest.pt").read_bytes()
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 2 and "--overwrite_run" in again.stderr, again.stderr[-2000:]
    assert (tmp_path / "ck" / "quick" / "latest.pt").read_bytes() == saved, "the finished run is untouched"
    asked = subprocess.run(command, env={**env, "OVERWRITE": "1"}, capture_output=True, text=True, timeout=300)
    assert asked.returncode == 0, asked.stderr[-2000:]


def test_the_haze_demo_runs_the_prior_then_the_quick_recipe_and_scores_on_rgb(tmp_path):
    env = {**ECHO, "DEMO_DATA": str(tmp_path / "haze"), "CHECKPOINTS_DIR": str(tmp_path / "ck"),
           "RESULTS_DIR": str(tmp_path / "results")}
    commands = [c for c in echoed("demo_haze.sh", cwd=tmp_path, env=env) if c]
    assert commands[0][:4] == ["-m", "datasets.make_synthetic", "--kind", "haze"]
    prior, train, *rest = [c for c in commands if c[0] in ("test.py", "train.py")]
    assert prior[prior.index("--model") + 1] == "dcp" and "--metric_channel" in prior
    opt = TrainOptions().parse(train[1:])
    assert (opt.model, opt.dataset_mode, opt.haze_layer) == ("paired", "pseudo_haze", "asm")
    assert opt.checkpoints_dir == str(tmp_path / "ck")
    assert "--overwrite_run" not in train
    scored = rest[0]
    assert scored[scored.index("--metric_channel") + 1] == "rgb" and scored[scored.index("--name") + 1] == "haze_demo"
    (tmp_path / "ck" / "haze_demo").mkdir(parents=True)
    (tmp_path / "ck" / "haze_demo" / "latest.pt").write_bytes(b"a finished run")
    refused = subprocess.run(["bash", str(SCRIPTS / "demo_haze.sh")], cwd=tmp_path, env=env, capture_output=True,
                             text=True)
    assert refused.returncode == 2 and "OVERWRITE=1 make demo-haze" in refused.stderr
    assert (tmp_path / "ck" / "haze_demo" / "latest.pt").read_bytes() == b"a finished run"
