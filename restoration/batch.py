"""Restore a folder of images and score them: what test.py does once its restorer is open.

`restore_folder` restores every image of a folder (or one file, or a dataset root's testA/)
at full resolution into <page_dir>/images/<name>.png, beside inputs/ and (where there is
ground truth) gt/, scores each output (NIQE/PIQE: quality.csv; PSNR/SSIM, rain residue and
dark artifacts against ground truth: metrics.csv; their means: metrics.txt), writes the
page (index.html) and lists what it could not restore in skipped.txt. Each run replaces what
an earlier run wrote in `page_dir` and nothing else, one run at a time (page_folder.py); the
page and metrics name the restorer's source (the checkpoint's file, position and SHA-256, or
the method and its parameters).
"""
from __future__ import annotations

import logging
import os
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from tqdm.contrib.logging import logging_redirect_tqdm

from data.image_folder import DatasetError
from data.single_dataset import test_images
from runtime.inference import is_out_of_memory
from util.atomic_file import atomic_write
from util.html import save_test_page
from util.image_io import IMG_EXTENSIONS, ImageReadError, display_name, load_rgb, save_image
from util.metrics import (HAZE_COLUMNS, RAIN_LEFT, check_crop_border, dark_artifacts, haze_scores, psnr, rain_residue,
                          ssim)
from util.no_reference import NO_REFERENCE_METRICS, no_reference_scores
from util.progress import progress
from util.reporting import column_means, fmt, write_csv

from .page_folder import (OUTPUT_FILES, Manifest, check_inputs_outside, check_nothing_overwritten, lock_page_folder,
                          remove_earlier_outputs)
from .restorer import Restorer
from .sources import LoadedCheckpoint, MethodSource

logger = logging.getLogger("test")

# The exit status of a run that could not restore some images (skipped.txt lists them).
EXIT_SKIPPED = 3


# Image formats a photo folder may hold that test.py does not read: listed in skipped.txt.
UNREAD_IMAGE_SUFFIXES = frozenset((".gif", ".heic", ".heif", ".avif", ".jxl", ".jp2", ".j2k", ".ppm", ".pgm", ".pbm",
                                   ".pnm", ".tga", ".ico", ".psd", ".exr", ".hdr", ".svg", ".dng", ".cr2", ".cr3",
                                   ".nef", ".arw", ".orf", ".rw2", ".raf", ".raw"))


def output_names(paths: list[str], folder: str) -> list[str]:
    """Relative output names `<subdirs>/<stem>.png`, one per input and all different.

    Inputs whose names differ only by extension (a.jpg, a.png) all become `<stem>_<ext>.png`,
    so which output is whose does not depend on their order.
    """
    rels = [Path(os.path.relpath(path, folder)) for path in paths]
    plain = Counter(rel.with_suffix(".png") for rel in rels)
    candidates = [rel.with_name(f"{rel.stem}_{rel.suffix.lstrip('.')}.png") if plain[rel.with_suffix(".png")] > 1
                  else rel.with_suffix(".png") for rel in rels]
    repeated = Counter(candidates)  # e.g. a real a_jpg.png beside a.jpg and a.png: numbered
    taken = {c for c in candidates if repeated[c] == 1}
    names = []
    for candidate in candidates:
        name, count = candidate, 0
        while repeated[candidate] > 1 and (count == 0 or name in taken):
            count += 1
            name = candidate.with_name(f"{candidate.stem}_{count}.png")
        taken.add(name)
        names.append(str(name))
    return names


def unread_images(dataroot: str, folder: str) -> list[tuple[str, str]]:
    """(path, reason) for each image below `folder` in a format test.py does not read."""
    if os.path.isfile(dataroot):
        return []
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            suffix = Path(name).suffix.lower()
            if suffix in UNREAD_IMAGE_SUFFIXES and not name.startswith("."):
                found.append((os.path.join(root, name), f"test.py does not read {suffix} files (it reads "
                              f"{', '.join(IMG_EXTENSIONS)}): convert it to PNG or JPEG"))
    return found


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


# Bytes per pixel a tiled restoration holds at full size whatever --tile: the uint8 input and
# output and the float32 accumulator (runtime.inference.restore_tiled_uint8).
TILED_BYTES_PER_PIXEL = 3 + 3 + 12
# Below this tile size the tiles' activations are small beside those whole-image buffers.
SMALL_TILE = 256


