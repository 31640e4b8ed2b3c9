"""Run one recipe over every condition of a dataset suite (x seeds) and print one table.

    python -m scripts.benchmark_suite --suite datasets/suite_rain --recipe quick --iters 4000 --seeds 0,1,2
    python -m scripts.benchmark_suite --suite datasets/suite_rain --flags "--model dcdgan --ngf 16 ..." --iters 600
    python -m scripts.benchmark_suite --suite datasets/suite_haze --method dcp

The suite is a folder written by ``python -m datasets.suite`` (suite.json names the conditions,
which are held out from tuning, and the task: rain is scored on the Y channel, haze on RGB).
The recipe is a launcher's flag set: ``--recipe NAME`` reads the train.py flags of
``scripts/train_NAME.sh`` (``quick``: scripts/train_quick.sh, with its ITERS arithmetic evaluated
for ``--iters``), ``--flags "..."`` gives them explicitly (they must name ``--model``), and
``--method NAME`` restores with a training-free method through ``test.py --model NAME`` (no
checkpoint, one run per condition whatever ``--seeds`` says; benchmark_quality's ``run_method``
where it has one, the hook for the restoration/ package's methods such as dcp). Training, restoring and scoring
are scripts/benchmark_quality.py's (``run_one``: train.py's loop, test.py on testA, the
diagnostics, the clean testB photographs through the model).

Outputs under --out (default benchmarks/suite/<timestamp>/): ``<condition>/`` (checkpoints and
results of each run), table.md and results.json. The table has one row per condition: held
out or not, the input's PSNR / SSIM, the output's mean ± std over seeds, for rain the rain
residue and dark %, the clean PSNR, for haze CIEDE2000 and residual haze where util.metrics
has them, "BELOW INPUT" where the mean output PSNR is under the input's and, for rain, "RAIN LEFT"
where the mean rain residue is at least util.metrics.RAIN_LEFT (a recipe that learned little).
Exit status: 0 when every run finished, 1 when some failed (listed in the table), 2 on bad usage.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import platform
import re
import shlex
import sys
import traceback
from datetime import datetime
from pathlib import Path

import numpy as np
import torch

from datasets.suite import read_suite
from options.base_options import default_gpu_ids
from scripts import benchmark_quality as bench
from util import metrics
from util.image_io import load_rgb
from util.log import setup_logging
from util.metrics import MetricsError, evaluate_folders
from util.reporting import fmt, markdown_table, spread

logger = logging.getLogger("benchmark_suite")
SCRIPTS = Path(__file__).resolve().parent
# Haze diagnostics of util.metrics (helper functions (pred, gt) -> float), used where they exist.
HAZE_METRICS = ("ciede2000", "residual_haze")
BELOW_INPUT = "BELOW INPUT"
RAIN_LEFT_FLAG = "RAIN LEFT"


def launcher_flags(script: str | Path, iters: int) -> list[str]:
    """The train.py flags a launcher passes (its `train_py ...` command), for `iters` iterations.

    `$((...))` arithmetic on ITERS is evaluated; --dataroot, --name and the shell's own
    arguments ("$@", "${overwrite[@]}") are left out: the benchmark sets those.
    """
    path = Path(script)
    try:
        text = path.read_text()
    except OSError as err:
        raise bench.BenchmarkError(f"cannot read the recipe '{path}': {err}") from err
    match = re.search(r"^train_py .*?(?<!\\)$", text, flags=re.MULTILINE | re.DOTALL)
    if match is None:
        raise bench.BenchmarkError(f"'{path}' has no 'train_py ...' command to take the recipe's flags from")
    command = re.sub(r"\\\n", " ", match.group(0))
    command = re.sub(r"\$\(\(([^()]*)\)\)", lambda m: str(_bash_arithmetic(m.group(1), iters, path)), command)
    tokens, flags = shlex.split(command)[1:], []
    skip = False
    for token in tokens:
        if skip:
            skip = False
        elif token in ("--dataroot", "--name"):
            skip = True
        elif token not in ("$@", "${overwrite[@]}"):
            if "$" in token:
                raise bench.BenchmarkError(f"'{path}': cannot evaluate '{token}' in its train_py command; "
                                           "give the flags with --flags instead")
            flags.append(token)
    return flags


def _bash_arithmetic(expression: str, iters: int, path: Path) -> int:
    """Bash's integer arithmetic on ITERS (+ - * / and parentheses only)."""
    if not re.fullmatch(r"[\sITERS0-9+\-*/()]*", expression):
        raise bench.BenchmarkError(f"'{path}': cannot evaluate $(({expression})); give the flags with --flags")
    python = expression.replace("ITERS", str(iters)).replace("/", "//")
    return int(eval(python, {"__builtins__": {}}))  # digits and operators only, checked above


