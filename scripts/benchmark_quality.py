"""Train several models on one budget, restore testA, score against testB and rank them.

    python scripts/benchmark_quality.py --dataroot datasets/rain100l \\
        --models cycle_gan,cut,dcl,negcut,dcdgan:official,dcdgan:paper --iters 2000 \\
        --ngf 32 --ndf 32 --load_size 143 --crop_size 128 [--out DIR] [extra train.py flags]

Every model gets the same iterations (train.py's --max_iters), load and crop size, widths,
patch count, head size and seed; the flags a model does not have (the contrastive ones for
cycle_gan) are left out for it. `model:variant` adds the model's variant flag
(`dcdgan:official` -> `--dcd_variant official`). A method without training
(restoration/methods.py, e.g. `--models dcp,dcdgan:official`) trains nothing: test.py
--model METHOD restores with it, and it is scored as one row (whatever the seeds and
levers; its own flags keep their defaults). Unrecognised arguments go to every training
run. Training (training/trainer.py, what train.py runs) and test.py (restoration/cli.py)
run in this process.

Outputs, all under --out (default benchmarks/quality/<timestamp>/): checkpoints/<run>/,
results/<run>/ (test.py's images and page), table.md (ranked by PSNR, the degraded input's
own scores as the floor row) and results.json (settings, per-run and per-image scores).
PSNR/SSIM use util/metrics.py: the Y channel for deraining, `--channel rgb` for dehazing.
"Seconds per iteration" is the training loop's wall time (data loading, logging and the
final checkpoint included; model construction excluded) over the iterations it ran.
`--seeds 0,1,2` trains every model once per seed; the table then shows mean ± standard
deviation and each seed's PSNR (at small budgets the seed moves PSNR by up to a dB: rank
methods on several seeds). `--merge A/results.json B/results.json --out DIR` writes one
such table from earlier runs of the same data and budget (e.g. one run per seed).
`--lever NAME="FLAGS"` (repeatable) also trains every model with FLAGS added, as the row
`model+NAME`, beside the plain model (`--no_baseline` drops the plain rows): one table of
levers at one budget. `--eval_every N` scores the test set every N iterations (training
resumes exactly from each checkpoint, so the curve is that of one uninterrupted run) and
stores the learning curve in results.json. The colour-shift column is the mean over images
of util.metrics.color_shift (per-channel mean difference to the ground truth, 0-255). Rain
residue and dark % are util.metrics.rain_residue and dark_artifacts of each testA
restoration (means over images; the residue over the images with rain pixels); "clean
PSNR" is the harm to clean images: test.py runs the model on the clean testB photographs
(into --out/results_clean/) and scores its outputs against those photographs
(`--no_clean` skips it).
Exit status: 0 when every run finished, 1 when some failed (listed in the table), 2 on bad
usage.
"""
from __future__ import annotations

import argparse
import json
import logging
import platform
import shlex
import sys
import time
import traceback
from datetime import datetime
from pathlib import Path

import numpy as np
import torch

import models
from data.image_folder import make_dataset
from options.base_options import default_gpu_ids
from options.train_options import TrainOptions
from restoration import cli as test_cli
from restoration.cli import METHOD_LABEL
from restoration.loading import load_generator
from restoration.methods import method_names
from runtime.inference import restore
from training.trainer import Trainer
from util.image_io import load_rgb, tensor_to_uint8, uint8_to_tensor
from util.log import setup_logging
from util.metrics import CHANNELS, MetricsError, evaluate_folders, psnr, ssim
from util.reporting import fmt, markdown_table, mean_std, spread

logger = logging.getLogger("benchmark_quality")

DEFAULT_MODELS = "cycle_gan,cut,dcl,negcut,dcdgan:official,dcdgan:paper"
# The flag that selects a model's variant in a `model:variant` spec.
VARIANT_FLAGS = {"dcdgan": "--dcd_variant"}
# Budget flags given to every model that has them (option name -> benchmark argument).
SHARED_BUDGET = ("ngf", "ndf", "load_size", "crop_size", "num_patches", "netF_nc")


