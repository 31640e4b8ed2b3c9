"""The seeded scene split of datasets/prepare.py and the dataset it writes: trainA / trainB /
testA / testB, moved into place with prepare.json last."""
from __future__ import annotations

import json
import logging
import math
import os
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from datasets.prepare_catalogue import SPLIT_DIRS, PrepareError
from datasets.prepare_pairing import Entry, Scene
from util.image_io import ImageReadError, load_rgb, save_image

log = logging.getLogger(__name__)


def split_scenes(
    complete: dict[tuple[str, str], Scene], seed: int, test_fraction: float
) -> tuple[list, list, list, str]:
    """(trainA keys, trainB keys, test keys, mode) as datasets/prepare.py's docstring describes."""
    rng = np.random.default_rng(seed)
    train = sorted(k for k in complete if k[0] == "train")
    if train:
        mode = "official"
        test = sorted(k for k in complete if k[0] == "test")
    else:
        mode = "holdout"
        keys = [sorted(complete)[i] for i in rng.permutation(len(complete))]
        n_test = min(len(keys) - 2, max(1, round(test_fraction * len(keys))))
        if n_test < 1:
            raise PrepareError(f"only {len(keys)} complete scenes: too few for train and test")
        test, train = sorted(keys[:n_test]), sorted(keys[n_test:])
    shuffled = [train[i] for i in rng.permutation(len(train))]
    half = math.ceil(len(shuffled) / 2)
    return sorted(shuffled[:half]), sorted(shuffled[half:]), test, mode


def train_a_images(scene: Scene, rng: np.random.Generator | None) -> list[Entry]:
    """All degraded versions of a scene, or one drawn with ``rng`` (--one_hazy_per_scene)."""
    versions = [scene.degraded[v] for v in sorted(scene.degraded, key=str)]
    return [versions[rng.integers(len(versions))]] if rng is not None else versions


def report_balance(n_images: int, n_scenes: int, one_per_scene: bool) -> None:
    if one_per_scene:
        log.info("trainA: one degraded image per scene (%d), drawn with the seed", n_scenes)
    elif n_images > n_scenes:
        log.warning(
            "trainA gets %d degraded images of %d scenes (%.0f per scene) while trainB gets one clean "
            "image per scene: pass --one_hazy_per_scene to keep one per scene",
            n_images, n_scenes, n_images / n_scenes,
        )


def stem_of(entry: Entry) -> str:
    return entry.scene if entry.variant is None else f"{entry.scene}_{entry.variant}"


def _image_size(entry: Entry) -> tuple[int, int]:
    try:
        with Image.open(entry.file.path) as img:
            return img.size
    except OSError as err:
        raise PrepareError(
            f"cannot read image '{entry.file.shown}' ({err}): the download may be damaged; download it again"
        ) from err


def _half_box(entry: Entry, width: int, height: int) -> tuple[int, int, int, int]:
    if entry.half is None:
        return 0, 0, width, height
    if width % 2:
        raise PrepareError(
            f"'{entry.file.shown}' is {width} px wide, odd for a side-by-side pair: it is not a Rain800 "
            "training/test_syn image; remove it"
        )
    return (0, 0, width // 2, height) if entry.half == "left" else (width // 2, 0, width, height)


def size_of(entry: Entry) -> tuple[int, int]:
    """(width, height) of the entry's image, or of its half for side-by-side pairs."""
    box = _half_box(entry, *_image_size(entry))
    return box[2] - box[0], box[3] - box[1]


class Writer:
    """Copies files unchanged when possible, else decodes, crops and writes a PNG."""

    def __init__(self, root: Path):
        self.root = root
        self.count = dict.fromkeys(SPLIT_DIRS, 0)
        for folder in SPLIT_DIRS:
            (root / folder).mkdir(parents=True)

    def write(self, entry: Entry, folder: str, stem: str, size: tuple[int, int] | None = None) -> None:
        """``size``: centre-crop to this (width, height) after taking the entry's half."""
        width, height = _image_size(entry)
        box = _half_box(entry, width, height)
        crop_w, crop_h = box[2] - box[0], box[3] - box[1]
        if size is not None and size != (crop_w, crop_h):
            if size[0] > crop_w or size[1] > crop_h:
                raise PrepareError(
                    f"'{entry.file.shown}' ({crop_w}x{crop_h}) is smaller than its pair "
                    f"({size[0]}x{size[1]}): the release seems damaged or mixed with another one"
                )
            left, top = box[0] + (crop_w - size[0]) // 2, box[1] + (crop_h - size[1]) // 2
            box = (left, top, left + size[0], top + size[1])
        if box == (0, 0, width, height):
            shutil.copyfile(entry.file.path, self.root / folder / f"{stem}{entry.file.path.suffix.lower()}")
        else:
            try:
                image = load_rgb(entry.file.path).crop(box)
            except ImageReadError as err:
                raise PrepareError(f"cannot read image '{entry.file.shown}' ({err.reason}): download it again") from err
            save_image(np.asarray(image), self.root / folder / f"{stem}.png")
        self.count[folder] += 1


def publish(staging: Path, out: Path, record: dict) -> None:
    """Move the finished dataset into ``out``; prepare.json, written last, marks it complete."""
    (out / "prepare.json").unlink(missing_ok=True)
    for folder in SPLIT_DIRS:
        shutil.rmtree(out / folder, ignore_errors=True)
        (staging / folder).rename(out / folder)
    with open(staging / "prepare.json", "w") as fh:
        json.dump(record, fh, indent=1)
    os.replace(staging / "prepare.json", out / "prepare.json")

