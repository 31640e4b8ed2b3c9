"""Reliability, round 4: a run folder's own leftovers are cleaned at start, names that no
filesystem or terminal takes are refused, and flags that would be ignored or contradict each
other are one-line errors (exit 2)."""
from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from options.base_options import OptionError, check_plain_name
from options.test_options import TestOptions
from options.train_options import TrainOptions
from scripts import export_onnx
from tests.conftest import tiny_flags
from tests.test_options import refused
from training.run_folder import claim_run_folder

REPO = Path(__file__).resolve().parent.parent


def test_a_run_folder_loses_its_own_temporary_files_at_start_and_nothing_else(tmp_path, caplog):
    run_dir = tmp_path / "ck" / "run"
    (run_dir / "web" / "images").mkdir(parents=True)
    leftovers = [run_dir / "latest.pt.k2x_9abq.tmp", run_dir / "12.pt.a1b2c3d4.tmp",
                 run_dir / "train_opt.txt.zzzzzzzz.tmp", run_dir / "web" / "index.html.q1w2e3r4.tmp",
                 run_dir / "web" / "images" / "epoch001_real_A.png.abcdefgh.tmp"]
    kept = [run_dir / "latest.pt", run_dir / "notes.tmp", run_dir / "latest.pt.tmp", run_dir / "my.pt.abcdefgh.tmp",
            run_dir / "test_opt.txt.abcdefgh.tmp", run_dir / "latest.pt.ABCDEFGH.tmp", run_dir / "loss_log.txt"]
    for path in leftovers + kept:
        path.write_bytes(b"x")
    with caplog.at_level(logging.INFO), claim_run_folder(run_dir, continue_train=True, overwrite_run=False):
        assert [p for p in leftovers if p.exists()] == []
    assert [p for p in kept if not p.exists()] == []
    lines = [r.getMessage() for r in caplog.records if "temporary" in r.getMessage()]
    assert len(lines) == 1 and "5 temporary file(s)" in lines[0] and str(run_dir) in lines[0]


def test_overwrite_run_removes_the_leftovers_too(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "latest.pt").write_bytes(b"old")
    (run_dir / "latest.pt.abcd1234.tmp").write_bytes(b"half")
    with claim_run_folder(run_dir, continue_train=False, overwrite_run=True):
        assert sorted(p.name for p in run_dir.iterdir()) == ["train.lock"]


LONG = "n" * 300
BAD_NAMES = {
    "300 characters": (LONG, "--name is 300 bytes long"),
    "256 bytes of UTF-8": ("é" * 128, "--name is 256 bytes long"),
    "newline": ("run\nb", "holds a control character ('\\n')"),
    "escape": ("run\x1b[31m", "holds a control character ('\\x1b')"),
    "tab": ("a\tb", "holds a control character ('\\t')"),
}


@pytest.mark.parametrize("name,says", BAD_NAMES.values(), ids=BAD_NAMES.keys())
def test_train_and_test_refuse_names_no_filesystem_or_terminal_takes(tmp_path, capsys, name, says):
    flags = tiny_flags(tmp_path, tmp_path / "ck", name)
    assert says in refused(TrainOptions().parse, flags, capsys)
    assert says in refused(TestOptions().parse, ["--dataroot", str(tmp_path), "--name", name], capsys)
    assert says in refused(export_onnx.parse_args, ["--name", name], capsys)


def test_the_longest_names_that_fit_are_accepted():
    check_plain_name("--name", "n" * 255)
    check_plain_name("--name", "é" * 127 + "n")
    check_plain_name("--name", "rain streaks, 2 × 3 – ünïcode")
    with pytest.raises(OptionError, match="--epoch is 240 bytes long.* give at most 239"):
        check_plain_name("--epoch", "e" * 240, len(".pt.12345678.tmp"))


