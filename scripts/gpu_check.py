"""The Python half of scripts/gpu_check.sh: records, calibration and the markdown summary.

    python scripts/gpu_check.py environment DIR --mode full
    python scripts/gpu_check.py record DIR PART RC SECONDS [--note TEXT]
    python scripts/gpu_check.py smoke-data OUT
    python scripts/gpu_check.py calibrate --budget SECONDS --print_freq N DIR -- COMMAND...
    python scripts/gpu_check.py quality DIR --results FOLDER --checkpoint FILE --train_rc RC --train_seconds S
    python scripts/gpu_check.py passed JUNIT_XML
    python scripts/gpu_check.py summary DIR

DIR is the results folder. Everything in it is raw data, appended or written as each part
ends: parts.jsonl (the environment, then one line per finished part), tests.xml and
compile.xml (pytest's JUnit reports), speed.jsonl and compile.jsonl (benchmark_speed.py's
lines), quality.json and log.txt. `summary` renders summary.md from whatever is there, so
it also works on a cut-off run, and on folders merged from several runs.
"""
from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import platform
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path

from util.reporting import fmt, markdown_table, mean_std

REPO = Path(__file__).resolve().parent.parent

logger = logging.getLogger("gpu_check")

# `timeout` exits with 124 when it stopped the command (137 when it had to kill it); train.py
# exits 130/143 when SIGINT/SIGTERM stopped it after saving.
TIMED_OUT = {124, 137}
# The calibrated quality run is sized to this fraction of its budget, for run-to-run noise (the
# calibration already includes data loading and, more often, the loss reads).
CALIBRATION_MARGIN = 0.95


# ----- records ------------------------------------------------------------------------
def append_line(path: Path, record: dict) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")


def read_lines(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def git_commit() -> str | None:
    """This checkout's commit; on the device machine, which gets a copy of the working tree
    without .git, the one --prepare wrote into the command (GPU_CHECK_COMMIT)."""
    if os.environ.get("GPU_CHECK_COMMIT"):
        return os.environ["GPU_CHECK_COMMIT"]
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def environment(args) -> int:
    import torch

    record = {"part": "environment", "mode": args.mode,
              "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "commit": git_commit(), "python": platform.python_version(), "torch": torch.__version__,
              "cuda": torch.version.cuda, "gpu": None}
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        record["gpu"] = {"name": props.name, "memory_gib": round(props.total_memory / 2**30, 1),
                         "capability": f"{props.major}.{props.minor}", "multiprocessors": props.multi_processor_count,
                         "bf16": torch.cuda.is_bf16_supported(), "driver": nvidia_driver()}
    append_line(args.dir / "parts.jsonl", record)
    return 0


def nvidia_driver() -> str | None:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, check=True, timeout=30).stdout
        return out.strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        return None


def status_of(rc: int) -> str:
    """A part's or command's exit status in words (-1: not run)."""
    if rc < 0:
        return "skipped"
    if rc == 0:
        return "passed"
    return "timed out" if rc in TIMED_OUT else f"failed (exit {rc})"


def record(args) -> int:
    append_line(args.dir / "parts.jsonl", {"part": args.part, "rc": args.rc, "status": status_of(args.rc),
                                           "seconds": args.seconds, "note": args.note})
    return 0


# ----- data for --smoke ---------------------------------------------------------------------
def smoke_data(args) -> int:
    """A tiny heavy-rain set from four photographs scikit-image bundles (no network needed)."""
    from PIL import Image
    from skimage import data as skimage_data

    from datasets import make_synthetic

    photos = args.out.parent / (args.out.name + "_photos")
    photos.mkdir(parents=True, exist_ok=True)
    for name in ("astronaut", "chelsea", "coffee", "rocket"):
        Image.fromarray(getattr(skimage_data, name)()).save(photos / f"{name}.png")
    return make_synthetic.main(["--kind", "rain", "--preset", "varied_heavy", "--source", str(photos),
                                "--out", str(args.out), "--max_side", "128", "--size", "32", "--test_size", "32",
                                "--crops_per_image", "4", "--test_per_image", "2", "--overwrite"])


