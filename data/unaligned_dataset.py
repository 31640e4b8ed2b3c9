"""Unpaired training data: <dataroot>/trainA and <dataroot>/trainB."""
from __future__ import annotations

import os

from .base_dataset import BaseDataset
from .image_folder import make_dataset
from .validate import usable_images


class UnalignedDataset(BaseDataset):
    """Returns an A image and an independently drawn B image (random unless --serial_batches)."""

    def __init__(self, opt):
        super().__init__(opt)
        self.serial_batches = opt.serial_batches
        phase = "train" if opt.is_train else "test"
        self.dir_A = os.path.join(opt.dataroot, phase + "A")
        self.dir_B = os.path.join(opt.dataroot, phase + "B")
        self.A_paths = usable_images(self.dir_A, make_dataset(self.dir_A, opt.max_dataset_size))
        self.B_paths = usable_images(self.dir_B, make_dataset(self.dir_B, opt.max_dataset_size))
        if opt.direction == "BtoA":
            self.A_paths, self.B_paths = self.B_paths, self.A_paths
            self.dir_A, self.dir_B = self.dir_B, self.dir_A

    def __len__(self) -> int:
        return max(len(self.A_paths), len(self.B_paths))

    def __getitem__(self, key) -> dict:
        index, epoch, rng = self.sample_rng(key)
        index_A = index % len(self.A_paths)
        if self.serial_batches:
            index_B = index % len(self.B_paths)
        else:
            index_B = int(rng.integers(0, len(self.B_paths)))
        A, A_path = self.load_any(self.A_paths, index_A, rng, self.dir_A, epoch)
        B, B_path = self.load_any(self.B_paths, index_B, rng, self.dir_B, epoch)
        return {"A": A, "B": B, "A_paths": A_path, "B_paths": B_path}
