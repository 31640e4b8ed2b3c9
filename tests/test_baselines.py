"""Baselines (cycle_gan, cut, fastcut, dcl, negcut): one step each, defaults, launchers, NEGCUT's game."""
import math
import shlex
import subprocess
from pathlib import Path

import pytest
import torch

from data import create_dataset
from models import create_model
from models.contrastive import EncoderNCE
from restoration.loading import load_generator
from options.train_options import TrainOptions
from tests.conftest import tiny_flags, without_flags
from tests.descent import slope_along_step

REPO = Path(__file__).resolve().parent.parent

# In the order the steps return them: the generator step comes first in CycleGAN, last elsewhere.
EXPECTED_LOSSES = {
    "cycle_gan": ["G_A", "G_B", "cycle_A", "cycle_B", "idt_A", "idt_B", "G", "D_A", "D_B"],
    "cut": ["D", "G_GAN", "NCE", "NCE_Y", "G"],
    "fastcut": ["D", "G_GAN", "NCE", "G"],
    "dcl": ["D_A", "D_B", "G_A", "G_B", "NCE1", "NCE2", "idt_A", "idt_B", "G"],
    "negcut": ["D", "N", "G_GAN", "NCE", "NCE_Y", "G"],
}
# The generator objective of docs/METHODS.md in terms of the logged terms, each of which
# carries its weight and its share (the 0.5 of DCLGAN's averages, CUT's mean over NCE terms).
TOTAL_G = {
    "cycle_gan": lambda L: L["G_A"] + L["G_B"] + L["cycle_A"] + L["cycle_B"] + L["idt_A"] + L["idt_B"],
    "cut": lambda L: L["G_GAN"] + L["NCE"] + L["NCE_Y"],
    "fastcut": lambda L: L["G_GAN"] + L["NCE"],
    "dcl": lambda L: L["G_A"] + L["G_B"] + L["NCE1"] + L["NCE2"] + L["idt_A"] + L["idt_B"],
    "negcut": lambda L: L["G_GAN"] + L["NCE"] + L["NCE_Y"],
}
CONTRASTIVE_FLAGS = ("--netF_nc", "--num_patches", "--nce_layers")


def flags_for(model: str, dataroot: Path, tmp_path: Path, *extra: str) -> list[str]:
    flags = tiny_flags(dataroot, tmp_path / "ck", name=model, model=model)
    if model == "cycle_gan":  # no contrastive loss, so none of its flags
        flags = without_flags(flags, CONTRASTIVE_FLAGS)
    return flags + list(extra)


def build(model: str, dataroot: Path, tmp_path: Path, *extra: str):
    opt = TrainOptions().parse(flags_for(model, dataroot, tmp_path, *extra))
    torch.manual_seed(0)
    net = create_model(opt)
    net.setup()
    batch = torch.utils.data.default_collate([create_dataset(opt)[(0, 1)]])
    net.set_input(batch)
    return net, batch


def snapshot(model) -> dict[str, list[torch.Tensor]]:
    nets = dict(model.networks())
    if hasattr(model, "momentum_head"):
        nets["momentum_head"] = model.momentum_head.head
    return {name: [p.detach().clone() for p in net.parameters()] for name, net in nets.items()}


@pytest.mark.parametrize("model_name", sorted(EXPECTED_LOSSES))
def test_one_step_updates_every_network_with_the_declared_losses(tiny_dataroot, tmp_path, model_name):
    model, batch = build(model_name, tiny_dataroot, tmp_path)
    before = snapshot(model)
    model.optimize_parameters()
    losses = model.get_current_losses()
    assert list(losses) == EXPECTED_LOSSES[model_name]
    assert all(math.isfinite(v) for v in losses.values()), losses
    assert losses["G"] == pytest.approx(TOTAL_G[model_name](losses), rel=1e-5)
    after = snapshot(model)
    for name, params in before.items():
        assert any(not torch.equal(a, b) for a, b in zip(params, after[name])), f"{name} did not change"
    assert all(v.shape == batch["A"].shape for v in model.get_current_visuals().values())


def parse(model: str, dataroot: Path, *extra: str):
    return TrainOptions().parse(["--dataroot", str(dataroot), "--model", model, "--gpu_ids", "-1", *extra])


def test_defaults_follow_the_spec(tmp_path):
    cyc = parse("cycle_gan", tmp_path)
    assert (cyc.gan_mode, cyc.lambda_A, cyc.lambda_B, cyc.lambda_identity) == ("lsgan", 10.0, 10.0, 0.5)
    assert (cyc.pool_size, cyc.lr, cyc.init_type, cyc.init_gain) == (50, 2e-4, "normal", 0.02)
    for name in ("cut", "negcut"):
        opt = parse(name, tmp_path)
        assert (opt.gan_mode, opt.lambda_NCE, opt.nce_idt, opt.nce_layers) == ("lsgan", 1.0, True, "0,4,8,12,16")
        assert (opt.lr, opt.pool_size, opt.flip_equivariance) == (2e-4, 0, False)
        assert opt.nce_includes_all_negatives_from_minibatch is False
    fast = parse("fastcut", tmp_path)
    assert (fast.lambda_NCE, fast.nce_idt, fast.flip_equivariance) == (10.0, False, True)
    assert (fast.n_epochs, fast.n_epochs_decay) == (150, 50)
    neg = parse("negcut", tmp_path)
    assert (neg.lambda_MS_neg, neg.neg_nz, neg.neg_ema_decay, neg.lr_N) == (1.0, 64, 0.9, None)


