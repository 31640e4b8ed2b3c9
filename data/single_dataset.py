"""One folder of images (test time): <dataroot>/testA if it exists, else <dataroot> itself."""
from __future__ import annotations

import os

from util.image_io import IMG_EXTENSIONS, is_image_file, load_rgb

from .base_dataset import BaseDataset, transform_image
from .image_folder import DatasetError, make_dataset


def test_image_folder(dataroot: str, direction: str = "AtoB") -> str:
    """Where test images live: the dataset's testA (testB for BtoA) or the folder itself."""
    sub = os.path.join(dataroot, "testA" if direction == "AtoB" else "testB")
    if os.path.isdir(sub):
        return sub
    # Without this, a dataset root lacking testA would silently "test" its training images.
    if any(os.path.isdir(os.path.join(dataroot, d)) for d in ("trainA", "trainB")):
        raise DatasetError(f"'{sub}' does not exist; put the test images there, "
                           "or pass a plain folder of images as --dataroot")
    return dataroot


def test_images(dataroot: str, direction: str = "AtoB") -> tuple[str, list[str]]:
    """(folder, image paths) test.py restores: one image file, or every image of
    `test_image_folder` (output names are relative to the folder)."""
    if os.path.isfile(dataroot):
        if not is_image_file(dataroot):
            raise DatasetError(f"--dataroot '{dataroot}' is a file but not an image ({', '.join(IMG_EXTENSIONS)})")
        return os.path.dirname(dataroot) or ".", [dataroot]
    folder = test_image_folder(dataroot, direction)
    paths = make_dataset(folder)
    if not paths:
        raise DatasetError(f"no images found in '{folder}'")
    return folder, paths


class SingleDataset(BaseDataset):
    def __init__(self, opt):
        super().__init__(opt)
        self.dir_A = test_image_folder(opt.dataroot, opt.direction)
        self.A_paths = make_dataset(self.dir_A, opt.max_dataset_size)
        if not self.A_paths:
            raise DatasetError(f"no images found in '{self.dir_A}'")

    def __len__(self) -> int:
        return len(self.A_paths)

    def __getitem__(self, key) -> dict:
        index, _, rng = self.sample_rng(key)
        path = self.A_paths[index]
        image = transform_image(load_rgb(path), rng, self.preprocess, self.load_size, self.crop_size, self.flip, path)
        return {"A": image, "A_paths": path}
