"""History of generated images shown to the discriminator (`--pool_size`)."""
from __future__ import annotations

import torch


class ImagePool:
    """Return the new fakes or, with probability 0.5 each, an older fake from the buffer.

    Randomness comes from torch's global generator, which checkpoints save and restore,
    so a resumed run draws exactly what an uninterrupted one would.
    """

    def __init__(self, pool_size: int):
        self.pool_size = pool_size
        self.images: list[torch.Tensor] = []

    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.pool_size == 0:
            return images
        out = []
        for image in images.detach():
            image = image.unsqueeze(0)
            if len(self.images) < self.pool_size:
                self.images.append(image.clone())
                out.append(image)
            elif torch.rand(()).item() > 0.5:
                idx = int(torch.randint(0, self.pool_size, ()).item())
                out.append(self.images[idx].clone())
                self.images[idx] = image.clone()
            else:
                out.append(image)
        return torch.cat(out, dim=0)

    def state_dict(self) -> dict:
        return {"images": [img.cpu() for img in self.images]}

    def load_state_dict(self, state: dict, device: torch.device) -> None:
        self.images = [img.to(device) for img in state["images"]]
