"""scripts/benchmark_suite.py: one recipe over every condition of a suite, one table, the below-input flag."""
import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from scripts import benchmark_suite
from util import metrics

from tests.conftest import write_images

TINY_FLAGS = ("--model dcdgan --dcd_variant official --ngf 8 --ndf 8 --netF_nc 16 --num_patches 16 "
              "--load_size 36 --crop_size 32 --num_threads 0 --netG resnet_6blocks --display_id 0")


def toy_suite(folder: Path) -> Path:
    """Two conditions; in 'perfect' the degraded inputs are the ground truth off by one level (about 48 dB),
    so every restoration of a 4-iteration model scores below them."""
    for name, seed in (("noisy", 1), ("perfect", 5)):
        root = folder / name
        write_images(root / "trainA", 4, seed=seed)
        write_images(root / "trainB", 4, seed=seed + 1)
        write_images(root / "testB", 2, seed=seed + 2)
        if name == "perfect":
            (root / "testA").mkdir()
            for path in (root / "testB").iterdir():
                clean = np.asarray(Image.open(path)).astype(np.int16)
                Image.fromarray(np.clip(clean + 1, 0, 255).astype(np.uint8)).save(root / "testA" / path.name)
        else:
            write_images(root / "testA", 2, seed=seed + 3)
    conditions = [{"name": name, "held_out": name == "perfect", "description": name, "dataroot": name,
                   "channel": "y", "built": True} for name in ("noisy", "perfect")]
    (folder / "suite.json").write_text(json.dumps({"task": "rain", "seed": 0, "channel": "y",
                                                   "held_out": ["perfect"], "conditions": conditions}))
    return folder


def test_suite_benchmark_runs_every_condition_and_flags_below_input(tmp_path):
    suite = toy_suite(tmp_path / "suite")
    out = tmp_path / "bench"
    status = benchmark_suite.main(["--suite", str(suite), "--flags", TINY_FLAGS, "--iters", "4", "--seeds", "0,1",
                                   "--out", str(out)])
    assert status == 0
    result = json.loads((out / "results.json").read_text())
    by_name = {c["name"]: c for c in result["conditions"]}
    assert set(by_name) == {"noisy", "perfect"}
    for condition in by_name.values():
        assert [r["seed"] for r in condition["runs"]] == [0, 1]
        assert all(r["iterations"] == 4 and math.isfinite(r["psnr"]) for r in condition["runs"])
        assert all(r["clean_psnr"] is not None and 0 <= r["rain_residue"] <= 1 for r in condition["runs"]
                   if r.get("rain_residue") is not None)
        for run in condition["runs"]:
            assert (out / condition["name"] / "checkpoints" / run["name"] / "latest.pt").is_file()
    assert by_name["perfect"]["input"]["psnr"] > 45
    assert all(r["psnr"] < by_name["perfect"]["input"]["psnr"] for r in by_name["perfect"]["runs"])
    table = (out / "table.md").read_text()
    rows = {line.split("|")[1].strip(): line for line in table.splitlines() if line.startswith("| ")}
    assert benchmark_suite.BELOW_INPUT in rows["perfect"] and "| yes |" in rows["perfect"]
    noisy = by_name["noisy"]
    below = sum(r["psnr"] for r in noisy["runs"]) / 2 < noisy["input"]["psnr"]
    assert (benchmark_suite.BELOW_INPUT in rows["noisy"]) == below and "| no |" in rows["noisy"]
    assert "| rain residue | dark % | clean PSNR (dB) |" in table and "±" in rows["noisy"]
    assert "--ngf 8" in result["settings"]["train flags"]


def test_launcher_flags_read_train_quick(tmp_path):
    flags = benchmark_suite.recipe_flags("quick", None, 4000)
    assert flags[flags.index("--n_iters") + 1] == "2000" and flags[flags.index("--n_iters_decay") + 1] == "2000"
    assert benchmark_suite.model_of(flags) == "paired" and "--dataroot" not in flags and "--name" not in flags
    assert benchmark_suite.model_of(benchmark_suite.recipe_flags("quick_gan", None, 4000)) == "dcdgan"
    assert not any("$" in f for f in flags)
    odd = benchmark_suite.recipe_flags("quick", None, 7)
    assert odd[odd.index("--n_iters") + 1] == "3" and odd[odd.index("--n_iters_decay") + 1] == "4"
    script = tmp_path / "train_x.sh"
    script.write_text('train_py --dataroot "$D" --name "$N" --lr $LR "$@"\n')
    with pytest.raises(benchmark_suite.bench.BenchmarkError, match="--flags"):
        benchmark_suite.launcher_flags(script, 10)


