"""Options are checked when parsed: a value that cannot work exits 2 with one line naming the
flag and the fix, before any image is read or anything is written; a run that would train
nothing says so."""
from __future__ import annotations

import pytest

import evaluate
import train
from options.test_options import TestOptions
from options.train_options import TrainOptions
from scripts import export_onnx
from tests.conftest import tiny_flags, write_images
from restoration import batch, cli

EXIT_USAGE = 2


def refused(parse, argv: list[str], capsys) -> str:
    """The one line a refused command line prints (it must exit 2)."""
    with pytest.raises(SystemExit) as info:
        parse(argv)
    assert info.value.code == EXIT_USAGE
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


TRAIN_CASES = {
    "zero width": (["--ngf", "0"], "--ngf must be at least 1"),
    "negative batch": (["--batch_size", "-2"], "--batch_size must be at least 1"),
    "zero frequency": (["--save_latest_freq", "0"], "--save_latest_freq must be at least 1"),
    "crop larger than load": (["--load_size", "32", "--crop_size", "64"], "--crop_size 64 is larger than --load_size"),
    "unknown model": (["--model", "pix2pix"], "unknown --model 'pix2pix'"),
    "unknown netG": (["--netG", "unet_256"], "--netG: invalid choice: 'unet_256'"),
    "unknown gan_mode": (["--gan_mode", "wgan"], "--gan_mode: invalid choice: 'wgan'"),
    "unknown lr_policy": (["--lr_policy", "exp"], "--lr_policy: invalid choice: 'exp'"),
    "unknown preprocess": (["--preprocess", "zoom"], "--preprocess: invalid choice: 'zoom'"),
    "unknown dataset_mode": (["--dataset_mode", "video"], "unknown --dataset_mode 'video'"),
    "nce layer missing": (["--nce_layers", "0,4,99"], "--netG resnet_6blocks has no layer 99"),
    "gpu_ids not numbers": (["--gpu_ids", "first"], "--gpu_ids must be GPU numbers"),
    "absent gpu": (["--gpu_ids", "99"], "asks for GPU 99"),
    "zero max_dataset_size": (["--max_dataset_size", "0"], "--max_dataset_size must be at least 1"),
    "grey input": (["--input_nc", "1"], "--input_nc 1"),
    "negative weight": (["--lambda_NCE", "-1"], "--lambda_NCE must be at least 0"),
    "ema decay above 1": (["--ema_decay", "1.5"], "--ema_decay must lie in [0, 1)"),
    "negative sparsity": (["--lambda_sparse", "-0.1"], "--lambda_sparse must be at least 0"),
    "zero learning rate": (["--lr", "0"], "--lr must be greater than 0"),
    "iteration budget with step lr": (["--n_iters", "10", "--lr_policy", "step"], "--lr_policy linear"),
    "name leaves checkpoints_dir": (["--name", "../elsewhere"], "--name '../elsewhere' must be a plain name"),
    "name is a path": (["--name", "a/b"], "--name 'a/b' must be a plain name"),
    "resume and start over": (["--continue_train", "--overwrite_run"], "pass only one"),
    "max_iters 0": (["--max_iters", "0"], "--max_iters 0 trains nothing"),
    "no epochs": (["--n_epochs", "0", "--n_epochs_decay", "0"], "trains nothing"),
}


@pytest.mark.parametrize("case", sorted(TRAIN_CASES))
def test_train_options_refuse_what_cannot_work(tmp_path, capsys, case):
    extra, expected = TRAIN_CASES[case]
    line = refused(TrainOptions().parse, tiny_flags(tmp_path, tmp_path / "ck") + extra, capsys)
    assert expected in line and "error:" in line


def test_defaults_and_the_launchers_settings_pass(tmp_path):
    for model in ("cycle_gan", "cut", "fastcut", "dcl", "negcut", "dcdgan", "cddgan", "paired"):
        TrainOptions().parse(["--dataroot", str(tmp_path), "--model", model, "--gpu_ids", "-1"])
    opt = TrainOptions().parse(tiny_flags(tmp_path, tmp_path / "ck") + ["--n_epochs", "0"])  # decay epochs only
    assert opt.gpu_ids == [] and opt.n_epochs_decay > 0


