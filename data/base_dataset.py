"""Dataset base class and the image transforms (`--preprocess`).

Per-sample randomness (crop position, flip, which B image) comes from a generator seeded
by (seed, epoch, index). The same sample is therefore drawn whatever the number of
workers or processes, and a run resumed in the middle of an epoch sees exactly the data an
uninterrupted run would.
"""
from __future__ import annotations

import logging
import math
import os

import numpy as np
import torch
import torch.utils.data as torch_data
from PIL import Image

from util.image_io import ImageReadError, load_rgb

from .image_folder import DatasetError

logger = logging.getLogger(__name__)


class BaseDataset(torch_data.Dataset):
    def __init__(self, opt):
        """Reads what loading needs from the options once; `__getitem__` reads only attributes."""
        self.root = opt.dataroot
        self.seed = opt.seed
        self.preprocess, self.load_size, self.crop_size = opt.preprocess, opt.load_size, opt.crop_size
        self.flip = not opt.no_flip
        self.full_images_after = full_images_after(opt)

    @staticmethod
    def modify_commandline_options(parser, is_train: bool):
        return parser

    def sample_rng(self, key) -> tuple[int, int, np.random.Generator]:
        """(index, epoch, rng); `key` is an index or an (index, epoch) pair from the sampler."""
        index, epoch = key if isinstance(key, (tuple, list)) else (key, 0)
        index, epoch = int(index), int(epoch)
        return index, epoch, np.random.default_rng([self.seed, epoch, index])

    def load_size_at(self, epoch: int) -> int:
        """--load_size, or --crop_size in the decay epochs with --decay_full_images."""
        if self.full_images_after is not None and epoch > self.full_images_after:
            return self.crop_size
        return self.load_size

    def load(self, path: str, rng: np.random.Generator, epoch: int = 0) -> torch.Tensor:
        return transform_image(load_rgb(path), rng, self.preprocess, self.load_size_at(epoch), self.crop_size,
                               flip=self.flip, source=path)

    def load_any(self, paths: list[str], index: int, rng: np.random.Generator, folder: str,
                 epoch: int = 0) -> tuple[torch.Tensor, str]:
        """Load paths[index]; an unreadable file is logged and the next one is used instead.

        Training must not die at hour 20 because one file of thousands is corrupt. A folder
        that is gone or unreadable as a whole (an unmounted disk, changed permissions) raises
        `DatasetError` at once: the trainer then saves and stops.
        """
        for step in range(len(paths)):
            path = paths[(index + step) % len(paths)]
            try:
                return self.load(path, rng, epoch), path
            except ImageReadError as err:
                try:
                    os.listdir(folder)
                except OSError as gone:
                    raise DatasetError(f"training folder '{folder}' vanished or became unreadable "
                                       f"({gone.strerror or gone})") from err
                logger.warning("skipping unreadable training image: %s", err)
        raise DatasetError(f"no image of training folder '{folder}' is readable any more")


def iterations_per_epoch(size: int, batch_size: int, world_size: int = 1) -> int:
    """Iterations one process runs per epoch over a dataset of `size` samples."""
    return math.ceil(size / (batch_size * world_size))


def iteration_budget(opt) -> int | None:
    """--n_iters + --n_iters_decay when training is budgeted in iterations, else None (epochs)."""
    total = opt.n_iters + opt.n_iters_decay
    return total if total > 0 else None


def last_epoch_of_budget(opt, iters_per_epoch: int) -> int:
    """The last epoch of the training budget: the epoch in which --n_iters + --n_iters_decay
    iterations end where that budget is given, else --n_epochs + --n_epochs_decay."""
    total = iteration_budget(opt)
    if total is not None:
        return math.ceil(total / iters_per_epoch)
    return opt.n_epochs + opt.n_epochs_decay


def planned_iterations(opt, iters_per_epoch: int) -> int:
    """How many iterations the run plans: its iteration budget, else its epochs' iterations."""
    return iteration_budget(opt) or last_epoch_of_budget(opt, iters_per_epoch) * iters_per_epoch


def full_images_after(opt) -> int | None:
    """The last epoch of resize-and-crop augmentation with --decay_full_images: --n_epochs,
    after which the learning rate decays; None when augmentation never stops.

    The CUT-family reference code stops its resize-and-crop augmentation once the learning
    rate decays by resizing to the crop size: whole images, no crop. A budget in iterations
    (--n_iters) has no decay epochs, so there it never stops.
    """
    if opt.is_train and opt.decay_full_images and opt.n_iters + opt.n_iters_decay == 0:
        return opt.n_epochs
    return None


def _resize(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    return img if img.size == size else img.resize(size, Image.BICUBIC)


def _scale_width(img: Image.Image, target_width: int, crop_size: int) -> Image.Image:
    w, h = img.size
    if w == target_width and h >= crop_size:
        return img
    new_h = int(max(target_width * h / w, crop_size))
    return _resize(img, (target_width, new_h))


# Sources already reported as too small: a warning per file, not one per file and epoch.
_reported_small: set[str] = set()


def _ensure_min_size(img: Image.Image, crop_size: int, source: str) -> Image.Image:
    w, h = img.size
    if w >= crop_size and h >= crop_size:
        return img
    scale = crop_size / min(w, h)
    if source not in _reported_small:
        _reported_small.add(source)
        logger.warning("%s: %dx%d is smaller than --crop_size %d, upscaled (reported once)", source, w, h, crop_size)
    return _resize(img, (max(crop_size, math.ceil(w * scale)), max(crop_size, math.ceil(h * scale))))


def _make_multiple(img: Image.Image, base: int = 4) -> Image.Image:
    w, h = img.size
    nw, nh = max(base, round(w / base) * base), max(base, round(h / base) * base)
    return _resize(img, (nw, nh))


PREPROCESS_MODES = ("resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none")  # --preprocess


def transform_image(img: Image.Image, rng: np.random.Generator, preprocess: str, load_size: int, crop_size: int,
                    flip: bool = True, source: str = "an image") -> torch.Tensor:
    """Resize / crop / flip per `preprocess` (--preprocess), then map to a CHW tensor in [-1, 1].

    `flip`: mirror at random (probability 0.5); `source` (the file path) names the image in
    warnings.
    """
    mode = preprocess
    if "resize" in mode:
        img = _resize(img, (load_size, load_size))
    elif "scale_width" in mode:
        img = _scale_width(img, load_size, crop_size)
    if "crop" in mode:
        img = _ensure_min_size(img, crop_size, source)
        w, h = img.size
        x = int(rng.integers(0, w - crop_size + 1))
        y = int(rng.integers(0, h - crop_size + 1))
        img = img.crop((x, y, x + crop_size, y + crop_size))
    if mode == "none":
        img = _make_multiple(img)
    elif mode not in PREPROCESS_MODES:
        raise ValueError(f"unknown --preprocess '{mode}'; choose resize_and_crop, crop, scale_width, "
                         "scale_width_and_crop or none")
    if flip and rng.random() < 0.5:
        img = img.transpose(Image.FLIP_LEFT_RIGHT)
    arr = np.asarray(img, dtype=np.float32)
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous() / 127.5 - 1.0