class BenchmarkError(RuntimeError):
    """A run cannot be set up or scored; the message says which and why."""


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--dataroot", help="dataset root with trainA, trainB, testA and testB")
    parser.add_argument("--models", default=DEFAULT_MODELS, help="comma-separated model[:variant] specs")
    parser.add_argument("--iters", type=int, help="training iterations per model")
    parser.add_argument("--ngf", type=int, default=64)
    parser.add_argument("--ndf", type=int, default=64)
    parser.add_argument("--load_size", type=int, default=286)
    parser.add_argument("--crop_size", type=int, default=256)
    parser.add_argument("--num_patches", type=int, default=256)
    parser.add_argument("--netF_nc", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", default=None,
                        help="comma-separated seeds: every model is trained once per seed and the table shows "
                             "mean +- standard deviation (overrides --seed)")
    parser.add_argument("--merge", nargs="+", metavar="RESULTS_JSON", default=None,
                        help="train nothing: one table from earlier runs' results.json files (same data and "
                             "budget, e.g. one file per seed), written to --out")
    parser.add_argument("--lever", action="append", default=[], metavar='NAME="FLAGS"',
                        help="also train every model with these extra train.py flags, as row model+NAME "
                             "(repeatable)")
    parser.add_argument("--no_baseline", action="store_true", help="with --lever: skip the runs without a lever")
    parser.add_argument("--eval_every", type=int, default=0,
                        help="score the test set every N iterations (a learning curve in results.json); "
                             "0: only at the end")
    parser.add_argument("--no_clean", action="store_true",
                        help="skip the clean-image column (restoring testB and scoring it against itself)")
    parser.add_argument("--channel", choices=CHANNELS, default="y", help="y for deraining, rgb for dehazing")
    parser.add_argument("--crop_border", type=int, default=0, help="pixels ignored at each border when scoring")
    parser.add_argument("--gpu_ids", default=default_gpu_ids(), help="as for train.py; -1 for the CPU")
    parser.add_argument("--out", default=None, help="output folder (default benchmarks/quality/<timestamp>)")
    return parser.parse_known_args(argv)


def parse_spec(spec: str) -> tuple[str, str | None]:
    """'dcdgan:official' -> ('dcdgan', 'official'); 'cut' -> ('cut', None)."""
    model, _, variant = spec.partition(":")
    if not model:
        raise BenchmarkError(f"empty model name in --models entry '{spec}'")
    if model in method_names():
        if variant:
            raise BenchmarkError(f"--models entry '{spec}': {model} is a method without training, it has no variants")
        return model, None
    if variant and model not in VARIANT_FLAGS:
        raise BenchmarkError(f"--models entry '{spec}': {model} has no variants "
                             f"(models with variants: {', '.join(sorted(VARIANT_FLAGS))})")
    models.find_model_using_name(model)  # fails early, naming the missing file
    return model, variant or None


def model_parser(model: str) -> argparse.ArgumentParser:
    """train.py's parser with the model's own flags, to see which budget flags it has."""
    parser = TrainOptions().initialize(argparse.ArgumentParser())
    return models.get_option_setter(model)(parser, True)


def train_argv(args: argparse.Namespace, model: str, variant: str | None, name: str, out: Path,
               extra: list[str], seed: int | None = None) -> list[str]:
    parser = model_parser(model)
    argv = ["--dataroot", args.dataroot, "--model", model, "--name", name,
            "--checkpoints_dir", str(out / "checkpoints"), "--gpu_ids", args.gpu_ids,
            "--display_id", "0", "--max_iters", str(args.iters), "--seed", str(args.seed if seed is None else seed)]
    # (train() appends a later --max_iters per chunk; argparse keeps the last one.)
    for option in SHARED_BUDGET:
        if parser.get_default(option) is not None:  # every budget flag has a non-None default where it exists
            argv += [f"--{option}", str(getattr(args, option))]
    if variant:
        argv += [VARIANT_FLAGS[model], variant]
    return argv + extra


