"""Checkpoints hold the whole training state; --continue_train resumes exactly."""
import pytest
import torch

from models import create_model
from options.train_options import TrainOptions
from tests.conftest import tiny_flags
from training.trainer import Trainer


def make_trainer(flags):
    trainer = Trainer(TrainOptions().parse(flags))
    trainer.recorded = []
    step = trainer.model.optimize_parameters

    def step_and_record():
        step()
        trainer.recorded.append(trainer.model.get_current_losses())

    trainer.model.optimize_parameters = step_and_record
    return trainer


def flags(tiny_dataroot, tmp_path, name, *extra):
    # 4 images -> 4 iterations per epoch, 2 epochs (the second decays the learning rate).
    return tiny_flags(tiny_dataroot, tmp_path / "ck", name) + [
        "--n_epochs", "1", "--n_epochs_decay", "1", "--save_latest_freq", "1000", *extra]


@pytest.mark.parametrize("stop_after", [3, 4], ids=["mid-epoch", "epoch-boundary"])
def test_resumed_losses_equal_uninterrupted_run(tiny_dataroot, tmp_path, stop_after):
    full = make_trainer(flags(tiny_dataroot, tmp_path, "full"))
    full.run()
    assert len(full.recorded) == 8

    first = make_trainer(flags(tiny_dataroot, tmp_path, "split", "--max_iters", str(stop_after)))
    first.run()
    assert first.recorded == full.recorded[:stop_after]

    resumed = make_trainer(flags(tiny_dataroot, tmp_path, "split", "--continue_train"))
    assert resumed.position["total_iters"] == stop_after
    resumed.run()
    assert resumed.recorded == full.recorded[stop_after:]
    for name, net in full.model.networks().items():
        for a, b in zip(net.state_dict().values(), resumed.model.net(name).state_dict().values()):
            assert torch.equal(a, b), f"net{name} differs after resuming"


def test_save_load_round_trip_restores_every_part(tiny_dataroot, tmp_path):
    trainer = make_trainer(flags(tiny_dataroot, tmp_path, "rt", "--max_iters", "2", "--lr_policy", "linear"))
    trainer.run()
    saved = trainer.model
    opt = TrainOptions().parse(flags(tiny_dataroot, tmp_path, "rt", "--continue_train"))
    torch.manual_seed(123)  # different fresh weights: loading must overwrite all of them
    fresh = create_model(opt)
    position = fresh.setup()
    assert position == {"epoch": 1, "epoch_iter": 2, "total_iters": 2}
    for name in saved.model_names:
        for a, b in zip(saved.net(name).state_dict().values(), fresh.net(name).state_dict().values()):
            assert torch.equal(a, b)
    for name, optim in saved.optimizers.items():
        ours, theirs = optim.state_dict(), fresh.optimizers[name].state_dict()
        assert ours["param_groups"] == theirs["param_groups"]
        for sid, state in ours["state"].items():
            assert torch.equal(state["exp_avg"], theirs["state"][sid]["exp_avg"])
    assert {n: s.state_dict() for n, s in saved.schedulers.items()} == \
        {n: s.state_dict() for n, s in fresh.schedulers.items()}


def test_epoch_checkpoints_and_options_file(tiny_dataroot, tmp_path):
    import train
    assert train.main(flags(tiny_dataroot, tmp_path, "files", "--save_epoch_freq", "1")) == 0
    run_dir = tmp_path / "ck" / "files"
    assert {p.name for p in run_dir.glob("*.pt")} == {"latest.pt", "1.pt", "2.pt"}
    text = (run_dir / "train_opt.txt").read_text()
    assert "dcd_variant: official" in " ".join(text.split())  # the default is written out too
    assert not list(run_dir.glob("*.tmp")), "no temporary checkpoint files left behind"
    assert (run_dir / "web" / "index.html").is_file()


def test_resumed_run_redraws_the_whole_loss_curve_from_the_log(tiny_dataroot, tmp_path):
    """After --continue_train the curves hold the whole run, as an uninterrupted run's do.

    The line logged after the checkpoint (as by a run killed before its next save) is
    dropped: that iteration is done again after resuming.
    """
    full = make_trainer(flags(tiny_dataroot, tmp_path, "full"))
    full.run()
    first = make_trainer(flags(tiny_dataroot, tmp_path, "split", "--max_iters", "3"))
    first.run()
    log = tmp_path / "ck" / "split" / "loss_log.txt"
    with open(log, "a") as fh:
        fh.write("(epoch: 1, iters: 4, time: 0.1, data: 0.0) " + " ".join(f"{k}: 99" for k in full.recorded[0]) + "\n")

    resumed = make_trainer(flags(tiny_dataroot, tmp_path, "split", "--continue_train"))
    assert {name: len(points) for name, points in resumed.visualizer.loss_history.items()} == \
        {name: 3 for name in full.recorded[0]}
    resumed.run()
    expected, got = full.visualizer.loss_history, resumed.visualizer.loss_history
    assert set(got) == set(expected)
    for name in expected:
        assert [x for x, _ in got[name]] == [x for x, _ in expected[name]], name
        assert [y for _, y in got[name]] == pytest.approx([y for _, y in expected[name]], rel=1e-5), name
    assert "Training resumed at epoch 1, iteration 3 (" in log.read_text()