def recipe_flags(recipe: str | None, flags: str | None, iters: int) -> list[str]:
    """train.py flags of `--recipe NAME` (scripts/train_NAME.sh, or a path to a launcher) or of `--flags`."""
    if flags is not None:
        return shlex.split(flags)
    script = Path(recipe) if recipe.endswith(".sh") else SCRIPTS / f"train_{recipe}.sh"
    if not script.is_file():
        raise bench.BenchmarkError(f"--recipe '{recipe}': no launcher '{script}'; name one of scripts/train_*.sh "
                                   "(quick: scripts/train_quick.sh) or give --flags")
    return launcher_flags(script, iters)


def model_of(flags: list[str]) -> str:
    """The last --model of a flag list (argparse keeps the last)."""
    models = [flags[i + 1] for i, flag in enumerate(flags[:-1]) if flag == "--model"]
    if not models:
        raise bench.BenchmarkError("the recipe's flags name no --model; add one to --flags")
    return models[-1]


def haze_scores(pred_dir: Path, gt_dir: Path) -> dict:
    """Mean of each util.metrics haze diagnostic that exists, over the images of pred_dir (by stem)."""
    functions = {name: getattr(metrics, name) for name in HAZE_METRICS if hasattr(metrics, name)}
    if not functions:
        return {}
    values: dict[str, list[float]] = {name: [] for name in functions}
    for pred_path in sorted(p for p in pred_dir.iterdir() if p.is_file()):
        gt_path = next(iter(sorted(gt_dir.glob(pred_path.stem + ".*"))), None)
        if gt_path is None:
            continue
        pred, gt = np.asarray(load_rgb(pred_path)), np.asarray(load_rgb(gt_path))
        for name, function in functions.items():
            try:
                values[name].append(float(function(pred, gt)))
            except TypeError as err:  # another signature than (pred, gt): leave the column empty
                logger.warning("util.metrics.%s(pred, gt) failed (%s); its column stays empty", name, err)
                functions = {k: v for k, v in functions.items() if k != name}
                values[name] = []
                break
    return {name: float(np.mean(v)) for name, v in values.items() if v}


def run_method(method: str, args: argparse.Namespace, out: Path) -> dict:
    """A training-free method: test.py --model METHOD [--method_flags] restores testA (and testB for the
    clean column), through benchmark_quality's run_method."""
    return bench.run_method(method, args, out, tuple(args.method_flags))


def restored_images(out: Path, name: str) -> Path | None:
    """Where test.py wrote run `name`'s restorations of testA: test_latest (a checkpoint), test_method."""
    for label in ("latest", "method"):
        images = out / "results" / name / f"test_{label}" / "images"
        if images.is_dir():
            return images
    return None


def run_condition(condition: dict, suite_dir: Path, args: argparse.Namespace, flags: list[str],
                  seeds: list[int], out: Path, task: str) -> dict:
    """Score the input, then train / restore / score once per seed (or run the method once)."""
    root = suite_dir / condition["dataroot"]
    run_args = argparse.Namespace(**{**vars(args), "dataroot": str(root), "channel": condition["channel"]})
    _, floor = evaluate_folders(root / "testA", root / "testB", run_args.channel, args.crop_border,
                                input_dir=root / "testA")
    if task == "haze":
        floor.update(haze_scores(root / "testA", root / "testB"))
    runs = []
    for seed in ([None] if args.method else seeds):
        name = args.method or f"{condition['name']}_seed{seed}"  # one folder per condition: names may repeat
        logger.info("=== %s: %s ===", condition["name"], args.method or f"seed {seed}, {args.iters} iterations")
        try:
            if args.method:
                run = run_method(args.method, run_args, out / condition["name"])
            else:
                run_args.seed = seed
                run = bench.run_one(model_of(flags), seed, name, run_args, out / condition["name"], flags)
            images = restored_images(out / condition["name"], name)
            if task == "haze" and images is not None:
                run.update(haze_scores(images, root / "testB"))
            runs.append(run)
        except Exception as err:  # one failed run must not cost the others
            logger.error("run %s failed:\n%s", name, traceback.format_exc())
            runs.append({"name": name, "seed": seed, "error": f"{type(err).__name__}: {err}"})
        setup_logging()  # test.py re-configures logging
    return {"name": condition["name"], "held_out": condition["held_out"], "description": condition["description"],
            "dataroot": str(root), "channel": run_args.channel, "input": floor, "runs": runs}


