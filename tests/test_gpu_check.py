"""scripts/gpu_check.sh: the GPU check runs end to end on the CPU (--smoke), and a part cut off
by its time box still leaves its results and the summary."""
import importlib.util
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def gpu_check(out: Path, *args: str, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, PY=sys.executable, OMP_NUM_THREADS="1", **(env or {}))
    env.pop("OUT", None)  # the device tool's results folder, if this runs there
    return subprocess.run(["bash", "scripts/gpu_check.sh", "--smoke", "--out", str(out), *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def parts(out: Path) -> dict[str, dict]:
    return {p["part"]: p for p in map(json.loads, (out / "parts.jsonl").read_text().splitlines())}


def test_smoke_run_writes_every_part_and_the_summary(tmp_path):
    out = tmp_path / "gpu"
    result = gpu_check(out)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert {f.name for f in out.iterdir()} == {"parts.jsonl", "tests.xml", "compile.xml", "speed.jsonl", "quality.json",
                                               "summary.md", "log.txt"}
    # Fewer than the 8 files the device tool brings back from $OUT.
    recorded = parts(out)
    assert recorded["environment"]["mode"] == "smoke" and recorded["environment"]["gpu"] is None
    assert {name: p["status"] for name, p in recorded.items() if name != "environment"} == \
        dict.fromkeys(["tests", "speed", "quality", "compile"], "passed")

    cases = list(ET.parse(out / "tests.xml").getroot().iter("testcase"))
    assert cases and all(case.find("skipped") is not None for case in cases), "no GPU here: every CUDA test skips"

    lines = [json.loads(line) for line in (out / "speed.jsonl").read_text().splitlines()]
    train = [(line["config"]["model"], line["config"].get("dcd_variant"), line["config"]["batch_size"],
              line["config"]["amp"], line["config"]["channels_last"], line["train"]["nan_guard"])
             for line in lines if "train" in line]
    for model in (("dcdgan", "official"), ("dcdgan", "paper"), ("dcl", None)):
        for batch in (1, 2):
            for amp, channels_last in ((False, False), (True, False), (True, True)):
                assert (*model, batch, amp, channels_last, False) in train, (model, batch, amp, channels_last)
    assert ("dcdgan", "official", 1, True, False, True) in train
    assert lines[0]["peak_matmul_gflops"]["bf16"] > 0
    infer = [line["infer"] for line in lines if "infer" in line]
    assert len(infer) == 2 and all(set(i) == {"64", "96x64"} and i["96x64"]["tile"] == 64 for i in infer)

    quality = json.loads((out / "quality.json").read_text())
    assert quality["iterations_done"] == quality["calibration"]["iters"] >= 10
    assert quality["options"]["model"] == "paired" and len(quality["images"]) == 2  # train_quick.sh's recipe
    assert quality["mean"]["psnr"] > 0

    summary = (out / "summary.md").read_text()
    for heading in ("## CUDA tests", "## Speed", "## Quality", "| dcl | 32 | 2 | amp (bfloat16) + channels_last |",
                    "| resnet_6blocks ngf 4 | 96x64 | 64 | fp32 |", "+ NaN guard", "| restored |"):
        assert heading in summary, heading
    assert summary in result.stdout


def test_a_part_cut_off_by_its_time_box_still_reports(tmp_path):
    """40 s for the whole run and a speed part made to need far longer: it is stopped part-way
    (the lines it finished stay), the compile part finds no time left, and the summary says both.
    (40 s leaves room for a loaded machine to start Python before the speed part begins.)"""
    out = tmp_path / "gpu"
    result = gpu_check(out, "--parts", "speed,compile", env={"GPU_CHECK_SECONDS": "40", "GPU_CHECK_TIMED": "100000"},
                       timeout=180)
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    recorded = parts(out)
    assert recorded["speed"]["status"] == "timed out" and recorded["speed"]["seconds"] <= 40 + 25
    assert recorded["compile"]["status"] == "skipped" and "--parts compile" in recorded["compile"]["note"]
    summary = (out / "summary.md").read_text()
    assert "| speed | timed out |" in summary and "| compile | skipped |" in summary


def load_gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", REPO / "scripts" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def speed_line(**config) -> dict:
    config = {"model": "dcdgan", "dcd_variant": "official", "batch_size": 4, "crop_size": 256, "ngf": 64,
              "netG": "resnet_9blocks", "amp": True, "amp_dtype": "bfloat16", "channels_last": False,
              "compile": False, **config}
    return {"config": config, "peak_matmul_gflops": {},
            "train": {"sec_per_iter": 0.5, "images_per_s": 8.0, "flops_per_iter": 8e12, "achieved_gflops": 16000.0,
                      "cuda_max_allocated_mb": 20480.0, "nan_guard": False},
            "infer": {"4000x3000": {"sec_per_image": 0.25, "megapixels_per_s": 48.0, "achieved_gflops": 80000.0,
                                    "tile": 1024}}}


def test_summary_renders_what_only_a_gpu_run_writes(tmp_path):
    """The GPU-only inputs of the summary: a measured peak, CUDA memory, compile rows, failed
    and xfailed tests, and a quality run its time box stopped."""
    (tmp_path / "parts.jsonl").write_text("\n".join(json.dumps(p) for p in [
        {"part": "environment", "mode": "full", "date": "2026-11-26T10:00:00+00:00", "commit": "abc1234",
         "python": "3.12.3", "torch": "2.11.0", "cuda": "13.0",
         "gpu": {"name": "NVIDIA H100 80GB HBM3", "memory_gib": 79.2, "driver": "580.159.04"}},
        {"part": "tests", "rc": 1, "status": "failed (exit 1)", "seconds": 70, "note": ""},
        {"part": "quality", "rc": 0, "status": "passed", "seconds": 240, "note": ""}]) + "\n")
    peaked = {**speed_line(), "peak_matmul_gflops": {"fp32": 50000.0, "bf16": 800000.0}}
    (tmp_path / "speed.jsonl").write_text(json.dumps(peaked) + "\n")
    (tmp_path / "compile.jsonl").write_text(json.dumps(speed_line(compile=True, batch_size=1)) + "\n")
    (tmp_path / "tests.xml").write_text(
        '<testsuites><testsuite name="pytest">'
        '<testcase classname="tests.test_cuda" name="test_a[cut]"><failure message="boom">trace</failure></testcase>'
        '<testcase classname="tests.test_cuda" name="test_b"><skipped type="pytest.xfail" message="no"/></testcase>'
        '<testcase classname="tests.test_cuda" name="test_c"/></testsuite></testsuites>')
    (tmp_path / "quality.json").write_text(json.dumps(
        {"calibration": {"iters": 5000, "sec_per_iter": 0.03}, "train_status": "timed out", "train_seconds": 175,
         "iterations_done": 4800, "images": [{}, {}], "mean": {"psnr": 20.5, "ssim": 0.61, "input_psnr": 16.4,
                                                             "input_ssim": 0.53}}))
    gpu_check = load_gpu_check()
    assert gpu_check.main(["summary", str(tmp_path)]) == 0
    summary = (tmp_path / "summary.md").read_text()
    for text in ("NVIDIA H100 80GB HBM3, 79.2 GiB, driver 580.159.04", "commit abc1234",
                 "| tests | failed (exit 1) | 70 |", "1 failed, 1 passed, 1 xfailed", "- failed: `test_a[cut]`: boom",
                 "bf16 800 TFLOP/s, fp32 50.0 TFLOP/s",
                 "| dcdgan official | 256 | 4 | amp (bfloat16) | 0.5000 | 8.0 | 8.000 | 16.0 | 2.0 | 20.00 |",
                 "### torch.compile", "| amp (bfloat16) + compile |",
                 "| 4000x3000 | 1024 | amp (bfloat16) | 0.2500 | 48.0 | 80.0 | 10.0 |",
                 "4800 of 5000 iterations", "timed out", "| restored | 20.50 | 0.6100 |"):
        assert text in summary, text
    assert gpu_check.main(["passed", str(tmp_path / "tests.xml")]) == 1