def test_bad_usage_exits_2(tmp_path):
    suite = toy_suite(tmp_path / "suite")
    assert benchmark_suite.main(["--suite", str(suite), "--recipe", "nosuch", "--iters", "2"]) == 2
    assert benchmark_suite.main(["--suite", str(suite), "--flags", "--ngf 8", "--iters", "2"]) == 2  # no --model
    assert benchmark_suite.main(["--suite", str(suite), "--flags", TINY_FLAGS]) == 2  # no --iters
    assert benchmark_suite.main(["--suite", str(tmp_path), "--flags", TINY_FLAGS, "--iters", "2"]) == 2
    assert benchmark_suite.main(["--suite", str(suite), "--flags", TINY_FLAGS, "--iters", "2", "--only", "x"]) == 2


def test_haze_columns_use_util_metrics_where_it_has_them(tmp_path, monkeypatch):
    write_images(tmp_path / "pred", 2, seed=1)
    write_images(tmp_path / "gt", 2, seed=2)
    for name in benchmark_suite.HAZE_METRICS:
        monkeypatch.delattr(metrics, name, raising=False)
    assert benchmark_suite.haze_scores(tmp_path / "pred", tmp_path / "gt") == {}
    monkeypatch.setattr(metrics, "ciede2000", lambda pred, gt: float(pred.mean() - gt.mean()), raising=False)
    scores = benchmark_suite.haze_scores(tmp_path / "pred", tmp_path / "gt")
    assert set(scores) == {"ciede2000"} and math.isfinite(scores["ciede2000"])
    result = {"name": "haze", "held_out": False, "input": {"psnr": 15.0, "ssim": 0.7, "ciede2000": 9.0},
              "runs": [{"psnr": 14.0, "ssim": 0.6, "clean_psnr": 30.0, "ciede2000": 7.0}]}
    row = benchmark_suite.condition_row(result, "haze")
    assert row[-1] == benchmark_suite.BELOW_INPUT and "7.000 (input 9.000)" in row
    assert "residual haze" in benchmark_suite.suite_table([result], "haze", {})
    # Clean photographs passed through untouched score inf on every seed: shown, not a crash.
    result["runs"] = [{"psnr": 16.0, "ssim": 0.7, "clean_psnr": math.inf} for _ in range(2)]
    row = benchmark_suite.condition_row(result, "haze")
    assert "inf" in row and "16.00 ± 0.00" in row and row[-1] == "-"


def test_a_method_without_training_runs_once_per_condition(tmp_path, monkeypatch):
    suite = toy_suite(tmp_path / "suite")
    calls = []

    def fake_method(method, args, out, flags=()):  # stands in for benchmark_quality.run_method (test.py --model METHOD)
        calls.append((method, Path(args.dataroot).name, args.channel, *flags))
        return {"spec": method, "name": method, "seed": None, "psnr": 20.0, "ssim": 0.5, "clean_psnr": 40.0,
                "rain_residue": 0.5, "dark_artifacts": 0.0}

    monkeypatch.setattr(benchmark_suite.bench, "run_method", fake_method, raising=False)
    out = tmp_path / "bench"
    assert benchmark_suite.main(["--suite", str(suite), "--method", "dcp", "--seeds", "0,1,2", "--out", str(out)]) == 0
    assert sorted(calls) == [("dcp", "noisy", "y"), ("dcp", "perfect", "y")]
    result = json.loads((out / "results.json").read_text())
    assert result["settings"]["recipe"] == "training-free method dcp"
    calls.clear()
    assert benchmark_suite.main(["--suite", str(suite), "--method", "dcp", "--method_flags", "--dcp_radius 30",
                                 "--only", "noisy", "--out", str(tmp_path / "bench30")]) == 0
    assert calls == [("dcp", "noisy", "y", "--dcp_radius", "30")]
    assert benchmark_suite.main(["--suite", str(suite), "--flags", "--model dcdgan", "--iters", "2",
                                 "--method_flags", "--dcp_radius 30"]) == 2, "method flags need a method"
    rows = {line.split("|")[1].strip(): line for line in (out / "table.md").read_text().splitlines()
            if line.startswith("| ")}
    assert benchmark_suite.BELOW_INPUT in rows["perfect"] and "| 20.00 |" in rows["perfect"]


def test_rain_rows_flag_a_recipe_that_left_most_of_the_rain():
    def result(residues):
        return {"name": "small", "held_out": False, "input": {"psnr": 16.0, "ssim": 0.6},
                "runs": [{"psnr": 17.0, "ssim": 0.65, "clean_psnr": 40.0, "rain_residue": r,
                          "dark_artifacts": 0.0} for r in residues]}
    assert benchmark_suite.condition_row(result([0.9, 0.75]), "rain")[-1] == benchmark_suite.RAIN_LEFT_FLAG
    assert benchmark_suite.condition_row(result([0.5, 0.7]), "rain")[-1] == "-"
    assert benchmark_suite.condition_row(result([None]), "rain")[-1] == "-"  # no rain pixel: no residue
    below = result([0.95])
    below["runs"][0]["psnr"] = 15.0
    assert benchmark_suite.condition_row(below, "rain")[-1] == f"{benchmark_suite.BELOW_INPUT}, RAIN LEFT"