def out_of_memory_hint(image: np.ndarray, tile: int) -> str:
    """What to do when an image ran out of memory; never 'a smaller --tile' where that cannot help."""
    h, w = image.shape[:2]
    if not tile:
        return f"out of memory for a {w}x{h} image: rerun with --tile 512"
    if tile > SMALL_TILE:
        return (f"out of memory for a {w}x{h} image: rerun with a smaller --tile "
                f"(e.g. --tile {max(SMALL_TILE, tile // 2)})")
    need = h * w * TILED_BYTES_PER_PIXEL / 2**20
    return (f"out of memory for a {w}x{h} image even with --tile {tile}: it needs about {need:.0f} MB at full size "
            "besides one tile, which a smaller --tile does not reduce; free memory or restore a downscaled copy")


def scores(restored: np.ndarray, image: np.ndarray, gt: np.ndarray, channel: str, crop_border: int) -> dict:
    """PSNR/SSIM of output and input, and the task's diagnostics: on the Y channel (deraining)
    the output's rain residue (None without rain pixels) and dark artifacts (the input has none,
    and all of its rain, by definition); on RGB (dehazing) its CIEDE2000 colour difference and
    residual haze, with the input's residual haze beside it."""
    row = {"psnr": psnr(restored, gt, channel, crop_border), "ssim": ssim(restored, gt, channel, crop_border),
           "input_psnr": psnr(image, gt, channel, crop_border), "input_ssim": ssim(image, gt, channel, crop_border)}
    if channel == "rgb":
        return {**row, **haze_scores(restored, image, gt)}
    return {**row, "rain_residue": rain_residue(restored, image, gt),
            "dark_artifacts": dark_artifacts(restored, image, gt)}


def no_reference_row(restored: np.ndarray, image: np.ndarray) -> dict:
    """NIQE / PIQE of the output and (as input_*) of the input; NIQE None for small images."""
    output, given = no_reference_scores(restored), no_reference_scores(image)
    return {**output, **{f"input_{metric}": value for metric, value in given.items()}}


def restore_folder(restorer: Restorer, dataroot: str, page_dir: Path, title: str, direction: str = "AtoB",
                   gt_dir: str | None = None, num_test: int | None = None, metric_channel: str = "y",
                   crop_border: int = 0, nr_metrics: bool = True) -> int:
    """Restore and score the images of `dataroot` into `page_dir` (see the module's docstring);
    `gt_dir` defaults to the dataset root's testB/ (testA/ for BtoA). Returns the exit status:
    0, or EXIT_SKIPPED when some images could not be restored (listed in skipped.txt)."""
    folder, paths = test_images(dataroot, direction)
    if num_test is not None:
        paths = paths[:num_test]
    given_gt, gt_dir = bool(gt_dir), Path(gt_dir) if gt_dir else None
    default_gt = Path(dataroot) / ("testB" if direction == "AtoB" else "testA")
    if gt_dir is None and folder != dataroot and default_gt.is_dir():
        gt_dir = default_gt
    if gt_dir is not None and not gt_dir.is_dir():
        raise DatasetError(f"--gt_dir '{gt_dir}' is not a folder")

    names = output_names(paths, folder)
    gt_paths = [find_ground_truth(gt_dir, os.path.relpath(path, folder)) for path in paths]
    # Nothing the run reads may lie where it writes: an earlier run's outputs there are removed.
    check_inputs_outside(page_dir, [("--dataroot", dataroot)]
                         + ([("--gt_dir" if given_gt else "the ground truth folder", gt_dir)] if gt_dir else [])
                         + [("input", path) for path in paths]
                         + [("ground truth", path) for path in gt_paths if path is not None])
    lock = lock_page_folder(page_dir)
    try:
        kept = remove_earlier_outputs(page_dir)
        check_nothing_overwritten(page_dir, kept, [f"{folder_name}/{name}" for name in names
                                                   for folder_name in ("images", "inputs", "gt")] + list(OUTPUT_FILES))
        manifest = Manifest(page_dir)
        try:
            return restore_and_report(restorer, dataroot, folder, list(zip(paths, names, gt_paths)), page_dir,
                                      manifest, title, metric_channel, crop_border, nr_metrics)
        finally:
            manifest.record_existing(OUTPUT_FILES)
            manifest.close()
    finally:
        lock.release()


