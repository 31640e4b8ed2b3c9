"""Interrupted training loses nothing: signals save and exit, kill -9 never corrupts, lost data
saves and stops, NaN stops.

Subprocess tests send real signals to `train.py`; the NaN tests poison a loss in-process.
"""
from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import torch.optim.optimizer as torch_optimizer

import train
from models.dcdgan_model import DCDGANModel
from options.train_options import TrainOptions
from tests.conftest import tiny_flags, write_images
from training.guards import NonFiniteLossError
from training.trainer import Trainer
from util.checkpoint import load_checkpoint

REPO = Path(__file__).resolve().parents[1]
EXIT_NONFINITE = 4
EXIT_DATA_LOST = 5


@pytest.fixture
def dataroot(tmp_path: Path) -> Path:
    write_images(tmp_path / "data" / "trainA", 4, seed=1)
    write_images(tmp_path / "data" / "trainB", 4, seed=2)
    return tmp_path / "data"


def flags(dataroot: Path, tmp_path: Path, *extra: str) -> list[str]:
    # 4 images, 2 epochs: 8 iterations, 'latest' saved after every one of them.
    return tiny_flags(dataroot, tmp_path / "ck", "run") + [
        "--n_epochs", "2", "--n_epochs_decay", "0", "--save_latest_freq", "1", "--print_freq", "1000", *extra]


@pytest.fixture
def start(dataroot: Path, tmp_path: Path):
    """Start train.py in its own session (a signal to the group reaches its DataLoader workers
    too, as Ctrl-C does); whatever is still running at the end of the test is killed."""
    started: list[subprocess.Popen] = []

    def launch(*extra: str) -> subprocess.Popen:
        env = dict(os.environ, OMP_NUM_THREADS="1")  # tiny nets; spare the shared cores
        proc = subprocess.Popen([sys.executable, "train.py", *flags(dataroot, tmp_path, *extra)], cwd=REPO,
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)
        started.append(proc)
        return proc

    yield launch
    for proc in started:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def wait_for(condition: Callable[[], bool], proc: subprocess.Popen, timeout: float = 300.0) -> bool:
    """Poll until `condition()`; False if the process ended first."""
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            return False
        assert time.monotonic() < deadline, "training made no progress"
        time.sleep(0.002)
    return True


def rewritten(path: Path) -> Callable[[], bool]:
    """A condition: `path` exists and was written after this call."""
    before = path.stat().st_mtime_ns if path.exists() else None

    def check() -> bool:
        try:
            return path.stat().st_mtime_ns != before
        except FileNotFoundError:
            return False
    return check


def saved_position(latest: Path) -> dict[str, int]:
    return load_checkpoint(latest)["position"]


# ----- signals -----------------------------------------------------------------------------
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=["SIGINT", "SIGTERM", "SIGHUP"])
def test_signal_saves_the_current_position_and_exits_128_plus_signal(dataroot, tmp_path, monkeypatch, caplog,
                                                                     signum):
    step = DCDGANModel.optimize_parameters
    calls = [0]

    def step_then_signal(self):
        step(self)
        calls[0] += 1
        if calls[0] == 1:
            os.kill(os.getpid(), signum)

    monkeypatch.setattr(DCDGANModel, "optimize_parameters", step_then_signal)
    previous = signal.getsignal(signum)
    quick = ("--save_latest_freq", "1000", "--max_iters", "2")  # 'latest' only when stopping
    assert train.main(flags(dataroot, tmp_path, *quick)) == 128 + signum
    assert signal.getsignal(signum) is previous, "the handler is put back"
    assert f"{signal.Signals(signum).name} received: saved 'latest' at iteration 1" in caplog.text
    latest = tmp_path / "ck" / "run" / "latest.pt"
    assert saved_position(latest) == {"epoch": 1, "epoch_iter": 1, "total_iters": 1}
    monkeypatch.undo()
    assert train.main(flags(dataroot, tmp_path, *quick, "--continue_train")) == 0
    assert saved_position(latest) == {"epoch": 1, "epoch_iter": 2, "total_iters": 2}


