"""Restore a folder of images: python test.py --dataroot DIR --name NAME [--epoch latest]

DIR is a plain folder of images or a dataset root with testA/ (and testB/ ground truth).
Every image is processed at full resolution; outputs keep their input's size and go to
results/<name>/test_<epoch>/images/<stem>.png, with an index.html beside them.

Each run replaces what an earlier run wrote there, and the page and metrics name the
checkpoint (file, epoch, iteration, SHA-256) that made the outputs.

Exit status: 0 all images restored; 3 some images were unreadable or too large for memory
and skipped (listed at the end and in skipped.txt); 2 bad options, no usable checkpoint or
folder, a --backend that cannot run here, or results that cannot be written (no space left).
"""
from __future__ import annotations

import csv
import logging
import os
import shutil
import sys
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from data.image_folder import DatasetError, make_dataset
from data.single_dataset import test_image_folder
from models.loading import LoadedCheckpoint, load_generator
from options.test_options import MIN_TILE, TestOptions
from util.atomic_file import atomic_write
from util.backends import BackendError, inference_network
from util.checkpoint import CheckpointError
from util.distributed import device_of
from util.html import save_test_page
from util.image_io import ImageReadError, display_name, load_rgb, save_image, tensor_to_uint8, uint8_to_tensor
from util.inference import is_out_of_memory, restore
from util.log import setup_logging
from util.metrics import psnr, ssim

logger = logging.getLogger("test")

EXIT_SKIPPED = 3
EXIT_USAGE = 2
# What a run writes in its page folder; an earlier run's copies are removed first.
OUTPUTS = ("images", "inputs", "gt", "index.html", "metrics.txt", "metrics.csv", "skipped.txt")


def output_name(path: str, folder: str, taken: set[str]) -> str:
    """Relative output name `<subdirs>/<stem>.png`, unique even if stems repeat."""
    rel = Path(os.path.relpath(path, folder))
    name = str(rel.with_suffix(".png"))
    if name in taken:
        name = str(rel.with_name(f"{rel.stem}_{rel.suffix.lstrip('.')}.png"))
    taken.add(name)
    return name


def find_ground_truth(gt_dir: Path | None, rel_name: str) -> Path | None:
    if gt_dir is None:
        return None
    stem_path = gt_dir / Path(rel_name).with_suffix("")
    for candidate in stem_path.parent.glob(stem_path.name + ".*") if stem_path.parent.is_dir() else []:
        if candidate.stem == stem_path.name and candidate.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp",
                                                                           ".tif", ".tiff", ".webp"):
            return candidate
    return None


def read_ground_truth(path: Path) -> np.ndarray | None:
    """The ground truth as uint8 RGB; None (with a warning) if unreadable, so the output is still kept."""
    try:
        return np.asarray(load_rgb(path))
    except ImageReadError as err:
        logger.warning("no metrics for this image: %s", err)
        return None


def clear_earlier_results(page_dir: Path) -> None:
    """Remove what an earlier run wrote here, so no stale image or score mixes with this run's."""
    found = [page_dir / name for name in OUTPUTS if (page_dir / name).exists()]
    for path in found:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    if found:
        logger.info("replaced the results of an earlier run in %s", page_dir)


def restore_image(net, image: np.ndarray, opt, device) -> np.ndarray:
    x = uint8_to_tensor(image)[None].to(device)
    with torch.autocast(device.type, dtype=torch.bfloat16) if opt.amp else nullcontext():
        return tensor_to_uint8(restore(net, x, opt.tile, opt.tile_overlap))


def out_of_memory_hint(image: np.ndarray, tile: int) -> str:
    smaller = f"a smaller --tile (e.g. --tile {max(MIN_TILE, tile // 2)})" if tile else "--tile 512"
    return f"out of memory for a {image.shape[1]}x{image.shape[0]} image: rerun with {smaller}"


def scores(restored: np.ndarray, image: np.ndarray, gt: np.ndarray, channel: str, crop_border: int) -> dict:
    return {"psnr": psnr(restored, gt, channel, crop_border), "ssim": ssim(restored, gt, channel, crop_border),
            "input_psnr": psnr(image, gt, channel, crop_border), "input_ssim": ssim(image, gt, channel, crop_border)}


