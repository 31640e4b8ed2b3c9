"""DCD-GAN: one optimisation step, the loss terms of each variant, generator passes."""
import math

import pytest
import torch

from data import create_dataset
from models import create_model
from options.train_options import TrainOptions
from tests.conftest import tiny_flags


def build(tiny_dataroot, tmp_path, *extra):
    opt = TrainOptions().parse(tiny_flags(tiny_dataroot, tmp_path / "ck") + list(extra))
    torch.manual_seed(0)
    model = create_model(opt)
    model.setup()
    batch = torch.utils.data.default_collate([create_dataset(opt)[(0, 1)]])
    return opt, model, batch


def snapshot(model):
    return {name: [p.detach().clone() for p in net.parameters()] for name, net in model.networks().items()}


@pytest.mark.parametrize("variant", ["paper", "official"])
def test_one_step_changes_every_network_and_losses_are_finite(tiny_dataroot, tmp_path, variant):
    _, model, batch = build(tiny_dataroot, tmp_path, "--dcd_variant", variant)
    before = snapshot(model)
    model.set_input(batch)
    model.optimize_parameters()
    losses = model.get_current_losses()
    assert all(math.isfinite(v) for v in losses.values()), losses
    for name, params in before.items():
        after = list(model.net(name).parameters())
        assert any(not torch.equal(a, b) for a, b in zip(params, after)), f"net{name} did not change"
    visuals = model.get_current_visuals()
    assert all(v.shape == batch["A"].shape for v in visuals.values())


def logged_losses(model, batch) -> dict[str, float]:
    model.set_input(batch)
    model.optimize_parameters()
    return model.get_current_losses()


def test_variants_declare_the_spec_loss_terms(tiny_dataroot, tmp_path):
    _, official, batch = build(tiny_dataroot, tmp_path, "--dcd_variant", "official")
    _, paper, _ = build(tiny_dataroot, tmp_path, "--dcd_variant", "paper")
    common = {"D_A", "D_B", "G_A", "G_B", "NCE1", "NCE2", "idt_A", "idt_B", "G"}
    assert set(logged_losses(official, batch)) == common
    assert set(logged_losses(paper, batch)) == common | {"cycle_A", "cycle_B", "NCE3", "NCE4"}


@pytest.mark.parametrize("variant", ["paper", "official"])
def test_total_generator_loss_is_the_spec_combination(tiny_dataroot, tmp_path, variant):
    _, model, batch = build(tiny_dataroot, tmp_path, "--dcd_variant", variant)
    model.set_input(batch)
    model.optimize_parameters()
    L = model.get_current_losses()
    # Each logged term carries its share: 0.5 of the GAN and identity averages, 0.5 (official)
    # or 0.25 (paper) of the NCE average; so the spec's total is their plain sum.
    expected = L["G_A"] + L["G_B"] + L["idt_A"] + L["idt_B"] + L["NCE1"] + L["NCE2"]
    if variant == "paper":
        expected += L["cycle_A"] + L["cycle_B"] + L["NCE3"] + L["NCE4"]
    assert L["G"] == pytest.approx(expected, rel=1e-5)
    gan = model.gan_loss(model.netD_A(model.fake_B), True, for_discriminator=False)
    assert L["G_A"] == pytest.approx(0.5 * model.opt.lambda_GAN * float(gan.detach()), rel=1e-5)
    idt = torch.nn.functional.l1_loss(model.idt_A, model.real_B)
    assert L["idt_A"] == pytest.approx(0.5 * model.opt.lambda_IDT * float(idt.detach()), rel=1e-5)


def test_lambda_flags_scale_their_terms(tiny_dataroot, tmp_path):
    _, model, batch = build(tiny_dataroot, tmp_path, "--dcd_variant", "paper", "--lambda_cyc", "0")
    model.set_input(batch)
    model.optimize_parameters()
    L = model.get_current_losses()
    assert L["cycle_A"] == 0.0 and L["cycle_B"] == 0.0


def count_translation_passes(model):
    """Count full generator passes (encode-only passes for PatchNCE are not translations)."""
    counts = {"G_A": 0, "G_B": 0}

    def hook(name):
        def record(module, args, kwargs, output):
            if not kwargs.get("encode_only", False):
                counts[name] += 1
        return record

    for name in counts:
        model.net(name).register_forward_hook(hook(name), with_kwargs=True)
    return counts


@pytest.mark.parametrize("variant,passes", [("official", 4), ("paper", 6)])
def test_generator_passes_per_step(tiny_dataroot, tmp_path, variant, passes):
    _, model, batch = build(tiny_dataroot, tmp_path, "--dcd_variant", variant)
    counts = count_translation_passes(model)
    model.set_input(batch)
    model.optimize_parameters()
    assert counts["G_A"] + counts["G_B"] == passes, counts


def test_dcdgan_defaults_follow_the_spec(tiny_dataroot):
    opt = TrainOptions().parse(["--dataroot", str(tiny_dataroot), "--model", "dcdgan", "--gpu_ids", "-1"])
    assert (opt.lr, opt.gan_mode, opt.lambda_NCE, opt.lambda_IDT, opt.lambda_cyc) == (1e-4, "hinge", 2.0, 1.0, 1.0)
    assert (opt.nce_layers, opt.pool_size, opt.init_type, opt.num_patches, opt.nce_T) == (
        "4,8,12,16", 0, "xavier", 256, 0.07)
    assert (opt.n_epochs, opt.n_epochs_decay, opt.load_size, opt.crop_size) == (300, 300, 512, 256)
    assert opt.dcd_variant == "official" and opt.nce_includes_all_negatives_from_minibatch is True


def test_unknown_model_is_a_clear_error(tiny_dataroot, capsys):
    with pytest.raises(SystemExit) as info:
        TrainOptions().parse(["--dataroot", str(tiny_dataroot), "--model", "nosuch"])
    assert info.value.code == 2 and "no file models/nosuch_model.py" in capsys.readouterr().err
