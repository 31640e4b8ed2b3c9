"""Differentiable augmentation for the discriminators (`--diffaug POLICY`).

Written from the description in Zhao et al., "Differentiable Augmentation for Data-Efficient
GAN Training" (NeurIPS 2020): with few training images a discriminator memorises them and
its verdicts stop teaching the generator. Augmenting *every* image a discriminator sees, real
and fake, in the discriminator's step and in the generator's, with transformations that are
differentiable in the image, hides the memorised details without changing what the generator
must produce: the augmentation is never applied to the generator's output itself, only to D's
view of it, and the gradient reaches the generator through it.

The policy is a comma-separated list of kinds, each applied to every image with its own random
draw (so a real and a fake image of one step get the same kinds of transformation, drawn
independently):
- `color`: brightness (add a value in [-0.5, 0.5) of the [0, 1] range), saturation (scale
  each pixel's deviation from its grey value by a factor in [0, 2)), contrast (scale the
  deviation from the image's mean by a factor in [0.5, 1.5));
- `translation`: shift by up to 1/8 of the height and width, the vacated border filled with 0
  (mid grey in [-1, 1]);
- `cutout`: set one square of half the height and width, at a random place, to 0.
Images are in [-1, 1]; the colour factors act on that range as on [0, 1] (a brightness step
of 0.5 is 1.0 here).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

# Maximal shift of `translation`, as a fraction of the image's size.
TRANSLATION_RATIO = 0.125
# Side of `cutout`'s square, as a fraction of the image's size.
CUTOUT_RATIO = 0.5


def _uniform(x: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """One value per image in [low, high), shaped to broadcast over (B, C, H, W)."""
    return torch.empty(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype).uniform_(low, high)


def color(x: torch.Tensor) -> torch.Tensor:
    """Random brightness, saturation and contrast, one draw of each per image."""
    x = x + 2.0 * _uniform(x, -0.5, 0.5)  # [-1, 1] spans twice the [0, 1] range
    grey = x.mean(dim=1, keepdim=True)
    x = grey + (x - grey) * _uniform(x, 0.0, 2.0)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return mean + (x - mean) * _uniform(x, 0.5, 1.5)


def translation(x: torch.Tensor) -> torch.Tensor:
    """Shift each image by a random whole number of pixels (up to 1/8 of its size), zero-filled."""
    h, w = x.shape[-2:]
    max_dy, max_dx = int(h * TRANSLATION_RATIO + 0.5), int(w * TRANSLATION_RATIO + 0.5)
    padded = F.pad(x, (max_dx, max_dx, max_dy, max_dy))
    dy = torch.randint(-max_dy, max_dy + 1, (x.shape[0],)).tolist()
    dx = torch.randint(-max_dx, max_dx + 1, (x.shape[0],)).tolist()
    # The window of padded image i that starts at (max_dy - dy, max_dx - dx) is image i shifted by (dy, dx).
    return torch.stack([padded[i, :, max_dy - dy[i]:max_dy - dy[i] + h, max_dx - dx[i]:max_dx - dx[i] + w]
                        for i in range(x.shape[0])])


def cutout(x: torch.Tensor) -> torch.Tensor:
    """Zero one square of half the image's height and width per image, at a random place
    (it may reach over the border, as in the paper)."""
    b, _, h, w = x.shape
    ch, cw = int(h * CUTOUT_RATIO + 0.5), int(w * CUTOUT_RATIO + 0.5)
    top = torch.randint(0, h + (1 - ch % 2), (b, 1, 1), device=x.device) - ch // 2
    left = torch.randint(0, w + (1 - cw % 2), (b, 1, 1), device=x.device) - cw // 2
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    inside = (rows >= top) & (rows < top + ch) & (cols >= left) & (cols < left + cw)
    return x * (~inside).unsqueeze(1).to(x.dtype)


AUGMENTATIONS = {"color": color, "translation": translation, "cutout": cutout}


def parse_policy(policy: str) -> tuple[str, ...]:
    """The kinds of a comma-separated `--diffaug` policy, in order; '' is none.
    Raises ValueError naming an unknown kind."""
    kinds = tuple(kind.strip() for kind in policy.split(",") if kind.strip())
    unknown = [kind for kind in kinds if kind not in AUGMENTATIONS]
    if unknown:
        raise ValueError(f"--diffaug: unknown augmentation '{unknown[0]}'; choose from {', '.join(AUGMENTATIONS)} "
                         "(comma-separated, e.g. color,translation,cutout)")
    return kinds


class DiffAugment:
    """`augment(x)`: `x` (B, C, H, W) through each kind of the policy, fresh random draws per
    call and per image; differentiable in `x`. An empty policy returns `x` itself."""

    def __init__(self, policy: str):
        self.kinds = parse_policy(policy)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        for kind in self.kinds:
            x = AUGMENTATIONS[kind](x)
        return x
