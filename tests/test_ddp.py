"""Multi-process training: torchrun with gloo on the CPU keeps every rank's weights identical."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import test as test_entry
from tests.conftest import tiny_flags
from util.checkpoint import load_checkpoint
from util.distributed import (DIGEST_DIR_ENV, DistributedContext, DistributedError, context_from_env,
                              parameter_digest)

REPO = Path(__file__).resolve().parent.parent


def test_context_from_env_defaults_to_one_process():
    assert context_from_env({}) == DistributedContext(rank=0, world_size=1, local_rank=0)
    ctx = context_from_env({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"})
    assert (ctx.rank, ctx.world_size, ctx.local_rank, ctx.is_main, ctx.enabled) == (3, 4, 1, False, True)


@pytest.mark.parametrize("env", [{"RANK": "x", "WORLD_SIZE": "2"}, {"RANK": "2", "WORLD_SIZE": "2"}])
def test_context_from_env_rejects_malformed_values(env):
    with pytest.raises(DistributedError, match="torchrun"):
        context_from_env(env)


def test_parameter_digest_sees_any_change():
    state = {"w": torch.ones(3), "b": torch.zeros(2, dtype=torch.bfloat16)}
    same = {k: v.clone() for k, v in state.items()}
    assert parameter_digest(state) == parameter_digest(same)
    same["w"][1] += 1e-7
    assert parameter_digest(state) != parameter_digest(same)


def test_torchrun_two_cpu_ranks_train_identical_weights(tiny_dataroot, tmp_path):
    """Two gloo processes see different images, yet end with the same weights.

    Without gradient averaging the ranks drift apart after one step (checked by hand when
    this test was written), so equal digests show that DDP synchronised every network.
    """
    digests = tmp_path / "digests"
    # 4 images over 2 ranks: 2 iterations per epoch, 2 epochs.
    flags = tiny_flags(tiny_dataroot, tmp_path / "ck", "ddp") + ["--n_epochs", "2", "--n_epochs_decay", "0"]
    env = dict(os.environ, **{DIGEST_DIR_ENV: str(digests), "OMP_NUM_THREADS": "1"})
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(REPO / "train.py"), *flags]
    result = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    rank0 = json.loads((digests / "rank0.json").read_text())
    rank1 = json.loads((digests / "rank1.json").read_text())
    assert set(rank0) == {"G_A", "G_B", "D_A", "D_B", "F1", "F2"}
    assert rank0 == rank1

    checkpoint = load_checkpoint(tmp_path / "ck" / "ddp" / "latest.pt")
    assert checkpoint["position"]["total_iters"] == 4
    # Plain state dicts (no 'module.' prefix), equal to what the ranks hold.
    assert {name: parameter_digest(state) for name, state in checkpoint["nets"].items()} == rank0
    assert (tmp_path / "ck" / "ddp" / "loss_log.txt").is_file()

    status = test_entry.main(["--dataroot", str(tiny_dataroot), "--checkpoints_dir", str(tmp_path / "ck"),
                              "--name", "ddp", "--model", "dcdgan", "--gpu_ids", "-1",
                              "--results_dir", str(tmp_path / "results")])
    assert status == 0
    assert len(list((tmp_path / "results" / "ddp" / "test_latest" / "images").glob("*.png"))) == 2
