"""Objectives: every model optimises the sum of what it logs; DCD-GAN's pseudo-pair term and
the SSIM loss it may use."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage.metrics import structural_similarity

from data import create_dataset
from models import create_model
from models.losses import ssim_loss
from options.train_options import TrainOptions
from tests.conftest import MODEL_KEYS, tiny_flags, tiny_model_flags


def build(dataroot, tmp_path, *extra):
    opt = TrainOptions().parse(tiny_flags(dataroot, tmp_path / "ck") + list(extra))
    torch.manual_seed(0)
    model = create_model(opt)
    model.setup()
    dataset = create_dataset(opt)
    model.set_input(torch.utils.data.default_collate([dataset[(0, 1)]]))
    return model, dataset


def translation_passes(model) -> dict[str, int]:
    """Counts the full passes (not the encode-only ones) of G_A and G_B from now on."""
    counts = {"G_A": 0, "G_B": 0}
    for name in counts:
        def record(module, args, kwargs, output, name=name):
            if not kwargs.get("encode_only", False):
                counts[name] += 1
        model.net(name).register_forward_hook(record, with_kwargs=True)
    return counts


# ----- one place forms each objective --------------------------------------------------------
LEVERS = ["--lambda_sparse", "0.7", "--lambda_pseudo", "1.3", "--pseudo_ssim", "0.6", "--pseudo_warmup", "0"]
OBJECTIVES = {key: [] for key in MODEL_KEYS} | {
    "cut:no_nce_idt": ["--nce_idt", "False"],
    "dcdgan:official+levers": LEVERS,
    "dcdgan:paper+levers": LEVERS,
    "dcdgan:paper+no_nce_no_idt": ["--lambda_NCE", "0", "--lambda_IDT", "0"],
    "paired": [],
}


def objective_model(key: str, dataroot, tmp_path):
    model_key = key.partition("+")[0]
    if model_key == "paired":
        flags = [token for name, value in zip(*[iter(tiny_flags(dataroot, tmp_path / "ck", model="paired"))] * 2)
                 if name not in ("--netF_nc", "--num_patches") for token in (name, value)]
    elif model_key == "cut:no_nce_idt":
        flags = tiny_model_flags("cut", dataroot, tmp_path / "ck")
    else:
        flags = tiny_model_flags(model_key, dataroot, tmp_path / "ck")
    opt = TrainOptions().parse(flags + OBJECTIVES[key])
    torch.manual_seed(0)
    model = create_model(opt)
    model.setup()
    model.set_input(torch.utils.data.default_collate([create_dataset(opt)[(0, 1)]]))
    return model


def record_updates(model) -> list[tuple[list[str], torch.Tensor, dict[str, torch.Tensor]]]:
    """From now on, per update: its optimizers, the loss it backwards and the log entries
    recorded since the previous update."""
    updates, seen = [], {}
    backward_and_step = model.backward_and_step

    def recording(loss, optimizer_names):
        fresh = {name: value for name, value in model.losses.items() if seen.get(name) is not value}
        seen.update(fresh)
        updates.append((list(optimizer_names), loss, fresh))
        backward_and_step(loss, optimizer_names)

    model.backward_and_step = recording
    return updates


@pytest.mark.parametrize("key", sorted(OBJECTIVES))
def test_every_update_minimises_the_sum_of_the_terms_it_logs(tiny_dataroot, tmp_path, key):
    model = objective_model(key, tiny_dataroot, tmp_path)
    updates = record_updates(model)
    model.optimize_parameters()
    assert updates
    logged = set()
    for optimizer_names, loss, fresh in updates:
        totals = [name for name, value in fresh.items() if value is loss]
        terms = {name: float(value.detach()) for name, value in fresh.items() if name not in totals}
        assert terms, f"the {optimizer_names} update logged no term"
        assert float(loss.detach()) == pytest.approx(sum(terms.values()), rel=1e-6), (optimizer_names, terms)
        if "G" in optimizer_names and len(terms) > 1:
            assert totals == ["G"], "the generator update logs its total as G"
        logged |= fresh.keys()
    assert logged == set(model.get_current_losses()), "a logged entry came from outside an update"
    if "levers" in key:
        assert {"sparse_A", "sparse_B", "pseudo", "pseudo_ssim"} <= logged


def test_a_step_may_not_return_a_term_named_like_its_total(tiny_dataroot, tmp_path):
    model = objective_model("dcl", tiny_dataroot, tmp_path)
    model.forward()
    with pytest.raises(ValueError, match="'G'"):
        model.minimise(lambda: {"G": model.fake_B.mean()}, ["G"], log_total="G")


# ----- the pseudo pair -----------------------------------------------------------------------
@pytest.mark.parametrize("variant,passes", [("official", 4), ("paper", 6)])
def test_pseudo_pair_at_weight_zero_runs_no_pass_and_adds_no_term(tiny_dataroot, tmp_path, variant, passes):
    model, _ = build(tiny_dataroot, tmp_path, "--dcd_variant", variant)
    counts = translation_passes(model)
    model.optimize_parameters()
    assert counts["G_A"] + counts["G_B"] == passes, counts
    assert not {"pseudo", "pseudo_ssim"} & set(model.get_current_losses())
    assert not {"pseudo_A", "pseudo_restored"} & set(model.get_current_visuals())


@pytest.mark.parametrize("variant,passes", [("official", 5), ("paper", 7)])
def test_pseudo_pair_adds_one_g_a_pass_and_its_visuals(tiny_dataroot, tmp_path, variant, passes):
    model, _ = build(tiny_dataroot, tmp_path, "--dcd_variant", variant, "--lambda_pseudo", "1")
    counts = translation_passes(model)
    model.optimize_parameters()
    assert counts["G_A"] + counts["G_B"] == passes, counts
    visuals = model.get_current_visuals()
    assert torch.equal(visuals["pseudo_A"], visuals["fake_A"])
    assert visuals["pseudo_restored"].shape == model.real_B.shape
    assert "pseudo" in model.get_current_losses()


def test_pseudo_terms_are_their_weighted_losses_and_train_g_a_only(tiny_dataroot, tmp_path):
    model, _ = build(tiny_dataroot, tmp_path, "--lambda_pseudo", "2", "--pseudo_ssim", "0.5")
    model.forward()
    terms = model.compute_G_loss()
    with torch.no_grad():
        restored = model.netG_A(model.netG_B(model.real_B))
    assert float(terms["pseudo"].detach()) == pytest.approx(2 * float(F.l1_loss(restored, model.real_B)), rel=1e-5)
    assert float(terms["pseudo_ssim"].detach()) == pytest.approx(0.5 * float(ssim_loss(restored, model.real_B)),
                                                                 rel=1e-5)
    g_a, g_b = list(model.netG_A.parameters()), list(model.netG_B.parameters())
    grads = torch.autograd.grad(terms["pseudo"] + terms["pseudo_ssim"], g_a + g_b, allow_unused=True)
    assert all(g is None for g in grads[len(g_a):]), "a gradient reached G_B through the pseudo pair"
    assert sum(float(g.abs().sum()) for g in grads[:len(g_a)] if g is not None) > 0


def test_pseudo_weight_ramps_linearly_over_the_warmup_and_resumes(tiny_dataroot, tmp_path):
    model, dataset = build(tiny_dataroot, tmp_path, "--lambda_pseudo", "3", "--pseudo_warmup", "4")
    shares = []
    for step in range(6):
        model.set_input(torch.utils.data.default_collate([dataset[(step % 4, 1)]]))
        model.optimize_parameters()
        l1 = float(F.l1_loss(model.pseudo_restored.detach(), model.real_B))
        shares.append(model.get_current_losses()["pseudo"] / (3 * l1))
    assert shares[0] == 0.0, "the first step's pseudo term weighs exactly 0"
    assert shares == pytest.approx([0, 0.25, 0.5, 0.75, 1, 1], abs=1e-6)
    resumed, _ = build(tiny_dataroot, tmp_path, "--lambda_pseudo", "3", "--pseudo_warmup", "8")
    resumed.load_extra_state(model.extra_state())
    assert resumed.pseudo_ramp() == pytest.approx(6 / 8)


@pytest.mark.parametrize("flag", ["--pseudo_warmup", "--pseudo_ssim", "--lambda_pseudo"])
def test_negative_pseudo_flags_are_a_one_line_error(tiny_dataroot, tmp_path, capsys, flag):
    with pytest.raises(SystemExit) as info:
        TrainOptions().parse(tiny_flags(tiny_dataroot, tmp_path / "ck") + [flag, "-1"])
    assert info.value.code == 2 and f"{flag} must be at least 0" in capsys.readouterr().err


# ----- SSIM ------------------------------------------------------------------------------
def test_ssim_loss_is_zero_for_identical_images_and_grows_with_noise():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 32, 40) * 2 - 1
    assert float(ssim_loss(x, x)) == pytest.approx(0.0, abs=1e-6)
    noise = torch.randn_like(x)
    losses = [float(ssim_loss(x, (x + s * noise).clamp(-1, 1))) for s in (0.02, 0.1, 0.4)]
    assert 0 < losses[0] < losses[1] < losses[2], losses


def test_ssim_loss_matches_scikit_image_gaussian_ssim():
    rng = np.random.default_rng(0)
    a = rng.random((24, 30, 3))
    b = np.clip(a + rng.normal(0, 0.1, a.shape), 0, 1)
    expected = structural_similarity(a, b, channel_axis=2, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                     use_sample_covariance=False)
    to_tensor = lambda img: torch.from_numpy(img).permute(2, 0, 1)[None] * 2 - 1  # noqa: E731
    assert float(ssim_loss(to_tensor(a), to_tensor(b))) == pytest.approx(1 - expected, abs=1e-9)


def test_ssim_loss_keeps_float32_under_autocast():
    torch.manual_seed(0)
    x = torch.rand(1, 3, 24, 24) * 2 - 1
    y = (x + 0.05 * torch.randn_like(x)).clamp(-1, 1)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        same, noisy = ssim_loss(x.bfloat16(), x.bfloat16()), ssim_loss(x, y)
    assert same.dtype == torch.float32 and float(same) == pytest.approx(0.0, abs=1e-6)
    assert float(noisy) == pytest.approx(float(ssim_loss(x, y)), rel=1e-6)


def test_ssim_loss_passes_gradients_to_both_images():
    x = (torch.rand(1, 3, 16, 16) * 2 - 1).requires_grad_()
    y = (torch.rand(1, 3, 16, 16) * 2 - 1).requires_grad_()
    ssim_loss(x, y).backward()
    assert x.grad.abs().sum() > 0 and y.grad.abs().sum() > 0


# ----- options are read at construction -----------------------------------------------------
class OptionsWithout:
    """The options minus some names: reading one of them fails the test."""

    def __init__(self, opt, hidden):
        self._opt, self._hidden = opt, set(hidden)

    def __getattr__(self, name):
        if name in self._hidden:
            raise AssertionError(f"opt.{name} read after construction")
        return getattr(self._opt, name)


@pytest.mark.parametrize("key,extra", [
    ("dcdgan:paper", ["--ema_decay", "0.9", "--lambda_pseudo", "1", "--pseudo_warmup", "3"]),
    ("fastcut", ["--channels_last"]),
    ("cddgan", []),
])
def test_training_steps_read_no_switch_from_the_options(tiny_dataroot, tmp_path, key, extra):
    opt = TrainOptions().parse(tiny_model_flags(key, tiny_dataroot, tmp_path / "ck") + extra)
    torch.manual_seed(0)
    model = create_model(opt)
    model.setup()
    batch = torch.utils.data.default_collate([create_dataset(opt)[(0, 1)]])
    model.opt = OptionsWithout(opt, ["compile", "channels_last", "ema_decay", "dcd_variant",
                                     "pseudo_warmup", "flip_equivariance", "nce_idt", "num_patches",
                                     "cdd_query_encoder", "cdd_clear_positives"])
    for _ in range(2):
        model.set_input(batch)
        model.optimize_parameters()
        model.update_ema()
    if "--channels_last" in extra:
        assert model.real_A.is_contiguous(memory_format=torch.channels_last)


def test_the_dataset_reads_its_options_at_construction(tiny_dataroot, tmp_path):
    opt = TrainOptions().parse(tiny_flags(tiny_dataroot, tmp_path / "ck") + [
        "--decay_full_images", "--n_epochs", "1", "--n_epochs_decay", "1", "--load_size", "40"])
    dataset = create_dataset(opt)
    expected = [dataset[(1, epoch)] for epoch in (1, 2)]
    vars(opt).clear()  # nothing left to read
    for sample, epoch in zip(expected, (1, 2)):
        again = dataset[(1, epoch)]
        assert torch.equal(again["A"], sample["A"]) and torch.equal(again["B"], sample["B"])
    assert dataset.load_size_at(1) == 40 and dataset.load_size_at(2) == 32, "whole images in the decay epochs"