def test_ctrl_c_with_dataloader_workers_saves_and_exits_130(start, tmp_path):
    latest = tmp_path / "ck" / "run" / "latest.pt"
    proc = start("--num_threads", "1")
    assert wait_for(latest.exists, proc)
    os.killpg(proc.pid, signal.SIGINT)  # as a terminal does: the main process and its worker
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == 130, output
    assert "SIGINT received" in output and "--continue_train" in output
    assert "exited unexpectedly" not in output, "the DataLoader worker must survive Ctrl-C"
    assert 1 <= saved_position(latest)["total_iters"] < 8


def test_kill_9_at_any_moment_leaves_a_loadable_checkpoint(start, dataroot, tmp_path):
    """SIGKILL at random moments and while a save is in flight, resuming each time; then finish."""
    run_dir = tmp_path / "ck" / "run"
    latest = run_dir / "latest.pt"
    # 6 epochs (24 iterations) rather than flags()'s 8: on a fast CPU an 8-iteration run could
    # finish between the last save and the kill, and the test would no longer kill a running run.
    longer = ("--n_epochs", "6")
    rng = random.Random(0)
    progress = [0]
    for attempt in range(3):
        if attempt < 2:  # at a random moment once it has saved something new
            saved = rewritten(latest)
            proc = start(*longer, *(["--continue_train"] if latest.exists() else []))
            assert wait_for(saved, proc)
            time.sleep(rng.uniform(0.0, 0.3))
        else:  # while the temporary file of a save is being written
            proc = start(*longer, "--continue_train")
            assert wait_for(lambda: any(run_dir.glob("latest.pt.*.tmp")), proc)
        proc.kill()
        proc.wait()
        progress.append(saved_position(latest)["total_iters"])
        assert progress[-1] >= progress[-2], "a resume never goes backwards"
    assert progress[-1] < 24, "every kill hit a run that was still training"
    assert train.main(flags(dataroot, tmp_path, *longer, "--continue_train")) == 0
    # The last kill hit a save: the resume removed its temporary file (issue 32).
    assert list(run_dir.glob("*.tmp")) == []
    state = load_checkpoint(latest)
    assert state["position"] == {"epoch": 7, "epoch_iter": 0, "total_iters": 24}
    for net in state["nets"].values():
        assert all(torch.isfinite(t).all() for t in net.values() if t.is_floating_point())


@pytest.mark.parametrize("num_threads", [0, 1], ids=["in-process", "worker"])
def test_lost_training_data_saves_the_position_and_exits_5(dataroot, tmp_path, monkeypatch, caplog, num_threads):
    """The data disk is unmounted at iteration 2: the run saves where it was and says why it stopped."""
    step = DCDGANModel.optimize_parameters
    calls = [0]

    def step_then_lose_the_data(self):
        step(self)
        calls[0] += 1
        if calls[0] == 2:
            shutil.rmtree(dataroot / "trainA")

    monkeypatch.setattr(DCDGANModel, "optimize_parameters", step_then_lose_the_data)
    quick = ("--save_latest_freq", "1000", "--num_threads", str(num_threads))
    assert train.main(flags(dataroot, tmp_path, *quick)) == EXIT_DATA_LOST
    message = caplog.records[-1].getMessage()
    assert f"training folder '{dataroot / 'trainA'}' vanished or became unreadable" in message
    position = saved_position(tmp_path / "ck" / "run" / "latest.pt")
    # A worker may have loaded a batch or two ahead, before the folder went.
    assert position["total_iters"] == 2 if num_threads == 0 else 2 <= position["total_iters"] < 8
    assert f"saved 'latest' at iteration {position['total_iters']}" in message
    assert "--continue_train" in message and "\n" not in message


# ----- NaN / Inf losses --------------------------------------------------------------------
@pytest.fixture
def poison_generator_loss(monkeypatch):
    """Make the generator loss NaN at the given iterations (1-based) of the run being built."""
    iterations: set[int] = set()
    compute = DCDGANModel.compute_G_loss
    calls = [0]

    def poisoned(self):
        terms = compute(self)
        calls[0] += 1
        if calls[0] in iterations:
            terms["NCE1"] = terms["NCE1"] * float("nan")  # and so their sum, logged as G
        return terms

    monkeypatch.setattr(DCDGANModel, "compute_G_loss", poisoned)
    return iterations


