"""Restore images from Python: a checkpoint's or a shipped model's generator behind one call.

    from models.restorer import Restorer
    restorer = Restorer.from_pretrained("rain_synthetic")            # pretrained/rain_synthetic.pt
    restorer = Restorer.from_checkpoint("checkpoints/run/latest.pt", device="cuda", tile=512)
    clean = restorer.restore(Image.open("rainy.jpg"))                  # PIL in, PIL out
    clean = restorer.restore(array)                                    # HxWx3 uint8 in, same out

test.py restores every image through this class.
"""
from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from PIL import Image

from util.backends import DEFAULT_BACKEND, choose_backend, inference_network
from util.image_io import tensor_to_uint8, to_rgb, uint8_to_tensor
from util.inference import restore
from util.precision import amp_mode

from .loading import LoadedCheckpoint, load_generator
from .pretrained import PRETRAINED_DIR, pretrained_path


class Restorer:
    """One restoring generator on one device; `tile` > 0 restores in overlapping tiles of
    that size (bounded memory for large photos); `backend` is how it runs (util.backends:
    'auto' picks the fastest here, or torch, channels_last, winograd, bf16, ...); `amp`
    ('auto', 'on', 'off'; True / False as 'on' / 'off'): 'on' runs any backend under bf16
    autocast, 'off' keeps 'auto' from choosing bf16, and 'auto' lets it."""

    def __init__(self, net: nn.Module, source: LoadedCheckpoint, device: torch.device | str = "cpu",
                 tile: int = 0, tile_overlap: int = 32, amp: str | bool = "auto", backend: str = DEFAULT_BACKEND):
        if tile and not 0 <= tile_overlap < tile:
            raise ValueError(f"tile_overlap ({tile_overlap}) must be at least 0 and smaller than tile ({tile})")
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
        net, source = load_generator(path, direction, torch.device(device))
        return cls(net, source, device, **settings)

    @classmethod
    def from_pretrained(cls, name: str, device: torch.device | str = "cpu", folder: str | Path = PRETRAINED_DIR,
                        **settings) -> Restorer:
        """A shipped model by name (`pretrained/<name>.pt`) or by the path of its file."""
        return cls.from_checkpoint(pretrained_path(name, folder), "AtoB", device, **settings)

    def restore_array(self, image: np.ndarray) -> np.ndarray:
        """HxWx3 uint8 -> restored HxWx3 uint8 of the same size."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an HxWx3 uint8 array, got shape {image.shape} and dtype {image.dtype}")
        x = uint8_to_tensor(image)[None].to(self.device)
        autocast = torch.autocast(self.device.type, dtype=torch.bfloat16) if self.amp == "on" else nullcontext()
        with autocast:
            return tensor_to_uint8(restore(self.net, x, self.tile, self.tile_overlap))

    def restore(self, image: Image.Image | np.ndarray) -> Image.Image | np.ndarray:
        """Restore a PIL image (any mode; the result is RGB) or an HxWx3 uint8 array; returns
        the same type at the same size."""
        if isinstance(image, Image.Image):
            return Image.fromarray(self.restore_array(np.asarray(to_rgb(image))))
        return self.restore_array(np.asarray(image))
