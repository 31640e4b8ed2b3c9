"""Paired training data: <dataroot>/trainA/X and <dataroot>/trainB/X are the same scene."""
from __future__ import annotations

import os

from .base_dataset import BaseDataset
from .image_folder import DatasetError, make_dataset
from .validate import usable_images


class AlignedDataset(BaseDataset):
    """Returns a degraded image and its clean counterpart (same relative name), cropped and
    flipped identically. Used by `--model paired`, the supervised upper bound of the
    unpaired models (`datasets.make_synthetic --paired` writes such a set)."""

    def __init__(self, opt):
        super().__init__(opt)
        phase = "train" if opt.is_train else "test"
        self.dir_A = os.path.join(opt.dataroot, phase + "A")
        self.dir_B = os.path.join(opt.dataroot, phase + "B")
        if opt.direction == "BtoA":
            self.dir_A, self.dir_B = self.dir_B, self.dir_A
        paths_A = usable_images(self.dir_A, make_dataset(self.dir_A, opt.max_dataset_size))
        by_name = {os.path.relpath(p, self.dir_B): p for p in make_dataset(self.dir_B)}
        self.pairs = [(a, by_name[os.path.relpath(a, self.dir_A)]) for a in paths_A
                      if os.path.relpath(a, self.dir_A) in by_name]
        if not self.pairs:
            raise DatasetError(f"no file of '{self.dir_A}' has a counterpart of the same name in '{self.dir_B}'; "
                               "--dataset_mode aligned needs paired folders")
        self.A_paths = [a for a, _ in self.pairs]
        self.B_paths = [b for _, b in self.pairs]

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, key) -> dict:
        index, epoch, rng_A = self.sample_rng(key)
        _, _, rng_B = self.sample_rng(key)  # the same draws: identical crop and flip
        path_A, path_B = self.pairs[index]
        return {"A": self.load(path_A, rng_A, epoch), "B": self.load(path_B, rng_B, epoch),
                "A_paths": path_A, "B_paths": path_B}
