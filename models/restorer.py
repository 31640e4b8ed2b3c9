"""Restore images from Python: a checkpoint's or a shipped model's generator behind one call.

    from models.restorer import Restorer
    restorer = Restorer.from_pretrained("rain_synthetic")            # pretrained/rain_synthetic.pt
    restorer = Restorer.from_checkpoint("checkpoints/run/latest.pt", device="cuda", tile=512)
    clean = restorer.restore(Image.open("rainy.jpg"))                  # PIL in, PIL out
    clean = restorer.restore(array)                                    # HxWx3 uint8 in, same out

test.py restores every image through this class. A PIL image is turned upright by its EXIF
orientation first, as test.py reads files; a shipped model whose bytes differ from what its
model card states is refused, and an output that is non-finite or one constant value (a
damaged or diverged model) is reported with a warning.
"""
from __future__ import annotations

import logging
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from PIL import Image, ImageOps

from runtime.backends import DEFAULT_BACKEND, choose_backend, inference_network
from util.image_io import tensor_to_uint8, to_rgb, uint8_to_tensor
from runtime.inference import check_tiling, restore, restore_tiled_uint8
from runtime.precision import amp_mode

from .loading import LoadedCheckpoint, load_generator
from .pretrained import PRETRAINED_DIR, pretrained_path, verify_shipped

logger = logging.getLogger(__name__)


class Restorer:
    """One restoring generator on one device; `tile` > 0 restores in overlapping tiles of
    that size (bounded memory for large photos); `backend` is how it runs (runtime.backends:
    'auto' picks the fastest here, or torch, channels_last, winograd, bf16, ...); `amp`
    ('auto', 'on', 'off'; True / False as 'on' / 'off'): 'on' runs any backend under bf16
    autocast, 'off' keeps 'auto' from choosing bf16, and 'auto' lets it."""

    def __init__(self, net: nn.Module, source: LoadedCheckpoint, device: torch.device | str = "cpu",
                 tile: int = 0, tile_overlap: int = 32, amp: str | bool = "auto", backend: str = DEFAULT_BACKEND):
        check_tiling(tile, tile_overlap)
        self.device = torch.device(device)
        net = net.to(self.device).eval()
        self.amp = amp_mode(amp)
        if backend == "auto":
            self.backend, why = choose_backend(net, self.device, self.amp)
            self.backend_choice = f"backend auto: {self.backend} ({why})"
        else:
            self.backend = backend
            self.backend_choice = f"backend {backend} (--backend {backend})"
        self.net = inference_network(net, self.backend, self.device)
        self.source = source
        self.tile, self.tile_overlap = tile, tile_overlap

    @classmethod
    def from_checkpoint(cls, path: str | Path, direction: str = "AtoB", device: torch.device | str = "cpu",
                        **settings) -> Restorer:
        """The generator a training checkpoint (or a shipped-model file) restores `direction` with."""
        verify_shipped(path)
        net, source = load_generator(path, direction, torch.device(device))
        return cls(net, source, device, **settings)

    @classmethod
    def from_pretrained(cls, name: str, device: torch.device | str = "cpu", folder: str | Path = PRETRAINED_DIR,
                        **settings) -> Restorer:
        """A shipped model by name (`pretrained/<name>.pt`) or by the path of its file."""
        return cls.from_checkpoint(pretrained_path(name, folder), "AtoB", device, **settings)

    def restore_array(self, image: np.ndarray, label: str = "image") -> np.ndarray:
        """HxWx3 uint8 -> restored HxWx3 uint8 of the same size; `label` names the image in warnings."""
        if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an HxWx3 uint8 array, got shape {np.shape(image)} and dtype "
                             f"{getattr(image, 'dtype', type(image).__name__)}")
        if image.size == 0:
            raise ValueError(f"expected an image with pixels, got an empty array of shape {image.shape}")
        autocast = torch.autocast(self.device.type, dtype=torch.bfloat16) if self.amp == "on" else nullcontext()
        with autocast:
            if self.tile and max(image.shape[:2]) > self.tile:  # bounded memory: never the whole image in float
                out, finite = restore_tiled_uint8(self.net, image, self.tile, self.tile_overlap, self.device)
            else:
                restored = restore(self.net, uint8_to_tensor(image)[None].to(self.device), self.tile,
                                   self.tile_overlap)
                finite = bool(torch.isfinite(restored).all())
                out = tensor_to_uint8(restored if finite else torch.nan_to_num(restored))
        if not finite:
            self.warn(label, "non-finite values (NaN or Inf)")
        elif out.min() == out.max() and image.min() != image.max():
            self.warn(label, f"one value ({out.min()}) in every pixel")
        return out

    def warn(self, label: str, problem: str) -> None:
        logger.warning("the restored %s has %s: the model %s is damaged or its training diverged; check its file "
                       "(a shipped model: git checkout -- pretrained/) or use another checkpoint",
                       label, problem, self.source.path)

    def restore(self, image: Image.Image | np.ndarray) -> Image.Image | np.ndarray:
        """Restore a PIL image (any mode; the result is RGB, upright by its EXIF orientation, as
        test.py reads files) or an HxWx3 uint8 array; returns the same type at the same size."""
        if isinstance(image, Image.Image):
            return Image.fromarray(self.restore_array(np.asarray(to_rgb(ImageOps.exif_transpose(image)))))
        return self.restore_array(np.asarray(image))
