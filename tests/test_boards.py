"""TensorBoard and W&B beside visdom: --display_backend, read back with TensorBoard's own
event reader and W&B's offline run files; neither package is imported unless asked for."""
from __future__ import annotations

import importlib
import sys

import pytest
import torch

import train
from options.train_options import TrainOptions
from tests.conftest import tiny_flags, write_images
from util.boards import TENSORBOARD_EVENTS
from util.visualizer import Visualizer

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")


def read_events(run_dir) -> event_accumulator.EventAccumulator:
    events = event_accumulator.EventAccumulator(str(run_dir), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    return events


def visuals(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"real_A": torch.rand(1, 3, 24, 32, generator=g) * 2 - 1, "fake_B": torch.rand(1, 3, 24, 32, generator=g)}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Six iterations of a tiny DCD-GAN with --display_backend tensorboard."""
    tmp = tmp_path_factory.mktemp("tb")
    root = tmp / "data"
    write_images(root / "trainA", 3, seed=1)
    write_images(root / "trainB", 3, seed=2)
    flags = tiny_flags(root, tmp / "ck", "tb") + ["--display_backend", "tensorboard", "--display_freq", "2",
                                                  "--print_freq", "2"]
    assert train.main(flags + ["--max_iters", "6"]) == 0
    return tmp, flags


def test_training_writes_losses_visuals_and_options_to_tensorboard(trained):
    tmp, _ = trained
    run_dir = tmp / "ck" / "tb"
    assert list(run_dir.glob(TENSORBOARD_EVENTS)), "event files live in checkpoints/<name>/"
    events = read_events(run_dir)
    tags = events.Tags()
    logged = (run_dir / "loss_log.txt").read_text().splitlines()[-1]  # the same values as the loss log
    names = [token.rstrip(":") for token in logged.split(")")[1].split()[::2]]
    assert set(tags["scalars"]) == {f"loss/{name}" for name in names} and "loss/NCE1" in tags["scalars"]
    for name, text in zip(names, logged.split(")")[1].split()[1::2]):
        last = events.Scalars(f"loss/{name}")[-1]
        assert last.step == 6 and last.value == pytest.approx(float(text), rel=1e-5)
    assert [e.step for e in events.Scalars("loss/G")] == [2, 4, 6]
    image = events.Images("visuals")[-1]
    assert image.step == 6 and image.width > 64 and image.height > 64
    options = events.Tensors("options/text_summary")[0].tensor_proto.string_val[0].decode()
    assert "| netG | resnet_6blocks |" in options and "| display_backend | tensorboard |" in options


def test_a_resumed_run_replaces_the_redone_steps_and_a_new_run_starts_clean(trained):
    tmp, flags = trained
    run_dir = tmp / "ck" / "tb"
    # Resume from latest (iteration 6) up to 8: steps continue, none duplicated.
    assert train.main(flags + ["--max_iters", "8", "--continue_train"]) == 0
    assert [e.step for e in read_events(run_dir).Scalars("loss/G")] == [2, 4, 6, 8]
    assert train.main(flags + ["--max_iters", "2", "--overwrite_run"]) == 0
    assert [e.step for e in read_events(run_dir).Scalars("loss/G")] == [2]


def test_both_backends_and_the_default_is_visdom_only(tmp_path):
    base = ["--dataroot", "x"]
    assert TrainOptions().parse(base).display_backend == "visdom"
    vis = Visualizer("both", tmp_path, display_id=1, display_port=9, display_backend="both", no_html=True)
    assert vis.dashboard is not None and [type(b).__name__ for b in vis.boards] == ["TensorBoardBoard"]
    vis.plot_current_losses(1, 0.5, {"G": 1.5, "D": float("nan")}, step=3)
    vis.display_current_results(visuals(), 1, save_result=False, step=3)
    vis.close()
    events = read_events(tmp_path / "both")
    assert events.Tags()["scalars"] == ["loss/G"]  # non-finite values are not plotted, as on visdom
    plain = Visualizer("plain", tmp_path, display_id=0)
    assert plain.boards == [] and not list((tmp_path / "plain").glob(TENSORBOARD_EVENTS))
    with pytest.raises(SystemExit) as stop:
        TrainOptions().parse(base + ["--display_backend", "mlflow"])
    assert stop.value.code == 2


def test_visdom_alone_imports_neither_tensorboard_nor_wandb(tmp_path, monkeypatch):
    for name in ("tensorboard", "torch.utils.tensorboard", "wandb"):
        monkeypatch.setitem(sys.modules, name, None)  # any import of them would raise
    monkeypatch.delitem(sys.modules, "util.visualizer")
    monkeypatch.delitem(sys.modules, "util.boards")
    fresh = importlib.import_module("util.visualizer")
    vis = fresh.Visualizer("v", tmp_path, display_id=0)
    vis.plot_current_losses(1, 0.5, {"G": 1.0})
    vis.display_current_results(visuals(), 1, save_result=True)
    vis.close()


def test_a_missing_tensorboard_warns_once_and_training_goes_on(tmp_path, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    vis = Visualizer("off", tmp_path, display_backend="tensorboard", no_html=True)
    for step in range(3):
        vis.plot_current_losses(1, step / 3, {"G": 1.0}, step=step)
    vis.close()
    assert caplog.text.count("cannot be imported") == 1


def test_wandb_offline_gets_the_losses_visuals_and_options(tmp_path, monkeypatch):
    wandb = pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    vis = Visualizer("wb", tmp_path, display_backend="wandb", no_html=True, wandb_project="tests",
                     options={"netG": "resnet_6blocks", "ngf": 8})
    vis.plot_current_losses(1, 0.5, {"G": 1.5, "NCE": 0.25}, step=2)
    vis.display_current_results(visuals(), 1, save_result=False, step=2)
    vis.plot_current_losses(1, 0.75, {"G": 1.25, "NCE": 0.5}, step=3)  # commits step 2 to the summary
    run = vis.boards[0]._run
    assert run.config["ngf"] == 8 and run.config["netG"] == "resnet_6blocks"
    assert run.project == "tests" and run.name == "wb"
    summary = dict(run.summary)
    assert summary["_step"] == 2 and summary["loss/G"] == 1.5 and summary["loss/NCE"] == 0.25
    assert summary["visuals"]["_type"] == "image-file"
    vis.close()
    assert wandb.run is None
    offline = list((tmp_path / "wb" / "wandb").glob("offline-run-*"))
    assert len(offline) == 1 and list(offline[0].glob("*.wandb")), "the offline run's file for `wandb sync`"
    assert len(list(offline[0].rglob("visuals_2_*.png"))) == 1
