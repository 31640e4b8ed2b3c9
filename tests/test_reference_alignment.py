"""Where this repository follows the CUT-family reference code: the 4-tap upsampling filter
(with old 3-tap checkpoints still usable) and the whole-image fine-tuning epochs."""
from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from data import create_dataset
from models import create_model
from restoration.loading import load_generator
from models.networks import define_generator
from models.networks.layers import BlurUpsample
from options.train_options import TrainOptions
from tests.conftest import tiny_flags, write_images
from training.trainer import Trainer
from util.checkpoint import CheckpointError, load_checkpoint, save_checkpoint


# ----- anti-aliased upsampling ---------------------------------------------------------------
def test_upsampling_is_the_bilinear_half_pixel_resize():
    """The reference's [1, 3, 3, 1] filter with replicated edges is exactly a 2x bilinear
    resize (align_corners=False), an independent implementation to compare with."""
    x = torch.randn(2, 5, 7, 9)
    expected = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    assert torch.allclose(BlurUpsample(5)(x), expected, atol=1e-6)


def test_legacy_three_tap_upsampling_is_kept_for_old_checkpoints():
    x = torch.tensor([[[[0.0, 2.0]]]]).expand(1, 1, 2, 2).contiguous()
    assert torch.allclose(BlurUpsample(1, taps=3)(x)[0, 0, 0], torch.tensor([0.0, 1.0, 2.0, 2.0]))
    assert torch.allclose(BlurUpsample(1)(x)[0, 0, 0], torch.tensor([0.0, 0.5, 1.5, 2.0]))


def train_briefly(dataroot, tmp_path, name, *extra):
    flags = tiny_flags(dataroot, tmp_path / "ck", name) + ["--n_epochs", "1", "--n_epochs_decay", "0",
                                                           "--max_iters", "2", *extra]
    Trainer(TrainOptions().parse(flags)).run()
    return tmp_path / "ck" / name / "latest.pt", flags


def make_pre_flag_checkpoint(path):
    """Rewrite a 3-tap checkpoint as one saved before --upsample_taps existed: no 'upsample_taps' option."""
    state = load_checkpoint(path)
    del state["opt"]["upsample_taps"]
    save_checkpoint(state, path)


def test_old_checkpoint_loads_with_its_three_tap_filter_and_says_so(tiny_dataroot, tmp_path, caplog):
    path, _ = train_briefly(tiny_dataroot, tmp_path, "old", "--upsample_taps", "3")
    make_pre_flag_checkpoint(path)
    state = load_checkpoint(path)
    with caplog.at_level(logging.INFO):
        net, _ = load_generator(path)
    assert "3-tap upsampling filter" in caplog.text
    assert {m.taps for m in net.modules() if isinstance(m, BlurUpsample)} == {3}
    reference = define_generator("resnet_6blocks", ngf=8, upsample_taps=3)
    reference.load_state_dict(state["nets"]["G_A"])
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.equal(net(x), reference.eval()(x)), "the old weights must give the images they gave"


def test_resuming_an_old_checkpoint_names_the_flag(tiny_dataroot, tmp_path):
    path, flags = train_briefly(tiny_dataroot, tmp_path, "old", "--upsample_taps", "3")
    make_pre_flag_checkpoint(path)
    resume = [f for f in flags if f != "3" and f != "--upsample_taps"] + ["--continue_train", "--max_iters", "3"]
    with pytest.raises(CheckpointError, match="--upsample_taps 3"):
        create_model(TrainOptions().parse(resume)).setup()
    model = create_model(TrainOptions().parse(resume + ["--upsample_taps", "3"]))
    assert model.setup()["total_iters"] == 2


def test_new_checkpoints_record_the_four_tap_filter(tiny_dataroot, tmp_path):
    path, _ = train_briefly(tiny_dataroot, tmp_path, "new")
    net, _ = load_generator(path)
    assert load_checkpoint(path)["opt"]["upsample_taps"] == 4
    assert {m.taps for m in net.modules() if isinstance(m, BlurUpsample)} == {4}


# ----- whole images once the learning rate decays ---------------------------------------------
@pytest.mark.parametrize("model, default", [("cut", True), ("fastcut", True), ("dcl", True), ("dcdgan", True),
                                            ("negcut", True), ("cycle_gan", False), ("cddgan", False)])
def test_decay_full_images_defaults_follow_the_reference_code(tiny_dataroot, tmp_path, model, default):
    opt = TrainOptions().parse(["--dataroot", str(tiny_dataroot), "--model", model, "--gpu_ids", "-1"])
    assert opt.decay_full_images is default


def sample_at(dataset, epoch):
    return dataset[(0, epoch)]["A"]


@pytest.mark.parametrize("enabled", [True, False])
def test_decay_epochs_resize_whole_images_to_the_crop_size(tmp_path, enabled):
    root = tmp_path / "data"
    write_images(root / "trainA", 1, size=(40, 48), seed=1)
    write_images(root / "trainB", 1, seed=2)
    flags = tiny_flags(root, tmp_path, model="dcl") + [
        "--preprocess", "resize_and_crop", "--load_size", "48", "--crop_size", "32", "--no_flip",
        "--n_epochs", "2", "--n_epochs_decay", "2", "--decay_full_images", str(enabled)]
    dataset = create_dataset(TrainOptions().parse(flags))
    source = Image.open(root / "trainA" / "img000.png").convert("RGB")
    whole = np.asarray(source.resize((32, 32), Image.BICUBIC), dtype=np.float32) / 127.5 - 1.0
    whole = torch.from_numpy(whole).permute(2, 0, 1)
    crops = [sample_at(dataset, epoch) for epoch in (1, 2)]
    decayed = [sample_at(dataset, epoch) for epoch in (3, 4)]
    assert all(c.shape == (3, 32, 32) for c in crops + decayed)
    assert not any(torch.allclose(c, whole, atol=1e-5) for c in crops), "constant-lr epochs still crop"
    if enabled:
        assert all(torch.allclose(d, whole, atol=1e-5) for d in decayed)
    else:
        assert not any(torch.allclose(d, whole, atol=1e-5) for d in decayed)


# ----- iteration budgets ------------------------------------------------------------------------
def test_iteration_budget_sets_length_and_a_per_iteration_linear_schedule(tiny_dataroot, tmp_path):
    flags = tiny_flags(tiny_dataroot, tmp_path / "ck", "budget") + ["--n_iters", "3", "--n_iters_decay", "4"]
    trainer = Trainer(TrainOptions().parse(flags))
    lrs = []
    step = trainer.model.optimize_parameters

    def record():
        lrs.append(trainer.model.optimizers["G"].param_groups[0]["lr"])
        step()
    trainer.model.optimize_parameters = record
    trainer.run()
    # 4 images per epoch: the budget of 7 iterations spans two epochs and stops mid-epoch.
    assert trainer.position["total_iters"] == 7
    base = trainer.opt.lr
    assert lrs == pytest.approx([base, base, base, base * 4 / 5, base * 3 / 5, base * 2 / 5, base * 1 / 5])