# ----- the quality run ----------------------------------------------------------------------
def calibrate(args) -> int:
    """Run a short training, time its loss lines as they arrive, print the iterations that fit
    the budget. Iterations per line = --print_freq; the first two lines (start-up, cuDNN's
    algorithm search) are left out."""
    arrivals = []
    with subprocess.Popen(args.train_command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True) as proc:
        for line in proc.stdout:
            sys.stderr.write(line)
            if "iters:" in line and "time:" in line:
                arrivals.append(time.monotonic())
    if proc.returncode != 0 or len(arrivals) < 4:
        logger.error("calibration run failed (exit %s, %d loss lines)", proc.returncode, len(arrivals))
        return proc.returncode or 1
    steady = arrivals[2:]
    sec_per_iter = (steady[-1] - steady[0]) / ((len(steady) - 1) * args.print_freq)
    iters = max(10, int(args.budget * CALIBRATION_MARGIN / sec_per_iter) // 10 * 10)
    (args.dir / "quality.json").write_text(json.dumps(
        {"calibration": {"sec_per_iter": sec_per_iter, "budget_seconds": args.budget, "iters": iters,
                         "command": args.train_command}}, indent=1))
    print(iters)
    return 0


def quality(args) -> int:
    from util.checkpoint import CheckpointError, load_checkpoint

    path = args.dir / "quality.json"
    result = json.loads(path.read_text()) if path.is_file() else {}
    result.update(train_rc=args.train_rc, train_status=status_of(args.train_rc), train_seconds=args.train_seconds)
    try:
        state = load_checkpoint(args.checkpoint)
        result["iterations_done"] = state["position"]["total_iters"]
        result["options"] = state["opt"]
    except CheckpointError as err:
        result["error"] = str(err)
    metrics = args.results / "metrics.csv"
    if metrics.is_file():
        with open(metrics, newline="") as fh:
            # test.py leaves the residue of an image without rain pixels empty.
            scores = ("psnr", "ssim", "input_psnr", "input_ssim", "rain_residue", "dark_artifacts")
            rows = [{"name": row["name"], **{key: float(row[key]) if row.get(key) else None for key in scores}}
                    for row in csv.DictReader(fh)]
        result["images"] = rows
        result["mean"] = {key: mean_std(row[key] for row in rows)[0] for key in scores}
    path.write_text(json.dumps(result, indent=1))
    return 0


# ----- pytest reports -----------------------------------------------------------------------
def junit_cases(path: Path) -> list[dict]:
    """[{name, outcome, message}] of a pytest JUnit XML file; outcome passed / failed / error /
    skipped / xfailed."""
    if not path.is_file():
        return []
    cases = []
    for case in ET.parse(path).getroot().iter("testcase"):
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error"):
                outcome, message = ("failed" if child.tag == "failure" else "error"), child.get("message", "")
            elif child.tag == "skipped":
                outcome = "xfailed" if child.get("type") == "pytest.xfail" else "skipped"
                message = child.get("message", "")
        cases.append({"name": case.get("name"), "outcome": outcome, "message": message})
    return cases


def passed(args) -> int:
    """Exit 0 when the report holds tests and every one passed."""
    cases = junit_cases(args.junit)
    return 0 if cases and all(case["outcome"] == "passed" for case in cases) else 1


# ----- summary --------------------------------------------------------------------------
def model_label(config: dict) -> str:
    variant = config.get("dcd_variant")
    return f"{config['model']} {variant}" if variant else config["model"]


def precision_label(config: dict, nan_guard: bool = False) -> str:
    label = f"amp ({config['amp_dtype']})" if config.get("amp") else "fp32"
    if config.get("channels_last"):
        label += " + channels_last"
    if config.get("compile"):
        label += " + compile"
    return label + (" + NaN guard" if nan_guard else "")


def bf16_peak(lines: list[dict]) -> float | None:
    return next((line["peak_matmul_gflops"]["bf16"] for line in lines if line.get("peak_matmul_gflops")), None)


def percent(gflops: float, peak: float | None) -> str:
    return fmt(100 * gflops / peak, 1) if peak else "-"


def speed_section(lines: list[dict], peak: float | None) -> list[str]:
    """Tables of benchmark_speed.py's lines; `peak`: the bf16 matmul peak, if measured."""
    out = []
    if peak and any(line.get("peak_matmul_gflops") for line in lines):
        fp32 = next(line["peak_matmul_gflops"]["fp32"] for line in lines if line.get("peak_matmul_gflops"))
        out.append(f"Measured dense matmul peak: bf16 {peak / 1e3:.0f} TFLOP/s, fp32 {fp32 / 1e3:.1f} TFLOP/s "
                   "(fp32 matmuls without TF32; cuDNN's fp32 convolutions use TF32 by default, so fp32 "
                   "training can exceed the fp32 figure). Fractions below are of the bf16 peak.")
        out.append("")
    train = [line for line in lines if "train" in line]
    if train:
        rows = []
        for line in train:
            c, t = line["config"], line["train"]
            memory = t["cuda_max_allocated_mb"] / 1024 if t.get("cuda_max_allocated_mb") else None
            rows.append([model_label(c), str(c["crop_size"]), str(c["batch_size"]),
                         precision_label(c, t.get("nan_guard", False)), fmt(t["sec_per_iter"], 4),
                         fmt(t["images_per_s"], 1), fmt(t["flops_per_iter"] / 1e12, 3),
                         fmt(t["achieved_gflops"] / 1e3, 1), percent(t["achieved_gflops"], peak), fmt(memory)])
        out += markdown_table(["model", "crop", "batch", "precision", "s/it", "images/s", "TFLOP/it", "TFLOP/s",
                               "% of bf16 peak", "GPU memory (GiB)"], rows, "lrrlrrrrrr") + [""]
    infer = [(line["config"], size, result) for line in lines for size, result in line.get("infer", {}).items()]
    if infer:
        rows = [[f"{c['netG']} ngf {c['ngf']}", size, str(r.get("tile") or "whole"), precision_label(c),
                 fmt(r["sec_per_image"], 4), fmt(r["megapixels_per_s"], 1), fmt(r["achieved_gflops"] / 1e3, 1),
                 percent(r["achieved_gflops"], peak)] for c, size, r in infer]
        out += markdown_table(["restoring generator", "image", "tile", "precision", "s/image", "megapixels/s",
                               "TFLOP/s", "% of bf16 peak"], rows, "llrlrrrr") + [""]
    return out


def tests_section(title: str, cases: list[dict]) -> list[str]:
    if not cases:
        return []
    counts = {}
    for case in cases:
        counts[case["outcome"]] = counts.get(case["outcome"], 0) + 1
    out = [f"**{title}**: " + ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items())), ""]
    for case in cases:
        if case["outcome"] in ("failed", "error", "xfailed"):
            out.append(f"- {case['outcome']}: `{case['name']}`: {case['message'][:400]}")
    return out + [""]


