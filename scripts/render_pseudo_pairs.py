"""Render pseudo pairs with the frozen rain generator of a finished run, and check their rain.

    python -m scripts.render_pseudo_pairs --checkpoint checkpoints/NAME_stage1/latest.pt \\
        --dataroot DATAROOT --out checkpoints/NAME_stage1/pseudo_pairs [--tolerance 0.5] [--strict]

For every clean training image b (DATAROOT/trainB) the checkpoint's G_B (its B -> A
generator) renders G_B(b); OUT/trainA/<path>.png holds G_B(b) and OUT/trainB/<path>.png holds
b (<path>: the image's path under trainB, subfolders kept), the layout `--dataset_mode
pseudo_pair` (and `aligned`) reads. Then it compares the pseudo
rain with the real rain of DATAROOT/trainA (util/rain_stats.py): both estimated as the luma's
high-pass residual, so the two are measured alike; coverage and brightness must agree within
--tolerance (relative), and G_B's exact layer must not darken the images on average (by more
than DARKENING_LEVELS). The statistics go to the log and to OUT/pseudo_pairs.json, with G_B's
exact layer G_B(b) - b beside them. A mismatch is a warning, or with --strict exit status 3.
OUT must be new or empty, or a folder this script wrote (--overwrite then replaces its images).
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np
import torch

from restoration.loading import load_generator
from util.atomic_file import atomic_write
from util.checkpoint import CheckpointError
from util.flags import OneLineParser
from util.image_io import ImageReadError, is_image_file, load_rgb, save_image, tensor_to_uint8, uint8_to_tensor
from runtime.inference import restore
from util.log import setup_logging
from util.rain_stats import LayerStatistics, compare_statistics, rain_layer_y

logger = logging.getLogger("render_pseudo_pairs")

EXIT_USAGE = 2
EXIT_MISMATCH = 3
MARKER = "pseudo_pairs.json"  # written last; marks OUT as this script's
DARKENING_LEVELS = 1.0  # a mean exact layer below minus this many Y levels: G_B darkens instead of adding rain


def image_files(folder: Path) -> list[Path]:
    """The images under `folder`, sorted ([] for a missing folder)."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and is_image_file(str(p)))


def prepare_out(out: Path, overwrite: bool) -> None:
    """Make OUT/trainA and OUT/trainB; refuse a non-empty OUT this script did not write."""
    if out.exists() and any(out.iterdir()):
        if not (out / MARKER).is_file():
            raise ValueError(f"--out '{out}' is not empty and not a pseudo-pair folder: choose a new folder")
        if not overwrite:
            raise ValueError(f"--out '{out}' already holds pseudo pairs: pass --overwrite to render them again")
        for path in image_files(out / "trainA") + image_files(out / "trainB"):
            path.unlink()  # only the images this script wrote there
        (out / MARKER).unlink()
    for sub in ("trainA", "trainB"):
        (out / sub).mkdir(parents=True, exist_ok=True)


def render(net: torch.nn.Module, clean: np.ndarray) -> np.ndarray:
    """G_B's rainy rendering of an HxWx3 uint8 clean image."""
    with torch.no_grad():
        return tensor_to_uint8(restore(net, uint8_to_tensor(clean).unsqueeze(0)))


def pair_names(clean_paths: list[Path], root: Path) -> list[Path]:
    """Where each clean image's pair goes, relative to trainA/ and trainB/: its path under `root`
    with the suffix .png, subfolders kept; where two sources would meet (a.jpg and a.png), the
    later keeps its whole name (a.png.png)."""
    names, taken = [], set()
    for path in clean_paths:
        relative = path.relative_to(root) if path.is_relative_to(root) else Path(path.name)
        name = relative.with_suffix(".png")
        if name in taken:
            name = relative.with_name(relative.name + ".png")
        taken.add(name)
        names.append(name)
    return names


