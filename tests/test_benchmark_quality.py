"""scripts/benchmark_quality.py: same budget for every model, scores, ranked table, one output folder."""
import json
import math
from pathlib import Path

import pytest

from scripts import benchmark_quality as bench
from scripts import comparison_grid, plot_learning_curve
from util.metrics import evaluate_folders

TINY = ["--iters", "2", "--ngf", "8", "--ndf", "8", "--load_size", "36", "--crop_size", "32",
        "--num_patches", "16", "--netF_nc", "16", "--gpu_ids", "-1"]


def test_two_models_end_to_end(tiny_dataroot, tmp_path):
    out = tmp_path / "bench"
    status = bench.main(["--dataroot", str(tiny_dataroot), "--models", "cut,dcdgan:official", "--out", str(out),
                         *TINY, "--num_threads", "0", "--netG", "resnet_6blocks"])
    assert status == 0
    result = json.loads((out / "results.json").read_text())
    runs = {r["spec"]: r for r in result["runs"]}
    assert set(runs) == {"cut", "dcdgan:official"}
    for r in runs.values():
        assert r["iterations"] == 2 and r["images"] == 2
        assert math.isfinite(r["psnr"]) and 0 < r["ssim"] <= 1
        assert 0 < r["restoring_params"] < r["trained_params"] == sum(r["params"].values())
        assert (out / "checkpoints" / r["name"] / "latest.pt").is_file()
        assert len(list((out / "results" / r["name"] / "test_latest" / "images").glob("*.png"))) == 2
    assert runs["cut"]["restoring_net"] == "G" and runs["dcdgan:official"]["restoring_net"] == "G_A"
    options = (out / "checkpoints" / "dcdgan_official" / "train_opt.txt").read_text()
    assert "dcd_variant: official" in " ".join(options.split())
    assert "crop_size: 32" in " ".join(options.split())
    for r in runs.values():  # the diagnostics of test.py's restorations, and of the clean testB photographs
        restored = out / "results" / r["name"] / "test_latest" / "images"
        _, scored = evaluate_folders(restored, tiny_dataroot / "testB", input_dir=tiny_dataroot / "testA")
        assert r["rain_residue"] == pytest.approx(scored["rain_residue"]) and 0 <= r["rain_residue"] <= 1
        assert r["dark_artifacts"] == pytest.approx(scored["dark_artifacts"])
        cleaned = out / "results_clean" / r["name"] / "test_latest" / "images"
        _, clean = evaluate_folders(cleaned, tiny_dataroot / "testB")
        assert clean["count"] == 2 and r["clean_psnr"] == pytest.approx(clean["psnr"])

    _, floor = evaluate_folders(tiny_dataroot / "testA", tiny_dataroot / "testB")
    assert result["input"]["psnr"] == pytest.approx(floor["psnr"])
    assert result["input"]["rain_residue"] == 1.0 and result["input"]["dark_artifacts"] == 0.0
    table = (out / "table.md").read_text()
    assert "| floor | input (degraded testA) |" in table
    assert "| SSIM | rain residue | dark % | clean PSNR (dB) | s / iter |" in table
    first = next(line for line in table.splitlines() if line.startswith("| 1 "))
    best = runs[max(runs, key=lambda s: runs[s]["psnr"])]
    assert (f"| {best['rain_residue']:.3f} | {100 * best['dark_artifacts']:.2f} | {best['clean_psnr']:.2f} |"
            in first)
    ranked = [line.split("|")[2].strip() for line in table.splitlines() if line.startswith("| 1 ") or
              line.startswith("| 2 ")]
    expected = sorted(runs, key=lambda s: runs[s]["psnr"], reverse=True)
    assert ranked == expected


def test_budget_flags_reach_only_models_that_have_them(tmp_path):
    args, extra = bench.parse_args(["--dataroot", str(tmp_path), *TINY, "--amp"])
    cyc = bench.train_argv(args, "cycle_gan", None, "c", tmp_path, extra)
    assert "--num_patches" not in cyc and "--netF_nc" not in cyc
    assert cyc[cyc.index("--ngf") + 1] == "8" and cyc[cyc.index("--max_iters") + 1] == "2"
    assert cyc[-1] == "--amp"
    dcd = bench.train_argv(args, "dcdgan", "paper", "d", tmp_path, extra)
    assert dcd[dcd.index("--num_patches") + 1] == "16"
    assert dcd[dcd.index("--dcd_variant") + 1] == "paper"


@pytest.mark.parametrize("models", ["cut:fast", "nosuch", ""])
def test_bad_model_specs_are_refused_before_training(tiny_dataroot, tmp_path, models):
    assert bench.main(["--dataroot", str(tiny_dataroot), "--models", models, "--out", str(tmp_path / "o"),
                       *TINY]) == 2


