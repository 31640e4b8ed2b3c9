"""Restore a folder of images: python test.py --dataroot DIR --name NAME [--epoch latest]

DIR is a plain folder of images or a dataset root with testA/ (and testB/ ground truth).
Every image is processed at full resolution; outputs keep their input's size and go to
results/<name>/test_<epoch>/images/<stem>.png, with an index.html beside them.

Exit status: 0 all images restored; 3 some images were unreadable and skipped (listed at
the end and in skipped.txt); 2 bad usage or no usable checkpoint / folder.
"""
from __future__ import annotations

import csv
import logging
import os
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from data.image_folder import DatasetError, make_dataset
from data.single_dataset import test_image_folder
from models.loading import load_generator
from options.test_options import TestOptions
from util.checkpoint import CheckpointError
from util.distributed import device_of
from util.html import save_test_page
from util.image_io import ImageReadError, load_rgb, save_image, tensor_to_uint8, uint8_to_tensor
from util.inference import restore
from util.log import setup_logging
from util.metrics import psnr, ssim

logger = logging.getLogger("test")

EXIT_SKIPPED = 3
EXIT_USAGE = 2


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


def run(opt) -> int:
    device = device_of(opt.gpu_ids)
    checkpoint = Path(opt.checkpoints_dir) / opt.name / f"{opt.epoch}.pt"
    net, _ = load_generator(checkpoint, opt.direction, device)
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
    rows, skipped, taken = [], [], set()
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if opt.amp else None)
    logger.info("restoring %d images from %s -> %s", len(paths), folder, page_dir / "images")
    with logging_redirect_tqdm():
        for path in tqdm(paths, desc="test", unit="img", dynamic_ncols=True):
            try:
                image = np.asarray(load_rgb(path))
            except ImageReadError as err:
                logger.warning("skipped: %s", err)
                skipped.append((path, err.reason))
                continue
            x = uint8_to_tensor(image)[None].to(device)
            if autocast is not None:
                with autocast:
                    y = restore(net, x, opt.tile, opt.tile_overlap)
            else:
                y = restore(net, x, opt.tile, opt.tile_overlap)
            restored = tensor_to_uint8(y)
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
                    row.update(gt=f"gt/{name}",
                               psnr=psnr(restored, gt, opt.metric_channel, opt.crop_border),
                               ssim=ssim(restored, gt, opt.metric_channel, opt.crop_border),
                               input_psnr=psnr(image, gt, opt.metric_channel, opt.crop_border),
                               input_ssim=ssim(image, gt, opt.metric_channel, opt.crop_border))
            rows.append(row)

    write_metrics(page_dir, rows, opt.metric_channel)
    save_test_page(page_dir, rows, title=f"{opt.name} / {opt.epoch}")
    logger.info("%d images restored; page: %s", len(rows), page_dir / "index.html")
    if skipped:
        lines = [f"{p}\t{reason}" for p, reason in skipped]
        (page_dir / "skipped.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        logger.error("%d unreadable images were skipped (listed in %s):\n  %s", len(skipped),
                     page_dir / "skipped.txt", "\n  ".join(lines))
        return EXIT_SKIPPED
    (page_dir / "skipped.txt").unlink(missing_ok=True)  # a list left by an earlier run would mislead
    return 0


def write_metrics(page_dir: Path, rows: list[dict], channel: str) -> None:
    scored = [r for r in rows if "psnr" in r]
    if not scored:
        return
    page_dir.mkdir(parents=True, exist_ok=True)
    fields = ["name", "psnr", "ssim", "input_psnr", "input_ssim"]
    with open(page_dir / "metrics.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(scored)
    mean = {k: float(np.mean([r[k] for r in scored])) for k in fields[1:]}
    summary = (f"{len(scored)} images, {channel.upper()} channel: output PSNR {mean['psnr']:.2f} dB SSIM "
               f"{mean['ssim']:.4f} | input PSNR {mean['input_psnr']:.2f} dB SSIM {mean['input_ssim']:.4f}")
    (page_dir / "metrics.txt").write_text(summary + "\n")
    logger.info("%s", summary)


def main(argv: list[str] | None = None) -> int:
    opt = TestOptions().parse(argv)
    setup_logging(opt.verbose)
    try:
        return run(opt)
    except (CheckpointError, DatasetError) as err:
        logger.error("%s", err)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
