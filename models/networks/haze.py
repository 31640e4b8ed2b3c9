"""`--haze_layer asm`: a generator output through the atmospheric scattering model.

Haze is I = J t + A (1 - t): the clear scene J seen through a transmission t in (0, 1] and
lit by one airlight A (three colours for the whole image). With the layer, a ResNet
generator's last convolution gives four channels instead of an image: from the first the
transmission t = t_min + (1 - t_min) u(T_START + T_SCALE y_t), from the spatial mean of the
other three the airlight A = sigmoid(mean(y_A) + AIRLIGHT_BIAS). The restoring generator
(G_A) outputs J = (I - A (1 - t)) / t, the degrading one (G_B) renders I = J t + A (1 - t):
neither can tint, blur or repaint the image, only add or remove a veil that is one colour
over the whole image and whose density varies smoothly where t does.

u clamps to [0, 1] in value and passes only the gradient that leads back inside
(unit_interval), so t never sticks at a bound: with a sigmoid there (the first version), the
identity and cycle terms drove t to 1 within 100 iterations of every short run, where the
sigmoid passes no gradient, and both generators stayed the identity (docs/EXPERIMENTS.md,
2026-12-06); at t = 1 exactly the identity's L1 has no gradient left, while the GAN's still
reaches t. The starting values put the layer near the identity (t about 0.9, A about 0.8, the airlight of
the synthetic sets), as the rain layer starts at no rain. With `--haze_init dcp` the restoring
generator starts from the dark channel prior instead (docs/METHODS.md): y shifts the prior's
unrefined transmission (linearly, as above) and airlight (in logit space), so y = 0 is the
prior's restoration and the network learns the corrections (the refinement, the prior's failures on white objects).
Images are in [-1, 1] outside and in [0, 1] inside the formulas.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from util.dark_channel import OMEGA, PATCH, TOP  # the prior's constants (He et al. 2009)

from .layers import clamp_passing_gradient

HAZE_LAYERS = ("none", "asm")  # --haze_layer
HAZE_CHANNELS = 4  # the last convolution's outputs under the layer: t and the airlight's three colours
T_START = 0.87  # t's share of [t_min, 1] at y = 0: t about 0.88, a light veil at the start
T_SCALE = 0.1  # how far one unit of the last layer's output moves that share (sigmoid(y + 2)'s slope at 0)
AIRLIGHT_BIAS = 1.5  # sigmoid(1.5) = 0.82
DEFAULT_T_MIN = 0.1  # --t_min: at most 10x amplification of the hazy image (the dark channel prior's t0)
HAZE_INITS = ("none", "dcp")  # --haze_init
PRIOR_MARGIN = 1e-3  # a prior's airlight is kept this far inside (0, 1), where its logit is finite


def check_haze_layer(haze_layer: str, t_min: float, rain_layer: str, global_residual: bool, input_nc: int,
                     output_nc: int, haze_init: str = "none") -> None:
    """Raise ValueError (one line naming the flag) for a haze layer that cannot be built."""
    if haze_layer not in HAZE_LAYERS:
        raise ValueError(f"unknown --haze_layer '{haze_layer}'; choose one of {HAZE_LAYERS}")
    if haze_init not in HAZE_INITS:
        raise ValueError(f"unknown --haze_init '{haze_init}'; choose one of {HAZE_INITS}")
    if haze_layer == "none":
        if haze_init != "none":
            raise ValueError(f"--haze_init {haze_init} starts the haze layer elsewhere: it needs --haze_layer asm")
        return
    if rain_layer != "none" or global_residual:
        raise ValueError(f"--haze_layer {haze_layer} is the generators' output and replaces --rain_layer and "
                         "--global_residual: pass only one of them")
    if (input_nc, output_nc) != (3, 3):
        raise ValueError(f"--haze_layer {haze_layer} restores RGB images: it needs --input_nc 3 --output_nc 3")
    if not 0 < t_min < 1:
        raise ValueError(f"--t_min must lie in (0, 1), got {t_min}")


class _UnitInterval(torch.autograd.Function):
    """Clamp to [0, 1]; backward passes the gradient inside, and outside only where the step it
    asks for leads back inside (z > 1: a step that lowers z; z < 0: one that raises it)."""

    @staticmethod
    def forward(ctx, z: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(z)
        return z.clamp(0.0, 1.0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (z,) = ctx.saved_tensors
        inward = ((z >= 0) & (z <= 1)) | ((z > 1) & (grad > 0)) | ((z < 0) & (grad < 0))
        return grad * inward


def unit_interval(z: torch.Tensor) -> torch.Tensor:
    """z clamped to [0, 1] in value. Unlike a sigmoid it never stops passing the gradient that
    leads back inside (so a transmission at 1 still moves when the objective pulls it down),
    and unlike a plain straight-through clamp it passes none that leads further out (with
    that, the GAN drove t below t_min within 50 iterations and it stayed there)."""
    return _UnitInterval.apply(z)


def scattering_parameters(y: torch.Tensor, t_min: float,
                          prior: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(transmission Bx1xHxW in [t_min, 1], airlight Bx3x1x1 in [0, 1]) from the last layer's
    four channels; with a `prior` (t, A), y = 0 gives the prior (t raised to t_min)."""
    if prior is None:
        t_share, airlight_start = T_START, AIRLIGHT_BIAS
    else:
        prior_t, prior_airlight = prior
        t_share = ((prior_t - t_min) / (1.0 - t_min)).clamp(0.0, 1.0)
        airlight_start = torch.logit(prior_airlight.clamp(PRIOR_MARGIN, 1.0 - PRIOR_MARGIN))
    transmission = t_min + (1.0 - t_min) * unit_interval(t_share + T_SCALE * y[:, :1])
    airlight = torch.sigmoid(y[:, 1:HAZE_CHANNELS].mean(dim=(2, 3), keepdim=True) + airlight_start)
    return transmission, airlight