def render_pairs(net: torch.nn.Module, clean_paths: list[Path], out: Path, root: Path) -> tuple[dict, dict]:
    """Write the pairs (named by `pair_names` under `root`, the clean images' folder); return the
    statistics of the pseudo rain (high-pass estimate) and of G_B's exact layer."""
    estimated, exact = LayerStatistics(), LayerStatistics()
    for path, name in zip(clean_paths, pair_names(clean_paths, root)):
        try:
            clean = np.asarray(load_rgb(path))
        except ImageReadError as err:
            logger.warning("skipping unreadable clean image: %s", err)
            continue
        rainy = render(net, clean)
        (out / "trainA" / name).parent.mkdir(parents=True, exist_ok=True)
        (out / "trainB" / name).parent.mkdir(parents=True, exist_ok=True)
        save_image(rainy, out / "trainA" / name)
        save_image(clean, out / "trainB" / name)
        estimated.add(rain_layer_y(rainy))
        exact.add(rain_layer_y(rainy, clean))
    return estimated.summary(), exact.summary()


def real_rain_statistics(rainy_paths: list[Path]) -> dict:
    """The high-pass estimate's statistics over the real rainy images."""
    stats = LayerStatistics()
    for path in rainy_paths:
        try:
            stats.add(rain_layer_y(np.asarray(load_rgb(path))))
        except ImageReadError as err:
            logger.warning("skipping unreadable rainy image: %s", err)
    return stats.summary()


def describe(stats: dict) -> str:
    return ", ".join(f"{key} {value:.4g}" if value is not None else f"{key} -" for key, value in stats.items())


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="a checkpoint with a B -> A generator (dcdgan's G_B)")
    parser.add_argument("--dataroot", required=True, help="the dataset: trainB (clean) is rendered, trainA compared")
    parser.add_argument("--out", required=True, help="folder for the pairs (trainA: G_B(b), trainB: b)")
    parser.add_argument("--tolerance", type=float, default=0.5,
                        help="largest relative difference of coverage and brightness from trainA's (default 0.5)")
    parser.add_argument("--strict", action="store_true", help="exit 3 when the pseudo rain is out of tolerance")
    parser.add_argument("--overwrite", action="store_true", help="render again into a folder this script wrote")
    parser.add_argument("--max_images", type=int, default=None, help="render at most this many clean images")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    setup_logging()
    args = parse_args(argv)
    dataroot, out = Path(args.dataroot), Path(args.out)
    clean_paths = image_files(dataroot / "trainB")[:args.max_images]
    rainy_paths = image_files(dataroot / "trainA")
    if not clean_paths or not rainy_paths:
        logger.error("'%s' needs images in trainA (real rain) and trainB (clean)", dataroot)
        return EXIT_USAGE
    if args.tolerance < 0:
        logger.error("--tolerance must be at least 0, got %s", args.tolerance)
        return EXIT_USAGE
    try:
        net, source = load_generator(args.checkpoint, direction="BtoA")
        prepare_out(out, args.overwrite)
    except (ValueError, OSError, CheckpointError) as err:
        logger.error("%s", err)
        return EXIT_USAGE
    pseudo, exact = render_pairs(net, clean_paths, out, dataroot / "trainB")
    real = real_rain_statistics(rainy_paths[:max(len(clean_paths), 200)])
    problems = compare_statistics(pseudo, real, args.tolerance)
    if exact["mean"] < -DARKENING_LEVELS:
        # Rain only brightens: a G_B that darkens on average is pinned (its layer below zero everywhere).
        problems.append(f"G_B darkens the clean images by {-exact['mean']:.2f} levels on average (its rain layer "
                        "is stuck below zero)")
    logger.info("real rain (trainA, high-pass estimate): %s", describe(real))
    logger.info("pseudo rain (G_B(trainB), high-pass estimate): %s", describe(pseudo))
    logger.info("G_B's exact layer G_B(b) - b: %s", describe(exact))
    record = {"checkpoint": str(source.path), "sha256": source.digest, "dataroot": str(dataroot),
              "pairs": len(image_files(out / "trainA")), "tolerance": args.tolerance,
              "real": real, "pseudo": pseudo, "pseudo_exact": exact, "mismatch": problems}
    with atomic_write(out / MARKER, "w") as fh:
        json.dump(record, fh, indent=1)
    if problems:
        message = ("the pseudo rain differs from trainA's by more than the tolerance: " + "; ".join(problems)
                   + " (train stage 1 longer or with --lambda_rain_stats / --lambda_rain_D)")
        if args.strict:
            logger.error("%s", message)
            return EXIT_MISMATCH
        logger.warning("%s", message)
    else:
        logger.info("the pseudo rain is within %.0f%% of trainA's coverage and brightness", 100 * args.tolerance)
    return 0


if __name__ == "__main__":
    sys.exit(main())