def test_the_nan_check_is_a_step_of_the_update_not_a_global_optimizer_hook(dataroot, tmp_path, monkeypatch):
    """The trainer hands its check to the model in plain sight; no optimizer hook is registered
    behind the loop's back (it would see every optimizer in the process, the trainer's or not)."""
    trainer = Trainer(TrainOptions().parse(flags(dataroot, tmp_path, "--max_iters", "1")))
    model = trainer.model
    assert model.step_guard == trainer.nan_guard.allows_step
    asked, hooks = [], []
    allows_step = trainer.nan_guard.allows_step

    def recording(losses, optimizer_names):
        asked.append((sorted(losses), list(optimizer_names)))
        registered = torch_optimizer._global_optimizer_pre_hooks, torch_optimizer._global_optimizer_post_hooks
        hooks.append(sum(map(len, registered)))
        return allows_step(losses, optimizer_names)

    model.step_guard = recording
    assert trainer.run()["position"]["total_iters"] == 1
    # dcdgan's official variant: one D update, then G and F on the generator's terms and total.
    assert [names for _, names in asked] == [["D"], ["G", "F"]]
    assert "G" in asked[1][0] and "NCE1" in asked[1][0]
    assert hooks == [0, 0], "no global optimizer step hook is registered while training"


def test_nan_stop_exits_4_naming_the_loss_and_saves_nothing(dataroot, tmp_path, poison_generator_loss, caplog):
    poison_generator_loss.add(2)
    assert train.main(flags(dataroot, tmp_path, "--max_iters", "3")) == EXIT_NONFINITE
    assert "non-finite loss at iteration 2" in caplog.text
    assert "NCE1 = nan" in caplog.text and "G = nan" in caplog.text
    assert saved_position(tmp_path / "ck" / "run" / "latest.pt")["total_iters"] == 1


def test_nan_skip_leaves_the_weights_untouched_and_goes_on(dataroot, tmp_path, poison_generator_loss, caplog):
    poison_generator_loss.add(2)
    trainer = Trainer(TrainOptions().parse(flags(dataroot, tmp_path, "--nan_policy", "skip", "--max_iters", "3")))
    model = trainer.model
    step = model.optimize_parameters
    snapshots = {}

    def step_and_snapshot():
        snapshots[trainer.position["total_iters"]] = [p.detach().clone() for p in model.netG_A.parameters()]
        step()

    model.optimize_parameters = step_and_snapshot
    assert trainer.run()["position"]["total_iters"] == 3
    assert trainer.nan_guard.skipped_iterations == [2]
    assert "non-finite loss at iteration 2" in caplog.text and "update skipped" in caplog.text
    final = list(model.netG_A.parameters())
    assert not same(snapshots[0], snapshots[1]), "iteration 1 updates G"
    assert same(snapshots[1], snapshots[2]), "iteration 2 (NaN) leaves G alone"
    assert not same(snapshots[2], final), "iteration 3 updates G again"
    for net in model.networks().values():
        assert all(torch.isfinite(p).all() for p in net.parameters())
    # Adam's step counts (and so its moments) did not advance either: G stepped twice, D three times.
    assert (adam_steps(model.optimizers["G"]), adam_steps(model.optimizers["D"])) == (2, 3)


def same(params_a, params_b) -> bool:
    return all(torch.equal(a, b) for a, b in zip(params_a, params_b))


def adam_steps(optimizer: torch.optim.Optimizer) -> int:
    return int(next(iter(optimizer.state.values()))["step"])


def test_nan_skip_gives_up_when_training_does_not_recover(dataroot, tmp_path, poison_generator_loss):
    poison_generator_loss.update(range(1, 9))
    trainer = Trainer(TrainOptions().parse(flags(dataroot, tmp_path, "--nan_policy", "skip")))
    trainer.nan_guard.max_skips_in_a_row = 3
    with pytest.raises(NonFiniteLossError, match="3 iterations in a row"):
        trainer.run()
    assert trainer.nan_guard.skipped_iterations == [1, 2, 3]