def quality_section(result: dict) -> list[str]:
    if not result:
        return []
    calibration = result.get("calibration", {})
    out = [f"Training: `scripts/train_quick.sh` on the heavy synthetic rain, {result.get('iterations_done', '?')} of "
           f"{calibration.get('iters', '?')} iterations ({fmt(calibration.get('sec_per_iter'), 4)} s/it calibrated, "
           f"{result.get('train_seconds', '?')} s, {result.get('train_status', 'not run')})."]
    mean = result.get("mean")
    if mean:
        # The rainy input keeps all its rain and has no dark artifact by definition.
        dark = mean.get("dark_artifacts")
        rows = [["restored", fmt(mean["psnr"]), fmt(mean["ssim"], 4), fmt(mean.get("rain_residue"), 3),
                 fmt(None if dark is None else 100 * dark)],
                ["rainy input", fmt(mean["input_psnr"]), fmt(mean["input_ssim"], 4),
                 "-" if mean.get("rain_residue") is None else "1.000", "-" if dark is None else "0.00"]]
        out += ["", *markdown_table([f"{len(result['images'])} test images (Y channel)", "PSNR (dB)", "SSIM",
                                     "rain residue", "dark %"], rows, "lrrrr")]
    if result.get("error"):
        out.append(f"\nError: {result['error']}")
    return out + [""]


