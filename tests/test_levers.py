"""The deraining levers: generator EMA, the rain-layer output, the paired upper bound."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from data import create_dataset
from datasets.make_synthetic import build_dataset
from models import create_model
from restoration.loading import load_generator
from options.train_options import TrainOptions
from tests.conftest import tiny_flags, write_images
from restoration import cli
from training.trainer import Trainer
from util.checkpoint import load_checkpoint


def model_after(flags, steps):
    opt = TrainOptions().parse(flags)
    torch.manual_seed(0)
    model = create_model(opt)
    model.setup()
    dataset = create_dataset(opt)
    for i in range(steps):
        model.set_input(torch.utils.data.default_collate([dataset[(i, 1)]]))
        model.optimize_parameters()
        model.update_ema()
    return model


# ----- EMA of the restoring generator ------------------------------------------------------------
def test_ema_follows_the_warmed_up_average_and_is_what_test_loads(tiny_dataroot, tmp_path):
    flags = tiny_flags(tiny_dataroot, tmp_path / "ck", "ema") + ["--ema_decay", "0.99"]
    model = model_after(flags, 1)
    # First step: warmed-up decay min(0.99, 2/11) = 2/11, from a copy of the initial weights.
    initial = model_after(flags, 0).netG_A.state_dict()
    expected = {k: v * (2 / 11) + model.netG_A.state_dict()[k] * (9 / 11) for k, v in initial.items()
                if v.is_floating_point() and k in dict(model.netG_A.named_parameters())}
    ema = model.netG_A_ema.state_dict()
    assert all(torch.allclose(ema[k], v, atol=1e-6) for k, v in expected.items())
    assert not all(torch.equal(ema[k], model.netG_A.state_dict()[k]) for k in expected)
    assert model.test_net_names() == {"AtoB": "G_A_ema", "BtoA": "G_B_ema"}
    assert not any(p.requires_grad for p in model.netG_A_ema.parameters())

    Trainer(TrainOptions().parse(flags + ["--max_iters", "3"])).run()
    checkpoint = tmp_path / "ck" / "ema" / "latest.pt"
    state = load_checkpoint(checkpoint)
    assert state["test_nets"]["AtoB"] == "G_A_ema" and state["extra"]["ema_steps"] == 3
    net, _ = load_generator(checkpoint)
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), state["nets"]["G_A_ema"].values()))


def test_ema_resumes_exactly_and_starts_from_the_weights_when_switched_on(tiny_dataroot, tmp_path):
    base = tiny_flags(tiny_dataroot, tmp_path / "ck", "r") + ["--n_epochs", "1", "--n_epochs_decay", "1"]
    Trainer(TrainOptions().parse(base + ["--max_iters", "2"])).run()
    # Switched on at resume: the average starts from the saved generator.
    trainer = Trainer(TrainOptions().parse(base + ["--continue_train", "--ema_decay", "0.9", "--max_iters", "2"]))
    assert all(torch.equal(a, b) for a, b in zip(trainer.model.netG_A_ema.state_dict().values(),
                                                 trainer.model.netG_A.state_dict().values()))
    full = Trainer(TrainOptions().parse(tiny_flags(tiny_dataroot, tmp_path / "ck", "full") +
                                        ["--n_epochs", "1", "--n_epochs_decay", "1", "--ema_decay", "0.9"]))
    full.run()
    Trainer(TrainOptions().parse(tiny_flags(tiny_dataroot, tmp_path / "ck", "split") +
                                 ["--n_epochs", "1", "--n_epochs_decay", "1", "--ema_decay", "0.9",
                                  "--max_iters", "3"])).run()
    resumed = Trainer(TrainOptions().parse(tiny_flags(tiny_dataroot, tmp_path / "ck", "split") +
                                           ["--n_epochs", "1", "--n_epochs_decay", "1", "--ema_decay", "0.9",
                                            "--continue_train"]))
    resumed.run()
    assert resumed.model.ema_steps == full.model.ema_steps == 8
    for a, b in zip(full.model.netG_A_ema.state_dict().values(), resumed.model.netG_A_ema.state_dict().values()):
        assert torch.equal(a, b)


# ----- rain-layer output ---------------------------------------------------------------------
def test_rain_layer_restorer_only_darkens_and_degrader_only_brightens(tiny_dataroot, tmp_path):
    flags = tiny_flags(tiny_dataroot, tmp_path / "ck", "rl") + ["--rain_layer", "leaky"]
    model = model_after(flags, 2)
    x = torch.rand(2, 3, 32, 32) * 1.6 - 0.8
    with torch.no_grad():
        removed, added = model.netG_A(x), model.netG_B(x)
    # Up to the 0.1 leak of a tanh output in [-1, 1]: G_A subtracts rain, G_B adds it.
    assert (removed - x).max() <= 0.1 + 1e-6 and (added - x).min() >= -0.1 - 1e-6
    assert (removed - x).min() < -1e-4 and (added - x).max() > 1e-4, "the layer must have learned something"
    Trainer(TrainOptions().parse(flags + ["--max_iters", "1"])).run()
    net, _ = load_generator(tmp_path / "ck" / "rl" / "latest.pt")
    assert net.rain_layer == "leaky" and net.rain_layer_sign == -1


def test_rain_layer_keeps_a_gradient_where_it_is_negative():
    from models.networks import define_generator
    net = define_generator("resnet_6blocks", ngf=8, rain_layer="leaky")
    last_conv = net.model[-2]
    torch.nn.init.zeros_(last_conv.weight)
    torch.nn.init.constant_(last_conv.bias, -0.5)  # the layer is "off" everywhere, as the identity loss drives it
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    net(x).mean().backward()
    assert last_conv.bias.grad.abs().sum() > 0, "a plain ReLU would have no gradient here"


# ----- paired upper bound --------------------------------------------------------------------
def test_aligned_pairs_are_cropped_and_flipped_identically(tmp_path):
    root = tmp_path / "pairs"
    write_images(root / "trainA", 3, size=(48, 56), seed=5)
    write_images(root / "trainB", 3, size=(48, 56), seed=5)  # the same pictures: crops must match
    write_images(root / "trainB", 1, seed=9, prefix="unmatched")
    opt = TrainOptions().parse(tiny_flags(root, tmp_path, model="paired")[:2] + [
        "--model", "paired", "--gpu_ids", "-1", "--preprocess", "crop", "--crop_size", "32"])
    dataset = create_dataset(opt)
    assert len(dataset) == 3
    for epoch in (1, 2):
        for i in range(3):
            sample = dataset[(i, epoch)]
            assert torch.equal(sample["A"], sample["B"])


def test_paired_model_learns_the_pairs_and_restores_with_test_py(tmp_path):
    root = tmp_path / "paired_set"
    source = tmp_path / "photos"
    source.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (96, 160, 3), dtype=np.uint8)).save(source / f"p{i}.png")
    meta = build_dataset(root, kind="rain", preset="varied_heavy", source=source, split="photos", size=48,
                         test_size=48, crops_per_image=2, test_per_image=1, paired=True)
    assert meta["paired"] and sorted(e["file"] for e in meta["trainA"]) == sorted(e["file"] for e in meta["trainB"])
    entry = meta["trainB"][0]
    clean = np.asarray(Image.open(source / f"{entry['photo']}.png"))
    top, left, h, w = entry["box"]
    assert np.array_equal(np.asarray(Image.open(root / "trainB" / entry["file"])), clean[top:top + h, left:left + w])

    flags = ["--dataroot", str(root), "--checkpoints_dir", str(tmp_path / "ck"), "--name", "pb", "--model", "paired",
             "--gpu_ids", "-1", "--ngf", "8", "--netG", "resnet_6blocks", "--preprocess", "crop", "--crop_size", "32",
             "--num_threads", "0", "--display_id", "0", "--global_residual", "--lr", "0.002"]
    model = model_after(flags, 0)
    batch = torch.utils.data.default_collate([create_dataset(model.opt)[(0, 1)]])
    model.set_input(batch)
    with torch.no_grad():
        before = float(model.compute_G_loss()["L1"])
    # 15 steps nearly halve the L1 (0.41 -> 0.215-0.223 with the AVX-512, AVX2 and default
    # kernels); the kernels' rounding moves the result by under 0.01, far from the line.
    for _ in range(15):
        model.set_input(batch)
        model.optimize_parameters()
    with torch.no_grad():
        assert float(model.compute_G_loss()["L1"]) < before
    Trainer(TrainOptions().parse(flags + ["--max_iters", "2"])).run()
    results = tmp_path / "results"
    assert cli.main(["--dataroot", str(root), "--name", "pb", "--checkpoints_dir", str(tmp_path / "ck"),
                     "--results_dir", str(results), "--gpu_ids", "-1"]) == 0
    assert (results / "pb" / "test_latest" / "metrics.txt").is_file()
    assert json.loads((root / "meta.json").read_text())["paired"] is True


def test_gray_rain_layer_changes_every_channel_alike():
    from models.networks import define_generator
    net = define_generator("resnet_6blocks", ngf=8, rain_layer="gray")
    torch.nn.init.normal_(net.model[-2].weight, 0, 0.005)  # a visible layer that never reaches the clamp
    x = torch.rand(1, 3, 32, 32) - 0.5
    with torch.no_grad():
        change = net(x) - x
    assert 1e-3 < change.abs().max() < 0.5
    assert torch.allclose(change[:, 0], change[:, 1], atol=1e-6) and torch.allclose(change[:, 0], change[:, 2],
                                                                                    atol=1e-6)


def test_sparsity_term_is_the_l1_of_each_translations_change(tiny_dataroot, tmp_path):
    flags = tiny_flags(tiny_dataroot, tmp_path / "ck", "sp") + ["--lambda_sparse", "3"]
    model = model_after(flags, 1)
    with torch.no_grad():
        terms = model.compute_G_loss()
        expected_A = 0.5 * 3 * (model.fake_B - model.real_A).abs().mean()  # the term carries its 0.5 share
    assert float(terms["sparse_A"]) == pytest.approx(float(expected_A), rel=1e-5)
    without = model_after(tiny_flags(tiny_dataroot, tmp_path / "ck", "nosp"), 1)
    assert "sparse_A" not in without.get_current_losses()


# ----- U-Net-like skips --------------------------------------------------------------------------
@pytest.mark.parametrize("antialias", [True, False])
def test_skips_reach_the_decoder_only_and_keep_layer_numbers(antialias):
    from models.networks import define_generator
    torch.manual_seed(0)
    plain = define_generator("resnet_6blocks", ngf=8, no_antialias=not antialias, no_antialias_up=not antialias)
    skipped = define_generator("resnet_6blocks", ngf=8, skips=True, no_antialias=not antialias,
                               no_antialias_up=not antialias)
    skipped.load_state_dict(plain.state_dict())  # no new parameters
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(plain(x, [0, 4, 8, 12], encode_only=True),
                                                     skipped(x, [0, 4, 8, 12], encode_only=True)))
        out, feats = skipped(x, [4])
        assert torch.equal(out, skipped(x)) and not torch.allclose(out, plain(x))
    # Each skip joins features of the same shape: decoder stage output += encoder stage input.
    shapes = {}
    hooks = [skipped.model[i].register_forward_hook(lambda m, a, o, i=i: shapes.__setitem__(i, o.shape))
             for i in list(skipped.skips) + list(skipped.skips.values())]
    with torch.no_grad():
        skipped(x)
    for hook in hooks:
        hook.remove()
    assert len(skipped.skips) == 2 and all(shapes[d] == shapes[s] for d, s in skipped.skips.items())


def test_checkpoints_rebuild_the_skips(tiny_dataroot, tmp_path):
    flags = tiny_flags(tiny_dataroot, tmp_path / "ck", "sk") + ["--skips", "--max_iters", "1"]
    Trainer(TrainOptions().parse(flags)).run()
    net, _ = load_generator(tmp_path / "ck" / "sk" / "latest.pt")
    assert len(net.skips) == 2


# ----- --lambda_NCE 0 skips the contrastive passes -----------------------------------------------
@pytest.mark.parametrize("variant", ["official", "paper"])
def test_zero_nce_weight_runs_no_projection_head_and_logs_zero(tiny_dataroot, tmp_path, variant):
    flags = tiny_flags(tiny_dataroot, tmp_path / "ck", "nce0") + ["--dcd_variant", variant, "--lambda_NCE", "0"]
    model = model_after(flags, 1)
    calls = []
    for head in (model.netF1, model.netF2):
        head.register_forward_hook(lambda *args: calls.append(1))
    model.optimize_parameters()
    losses = model.get_current_losses()
    assert not calls, "the heads ran although their terms weigh 0"
    assert losses["NCE1"] == 0 and losses["NCE2"] == 0 and np.isfinite(losses["G"])
    with_nce = model_after(tiny_flags(tiny_dataroot, tmp_path / "ck", "nce") + ["--dcd_variant", variant], 1)
    for head in (with_nce.netF1, with_nce.netF2):
        head.register_forward_hook(lambda *args: calls.append(1))
    with_nce.optimize_parameters()
    assert calls and with_nce.get_current_losses()["NCE1"] > 0