def run(opt) -> int:
    device = device_of(opt.gpu_ids)
    if opt.threads:
        torch.set_num_threads(opt.threads)
    checkpoint = Path(opt.checkpoints_dir) / opt.name / f"{opt.epoch}.pt"
    net, source = load_generator(checkpoint, opt.direction, device)
    net = inference_network(net, opt.backend, device)
    folder = test_image_folder(opt.dataroot, opt.direction)
    paths = make_dataset(folder)
    if not paths:
        raise DatasetError(f"no images found in '{folder}'")
    if opt.num_test is not None:
        paths = paths[:opt.num_test]
    gt_dir = Path(opt.gt_dir) if opt.gt_dir else None
    default_gt = Path(opt.dataroot) / ("testB" if opt.direction == "AtoB" else "testA")
    if gt_dir is None and folder != opt.dataroot and default_gt.is_dir():
        gt_dir = default_gt
    if gt_dir is not None and not gt_dir.is_dir():
        raise DatasetError(f"--gt_dir '{gt_dir}' is not a folder")

    page_dir = Path(opt.results_dir) / opt.name / f"test_{opt.epoch}"
    page_dir.mkdir(parents=True, exist_ok=True)
    clear_earlier_results(page_dir)
    rows, skipped, taken = [], [], set()
    logger.info("restoring %d images from %s -> %s", len(paths), folder, page_dir / "images")
    with logging_redirect_tqdm():
        for path in tqdm(paths, desc="test", unit="img", dynamic_ncols=True):
            try:
                image = np.asarray(load_rgb(path))
            except ImageReadError as err:
                logger.warning("skipped: %s", err)
                skipped.append((path, err.reason))
                continue
            try:
                restored = restore_image(net, image, opt, device)
            except (MemoryError, RuntimeError) as err:
                if not is_out_of_memory(err):
                    raise
                if device.type == "cuda":
                    torch.cuda.empty_cache()
                reason = out_of_memory_hint(image, opt.tile)
                logger.warning("skipped %s: %s", path, reason)
                skipped.append((path, reason))
                continue
            name = output_name(path, folder, taken)
            save_image(restored, page_dir / "images" / name)
            save_image(image, page_dir / "inputs" / name)
            row = {"name": name, "input": f"inputs/{name}", "output": f"images/{name}"}
            gt_path = find_ground_truth(gt_dir, name)
            gt = read_ground_truth(gt_path) if gt_path is not None else None
            if gt is not None:
                if gt.shape != restored.shape:
                    logger.warning("ground truth %s is %s, output is %s: no metrics for it",
                                   gt_path, gt.shape[:2], restored.shape[:2])
                else:
                    save_image(gt, page_dir / "gt" / name)
                    row["gt"] = f"gt/{name}"
                    try:  # an image too small for SSIM (or for --crop_border) loses only its own scores
                        row.update(scores(restored, image, gt, opt.metric_channel, opt.crop_border))
                    except ValueError as err:
                        logger.warning("no metrics for %s: %s", name, err)
            rows.append(row)

    write_metrics(page_dir, rows, opt.metric_channel, source)
    save_test_page(page_dir, rows, title=f"{opt.name} / {opt.epoch}", subtitle=f"checkpoint: {source.describe()}")
    logger.info("%d images restored; page: %s", len(rows), page_dir / "index.html")
    if skipped:
        lines = [f"{display_name(p)}\t{reason}" for p, reason in skipped]
        with atomic_write(page_dir / "skipped.txt", "w") as fh:
            fh.write("\n".join(lines) + "\n")
        logger.error("%d images were skipped (listed in %s):\n  %s", len(skipped),
                     page_dir / "skipped.txt", "\n  ".join(lines))
        return EXIT_SKIPPED
    return 0


def write_metrics(page_dir: Path, rows: list[dict], channel: str, source: LoadedCheckpoint) -> None:
    """metrics.csv (per image) and metrics.txt (the means), each naming the checkpoint."""
    scored = [r for r in rows if "psnr" in r]
    if not scored:
        return
    fields = ["name", "psnr", "ssim", "input_psnr", "input_ssim"]
    with atomic_write(page_dir / "metrics.csv", "w") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(fields + ["checkpoint_sha256"])
        writer.writerows([display_name(r["name"])] + [r[k] for k in fields[1:]] + [source.digest] for r in scored)
    mean = {k: float(np.mean([r[k] for r in scored])) for k in fields[1:]}
    summary = (f"{len(scored)} images, {channel.upper()} channel: output PSNR {mean['psnr']:.2f} dB SSIM "
               f"{mean['ssim']:.4f} | input PSNR {mean['input_psnr']:.2f} dB SSIM {mean['input_ssim']:.4f}")
    with atomic_write(page_dir / "metrics.txt", "w") as fh:
        fh.write(f"{summary}\ncheckpoint: {source.describe()}\n")
    logger.info("%s", summary)


def main(argv: list[str] | None = None) -> int:
    opt = TestOptions().parse(argv)
    setup_logging(opt.verbose)
    try:
        return run(opt)
    except (CheckpointError, DatasetError, BackendError) as err:
        logger.error("%s", err)
        return EXIT_USAGE
    except OSError as err:  # results that cannot be written: no space left, a file in the way, permissions
        logger.error("cannot write the results: %s", err)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
