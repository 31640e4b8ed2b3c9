"""scripts/gpu_check.sh: the GPU check runs end to end on the CPU (--smoke), and a part cut off
by its time box still leaves its results and the summary."""
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
    assert quality["options"]["model"] == "dcdgan" and len(quality["images"]) == 2
    assert quality["mean"]["psnr"] > 0

    summary = (out / "summary.md").read_text()
    for heading in ("## CUDA tests", "## Speed", "## Quality", "| dcl | 32 | 2 | amp (bfloat16) + channels_last |",
                    "| resnet_6blocks ngf 4 | 96x64 | 64 | fp32 |", "+ NaN guard", "| restored |"):
        assert heading in summary, heading
    assert summary in result.stdout


def test_a_part_cut_off_by_its_time_box_still_reports(tmp_path):
    """12 s for the whole run: the speed part is stopped part-way (the lines it finished stay),
    the compile part finds no time left, and the summary says both."""
    out = tmp_path / "gpu"
    result = gpu_check(out, "--parts", "speed,compile", env={"GPU_CHECK_SECONDS": "12"}, timeout=120)
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    recorded = parts(out)
    assert recorded["speed"]["status"] == "timed out" and recorded["speed"]["seconds"] <= 12 + 25
    assert recorded["compile"]["status"] == "skipped" and "--parts compile" in recorded["compile"]["note"]
    summary = (out / "summary.md").read_text()
    assert "| speed | timed out |" in summary and "| compile | skipped |" in summary