def parse_levers(texts: list[str]) -> list[tuple[str, list[str]]]:
    """'ema=--ema_decay 0.999' -> ('ema', ['--ema_decay', '0.999'])."""
    levers = []
    for text in texts:
        name, sep, flags = text.partition("=")
        if not sep or not name.strip() or any(c in name for c in " :+/"):
            raise BenchmarkError(f"--lever '{text}' must be NAME=\"FLAGS\" with a NAME free of spaces, ':', '+', '/'")
        levers.append((name.strip(), shlex.split(flags)))
    return levers


def score_checkpoint(checkpoint: Path, dataroot: Path, channel: str, crop_border: int) -> dict:
    """Mean PSNR / SSIM of the checkpoint's restoring generator on testA against testB (no files written)."""
    net, _ = load_generator(checkpoint, "AtoB", torch.device("cpu"))
    scores = []
    for path in make_dataset(dataroot / "testA"):
        image = load_rgb(path)
        restored = tensor_to_uint8(restore(net, uint8_to_tensor(np.asarray(image))[None]))
        gt = np.asarray(load_rgb(next((dataroot / "testB").glob(Path(path).stem + ".*"))))
        scores.append((psnr(restored, gt, channel, crop_border), ssim(restored, gt, channel, crop_border)))
    return {"psnr": float(np.mean([s[0] for s in scores])), "ssim": float(np.mean([s[1] for s in scores]))}


def train(argv: list[str], eval_every: int, iters: int, args: argparse.Namespace) -> tuple[Trainer, float, list]:
    """Train to --iters; with `eval_every`, in chunks resumed from 'latest', scoring each chunk's end."""
    stops = list(range(eval_every, iters, eval_every)) + [iters] if eval_every > 0 else [iters]
    curve, seconds = [], 0.0
    for k, stop in enumerate(stops):
        options = TrainOptions()
        chunk = argv + ["--max_iters", str(stop)] + (["--continue_train"] if k else [])
        opt = options.parse(chunk)
        options.save_options(opt, "train_opt.txt")
        trainer = Trainer(opt)
        started = time.perf_counter()
        trainer.run()
        seconds += time.perf_counter() - started
        if eval_every > 0:
            latest = Path(opt.checkpoints_dir) / opt.name / "latest.pt"
            point = score_checkpoint(latest, Path(args.dataroot), args.channel, args.crop_border)
            curve.append({"iterations": trainer.position["total_iters"], "seconds": seconds, **point})
            logger.info("%s at %d iterations: PSNR %.2f dB SSIM %.4f", opt.name, curve[-1]["iterations"],
                        point["psnr"], point["ssim"])
    return trainer, seconds, curve


def run_one(spec: str, seed: int, name: str, args: argparse.Namespace, out: Path, extra: list[str],
            lever: str | None = None) -> dict:
    """Train, test and score one `model[:variant]`; artefacts go to out/checkpoints|results/<name>."""
    model, variant = parse_spec(spec)
    argv = train_argv(args, model, variant, name, out, extra, seed)
    trainer, seconds, curve = train(argv, args.eval_every, args.iters, args)
    iterations = trainer.position["total_iters"]
    params = trainer.model.parameter_count()
    restoring_net = trainer.model.test_net_names()["AtoB"]
    del trainer
    scored, rows = score_restorations(["--name", name, "--checkpoints_dir", str(out / "checkpoints")], name, args, out)
    return {"spec": spec, "label": spec + (f"+{lever}" if lever else ""), "lever": lever,
            "lever_flags": " ".join(extra), "model": model, "variant": variant, "name": name, "seed": seed,
            **scored, "iterations": iterations, "seconds_per_iter": seconds / max(iterations, 1),
            "params": params, "restoring_net": restoring_net, "restoring_params": params[restoring_net],
            # EMA copies are not trained: they average the generators' weights.
            "trained_params": sum(v for k, v in params.items() if not k.endswith("_ema")),
            "curve": curve, "per_image": rows}


def score_method_row(method: str, args: argparse.Namespace, out: Path) -> dict:
    """run_method, or the error row of a method that failed (the other runs go on)."""
    logger.info("=== %s: a method without training, scored once ===", method)
    try:
        row = run_method(method, args, out)
    except Exception as err:
        logger.error("method %s failed:\n%s", method, traceback.format_exc())
        row = {"spec": method, "label": method, "error": f"{type(err).__name__}: {err}"}
    setup_logging()  # test.py re-configures logging; keep this script's format
    return row


