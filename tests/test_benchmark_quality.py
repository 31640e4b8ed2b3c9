"""scripts/benchmark_quality.py: same budget for every model, scores, ranked table, one output folder."""
import importlib.util
import json
import math
from pathlib import Path

import pytest

from util.metrics import evaluate_folders

REPO = Path(__file__).resolve().parent.parent


def load_script():
    spec = importlib.util.spec_from_file_location("benchmark_quality", REPO / "scripts" / "benchmark_quality.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TINY = ["--iters", "2", "--ngf", "8", "--ndf", "8", "--load_size", "36", "--crop_size", "32",
        "--num_patches", "16", "--netF_nc", "16", "--gpu_ids", "-1"]


def test_two_models_end_to_end(tiny_dataroot, tmp_path):
    bench = load_script()
    out = tmp_path / "bench"
    status = bench.main(["--dataroot", str(tiny_dataroot), "--models", "cut,dcdgan:official", "--out", str(out),
                         *TINY, "--num_threads", "0", "--netG", "resnet_6blocks"])
    assert status == 0
    result = json.loads((out / "results.json").read_text())
    runs = {r["spec"]: r for r in result["runs"]}
    assert set(runs) == {"cut", "dcdgan:official"}
    for spec, r in runs.items():
        assert r["iterations"] == 2 and r["images"] == 2
        assert math.isfinite(r["psnr"]) and 0 < r["ssim"] <= 1
        assert 0 < r["restoring_params"] < r["trained_params"] == sum(r["params"].values())
        assert (out / "checkpoints" / r["name"] / "latest.pt").is_file()
        assert len(list((out / "results" / r["name"] / "test_latest" / "images").glob("*.png"))) == 2
    assert runs["cut"]["restoring_net"] == "G" and runs["dcdgan:official"]["restoring_net"] == "G_A"
    options = (out / "checkpoints" / "dcdgan_official" / "train_opt.txt").read_text()
    assert "dcd_variant: official" in " ".join(options.split())
    assert "crop_size: 32" in " ".join(options.split())

    _, floor = evaluate_folders(tiny_dataroot / "testA", tiny_dataroot / "testB")
    assert result["input"]["psnr"] == pytest.approx(floor["psnr"])
    table = (out / "table.md").read_text()
    assert "| floor | input (degraded testA) |" in table
    ranked = [line.split("|")[2].strip() for line in table.splitlines() if line.startswith("| 1 ") or
              line.startswith("| 2 ")]
    expected = sorted(runs, key=lambda s: runs[s]["psnr"], reverse=True)
    assert ranked == expected


def test_budget_flags_reach_only_models_that_have_them(tmp_path):
    bench = load_script()
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
    bench = load_script()
    assert bench.main(["--dataroot", str(tiny_dataroot), "--models", models, "--out", str(tmp_path / "o"),
                       *TINY]) == 2