TEST_CASES = {
    "negative overlap": (["--tile", "64", "--tile_overlap", "-10"], "--tile_overlap must be at least 0"),
    "overlap as large as the tile": (["--tile", "64", "--tile_overlap", "64"], "must be smaller than --tile 64"),
    "tiny tile": (["--tile", "8", "--tile_overlap", "2"], "a tile of at least 64 pixels"),
    "no images": (["--num_test", "0"], "--num_test must be at least 1"),
    "negative border": (["--crop_border", "-1"], "--crop_border must be at least 0"),
    "epoch as a path": (["--epoch", "../../other/latest"], "--epoch '../../other/latest' must be a plain name"),
    "unknown direction": (["--direction", "up"], "--direction: invalid choice"),
}


@pytest.mark.parametrize("case", sorted(TEST_CASES))
def test_test_options_refuse_what_cannot_work(capsys, case):
    extra, expected = TEST_CASES[case]
    assert expected in refused(TestOptions().parse, ["--dataroot", "x", "--gpu_ids", "-1"] + extra, capsys)


def test_bad_tiling_stops_before_any_image_is_read(tmp_path, capsys, monkeypatch):
    """A negative overlap used to leave NaN gaps between tiles, saved as black stripes, exit 0."""
    write_images(tmp_path / "photos", 1, size=(150, 150))
    monkeypatch.setattr(batch, "load_rgb", lambda path: pytest.fail("an image was read"))
    argv = ["--dataroot", str(tmp_path / "photos"), "--name", "t", "--checkpoints_dir", str(tmp_path / "ck"),
            "--results_dir", str(tmp_path / "results"), "--gpu_ids", "-1", "--tile", "64", "--tile_overlap", "-10"]
    assert "--tile_overlap" in refused(cli.main, argv, capsys)
    assert not (tmp_path / "results").exists()


def test_evaluate_refuses_a_negative_border(tmp_path, capsys):
    line = refused(evaluate.main, ["--pred", str(tmp_path), "--gt", str(tmp_path), "--crop_border", "-3"], capsys)
    assert "--crop_border must be at least 0" in line


@pytest.mark.parametrize("extra,expected", [
    (["--name", ".."], "--name '..' must be a plain name"),
    (["--name", "t", "--opset", "9"], "--opset 9"),
    (["--name", "t", "--out", "{tmp}"], "is a folder"),
])
def test_export_onnx_refuses_bad_arguments(tmp_path, capsys, extra, expected):
    extra = [arg.format(tmp=tmp_path) for arg in extra]
    assert expected in refused(export_onnx.main, ["--checkpoints_dir", str(tmp_path)] + extra, capsys)


# ----- a run that would train nothing says so -------------------------------------------------
@pytest.fixture
def finished(tmp_path):
    """A tiny run trained to the end of its one epoch (2 iterations)."""
    write_images(tmp_path / "data" / "trainA", 2, seed=1)
    write_images(tmp_path / "data" / "trainB", 2, seed=2)
    flags = tiny_flags(tmp_path / "data", tmp_path / "ck", "done") + ["--n_epochs", "1", "--n_epochs_decay", "0"]
    assert train.main(flags) == 0
    return flags


def test_resuming_a_finished_run_says_there_is_nothing_to_train(finished, tmp_path, caplog):
    latest = tmp_path / "ck" / "done" / "latest.pt"
    before = latest.read_bytes()
    assert train.main(finished + ["--continue_train"]) == EXIT_USAGE
    assert "nothing to train" in caplog.text and "at epoch 1, iteration 2" in caplog.text
    assert "--n_epochs 1 + --n_epochs_decay 0" in caplog.text
    assert latest.read_bytes() == before
    assert train.main(finished + ["--continue_train", "--n_epochs", "2"]) == 0, "a larger budget goes on"