@pytest.mark.parametrize("name", [LONG, "a\nb"], ids=["long", "newline"])
def test_the_launchers_refuse_such_a_name_in_one_line(tmp_path, name):
    env = dict(os.environ, PY=sys.executable, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    done = subprocess.run(["bash", str(REPO / "scripts" / "train_quick.sh"), str(tmp_path / "data"), name],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "--name" in lines[0], done.stderr


@pytest.mark.parametrize("extra,says", [
    (["--tiel", "512", "--bogus"], "unrecognized argument --tiel"),
    (["--bogus=3"], "unrecognized argument --bogus=3"),
    (["--no_flip", "stray"], "unrecognized argument stray"),
    (["--lambda", "1"], "unrecognized argument --lambda"),
    (["--backend", "bf16", "--amp", "off"], "--backend bf16 runs the generator in bf16, which --amp off rules out"),
    (["--backend", "onnxruntime", "--amp", "on"], "--backend onnxruntime runs in fp32 only"),
    (["--backend", "onnxruntime", "--amp"], "--backend onnxruntime runs in fp32 only"),
], ids=["typo", "typo with value", "stray word", "ambiguous prefix", "bf16 amp off", "onnxruntime amp on",
        "onnxruntime --amp"])
def test_test_options_refuse_unknown_flags_and_contradictions(tmp_path, capsys, extra, says):
    assert says in refused(TestOptions().parse, ["--dataroot", str(tmp_path)] + extra, capsys)


@pytest.mark.parametrize("backend, amp, says", [("bf16", "off", "--amp off rules out"),
                                                ("bf16", False, "--amp off rules out"),
                                                ("onnxruntime", "on", "runs in fp32 only")])
def test_the_python_restorer_refuses_the_same_contradictions(backend, amp, says):
    from models.networks.generators import define_generator
    from restoration.restorer import Restorer
    with pytest.raises(ValueError, match=says):
        Restorer(define_generator("resnet_4blocks", ngf=4), source=None, backend=backend, amp=amp)


def test_training_flags_stay_accepted_and_ignored_by_test_options(tmp_path, caplog):
    argv = ["--dataroot", str(tmp_path), "--model", "cut", "--ngf", "8", "--lambda_NC", "2", "--no_flip",
            "--nce_layers", "0,4", "--gan_mode=lsgan", "--lr", "1e-4", "--pseudo_warmup", "3", "--backend", "bf16"]
    opt = TestOptions().parse(argv)
    assert opt.backend == "bf16" and "test.py ignores --model cut --ngf 8" in caplog.text


def test_test_script_refuses_an_unknown_flag_in_one_line(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "test.py", "--dataroot", str(tmp_path), "--name", "t", "--checkpoints_dir",
                           str(tmp_path / "ck"), "--tiel", "512"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        "test.py: error: unrecognized argument --tiel: not a flag of test.py (nor a training flag, which test.py "
        "ignores) (see --help)"]


PSEUDO_CASES = {
    "warm-up without a term": (["--pseudo_warmup", "100"], "--pseudo_warmup 100 ramps in the pseudo-pair terms"),
    "longer than --max_iters": (["--lambda_pseudo", "1", "--pseudo_warmup", "100", "--max_iters", "100"],
                                "--pseudo_warmup 100 is not shorter than the run (100 iterations)"),
    "longer than --n_iters": (["--pseudo_ssim", "1", "--pseudo_warmup", "1000", "--n_iters", "300",
                               "--n_iters_decay", "300"], "is not shorter than the run (600 iterations)"),
}


@pytest.mark.parametrize("extra,says", PSEUDO_CASES.values(), ids=PSEUDO_CASES.keys())
def test_a_pseudo_warmup_that_cannot_act_is_refused(tmp_path, capsys, extra, says):
    assert says in refused(TrainOptions().parse, tiny_flags(tmp_path, tmp_path / "ck") + extra, capsys)


def test_a_pseudo_warmup_within_the_budget_passes(tmp_path):
    flags = tiny_flags(tmp_path, tmp_path / "ck") + ["--lambda_pseudo", "1", "--pseudo_warmup", "99",
                                                     "--max_iters", "100"]
    assert TrainOptions().parse(flags).pseudo_warmup == 99


def test_a_crop_border_that_leaves_nothing_is_refused_by_test_and_evaluate_alike(tmp_path):
    from tests.conftest import save_tiny_dcdgan, write_images

    root = tmp_path / "data"
    for folder, seed in (("trainA", 1), ("trainB", 2), ("testA", 3), ("testB", 4)):
        write_images(root / folder, 1, seed=seed)
    save_tiny_dcdgan(root, tmp_path / "ck", "t")
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "test.py", "--dataroot", str(root), "--name", "t", "--checkpoints_dir",
                           str(tmp_path / "ck"), "--results_dir", str(tmp_path / "results"), "--gpu_ids", "-1",
                           "--crop_border", "1000", "--nr_metrics", "false"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if "ERROR" in line]
    assert "Traceback" not in done.stderr and len(errors) == 1, done.stderr
    image = root / "testA" / "img000.png"
    assert errors[0].endswith(f"--crop_border 1000 leaves nothing of the 40x48 image {image}: give at most 19")
    evaluated = subprocess.run([sys.executable, "evaluate.py", "--pred", str(root / "testA"), "--gt",
                                str(root / "testB"), "--crop_border", "1000"],
                               cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert evaluated.returncode == 2
    assert "--crop_border 1000 leaves nothing of the 40x48 image: give at most 19" in evaluated.stderr