def _spread(values: list, digits: int, scale: float = 1.0) -> str:
    """util.reporting.spread, but 'inf' for a column with an infinite value (a restoration identical to
    its ground truth: statistics.stdev cannot take inf)."""
    present = [v for v in values if v is not None]
    if any(not math.isfinite(v) for v in present):
        return fmt(float(np.mean(present)) * scale, digits)
    return spread(present, digits, scale)


def condition_row(result: dict, task: str) -> list[str]:
    """One table row: the input, the runs' mean ± std, the diagnostics and the flags (below the input;
    for rain, a mean rain residue of at least util.metrics.RAIN_LEFT: most of the rain left)."""
    floor, done = result["input"], [r for r in result["runs"] if "error" not in r]
    failed = len(result["runs"]) - len(done)
    mean_psnr = float(np.mean([r["psnr"] for r in done])) if done else None
    below = mean_psnr is not None and mean_psnr < floor["psnr"]
    residues = [r["rain_residue"] for r in done if r.get("rain_residue") is not None]
    rain_left = task == "rain" and bool(residues) and float(np.mean(residues)) >= metrics.RAIN_LEFT
    flag = ", ".join(([BELOW_INPUT] if below else []) + ([RAIN_LEFT_FLAG] if rain_left else [])
                     + ([f"{failed} failed"] if failed else [])) or "-"
    row = [result["name"], "yes" if result["held_out"] else "no", fmt(floor["psnr"], 2), fmt(floor["ssim"], 4),
           _spread([r["psnr"] for r in done], 2), _spread([r["ssim"] for r in done], 4)]
    if task == "rain":
        row += [_spread([r.get("rain_residue") for r in done], 3),
                _spread([r.get("dark_artifacts") for r in done], 2, scale=100)]
    row.append(_spread([r.get("clean_psnr") for r in done], 2))
    if task == "haze":
        row += [f"{_spread([r.get(k) for r in done], 3)} (input {fmt(floor.get(k), 3)})" for k in HAZE_METRICS]
    return row + [str(len(done)), flag]