def run_method(method: str, args: argparse.Namespace, out: Path, flags: tuple[str, ...] = ()) -> dict:
    """Score a method without training (test.py --model METHOD [its flags]) as a row: nothing is trained."""
    scored, rows = score_restorations(["--model", method, *flags], method, args, out)
    return {"spec": method, "label": method, "lever": None, "lever_flags": " ".join(flags), "model": method,
            "variant": None,
            "name": method, "seed": None, "method": True, **scored, "iterations": 0, "seconds_per_iter": None,
            "params": {}, "restoring_net": None, "restoring_params": 0, "trained_params": 0, "curve": [],
            "per_image": rows}


def score_restorations(source: list[str], folder_name: str, args: argparse.Namespace,
                       out: Path) -> tuple[dict, list[dict]]:
    """test.py (`source`: --name/--checkpoints_dir or --model) on testA scored against testB, and on the
    clean testB photographs scored against themselves (`folder_name`: its results folder's name);
    the mean scores and the per-image rows."""
    root = Path(args.dataroot)
    label = METHOD_LABEL if source[0] == "--model" else "latest"
    page = Path(folder_name) / f"test_{label}" / "images"
    images = restore_with_test_py(source, args.dataroot, out / "results", args) / page
    rows, mean = evaluate_folders(images, root / "testB", args.channel, args.crop_border, input_dir=root / "testA")
    clean = {}
    if not args.no_clean:  # a derainer should leave a rain-free photograph alone
        clean_images = restore_with_test_py(source, str(root / "testB"), out / "results_clean", args,
                                            "--nr_metrics", "false") / page
        _, clean_mean = evaluate_folders(clean_images, root / "testB", args.channel, args.crop_border)
        clean = {"clean_psnr": clean_mean["psnr"], "clean_ssim": clean_mean["ssim"]}
    return {"psnr": mean["psnr"], "ssim": mean["ssim"], "color_shift": mean["color_shift"], "images": mean["count"],
            "rain_residue": mean["rain_residue"], "rain_residue_images": mean["rain_residue_count"],
            "dark_artifacts": mean["dark_artifacts"], **clean}, rows


def restore_with_test_py(source: list[str], dataroot: str, results_dir: Path, args: argparse.Namespace,
                         *flags: str) -> Path:
    """Run test.py on `dataroot` with `source` (a run's --name and --checkpoints_dir, or --model
    METHOD); returns `results_dir`, under which it wrote <name>/test_<label>/images."""
    status = test_cli.main(["--dataroot", dataroot, *source, "--results_dir", str(results_dir),
                            "--gpu_ids", args.gpu_ids, "--metric_channel", args.channel,
                            "--crop_border", str(args.crop_border), *flags])
    if status != 0:
        raise BenchmarkError(f"test.py exited with status {status} on '{dataroot}' for {' '.join(source[:2])}; "
                             "see its log above")
    return results_dir


def _mean(group: list[dict], key: str, digits: int) -> str:
    """Mean of `key` over the runs that recorded it ('-' for results from before it existed)."""
    return fmt(mean_std(r.get(key) for r in group)[0], digits)


def _diagnostics(group: list[dict]) -> list[str]:
    """Rain residue, dark % and clean PSNR cells: mean ± std over the runs that recorded them."""
    return [spread([r.get("rain_residue") for r in group], 3),
            spread([r.get("dark_artifacts") for r in group], 2, scale=100),
            spread([r.get("clean_psnr") for r in group], 2)]