def restore_and_report(restorer: Restorer, dataroot: str, folder: str, jobs: list[tuple[str, str, Path | None]],
                       page_dir: Path, manifest: Manifest, title: str, metric_channel: str, crop_border: int,
                       nr_metrics: bool) -> int:
    """The body of `restore_folder` once the page folder is this run's: restore each (input,
    output name, ground truth or None) of `jobs`, recording every file written in `manifest`."""
    device, source = restorer.device, restorer.source
    rows, skipped = [], unread_images(dataroot, folder)
    for path, reason in skipped:
        logger.warning("skipped %s: %s", display_name(path), reason)
    logger.info("restoring %d images from %s -> %s", len(jobs), folder, page_dir / "images")

    def save(array: np.ndarray, rel: str) -> None:
        save_image(array, page_dir / rel)
        manifest.record(rel)

    with logging_redirect_tqdm():
        # A bar on a terminal; plain log lines now and then where stderr is a file or a pipe.
        for path, name, gt_path in progress(jobs, desc="test", unit="img", dynamic_ncols=True):
            try:
                image = np.asarray(load_rgb(path))
            except ImageReadError as err:
                logger.warning("skipped: %s", err)
                skipped.append((path, err.reason))
                continue
            try:
                restored = restorer.restore_array(image, label=display_name(path))
            except (MemoryError, RuntimeError) as err:
                if not is_out_of_memory(err):
                    raise
                if device.type == "cuda":
                    torch.cuda.empty_cache()
                reason = out_of_memory_hint(image, restorer.tile)
                logger.warning("skipped %s: %s", path, reason)
                skipped.append((path, reason))
                continue
            save(restored, f"images/{name}")
            save(image, f"inputs/{name}")
            row = {"name": name, "input": f"inputs/{name}", "output": f"images/{name}"}
            if nr_metrics:
                row.update(no_reference_row(restored, image))
            gt = read_ground_truth(gt_path) if gt_path is not None else None
            if gt is not None:
                if gt.shape != restored.shape:
                    logger.warning("ground truth %s is %s, output is %s: no metrics for it",
                                   gt_path, gt.shape[:2], restored.shape[:2])
                else:
                    save(gt, f"gt/{name}")
                    row["gt"] = f"gt/{name}"
                    # A border that leaves nothing is refused (exit 2), as evaluate.py refuses it;
                    # an image too small for SSIM loses only its own scores.
                    check_crop_border(crop_border, *gt.shape[:2], display_name(path))
                    try:
                        row.update(scores(restored, image, gt, metric_channel, crop_border))
                    except ValueError as err:
                        logger.warning("no metrics for %s: %s", name, err)
            rows.append(row)

    write_metrics(page_dir, rows, metric_channel, source)
    save_test_page(page_dir, rows, title=title, subtitle=f"{source.kind}: {source.describe()}")
    manifest.record_existing(OUTPUT_FILES)
    logger.info("%d images restored; page: %s", len(rows), page_dir / "index.html")
    if skipped:
        lines = [f"{display_name(p)}\t{reason}" for p, reason in skipped]
        with atomic_write(page_dir / "skipped.txt", "w") as fh:
            fh.write("\n".join(lines) + "\n")
        manifest.record("skipped.txt")
        logger.error("%d images were skipped (listed in %s):\n  %s", len(skipped),
                     page_dir / "skipped.txt", "\n  ".join(lines))
        return EXIT_SKIPPED
    return 0


def write_metrics(page_dir: Path, rows: list[dict], channel: str, source: LoadedCheckpoint | MethodSource) -> None:
    """metrics.csv (PSNR/SSIM, rain residue, dark artifacts as a fraction, per image with ground
    truth), quality.csv (NIQE/PIQE per image) and metrics.txt (the means), each naming the restorer's source."""
    summaries, warning = [], None
    scored = [r for r in rows if "psnr" in r]
    if scored:
        diagnostics = list(HAZE_COLUMNS) if "ciede2000" in scored[0] else ["rain_residue", "dark_artifacts"]
        fields = ["name", "psnr", "ssim", "input_psnr", "input_ssim", *diagnostics]
        write_rows(page_dir / "metrics.csv", fields, scored, source.digest)
        mean = column_means(scored, fields[1:])
        summaries.append(f"{len(scored)} images, {channel.upper()} channel: output PSNR {mean['psnr']:.2f} dB SSIM "
                         f"{mean['ssim']:.4f} | input PSNR {mean['input_psnr']:.2f} dB SSIM {mean['input_ssim']:.4f}"
                         f" | {diagnostics_text(scored, mean)}")
        warning = worse_than_input_text(scored, mean) or unchanged_text(mean) or rain_left_text(mean)
    rated = [r for r in rows if "piqe" in r]
    if rated:
        fields = ["name", *NO_REFERENCE_METRICS, *(f"input_{m}" for m in NO_REFERENCE_METRICS)]
        write_rows(page_dir / "quality.csv", fields, rated, source.digest)
        mean = column_means(rated, fields[1:])
        niqe_count = sum(r["niqe"] is not None for r in rated)
        niqe_note = "" if niqe_count == len(rated) else f" (NIQE on {niqe_count}: it needs 192 x 96 pixels)"
        summaries.append(f"{len(rated)} images, no reference (lower is better){niqe_note}: output NIQE "
                         f"{fmt(mean['niqe'], 3)} PIQE {fmt(mean['piqe'], 3)} | input NIQE "
                         f"{fmt(mean['input_niqe'], 3)} PIQE {fmt(mean['input_piqe'], 3)}")
    if not summaries:
        return
    with atomic_write(page_dir / "metrics.txt", "w") as fh:
        fh.write("\n".join(summaries + ([warning] if warning else [])) + f"\n{source.kind}: {source.describe()}\n")
    for summary in summaries:
        logger.info("%s", summary)
    if warning:
        logger.warning("%s", warning)


