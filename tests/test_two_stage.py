"""The two-stage recipe: rain statistics, G_B's rain levers, the paired terms, pseudo pairs, the launcher."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from models import create_model
from models.paired_model import channel_consistency
from models.rain_matching import StatisticsMatch, flat_mask, high_pass_luma, soft_statistics
from options.train_options import TrainOptions
from tests.conftest import CONTRASTIVE_FLAGS, tiny_flags, without_flags, write_images
from util.metrics import FLAT_STD_LEVELS, FLAT_WINDOW, local_std, rgb_to_y
from util.rain_stats import compare_statistics, layer_statistics, rain_layer_y

REPO = Path(__file__).resolve().parent.parent


# ----- statistics of hand-made rain layers ----------------------------------------------------
def streak_layer(shape=(40, 40), streaks=((5, 5, 10),), level=30.0) -> np.ndarray:
    """A layer of vertical streaks (top row, column, length) at `level` Y levels."""
    layer = np.zeros(shape)
    for top, col, length in streaks:
        layer[top:top + length, col] = level
    return layer


def test_layer_statistics_of_known_streaks():
    layer = streak_layer(streaks=((5, 5, 10), (20, 30, 6)), level=30.0)
    layer[0, 0] = 15.0  # exactly the threshold: not rain
    stats = layer_statistics([layer, np.zeros((40, 40))])
    assert stats["coverage"] == pytest.approx(16 / 3200)
    assert stats["brightness"] == pytest.approx(30.0)
    assert stats["run_length"] == pytest.approx(8.0)  # runs of 10 and 6
    streaks_only = layer_statistics([streak_layer(streaks=((5, 5, 10), (20, 30, 6)))])
    assert abs(streaks_only["orientation"]) < 1 and streaks_only["coherence"] > 0.5
    assert streaks_only["mean"] == pytest.approx(16 * 30.0 / 1600)
    blob = np.zeros((40, 40))
    blob[10:20, 10:20] = 30.0
    assert layer_statistics([blob])["coherence"] < 0.05, "a square has no direction"


def test_layer_statistics_orientation_sign_and_no_rain():
    leaning_right = np.zeros((40, 40))
    for i in range(20):
        leaning_right[30 - i, 10 + i] = 40.0  # '/': x grows upwards
    assert layer_statistics([leaning_right])["orientation"] == pytest.approx(45, abs=5)
    assert layer_statistics([leaning_right[:, ::-1]])["orientation"] == pytest.approx(-45, abs=5)
    empty = layer_statistics([np.zeros((8, 8))])
    assert empty["coverage"] == 0 and empty["brightness"] is None and empty["run_length"] is None


def test_rain_layer_exact_and_estimated():
    clean = np.full((32, 32, 3), 100, np.uint8)
    rainy = clean.copy()
    rainy[4:20, 10] = 160  # a grey streak: +60 in R, G, B is +51.4 levels of Y
    exact = rain_layer_y(rainy, clean)
    assert exact[10, 10] == pytest.approx(60 * 219 / 255, rel=1e-6) and exact[10, 12] == 0
    estimated = rain_layer_y(rainy)
    assert estimated[10, 10] > 15 and abs(estimated[10, 20]) < 1e-6  # flat content cancels
    with pytest.raises(ValueError, match="differs"):
        rain_layer_y(rainy, clean[:16])


def test_compare_statistics_names_what_strays():
    reference = {"coverage": 0.1, "brightness": 40.0}
    assert compare_statistics({"coverage": 0.12, "brightness": 35.0}, reference, 0.25) == []
    problems = compare_statistics({"coverage": 0.02, "brightness": 41.0}, reference, 0.25)
    assert len(problems) == 1 and problems[0].startswith("coverage")
    assert compare_statistics({"coverage": 0.1, "brightness": None}, reference, 0.25)[0].startswith("brightness")


def test_rain_statistics_script_reports_the_exact_layer(tmp_path, capsys):
    from PIL import Image

    from scripts.rain_statistics import main as rain_statistics
    for folder in ("rainy", "clean"):
        (tmp_path / folder).mkdir()
    clean = np.full((32, 32, 3), 90, np.uint8)
    rainy = clean.copy()
    rainy[2:14, 7] = 200  # one 12-px streak, +94 levels of Y
    Image.fromarray(clean).save(tmp_path / "clean" / "x.png")
    Image.fromarray(rainy).save(tmp_path / "rainy" / "x.png")
    assert rain_statistics(["--rainy", str(tmp_path / "rainy"), "--clean", str(tmp_path / "clean")]) == 0
    lines = dict(line.split(": ", 1) for line in capsys.readouterr().out.splitlines())
    exact = dict(item.split("=") for item in lines["exact"].split())
    assert float(exact["coverage"]) == pytest.approx(12 / 1024, rel=1e-3) and float(exact["run_length"]) == 12
    assert rain_statistics(["--rainy", str(tmp_path / "empty")]) == 2


def test_soft_statistics_follow_the_hard_ones():
    layer = torch.from_numpy(streak_layer(level=40.0)).float()[None, None]
    coverage, brightness = soft_statistics(layer, temperature=0.5)
    hard = layer_statistics([layer[0, 0].numpy()])
    assert float(coverage) == pytest.approx(hard["coverage"], rel=1e-3)
    assert float(brightness) == pytest.approx(hard["brightness"], rel=1e-3)


def test_statistics_match_is_zero_on_its_target_and_reaches_only_the_fake():
    real = torch.from_numpy(streak_layer(level=40.0)).float()[None, None]
    match = StatisticsMatch()
    match.update_target(real.requires_grad_())
    assert float(match.loss(real.detach())) == pytest.approx(0.0, abs=1e-6)
    fake = (real.detach() * 0.5).requires_grad_()
    loss = match.loss(fake)
    loss.backward()
    assert loss.item() > 0.1 and fake.grad.abs().sum() > 0 and real.grad is None
    restored = StatisticsMatch()
    restored.load_state_dict(match.state_dict())
    assert torch.equal(restored.target, match.target)


def test_high_pass_of_a_flat_image_is_zero():
    flat = torch.full((1, 3, 24, 24), 0.3)
    assert high_pass_luma(flat).abs().max() < 1e-3


# ----- dcdgan's rain levers ------------------------------------------------------------------
def dcdgan(tiny_dataroot, tmp_path, *extra):
    flags = tiny_flags(tiny_dataroot, tmp_path / "ck") + ["--lambda_NCE", "0", "--rain_layer", "gray",
                                                          "--global_residual", *extra]
    model = create_model(TrainOptions().parse(flags))
    model.setup()
    torch.manual_seed(0)
    model.set_input({"A": torch.rand(1, 3, 32, 32) * 2 - 1, "B": torch.rand(1, 3, 32, 32) * 2 - 1,
                     "A_paths": ["a"], "B_paths": ["b"]})
    return model


def grads(net) -> float:
    return sum(float(p.grad.abs().sum()) for p in net.parameters() if p.grad is not None)


def test_rain_levers_are_absent_at_weight_zero(tiny_dataroot, tmp_path):
    model = dcdgan(tiny_dataroot, tmp_path)
    model.optimize_parameters()
    losses = model.get_current_losses()
    assert not {"rain_stats", "G_R", "D_R"} & set(losses) and "D_R" not in model.model_names


@pytest.mark.parametrize("term", ["rain_stats", "G_R"])
def test_rain_lever_terms_reach_only_G_B(tiny_dataroot, tmp_path, term):
    model = dcdgan(tiny_dataroot, tmp_path, "--lambda_rain_stats", "2", "--lambda_rain_D", "3")
    model.optimize_parameters()
    assert {"rain_stats", "G_R", "D_R"} <= set(model.get_current_losses())
    for net in model.networks().values():
        net.zero_grad(set_to_none=True)
    model.forward()
    model.set_requires_grad([model.netD_R], False)
    model.compute_G_loss()[term].backward()
    assert grads(model.netG_B) > 0
    assert grads(model.netG_A) == 0 and grads(model.netD_R) == 0 and grads(model.netD_B) == 0


def test_rain_discriminator_step_trains_only_D_R(tiny_dataroot, tmp_path):
    model = dcdgan(tiny_dataroot, tmp_path, "--lambda_rain_D", "1")
    model.forward()
    model.set_requires_grad([model.netD_R], True)
    model.compute_D_loss()["D_R"].backward()
    assert grads(model.netD_R) > 0 and grads(model.netG_B) == 0 and grads(model.netD_A) == 0
    d_params = {id(p) for group in model.optimizers["D"].param_groups for p in group["params"]}
    assert all(id(p) in d_params for p in model.netD_R.parameters())


def test_rain_stats_weight_scales_the_term(tiny_dataroot, tmp_path):
    values = []
    for weight in ("1", "3"):
        model = dcdgan(tiny_dataroot, tmp_path / weight, "--lambda_rain_stats", weight)
        model.forward()
        values.append(model.compute_G_loss()["rain_stats"].item())
    assert values[1] == pytest.approx(3 * values[0], rel=1e-5) and values[0] > 0


# ----- the paired model's terms --------------------------------------------------------------
def paired_flags(dataroot: Path, checkpoints: Path, name: str = "tiny") -> list[str]:
    """tiny_flags for --model paired, which has no contrastive flags."""
    return without_flags(tiny_flags(dataroot, checkpoints, name, "paired"), CONTRASTIVE_FLAGS)


def paired(tiny_dataroot, tmp_path, *extra):
    flags = paired_flags(tiny_dataroot, tmp_path / "ck")  # trainA and trainB share their names: aligned
    model = create_model(TrainOptions().parse(flags + list(extra)))
    model.setup()
    torch.manual_seed(0)
    model.set_input({"A": torch.rand(1, 3, 32, 32) * 2 - 1, "B": torch.rand(1, 3, 32, 32) * 2 - 1,
                     "A_paths": ["a"], "B_paths": ["b"]})
    return model


def test_channel_consistency_is_zero_for_a_grey_layer_only():
    grey = torch.rand(2, 1, 8, 8).expand(2, 3, 8, 8)
    assert float(channel_consistency(grey)) == pytest.approx(0.0, abs=1e-7)
    tinted = grey.clone()
    tinted[:, 0] += 0.3
    assert float(channel_consistency(tinted)) == pytest.approx(0.3 * (2 / 3 + 2 * 1 / 3) / 3, rel=1e-5)


def test_paired_terms_are_logged_only_when_weighted_and_reach_G_A(tiny_dataroot, tmp_path):
    plain = paired(tiny_dataroot, tmp_path)
    assert set(plain.compute_G_loss()) == {"L1"}
    model = paired(tiny_dataroot, tmp_path / "w", "--lambda_ssim", "0.5", "--lambda_channel", "2")
    terms = model.compute_G_loss()
    assert set(terms) == {"L1", "ssim", "channel"} and terms["ssim"].item() > 0 and terms["channel"].item() > 0
    terms["ssim"].backward()
    assert grads(model.netG_A) > 0
    model.optimize_parameters()
    assert {"L1", "ssim", "channel"} <= set(model.get_current_losses())


def test_the_under_term_weighs_only_outputs_darker_than_the_truth(tiny_dataroot, tmp_path):
    model = paired(tiny_dataroot, tmp_path, "--lambda_under", "2")
    terms = model.compute_G_loss()
    darker = (model.real_B - model.fake_B).clamp(min=0)
    assert terms["under"].item() == pytest.approx(2 * darker.mean().item(), rel=1e-5) and terms["under"].item() > 0
    terms["under"].backward()
    assert grads(model.netG_A) > 0
    model.real_B = torch.full_like(model.real_B, -1.0)  # nothing can be darker than black
    assert model.compute_G_loss()["under"].item() == 0.0


def test_flat_mask_agrees_with_the_flatness_dark_pixels_are_counted_in():
    rng = np.random.default_rng(0)
    image = np.full((40, 40, 3), 180, np.uint8)  # a smooth sky ...
    image[:, 20:] = rng.integers(0, 256, (40, 20, 3))  # ... beside foliage
    expected = local_std(rgb_to_y(image), FLAT_WINDOW) < FLAT_STD_LEVELS
    batch = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 127.5 - 1
    mask = flat_mask(batch, FLAT_WINDOW, FLAT_STD_LEVELS)
    assert mask.shape == (1, 1, 40, 40) and set(mask.unique().tolist()) == {0.0, 1.0}
    assert (mask[0, 0].numpy() > 0.5).tolist() == expected.tolist()
    assert mask[0, 0, :, :15].min() == 1 and mask[0, 0, :, 20:].max() == 0


def test_the_flat_under_term_weighs_darker_outputs_only_where_the_truth_is_flat(tiny_dataroot, tmp_path):
    model = paired(tiny_dataroot, tmp_path, "--lambda_under_flat", "3")
    model.real_B = torch.zeros_like(model.real_B)  # flat everywhere: the plain under term, weighted 3
    terms = model.compute_G_loss()
    assert "under" not in terms and terms["under_flat"].item() > 0
    assert terms["under_flat"].item() == pytest.approx(3 * (-model.fake_B).clamp(min=0).mean().item(), rel=1e-5)
    terms["under_flat"].backward()
    assert grads(model.netG_A) > 0
    model.real_B = torch.rand_like(model.real_B) * 2 - 1  # noise: flat nowhere
    assert model.compute_G_loss()["under_flat"].item() == 0.0


# ----- pseudo pairs ------------------------------------------------------------------------
def pseudo_dataset(root: Path, *extra):
    from data import create_dataset
    flags = paired_flags(root, root / "ck") + ["--dataset_mode", "pseudo_pair", "--no_flip", *extra]
    return create_dataset(TrainOptions().parse(flags))


def test_pseudo_pairs_scale_the_layer_and_mix_in_identity_pairs(tmp_path):
    write_images(tmp_path / "trainA", 6, seed=1)
    write_images(tmp_path / "trainB", 6, seed=2)
    scaled = pseudo_dataset(tmp_path, "--pseudo_identity_share", "0", "--rain_scale_range", "0.5,0.5")
    asis = pseudo_dataset(tmp_path, "--pseudo_identity_share", "0")
    a, b = scaled[(0, 1)], asis[(0, 1)]
    assert torch.equal(a["B"], b["B"])
    assert torch.allclose(a["A"], a["B"] + 0.5 * (b["A"] - b["B"]), atol=1e-6)
    assert a["A"].min() >= -1 and (b["A"] - b["B"]).min() >= 0, "the positive layer only brightens"
    signed = pseudo_dataset(tmp_path, "--pseudo_identity_share", "0", "--pseudo_layer", "signed")
    rendered, clean = signed[(0, 1)]["A"], signed[(0, 1)]["B"]
    assert (rendered - clean).min() < 0, "the signed layer keeps the rendering's darkening"
    assert torch.allclose(b["A"], clean + (rendered - clean).clamp(min=0), atol=1e-6)
    mixed = pseudo_dataset(tmp_path, "--pseudo_identity_share", "0.5")
    identity = [torch.equal(mixed[(i, e)]["A"], mixed[(i, e)]["B"]) for i in range(6) for e in range(1, 5)]
    assert 0 < sum(identity) < len(identity)
    assert torch.equal(mixed[(2, 3)]["A"], mixed[(2, 3)]["A"]), "a sample is the same every time it is drawn"


@pytest.mark.parametrize("flag,value", [("--rain_scale_range", "2,1"), ("--rain_scale_range", "x"),
                                        ("--pseudo_identity_share", "1")])
def test_pseudo_pair_flags_refuse_bad_values(tmp_path, flag, value):
    flags = paired_flags(tmp_path, tmp_path / "ck") + ["--dataset_mode", "pseudo_pair", flag, value]
    with pytest.raises(SystemExit) as exit_info:
        TrainOptions().parse(flags)
    assert exit_info.value.code == 2


# ----- the launcher, end to end -----------------------------------------------------------
def launcher(data: Path, checkpoints: Path, env_extra: dict | None = None, *extra: str):
    tiny = tiny_flags(data, checkpoints, "two")
    tiny = tiny[2:4] + tiny[6:]  # the launcher passes --dataroot and --name
    env = {"PATH": "/usr/bin:/bin", "PY": sys.executable, "ITERS": "8", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.environ.get("PYTHONPATH", ""), **(env_extra or {})}
    command = ["bash", str(REPO / "scripts" / "train_two_stage.sh"), str(data), "two", *tiny, *extra]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)


def test_two_stage_launcher_end_to_end_and_refusal(tiny_dataroot, tmp_path):
    checkpoints = tmp_path / "ck"
    done = launcher(tiny_dataroot, checkpoints, None, "--lambda_rain_stats", "1")
    assert done.returncode == 0, done.stderr[-3000:]
    stage1, stage2 = checkpoints / "two_stage1", checkpoints / "two"
    assert (stage1 / "latest.pt").is_file() and (stage1 / "stage1_done").is_file()
    assert "rain_stats" in (stage1 / "loss_log.txt").read_text()
    record = json.loads((stage1 / "pseudo_pairs" / "pseudo_pairs.json").read_text())
    assert record["pairs"] == 4 and set(record["real"]) >= {"coverage", "brightness", "run_length"}
    assert "real rain (trainA" in done.stderr and "pseudo rain" in done.stderr
    assert sorted(p.name for p in (stage1 / "pseudo_pairs" / "trainA").iterdir()) == \
        sorted(p.name for p in (stage1 / "pseudo_pairs" / "trainB").iterdir())
    state = torch.load(stage2 / "latest.pt", weights_only=True)
    assert state["model"] == "paired" and state["position"]["total_iters"] == 16  # (8 - 4) * 4
    assert state["opt"]["ngf"] == 8 and state["opt"]["crop_size"] == 32, "the generator flags reach stage 2"
    assert "ssim" in (stage2 / "loss_log.txt").read_text()

    # test.py restores with the stage-2 run through its CLI.
    results = tmp_path / "results"
    tested = subprocess.run([sys.executable, str(REPO / "test.py"), "--dataroot", str(tiny_dataroot), "--name", "two",
                             "--checkpoints_dir", str(checkpoints), "--results_dir", str(results), "--gpu_ids", "-1"],
                            env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=300)
    assert tested.returncode == 0, tested.stderr[-2000:]
    assert len(list((results / "two").rglob("*.png"))) >= 2

    # A finished run is refused at once, and left as it was.
    saved = (stage2 / "latest.pt").read_bytes()
    again = launcher(tiny_dataroot, checkpoints)
    assert again.returncode == 2 and "OVERWRITE=1" in again.stderr and "stage 1" not in again.stderr
    assert (stage2 / "latest.pt").read_bytes() == saved

    # OVERWRITE=1 trains both stages again (stage 1 is not reused) and replaces the pairs.
    (stage1 / "pseudo_pairs" / "trainA" / "stale.png").write_bytes(b"")
    redone = launcher(tiny_dataroot, checkpoints, {"OVERWRITE": "1"})
    assert redone.returncode == 0, redone.stderr[-3000:]
    assert "reusing" not in redone.stderr and "stage 1: 4 iterations" in redone.stderr
    assert redone.stderr.count("deleted the earlier run's checkpoints") == 2, "both stages started over"
    assert not (stage1 / "pseudo_pairs" / "trainA" / "stale.png").exists()

    # The strict check stops before stage 2 when the pseudo rain is off (tolerance 0).
    strict = subprocess.run([sys.executable, "-m", "scripts.render_pseudo_pairs", "--checkpoint",
                             str(stage1 / "latest.pt"), "--dataroot", str(tiny_dataroot), "--out",
                             str(tmp_path / "pairs"), "--tolerance", "0", "--strict"],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert strict.returncode == 3 and "tolerance" in strict.stderr
    refused = subprocess.run([sys.executable, "-m", "scripts.render_pseudo_pairs", "--checkpoint",
                              str(stage1 / "latest.pt"), "--dataroot", str(tiny_dataroot), "--out",
                              str(tiny_dataroot)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2 and "not a pseudo-pair folder" in refused.stderr


def test_render_flags_a_rain_generator_that_darkens(tiny_dataroot, tmp_path, caplog):
    from scripts.render_pseudo_pairs import main as render_pseudo_pairs
    model = dcdgan(tiny_dataroot, tmp_path)
    last = [m for m in model.netG_B.modules() if isinstance(m, torch.nn.Conv2d)][-1]
    with torch.no_grad():  # the pinned state: the layer's last activation at -1 everywhere
        last.weight.zero_()
        last.bias.fill_(-10.0)
    model.save("latest", {"epoch": 1, "epoch_iter": 0, "total_iters": 0})
    args = ["--checkpoint", str(tmp_path / "ck" / "tiny" / "latest.pt"), "--dataroot", str(tiny_dataroot),
            "--tolerance", "100"]
    assert render_pseudo_pairs(args + ["--out", str(tmp_path / "pairs"), "--strict"]) == 3
    assert "darkens the clean images" in caplog.text
    record = json.loads((tmp_path / "pairs" / "pseudo_pairs.json").read_text())
    assert record["pseudo_exact"]["mean"] < -5 and record["mismatch"]
    assert render_pseudo_pairs(args + ["--out", str(tmp_path / "pairs")]) == 2, "rendering again needs --overwrite"
    assert render_pseudo_pairs(args + ["--out", str(tmp_path / "pairs"), "--overwrite"]) == 0, "a warning only"


@pytest.mark.parametrize("env,message", [({"ITERS": "3"}, "ITERS"), ({"STAGE1_SHARE": "100"}, "STAGE1_SHARE"),
                                         ({"PSEUDO_CHECK": "maybe"}, "PSEUDO_CHECK"),
                                         ({"OVERWRITE": "2"}, "OVERWRITE")])
def test_two_stage_launcher_refuses_bad_settings(tmp_path, env, message):
    done = subprocess.run(["bash", str(REPO / "scripts" / "train_two_stage.sh"), "data", "run"], cwd=tmp_path,
                          env={"PATH": "/usr/bin:/bin", "PY": "echo", **env}, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2 and message in done.stderr and not done.stdout


def test_pseudo_pairs_keep_subfolders_and_never_share_a_name(tmp_path):
    from scripts.render_pseudo_pairs import pair_names
    root = tmp_path / "trainB"
    paths = [root / "a.png", root / "day" / "x.jpg", root / "night" / "x.jpg", root / "a.jpg"]
    names = pair_names(paths, root)
    assert names == [Path("a.png"), Path("day/x.png"), Path("night/x.png"), Path("a.jpg.png")]
    assert len(set(names)) == len(names)