def fake_results(path: Path, seed, runs, **settings) -> Path:
    base = {"dataroot": "d", "iterations": 600, "crop_size": 64, "extra train flags": "none", "seed": seed,
            "command": f"python scripts/benchmark_quality.py --seed {seed}", "date": "today"}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"settings": {**base, **settings}, "input": {"psnr": 16.0, "ssim": 0.5},
                                "runs": [{"spec": spec, "psnr": psnr, "ssim": 0.5, "seconds_per_iter": 0.5,
                                          "restoring_params": 7e5, "trained_params": 3e6} for spec, psnr in runs]}))
    return path


def test_merge_ranks_by_the_mean_over_seeds_and_shows_the_spread(tmp_path):
    a = fake_results(tmp_path / "s0" / "results.json", 0, [("negcut", 17.0), ("dcl", 17.5)])
    b = fake_results(tmp_path / "s1" / "results.json", 1, [("negcut", 19.0), ("dcl", 17.7)])
    assert bench.main(["--merge", str(a), str(b), "--out", str(tmp_path / "merged")]) == 0
    rows = [line for line in (tmp_path / "merged" / "table.md").read_text().splitlines() if line.startswith("| ")]
    # negcut: mean 18.0, sample std 1.41; dcl: mean 17.6, std 0.14.
    assert rows[1].startswith("| 1 | negcut | 18.00 ± 1.41 | 0.5000 ± 0.0000 | 17.00 (seed 0), 19.00 (seed 1) |")
    assert rows[2].startswith("| 2 | dcl | 17.60 ± 0.14 |")
    assert rows[3].startswith("| floor | input (degraded testA) | 16.00 |")
    merged = json.loads((tmp_path / "merged" / "results.json").read_text())
    assert sorted(r["seed"] for r in merged["runs"]) == [0, 0, 1, 1]


def test_merged_table_shows_residue_dark_and_clean_psnr_as_mean_and_spread(tmp_path):
    paths = []
    for seed, (residue, dark, clean) in enumerate([(0.2, 0.01, 30.0), (0.4, 0.03, 32.0)]):
        path = fake_results(tmp_path / f"s{seed}" / "results.json", seed, [("dcdgan:official", 20.0)])
        result = json.loads(path.read_text())
        result["runs"][0].update(rain_residue=residue, dark_artifacts=dark, clean_psnr=clean)
        result["input"].update(rain_residue=1.0, dark_artifacts=0.0)
        path.write_text(json.dumps(result))
        paths.append(str(path))
    old = fake_results(tmp_path / "old" / "results.json", 0, [("cut", 19.0)])  # from before the columns existed
    assert bench.main(["--merge", *paths, "--out", str(tmp_path / "m")]) == 0
    rows = [line for line in (tmp_path / "m" / "table.md").read_text().splitlines() if line.startswith("| ")]
    assert "| 0.300 ± 0.141 | 2.00 ± 1.41 | 31.00 ± 1.41 |" in rows[1]
    assert rows[2].startswith("| floor | input (degraded testA) | 16.00 | 0.5000 | - | 1.000 | 0.00 | - |")
    assert bench.main(["--merge", str(old), "--out", str(tmp_path / "o")]) == 0
    rows = [line for line in (tmp_path / "o" / "table.md").read_text().splitlines() if line.startswith("| ")]
    assert rows[1].startswith("| 1 | cut | 19.00 | 0.5000 | - | - | - | 0.500 |")


def test_merge_refuses_results_of_another_budget(tmp_path):
    a = fake_results(tmp_path / "a.json", 0, [("cut", 17.0)])
    b = fake_results(tmp_path / "b.json", 1, [("cut", 17.0)], **{"extra train flags": "--lr 0.0002"})
    assert bench.main(["--merge", str(a), str(b), "--out", str(tmp_path / "m")]) == 2
    assert not (tmp_path / "m" / "table.md").exists()


def test_seeds_train_every_model_once_per_seed(tiny_dataroot, tmp_path):
    out = tmp_path / "bench"
    status = bench.main(["--dataroot", str(tiny_dataroot), "--models", "cut", "--seeds", "0,1", "--out", str(out),
                         *TINY, "--num_threads", "0", "--netG", "resnet_6blocks"])
    assert status == 0
    runs = json.loads((out / "results.json").read_text())["runs"]
    assert [(r["name"], r["seed"]) for r in runs] == [("cut_seed0", 0), ("cut_seed1", 1)]
    seeds = {r["seed"]: (out / "checkpoints" / r["name"] / "train_opt.txt").read_text() for r in runs}
    assert all(f"seed: {seed}" in " ".join(text.split()) for seed, text in seeds.items())
    assert "± " in (out / "table.md").read_text()


