"""Multi-process training: torchrun with gloo on the CPU keeps every rank's weights identical."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import tiny_flags, write_images
from restoration import cli
from util.checkpoint import load_checkpoint
from util.distributed import (DIGEST_DIR_ENV, DistributedContext, DistributedError, context_from_env,
                              init_distributed, parameter_digest)

REPO = Path(__file__).resolve().parent.parent


def test_context_from_env_defaults_to_one_process():
    assert context_from_env({}) == DistributedContext(rank=0, world_size=1, local_rank=0)
    ctx = context_from_env({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"})
    assert (ctx.rank, ctx.world_size, ctx.local_rank, ctx.is_main, ctx.enabled) == (3, 4, 1, False, True)


def test_one_process_runs_on_the_device_of_its_gpu_ids(monkeypatch):
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(key, raising=False)
    assert init_distributed([]) == (DistributedContext(), torch.device("cpu"))


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
    # Rank 0 alone held the run folder's lock (a second holder would have been refused) and let it go.
    assert not (tmp_path / "ck" / "ddp" / "train.lock").exists()

    status = cli.main(["--dataroot", str(tiny_dataroot), "--checkpoints_dir", str(tmp_path / "ck"),
                       "--name", "ddp", "--model", "dcdgan", "--gpu_ids", "-1",
                       "--results_dir", str(tmp_path / "results")])
    assert status == 0
    assert len(list((tmp_path / "results" / "ddp" / "test_latest" / "images").glob("*.png"))) == 2


def torchrun_workers(launcher_pid: int) -> dict[int, int]:
    """{RANK: pid} of the worker processes a torchrun process started (Linux /proc)."""
    workers = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            parent = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            environ = (proc / "environ").read_bytes().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue  # exited meanwhile, or not ours
        rank = [item[5:] for item in environ if item.startswith(b"RANK=")]
        if parent == launcher_pid and rank:
            workers[int(rank[0])] = int(proc.name)
    return workers


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds the worker processes through /proc")
def test_a_signal_to_one_rank_stops_every_rank_and_rank0_saves_that_position(tmp_path):
    """SIGTERM to rank 1 alone: both ranks stop after the same iteration and rank 0 saves it.

    A rank stopping on its own would leave rank 0 blocked in the next gradient all-reduce
    until the launcher tears it down, with no checkpoint of where training stopped.
    """
    root = tmp_path / "data"
    write_images(root / "trainA", 40, seed=1)
    write_images(root / "trainB", 40, seed=2)
    # 20 iterations per epoch; nothing is saved before the end of the first one but the stop.
    flags = tiny_flags(root, tmp_path / "ck", "stop") + ["--n_epochs", "50", "--n_epochs_decay", "0",
                                                          "--save_latest_freq", "100000"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(REPO / "train.py"), *flags]
    log = tmp_path / "ck" / "stop" / "loss_log.txt"
    with subprocess.Popen(cmd, cwd=REPO, env=dict(os.environ, OMP_NUM_THREADS="1"), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True) as launcher:
        try:
            deadline = time.monotonic() + 240
            while not (log.is_file() and "iters: 1," in log.read_text()):
                assert launcher.poll() is None and time.monotonic() < deadline, "training did not start"
                time.sleep(0.2)
            workers = torchrun_workers(launcher.pid)
            assert set(workers) == {0, 1}
            os.kill(workers[1], signal.SIGTERM)
            output, _ = launcher.communicate(timeout=120)
        finally:
            if launcher.poll() is None:
                launcher.kill()
    assert "SIGTERM received" in output, output[-3000:]
    checkpoint = load_checkpoint(tmp_path / "ck" / "stop" / "latest.pt")
    position = checkpoint["position"]
    logged = log.read_text().count("iters:")
    assert 1 <= position["total_iters"] < 20 and position["epoch_iter"] == position["total_iters"]
    assert position["total_iters"] == logged, "rank 0 saved the iteration where every rank stopped"


def _nan_on_rank1_worker(rank: int, store: str, out: str) -> None:
    import torch.distributed as dist
    from training.guards import NonFiniteGuard
    from util.distributed import leave_together
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    try:
        weight = torch.nn.Parameter(torch.ones(3))
        optimizer = torch.optim.SGD([weight], lr=0.1)
        guard = NonFiniteGuard("skip", {"total_iters": 0})
        scale = float("nan") if rank == 1 else 1.0
        loss = (weight * scale).sum()
        if guard.allows_step({"G": loss}, ["G"]):  # as BaseModel.minimise asks it
            loss.backward()
            optimizer.step()
        Path(out, f"rank{rank}.json").write_text(json.dumps(
            {"weight": weight.tolist(), "skipped": guard.skipped_iterations}))
        leave_together()
    finally:
        dist.destroy_process_group()


def test_a_nan_loss_on_one_rank_makes_every_rank_skip_the_step(tmp_path):
    """Gradients are averaged, so rank 1's NaN would reach rank 0's weights: both skip."""
    torch.multiprocessing.spawn(_nan_on_rank1_worker, args=(str(tmp_path / "store"), str(tmp_path)), nprocs=2)
    for rank in (0, 1):
        result = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert result == {"weight": [1.0, 1.0, 1.0], "skipped": [1]}, rank
