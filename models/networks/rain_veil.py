"""`--rain_layer linear_veil`: a linear rain layer under one veil for the whole image.

Heavy rain is streaks under a mist: I = (J + S) (1 - o) + o L, a veil of opacity o and
brightness L (three colours) that is the same over the whole image, as the pseudo rain renders
it (data/pseudo_rain_dataset.py, `add_veil`) and as distant rain looks. With `linear`, the
generator's correction is free at every pixel, so it lifts a veil wherever a 64-px neighbourhood
looks misty: on clean photographs it darkened bright, low-contrast areas (a pasture, the sky
behind leaves) in blotches 50-100 px wide (docs/EXPERIMENTS.md, 2026-12-07 (late)). Here the
last convolution gives VEIL_CHANNELS more channels whose spatial means are o and L, so the
veil is one decision per image, taken on all of it, and the first three channels are the
`linear` correction (streaks): the restoring generator (sign -1) outputs
J = (I - o L) / (1 - o) + y, the degrading one (sign +1) renders I = (J + y) (1 - o) + o L.

o = VEIL_MAX * u(mean y_o) with u the clamp of haze.unit_interval, so a network whose last
convolution starts at zero (`--init_type residual`) starts with no veil and o never sticks at 0;
L = sigmoid(mean y_L + LEVEL_BIAS), about the pseudo veil's brightness at the start. Images are
in [-1, 1] outside the formulas and in [0, 1] inside them.
"""
from __future__ import annotations

import torch

from .haze import remove_haze, render_haze, unit_interval
from .layers import clamp_passing_gradient

VEIL_CHANNELS = 4  # the opacity and the veil's three colours
VEIL_MAX = 0.6  # the largest opacity: at most 2.5x amplification of what lies under the veil
LEVEL_BIAS = 1.5  # sigmoid(1.5) = 0.82, inside the pseudo veil's levels (0.7-1)


def veil_of(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(opacity Bx1x1x1 in [0, VEIL_MAX], level Bx3x1x1 in (0, 1)) from the last layer's veil
    channels (the channels after the first three)."""
    veil = y[:, 3:3 + VEIL_CHANNELS].mean(dim=(2, 3), keepdim=True)
    return VEIL_MAX * unit_interval(veil[:, :1]), torch.sigmoid(veil[:, 1:] + LEVEL_BIAS)


def veiled_output(x: torch.Tensor, y: torch.Tensor, rain_layer_sign: int) -> torch.Tensor:
    """The image of a `linear_veil` generator from its input `x` (Bx3xHxW) and its last
    layer's output `y` (Bx(3 + VEIL_CHANNELS)xHxW): the veil lifted (sign -1) or laid (+1),
    the streak correction y[:, :3] added, clamped with the identity's gradient. The veil is the
    haze layer's scattering model with transmission 1 - o and airlight L."""
    opacity, level = veil_of(y)
    streaks = y[:, :3]
    x01 = (x + 1.0) / 2.0
    if rain_layer_sign < 0:
        out01 = remove_haze(x01, 1.0 - opacity, level) + streaks / 2.0
    else:
        out01 = render_haze(x01 + streaks / 2.0, 1.0 - opacity, level)
    return clamp_passing_gradient(2.0 * out01 - 1.0)