def test_levers_share_one_table_and_the_curve_matches_the_final_checkpoint(tiny_dataroot, tmp_path):
    out = tmp_path / "bench"
    status = bench.main(["--dataroot", str(tiny_dataroot), "--models", "dcdgan:official", "--out", str(out),
                         *TINY[:1], "3", *TINY[2:], "--num_threads", "0", "--netG", "resnet_6blocks",
                         "--lever", "ema=--ema_decay 0.9", "--eval_every", "2", "--no_clean"])
    assert status == 0
    result = json.loads((out / "results.json").read_text())
    runs = {r["label"]: r for r in result["runs"]}
    assert not any("clean_psnr" in r for r in runs.values()) and not (out / "results_clean").exists()
    assert set(runs) == {"dcdgan:official", "dcdgan:official+ema"}
    ema = runs["dcdgan:official+ema"]
    assert ema["restoring_net"] == "G_A_ema" and runs["dcdgan:official"]["restoring_net"] == "G_A"
    assert "ema_decay: 0.9" in " ".join((out / "checkpoints" / ema["name"] / "train_opt.txt").read_text().split())
    for run in runs.values():
        assert [point["iterations"] for point in run["curve"]] == [2, 3]
        assert run["curve"][-1]["psnr"] == pytest.approx(run["psnr"], abs=1e-6)
        assert run["color_shift"] >= 0
    table = (out / "table.md").read_text()
    assert "| dcdgan:official+ema |" in table and "colour shift" in table


def test_bad_lever_is_refused_before_training(tiny_dataroot, tmp_path):
    assert bench.main(["--dataroot", str(tiny_dataroot), "--models", "cut", "--out", str(tmp_path / "o"),
                       *TINY, "--lever", "no flags here"]) == 2


def test_learning_curve_plot_averages_seeds_and_writes_png_and_table(tmp_path):
    runs = [{"spec": "dcdgan:official", "label": "dcdgan:official", "curve": [
        {"iterations": 100, "seconds": 60.0, "psnr": 17.0 + seed, "ssim": 0.5},
        {"iterations": 200, "seconds": 120.0, "psnr": 18.0 + seed, "ssim": 0.6}]} for seed in (0, 1)]
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"input": {"psnr": 16.0, "ssim": 0.4}, "runs": runs}))
    assert plot_learning_curve.main([str(path), "--out", str(tmp_path / "curve")]) == 0
    from PIL import Image
    assert Image.open(tmp_path / "curve.png").size == (900, 420)
    table = (tmp_path / "curve.md").read_text()
    assert "| dcdgan:official | 200 | 2.0 | 18.50 | 0.6000 | 2 |" in table
    assert "| input (degraded testA) | - | - | 16.00 |" in table
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"input": {"psnr": 1, "ssim": 1}, "runs": [{"spec": "cut"}]}))
    assert plot_learning_curve.main([str(empty), "--out", str(tmp_path / "none")]) == 2


def test_comparison_grid_rows_are_input_outputs_and_ground_truth(tiny_dataroot, tmp_path):
    out = tmp_path / "grid.png"
    # The degraded inputs stand in for a restoration: the middle column must equal the first.
    assert comparison_grid.main(["--dataroot", str(tiny_dataroot), "--results", str(tiny_dataroot / "testA"),
                                 "--label", "same", "--out", str(out), "--every", "1"]) == 0
    from PIL import Image
    import numpy as np
    image = np.asarray(Image.open(out))
    h, w = 40, 48  # conftest's image size
    assert image.shape == (comparison_grid.TITLE_HEIGHT + 2 * h, 3 * w, 3)
    body = image[comparison_grid.TITLE_HEIGHT:]
    assert np.array_equal(body[:, :w], body[:, w:2 * w]) and not np.array_equal(body[:, :w], body[:, 2 * w:])
    hazy = tmp_path / "hazy.png"  # the inputs' title is a flag (the haze demo's "hazy input")
    assert comparison_grid.main(["--dataroot", str(tiny_dataroot), "--results", str(tiny_dataroot / "testA"),
                                 "--label", "same", "--out", str(hazy), "--every", "1",
                                 "--input_label", "hazy input"]) == 0
    retitled = np.asarray(Image.open(hazy))
    titles = slice(0, comparison_grid.TITLE_HEIGHT)
    assert np.array_equal(retitled[comparison_grid.TITLE_HEIGHT:], body)
    assert not np.array_equal(retitled[titles, :w], image[titles, :w])
    assert np.array_equal(retitled[titles, w:], image[titles, w:])
    assert comparison_grid.main(["--dataroot", str(tiny_dataroot), "--results", str(tmp_path / "nowhere"),
                                 "--out", str(out)]) == 2