def dark_channel_map(image01: torch.Tensor, patch: int) -> torch.Tensor:
    """Bx1xHxW: the minimum over colours, then over a patch x patch square clipped to the image
    (the same function as util.dark_channel.dark_channel, on tensors)."""
    lowest = image01.min(dim=1, keepdim=True).values
    before = patch // 2
    padded = F.pad(lowest, (before, patch - 1 - before, before, patch - 1 - before), mode="replicate")
    return -F.max_pool2d(-padded, patch, stride=1)


@torch.no_grad()
def dark_channel_prior(image01: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The dark channel prior's unrefined (transmission Bx1xHxW, airlight Bx3x1x1) of hazy images
    in [0, 1]: A the brightest input pixel among the TOP share with the brightest dark
    channel, t = 1 - OMEGA dark_channel(I / A). Constants, not learned."""
    dark = dark_channel_map(image01, PATCH).flatten(1)
    haziest = dark.topk(_haziest_count(dark), dim=1).indices
    colours = image01.flatten(2).gather(2, haziest[:, None].expand(-1, 3, -1))  # B x 3 x count
    brightest = colours.sum(dim=1, keepdim=True).argmax(dim=2, keepdim=True)  # B x 1 x 1
    airlight = colours.gather(2, brightest.expand(-1, 3, -1)).clamp_min(PRIOR_MARGIN)[..., None]
    return 1.0 - OMEGA * dark_channel_map(image01 / airlight, PATCH), airlight


def _haziest_count(dark: torch.Tensor) -> int | torch.Tensor:
    """TOP of a row's pixels, at least one. While tracing it is counted from the data, a
    tensor, so that an ONNX export (runtime/onnx_export.py) keeps it dynamic instead of freezing
    the example's count."""
    if not torch.jit.is_tracing():
        return max(1, int(TOP * dark.shape[1]))
    return torch.clamp(torch.floor(torch.ones_like(dark[0]).sum() * TOP), min=1).long()


def render_haze(clear01: torch.Tensor, transmission: torch.Tensor, airlight: torch.Tensor) -> torch.Tensor:
    """I = J t + A (1 - t), images in [0, 1]."""
    return clear01 * transmission + airlight * (1.0 - transmission)


def remove_haze(hazy01: torch.Tensor, transmission: torch.Tensor, airlight: torch.Tensor) -> torch.Tensor:
    """J = (I - A (1 - t)) / t, the inverse of `render_haze` (unclipped)."""
    return (hazy01 - airlight * (1.0 - transmission)) / transmission


def scattering_of(x: torch.Tensor, y: torch.Tensor, t_min: float, sign: int, haze_init: str = "none"
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """(t, A) of a generator with input `x` and last layer `y`; `haze_init` dcp starts the
    restoring generator (sign -1) from the dark channel prior of `x`."""
    prior = dark_channel_prior((x.float() + 1.0) / 2.0) if haze_init == "dcp" and sign < 0 else None
    return scattering_parameters(y.float(), t_min, prior)


def haze_output(x: torch.Tensor, y: torch.Tensor, t_min: float, sign: int, haze_init: str = "none"
                ) -> torch.Tensor:
    """The generator's image in [-1, 1] from its input `x` and its last layer `y` (4 channels):
    haze removed (sign -1, the restoring generator) or added (+1, the degrading one)."""
    transmission, airlight = scattering_of(x, y, t_min, sign, haze_init)
    image01 = (x.float() + 1.0) / 2.0
    if sign < 0:
        out01 = remove_haze(image01, transmission, airlight)
    else:
        out01 = render_haze(image01, transmission, airlight)
    out = 2.0 * out01 - 1.0
    # Clamped in value, not in gradient: a pixel pushed out of range still tells t and A which
    # way to go back. With a plain clamp a restorer whose t overshoots to t_min outputs a
    # saturated image with no gradient at all, and stays there.
    return clamp_passing_gradient(out).to(x.dtype)