def summary(args) -> int:
    folder = args.dir
    parts = read_lines(folder / "parts.jsonl")
    env = next((p for p in reversed(parts) if p["part"] == "environment"), {})
    finished = {p["part"]: p for p in parts if p["part"] != "environment"}  # the latest run of each part
    gpu = env.get("gpu") or {}
    gpu_memory = f", {gpu['memory_gib']} GiB, driver {gpu['driver']}" if gpu else ""
    lines = [f"# GPU check, {env.get('date', '?')}", "",
             f"{gpu.get('name', 'no GPU (CPU run)')}{gpu_memory}"
             f"; torch {env.get('torch', '?')} (CUDA {env.get('cuda')}), Python {env.get('python', '?')}; "
             f"commit {env.get('commit') or 'unknown'}; mode {env.get('mode', '?')}.", "",
             *markdown_table(["part", "status", "seconds", "note"],
                             [[name, p["status"], str(p["seconds"]), p.get("note") or ""]
                              for name, p in finished.items()],
                             "llrl")]
    lines += ["", "## CUDA tests", ""]
    lines += tests_section("tests/test_cuda.py", junit_cases(folder / "tests.xml")) or ["Not run.", ""]
    lines += tests_section("compile test", junit_cases(folder / "compile.xml"))
    speed = read_lines(folder / "speed.jsonl")
    lines += ["## Speed", ""] + (speed_section(speed, bf16_peak(speed)) or ["Not run.", ""])
    compiled = read_lines(folder / "compile.jsonl")
    if compiled:
        lines += ["### torch.compile", ""] + speed_section(compiled, bf16_peak(speed))
    quality_path = folder / "quality.json"
    lines += ["## Quality", ""] + (quality_section(json.loads(quality_path.read_text())) if quality_path.is_file()
                                   else ["Not run.", ""])
    (folder / "summary.md").write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="subcommand", required=True)
    p = commands.add_parser("environment")
    p.add_argument("dir", type=Path)
    p.add_argument("--mode", required=True)
    p.set_defaults(run=environment)
    p = commands.add_parser("record")
    p.add_argument("dir", type=Path)
    p.add_argument("part")
    p.add_argument("rc", type=int)
    p.add_argument("seconds", type=int)
    p.add_argument("--note", default="")
    p.set_defaults(run=record)
    p = commands.add_parser("smoke-data")
    p.add_argument("out", type=Path)
    p.set_defaults(run=smoke_data)
    p = commands.add_parser("calibrate")
    p.add_argument("dir", type=Path)
    p.add_argument("--budget", type=float, required=True, help="seconds of training to size the run for")
    p.add_argument("--print_freq", type=int, required=True, help="the command's --print_freq")
    p.add_argument("train_command", nargs=argparse.REMAINDER, help="-- then the training command")
    p.set_defaults(run=calibrate)
    p = commands.add_parser("quality")
    p.add_argument("dir", type=Path)
    p.add_argument("--results", type=Path, required=True, help="test.py's results folder (metrics.csv)")
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--train_rc", type=int, required=True)
    p.add_argument("--train_seconds", type=int, required=True)
    p.set_defaults(run=quality)
    p = commands.add_parser("passed")
    p.add_argument("junit", type=Path)
    p.set_defaults(run=passed)
    p = commands.add_parser("summary")
    p.add_argument("dir", type=Path)
    p.set_defaults(run=summary)
    args = parser.parse_args(argv)
    if args.subcommand == "calibrate" and args.train_command[:1] == ["--"]:
        args.train_command = args.train_command[1:]
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S",
                        level=logging.INFO)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