def diagnostics_text(scored: list[dict], mean: dict) -> str:
    """'rain residue 0.123 (29 images with rain), dark artifacts 1.35% of pixels' or, for haze,
    'CIEDE2000 6.12, residual haze 3.4 levels (input 45.0)' (lower is better)."""
    if "ciede2000" in mean:
        return (f"CIEDE2000 {fmt(mean['ciede2000'], 2)}, residual haze {fmt(mean['residual_haze'], 1)} levels "
                f"(input {fmt(mean['input_residual_haze'], 1)}) (lower is better)")
    with_rain = sum(r["rain_residue"] is not None for r in scored)
    return (f"rain residue {fmt(mean['rain_residue'], 3)} ({with_rain} images with rain), dark artifacts "
            f"{mean['dark_artifacts'] * 100:.2f}% of pixels (lower is better)")


def worse_than_input_text(scored: list[dict], mean: dict) -> str | None:
    """A plain warning when the restored images score below their own inputs (PSNR against the
    ground truth): the model made them worse. None when the outputs are better on average."""
    below = sum(r["psnr"] < r["input_psnr"] for r in scored)
    if mean["psnr"] >= mean["input_psnr"]:
        return None
    return (f"the restored images are WORSE than their inputs: mean PSNR {mean['psnr']:.2f} dB against "
            f"{mean['input_psnr']:.2f} dB unrestored ({below} of {len(scored)} images below their input); "
            "the training likely collapsed or diverged: check its loss log, try another checkpoint or --seed, "
            "or a lower --lr")


# Outputs within this many dB of their inputs' PSNR, on average, were left all but unchanged.
UNCHANGED_DB = 0.05


def unchanged_text(mean: dict) -> str | None:
    """A plain warning when the restored images score the same as their inputs: the model
    returned them (all but) unchanged, as a run that learned the identity does. None otherwise."""
    if abs(mean["psnr"] - mean["input_psnr"]) >= UNCHANGED_DB:
        return None
    return (f"the restored images are all but UNCHANGED: mean PSNR {mean['psnr']:.2f} dB against "
            f"{mean['input_psnr']:.2f} dB unrestored; the model removed nothing: check its loss log and its "
            "training pairs, train longer, or try another recipe (README, Training)")


def rain_left_text(mean: dict) -> str | None:
    """A plain warning when the restored images keep most of their rain (mean rain residue at least
    `RAIN_LEFT`) though they score above their inputs: a model that learned little (issue 29's
    small set at identity share 0.5: +0.4 dB, residue 0.94), or rain unlike the rain it was trained
    on. None otherwise, and for haze (no residue)."""
    residue = mean.get("rain_residue")
    if residue is None or residue < RAIN_LEFT:  # None: no image with rain pixels
        return None
    return (f"the restored images keep {residue:.0%} of the rain's brightness (rain residue {residue:.3f}): "
            "the model removed little of this rain: train longer, compare the pseudo rain lines of the "
            "training log with the data, or try another recipe (README, Training)")


def write_rows(path: Path, fields: list[str], rows: list[dict], digest: str) -> None:
    """One line per row (a missing score is an empty cell), then the checkpoint's hash column."""
    write_csv(path, fields + ["checkpoint_sha256"],
              ([display_name(r["name"])] + [r[k] for k in fields[1:]] + [digest] for r in rows))