def test_cut_checkpoint_restores_through_its_single_generator(tiny_dataroot, tmp_path):
    model, _ = build("cut", tiny_dataroot, tmp_path)
    path = model.save("latest", {"epoch": 1, "epoch_iter": 0, "total_iters": 0})
    net, _ = load_generator(path, "AtoB")
    assert torch.equal(net.state_dict()["model.1.weight"], model.netG.state_dict()["model.1.weight"])


@pytest.mark.parametrize("model_name", ["cycle_gan", "negcut"])
def test_checkpoint_restores_image_pools_and_momentum_head(tiny_dataroot, tmp_path, model_name):
    model, _ = build(model_name, tiny_dataroot, tmp_path)
    model.optimize_parameters()
    model.save("latest", {"epoch": 1, "epoch_iter": 1, "total_iters": 1})
    torch.manual_seed(123)  # different fresh weights: loading must overwrite them
    fresh = create_model(TrainOptions().parse(flags_for(model_name, tiny_dataroot, tmp_path, "--continue_train")))
    fresh.setup()
    assert fresh.extra_state().keys() == model.extra_state().keys()
    pools = {name: (pool.images, fresh.image_pools[name].images) for name, pool in model.image_pools.items()}
    if model_name == "cycle_gan":
        assert all(len(saved) == 1 for saved, _ in pools.values()), "a pool of 50 keeps this step's fake"
    for saved, loaded in pools.values():
        assert len(saved) == len(loaded) and all(torch.equal(a, b) for a, b in zip(saved, loaded))
    if model_name == "negcut":
        for key, value in model.momentum_head.state_dict().items():
            assert torch.equal(value, fresh.momentum_head.state_dict()[key])


def test_flip_equivariance_aligns_mirrored_query_features(tiny_dataroot, tmp_path):
    # Layer 0 is the reflection-padded image, which mirrors exactly with its input.
    model, _ = build("fastcut", tiny_dataroot, tmp_path, "--nce_layers", "0")
    x = model.real_A
    o = model.opt
    queries, keys = EncoderNCE(o.num_patches, o.nce_T, o.nce_includes_all_negatives_from_minibatch).project(
        model.netG(x, [0], encode_only=True), model.netG(torch.flip(x, [3]), [0], encode_only=True),
        model.netF, model.netF, flip_query=True)
    assert torch.allclose(queries[0], keys[0])


def test_negcut_negative_generator_raises_the_nce_loss_and_g_f_lower_it(tiny_dataroot, tmp_path):
    # No GAN term, no identity pair and no diversity term: N's step then minimises exactly -NCE
    # and the G + F step exactly NCE (a fresh model: each optimizer takes its first step).
    model, _ = build("negcut", tiny_dataroot, tmp_path, "--lambda_GAN", "0", "--nce_idt", "False",
                     "--lambda_MS_neg", "0")

    def prepare():
        model.forward()
        model.projections = model.project_pairs()

    def nce():  # what both steps compute: the same patches and N's noise
        prepare()
        losses, _ = model.generated_nce(detach_queries=False)
        return sum(losses.values()) / len(losses)

    def step(update):
        prepare()
        update()

    nce_before_N, slope_N = slope_along_step([model.netN], nce, lambda: step(model.update_N), seed=7)
    assert model.get_current_losses()["N"] == pytest.approx(-nce_before_N, rel=1e-5), "N's step saw other draws"
    assert slope_N > 0, slope_N
    nce_before_G, slope_G = slope_along_step([model.netG, model.netF], nce, lambda: step(model.update_G), seed=8)
    assert model.get_current_losses()["G"] == pytest.approx(nce_before_G, rel=1e-5), "G's step saw other draws"
    assert slope_G < 0, slope_G


# Each launcher's schedule and architecture: the papers' settings, not the model defaults.
LAUNCHERS = {"cycle_gan": (100, 100, True), "cut": (200, 200, False), "fastcut": (150, 50, False),
             "dcl": (200, 200, False), "negcut": (200, 200, False)}


@pytest.mark.parametrize("model_name", sorted(LAUNCHERS))
def test_launcher_passes_valid_flags_env_overrides_and_extra_arguments(tmp_path, model_name):
    script = REPO / "scripts" / f"train_{model_name}_rain100l.sh"
    env = {"PATH": "/usr/bin:/bin", "PY": "echo", "DATAROOT": str(tmp_path / "data"), "NAME": "run1"}
    out = subprocess.run(["bash", str(script), "--max_iters", "3"], env=env, capture_output=True, text=True,
                         check=True).stdout
    argv = shlex.split(out)
    assert argv[0] == "train.py"
    opt = TrainOptions().parse(argv[1:] + ["--gpu_ids", "-1"])
    assert (opt.model, opt.dataroot, opt.name, opt.max_iters) == (model_name, str(tmp_path / "data"), "run1", 3)
    assert (opt.n_epochs, opt.n_epochs_decay, opt.no_antialias) == LAUNCHERS[model_name]
    assert (opt.load_size, opt.crop_size, opt.batch_size) == (286, 256, 1)
    assert "set -euo pipefail" in script.read_text()