def suite_table(results: list[dict], task: str, settings: dict) -> str:
    header = ["condition", "held out", "input PSNR (dB)", "input SSIM", "PSNR (dB)", "SSIM"]
    header += ["rain residue", "dark %"] if task == "rain" else []
    header.append("clean PSNR (dB)")
    header += ["CIEDE2000", "residual haze"] if task == "haze" else []
    header += ["runs", "flag"]
    rows = [condition_row(result, task) for result in results]
    lines = ["# Suite benchmark", "", *[f"- {key}: {value}" for key, value in settings.items()], "",
             *markdown_table(header, rows, "ll" + "r" * (len(header) - 3) + "l"), "",
             "PSNR / SSIM: mean ± standard deviation over the runs (seeds) on the Y channel for rain, RGB for haze. "
             f"'{BELOW_INPUT}': the mean output PSNR is under the degraded input's; '{RAIN_LEFT_FLAG}': the mean rain "
             f"residue is at least {metrics.RAIN_LEFT:g}. Held-out conditions were not "
             "used to choose the recipe. Clean PSNR: the model run on the clean testB photographs, against "
             "themselves."]
    if task == "rain":
        lines.append("Rain residue: the share of the rain's brightness left (1 untouched, 0 gone); dark %: pixels "
                     "made darker than input and ground truth where the ground truth is flat (docs/METHODS.md, "
                     "section 5).")
    else:
        lines.append("CIEDE2000 and residual haze: util.metrics' haze diagnostics where it has them ('-' otherwise).")
    failed = [(res["name"], r) for res in results for r in res["runs"] if "error" in r]
    if failed:
        lines += ["", "Failed runs:", ""] + [f"- {condition} ({r['name']}): {r['error']}" for condition, r in failed]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--suite", required=True, help="suite folder written by python -m datasets.suite")
    recipe = parser.add_mutually_exclusive_group(required=True)
    recipe.add_argument("--recipe", help="a launcher's flags: NAME for scripts/train_NAME.sh (quick), or a .sh path")
    recipe.add_argument("--flags", help="explicit train.py flags of the recipe (must name --model)")
    recipe.add_argument("--method", help="a training-free method run through test.py --model METHOD (e.g. dcp)")
    parser.add_argument("--method_flags", default="",
                        help="the method's own flags, one quoted string (e.g. '--dcp_radius 30'; only with --method)")
    parser.add_argument("--iters", type=int, help="training iterations per run (not with --method)")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds, one training per seed and condition")
    parser.add_argument("--only", default=None, help="comma-separated conditions to run (default: all built)")
    parser.add_argument("--no_clean", action="store_true", help="skip the clean-image column")
    parser.add_argument("--crop_border", type=int, default=0, help="pixels ignored at each border when scoring")
    parser.add_argument("--gpu_ids", default=default_gpu_ids(), help="as for train.py; -1 for the CPU")
    parser.add_argument("--out", default=None, help="output folder (default benchmarks/suite/<timestamp>)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging()
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        logger.error("--seeds must be comma-separated integers, got '%s'", args.seeds)
        return 2
    try:
        suite = read_suite(args.suite)
        if args.method_flags and not args.method:
            raise bench.BenchmarkError("--method_flags are a training-free method's flags: they need --method")
        if not args.method and (args.iters is None or args.iters < 1):
            raise bench.BenchmarkError("--iters (>= 1) is required with --recipe or --flags")
        flags = [] if args.method else recipe_flags(args.recipe, args.flags, args.iters)
        if not args.method:
            bench.parse_spec(model_of(flags))
        conditions = [c for c in suite["conditions"] if c.get("built")]
        if args.only:
            wanted = [n.strip() for n in args.only.split(",") if n.strip()]
            unknown = sorted(set(wanted) - {c["name"] for c in conditions})
            if unknown:
                raise bench.BenchmarkError(f"--only: no built condition {', '.join(unknown)} in '{args.suite}'")
            conditions = [c for c in conditions if c["name"] in wanted]
        if not conditions or not seeds:
            raise bench.BenchmarkError(f"nothing to run: no built condition in '{args.suite}' or no seed")
    except (ValueError, bench.BenchmarkError) as err:
        logger.error("%s", err)
        return 2
    out = Path(args.out or Path("benchmarks") / "suite" / datetime.now().strftime("%Y%m%d-%H%M%S"))
    out.mkdir(parents=True, exist_ok=True)
    # benchmark_quality's run_one reads these from its own argument namespace.
    bench_args, _ = bench.parse_args(["--iters", str(args.iters or 0), "--gpu_ids", args.gpu_ids,
                                      "--crop_border", str(args.crop_border)])
    bench_args.no_clean, bench_args.method = args.no_clean, args.method
    bench_args.method_flags = shlex.split(args.method_flags)
    results = []
    for condition in conditions:
        try:
            results.append(run_condition(condition, Path(args.suite), bench_args, flags, seeds, out, suite["task"]))
        except MetricsError as err:
            logger.error("condition %s: cannot score its inputs: %s", condition["name"], err)
            return 2
    settings = {"command": " ".join(["python -m scripts.benchmark_suite", *(argv if argv is not None else
                                                                            sys.argv[1:])]),
                "suite": f"{args.suite} ({suite['task']}, built with seed {suite['seed']})",
                "recipe": (f"training-free method {args.method} {args.method_flags}".strip() if args.method
                           else args.recipe or "explicit --flags"),
                "train flags": " ".join(flags) or "none", "iterations": args.iters, "seeds": ", ".join(map(str, seeds)),
                "held out from tuning": ", ".join(suite.get("held_out", [])) or "none",
                "cpu threads": torch.get_num_threads(), "torch": torch.__version__, "machine": platform.machine(),
                "date": datetime.now().isoformat(timespec="seconds")}
    with open(out / "results.json", "w") as fh:  # first: the table below must not cost the measurements
        json.dump({"settings": settings, "suite": suite, "conditions": results}, fh, indent=1)
    (out / "table.md").write_text(suite_table(results, suite["task"], settings))
    logger.info("table: %s\n%s", out / "table.md", (out / "table.md").read_text())
    failed = any("error" in r for res in results for r in res["runs"])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