def results_table(runs: list[dict], floor: dict, settings: dict) -> str:
    """Ranked by mean PSNR over the runs of each spec (one run per seed)."""
    lines = ["# Quality benchmark", ""]
    lines += [f"- {key}: {value}" for key, value in settings.items()]
    by_spec: dict[str, list[dict]] = {}
    for r in runs:
        if "error" not in r:
            by_spec.setdefault(r.get("label", r["spec"]), []).append(r)
    seeded = any(len(group) > 1 for group in by_spec.values())
    header = ["rank", "model", "PSNR (dB)", "SSIM", *(["PSNR per seed"] if seeded else []), "rain residue", "dark %",
              "clean PSNR (dB)", "s / iter", "restoring G (M params)", "trained (M params)", "colour shift"]
    rows = []
    ranked = sorted(by_spec.items(), key=lambda item: mean_std(r["psnr"] for r in item[1])[0], reverse=True)
    for rank, (spec, group) in enumerate(ranked, 1):
        group = sorted(group, key=lambda r: r.get("seed", 0))
        per_seed = [", ".join(f"{r['psnr']:.2f} (seed {r.get('seed', '?')})" for r in group)] if seeded else []
        first = group[0]
        rows.append([str(rank), spec, spread([r["psnr"] for r in group], 2), spread([r["ssim"] for r in group], 4),
                     *per_seed, *_diagnostics(group), _mean(group, "seconds_per_iter", 3),
                     f"{first['restoring_params'] / 1e6:.3f}", f"{first['trained_params'] / 1e6:.3f}",
                     _mean(group, "color_shift", 2)])
    # The input keeps all its rain and adds no dark pixel by definition; it has no clean PSNR.
    rows.append(["floor", "input (degraded testA)", f"{floor['psnr']:.2f}", f"{floor['ssim']:.4f}",
                 *(["-"] if seeded else []), *_diagnostics([floor]), "-", "-", "-", _mean([floor], "color_shift", 2)])
    failed = [r for r in runs if "error" in r]
    rows += [["failed", r.get("label", r["spec"])] + ["-"] * (len(header) - 2) for r in failed]
    align = "rlrr" + ("l" if seeded else "") + "r" * 7
    lines += ["", *markdown_table(header, rows, align), "",
              "Rain residue: the share of the rain's added brightness left in the output (1 untouched, 0 gone). "
              "Dark %: pixels the output makes more than 20 Y levels darker than both input and ground truth "
              "where the ground truth is flat. Clean PSNR: the model run on the clean testB photographs, "
              "against themselves (lower means it harms rain-free images). docs/METHODS.md, section 5."]
    if seeded:
        lines += ["", "± is the standard deviation over the seeds (training randomness: initial weights, "
                      "crops, patch positions); the same test images every time."]
    if failed:
        lines += ["", "Failed runs:", ""] + [f"- {r['spec']}: {r['error']}" for r in failed]
    return "\n".join(lines) + "\n"


# Settings that may differ between results merged into one table.
MERGE_MAY_DIFFER = ("command", "seed", "date", "cpu threads", "levers", "eval_every")


def merge_results(paths: list[Path]) -> tuple[list[dict], dict, dict]:
    """Runs, floor and settings of several results.json files of one data set and budget."""
    loaded = []
    for path in paths:
        try:
            loaded.append(json.loads(Path(path).read_text()))
        except (OSError, ValueError) as err:
            raise BenchmarkError(f"cannot read benchmark results '{path}': {err}") from err
    first = loaded[0]["settings"]
    for path, result in zip(paths[1:], loaded[1:]):
        differ = sorted(key for key in set(first) | set(result["settings"]) if key not in MERGE_MAY_DIFFER
                        and first.get(key) != result["settings"].get(key))
        if differ:
            raise BenchmarkError(f"'{path}' was run with other settings than '{paths[0]}' ({', '.join(differ)}); "
                                 f"only runs of the same data and budget go in one table")
    runs = []
    for result in loaded:
        for run in result["runs"]:
            runs.append({"seed": result["settings"].get("seed"), **run})  # older files: the seed of the file
    settings = {key: value for key, value in first.items() if key not in ("command", "seed", "date")}
    settings = {"merged": ", ".join(str(p) for p in paths),
                "seeds": ", ".join(sorted({str(r.get("seed", "?")) for r in runs})), **settings}
    return runs, loaded[0]["input"], settings


