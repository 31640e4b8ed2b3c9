"""Shared fixtures: tiny datasets, the flags of a tiny, fast CPU model, a visdom server; and the
guard that fails a session in which a test wrote into the working tree's user folders."""
from __future__ import annotations

import logging
import os
from pathlib import Path

# Tiny networks gain nothing from a second thread, and spinning OpenMP threads collapse
# when other processes (data workers, a visdom server, training subprocesses) share the
# two cores: one thread per process, set before torch loads so subprocesses inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pytest
import torch
from PIL import Image

from tests.visdom_server import start_visdom_server
from tests.working_tree import USER_FOLDERS, Snapshot, changes, snapshot
from util.log import CurrentStderrHandler

torch.set_num_threads(1)

_USER_FILES_AT_START = pytest.StashKey[Snapshot]()
_USER_FILES_WRITTEN = pytest.StashKey[list[str]]()


# ----- the working tree's checkpoints/, results/, datasets/ and pretrained/ stay as they were
def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[_USER_FILES_AT_START] = snapshot()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A user's demo run, data or exported model must neither change a result nor be touched:
    fail the session when a file there was created, changed or deleted."""
    del exitstatus
    before = session.config.stash.get(_USER_FILES_AT_START, None)
    if before is None:
        return
    written = changes(before, snapshot())
    if written:
        session.config.stash[_USER_FILES_WRITTEN] = written
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter) -> None:
    written = terminalreporter.config.stash.get(_USER_FILES_WRITTEN, [])
    if written:
        terminalreporter.section(f"tests wrote into the working tree's {', '.join(USER_FOLDERS)}", red=True)
        for line in written:
            terminalreporter.write_line(line)
        terminalreporter.write_line("FAILED: a test must write under tmp_path (pass --checkpoints_dir, "
                                    "--results_dir or the script's *_DIR variable) and leave these folders alone")


@pytest.fixture(autouse=True)
def entry_point_logging_stays_in_its_test():
    """Entry points called in-process (train.main, test.main) install a console handler and
    set the root level; take both away after the test, so later tests log as pytest set up."""
    root = logging.getLogger()
    level = root.level
    yield
    for handler in [h for h in root.handlers if isinstance(h, CurrentStderrHandler)]:
        root.removeHandler(handler)
    root.setLevel(level)


@pytest.fixture(scope="module")
def visdom_server(tmp_path_factory):
    """A real visdom server on a free loopback port, shared by the tests of one module."""
    server = start_visdom_server(tmp_path_factory.mktemp("visdom_env"))
    yield server
    server.stop()


def write_images(folder: Path, count: int, size=(40, 48), seed: int = 0, prefix: str = "img") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        h, w = size
        # Smooth random images: a gradient plus noise, so networks see some structure.
        base = np.linspace(0, 255, w)[None, :, None] * rng.random(3)[None, None, :]
        arr = np.clip(base + rng.normal(0, 30, (h, w, 3)), 0, 255).astype(np.uint8)
        path = folder / f"{prefix}{i:03d}.png"
        Image.fromarray(arr).save(path)
        paths.append(path)
    return paths


@pytest.fixture
def tiny_dataroot(tmp_path: Path) -> Path:
    """trainA/trainB with 4 images each, testA/testB paired with 2 images."""
    root = tmp_path / "data"
    write_images(root / "trainA", 4, seed=1)
    write_images(root / "trainB", 4, seed=2)
    write_images(root / "testA", 2, seed=3)
    write_images(root / "testB", 2, seed=4)
    return root


def tiny_flags(dataroot: Path, checkpoints: Path, name: str = "tiny", model: str = "dcdgan") -> list[str]:
    return ["--dataroot", str(dataroot), "--checkpoints_dir", str(checkpoints), "--name", name,
            "--model", model, "--gpu_ids", "-1", "--ngf", "8", "--ndf", "8", "--netF_nc", "16",
            "--num_patches", "16", "--load_size", "36", "--crop_size", "32", "--num_threads", "0",
            "--display_id", "0", "--print_freq", "1", "--netG", "resnet_6blocks"]


def save_tiny_dcdgan(dataroot: Path, checkpoints: Path, name: str) -> None:
    """Save checkpoints/<name>/latest.pt of a tiny dcdgan whose G_A has PyTorch's default conv
    weights: the 0.02-gain init gives outputs too flat to compare backends or exports on."""
    from models import create_model
    from options.train_options import TrainOptions

    model = create_model(TrainOptions().parse(tiny_flags(dataroot, checkpoints, name)))
    model.setup()
    torch.manual_seed(0)
    for module in model.netG_A.modules():
        if isinstance(module, torch.nn.Conv2d):
            module.reset_parameters()
    model.save("latest", {"epoch": 1, "epoch_iter": 0, "total_iters": 0})


# Every model the repository trains; "dcdgan:paper" is --model dcdgan --dcd_variant paper.
MODEL_KEYS = ["cycle_gan", "cut", "fastcut", "dcl", "negcut", "dcdgan:official", "dcdgan:paper", "cddgan"]
CONTRASTIVE_FLAGS = ("--netF_nc", "--num_patches")


def without_flags(flags: list[str], names) -> list[str]:
    """`flags` (flag, value pairs such as tiny_flags) without the flags in `names` and their values."""
    return [token for key, value in zip(flags[::2], flags[1::2]) if key not in names for token in (key, value)]


def tiny_model_flags(model_key: str, dataroot: Path, checkpoints: Path, name: str = "tiny") -> list[str]:
    """tiny_flags for one of MODEL_KEYS (cycle_gan has no contrastive flags)."""
    model, _, variant = model_key.partition(":")
    flags = tiny_flags(dataroot, checkpoints, name, model)
    if model == "cycle_gan":
        flags = without_flags(flags, CONTRASTIVE_FLAGS)
    return flags + (["--dcd_variant", variant] if variant else [])