def write_outputs(out: Path, runs: list[dict], floor: dict, settings: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.md").write_text(results_table(runs, floor, settings))
    with open(out / "results.json", "w") as fh:
        json.dump({"settings": settings, "input": floor, "runs": runs}, fh, indent=1)
    logger.info("table: %s\n%s", out / "table.md", (out / "table.md").read_text())


def main(argv: list[str] | None = None) -> int:
    args, extra = parse_args(argv)
    setup_logging()
    default_out = Path("benchmarks") / "quality" / datetime.now().strftime("%Y%m%d-%H%M%S")
    if args.merge:
        try:
            runs, floor, settings = merge_results([Path(p) for p in args.merge])
        except BenchmarkError as err:
            logger.error("%s", err)
            return 2
        write_outputs(Path(args.out or default_out), runs, floor, settings)
        return 0
    if args.dataroot is None or args.iters is None:
        logger.error("--dataroot and --iters are required (unless --merge builds a table from earlier results)")
        return 2
    try:
        seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else [args.seed]
    except ValueError:
        logger.error("--seeds must be comma-separated integers, got '%s'", args.seeds)
        return 2
    root = Path(args.dataroot)
    for sub in ("trainA", "trainB", "testA", "testB"):
        if not (root / sub).is_dir():
            logger.error("'%s' is missing: the benchmark trains on trainA/trainB and scores testA's restorations "
                         "against the ground truth in testB", root / sub)
            return 2
    specs = [s.strip() for s in args.models.split(",") if s.strip()]
    try:
        for spec in specs:
            parse_spec(spec)  # every spec is checked before hours of training start
        levers = parse_levers(args.lever)
        if args.no_baseline and not levers:
            raise BenchmarkError("--no_baseline needs at least one --lever")
    except (BenchmarkError, ValueError) as err:
        logger.error("%s", err)
        return 2
    if not specs:
        logger.error("--models is empty")
        return 2
    out = Path(args.out or default_out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        _, floor = evaluate_folders(root / "testA", root / "testB", args.channel, args.crop_border,
                                    input_dir=root / "testA")
    except MetricsError as err:
        logger.error("cannot score the degraded inputs: %s", err)
        return 2

    variants = ([] if args.no_baseline else [(None, [])]) + levers
    runs = []
    for seed in seeds:
        for spec in specs:
            if spec in method_names():  # nothing to train: one row, whatever the seeds and levers
                if seed == seeds[0]:
                    runs.append(score_method_row(spec, args, out))
                continue
            for lever, lever_flags in variants:
                label = spec + (f"+{lever}" if lever else "")
                name = label.replace(":", "_").replace("+", "__") + (f"_seed{seed}" if len(seeds) > 1 else "")
                logger.info("=== %s, seed %d: %d iterations ===", label, seed, args.iters)
                try:
                    runs.append(run_one(spec, seed, name, args, out, extra + lever_flags, lever))
                except Exception as err:  # one broken model must not cost the other runs
                    logger.error("run %s failed:\n%s", name, traceback.format_exc())
                    runs.append({"spec": spec, "label": label, "seed": seed,
                                 "error": f"{type(err).__name__}: {err}"})
                setup_logging()  # test.py re-configures logging; keep this script's format

    device = f"cuda:{args.gpu_ids}" if args.gpu_ids not in ("-1", "") else "cpu"
    settings = {"command": " ".join(["python", "scripts/benchmark_quality.py", *(argv or sys.argv[1:])]),
                "dataroot": str(root), "iterations": args.iters, "load_size": args.load_size,
                "crop_size": args.crop_size, "ngf": args.ngf, "ndf": args.ndf, "num_patches": args.num_patches,
                "netF_nc": args.netF_nc, "seed": ", ".join(map(str, seeds)), "channel": args.channel,
                "crop_border": args.crop_border, "eval_every": args.eval_every,
                "levers": {name: " ".join(flags) for name, flags in levers},
                "extra train flags": " ".join(extra) or "none", "device": device,
                "cpu threads": torch.get_num_threads(), "torch": torch.__version__,
                "machine": platform.machine(), "date": datetime.now().isoformat(timespec="seconds")}
    write_outputs(out, runs, floor, settings)
    return 1 if any("error" in r for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
