"""The dark channel prior (He, Sun, Tang, CVPR 2009): training-free dehazing, `--model dcp`.

Haze follows the scattering model I = J t + A (1 - t): the clear scene J seen through a
transmission t (1 near, towards 0 far) and lit by one airlight A. In a haze-free outdoor
photograph almost every patch has a pixel that is dark in some colour (shadows, foliage,
saturated surfaces), so the dark channel (util/dark_channel.py) of I measures the haze:

1. Airlight: of the `top` share (0.1%) of pixels whose dark channel is brightest, the input's
   colour. `brightest` (the paper's choice): the brightest input pixel among them;
   `mean`: their mean colour, steadier where a white object sits in the haze.
2. Transmission: t = 1 - omega * dark_channel(I / A), omega 0.95 keeping a little haze so
   that distance stays visible.
3. Refinement: the paper's soft matting, replaced (as the authors did later) by a guided
   filter (He, Sun, Tang, ECCV 2010) with the grey input as guide, radius about four times
   the patch and eps 1e-3; `none` keeps the blocky estimate.
4. Recovery: J = (I - A) / max(t, t0) + A, t0 = 0.1 bounding the amplification of noise in
   dense haze.

Written from the papers' description (docs/METHODS.md, "Dark channel prior").
"""
from __future__ import annotations

import argparse

import numpy as np

from util.dark_channel import OMEGA, PATCH, TOP, guided_filter, haziest_airlight, unrefined_transmission

NAME = "dcp"
AIRLIGHT_MODES = ("brightest", "mean")  # --dcp_airlight
REFINEMENTS = ("guided", "none")  # --dcp_refine
# BT.601 luma weights: the grey guide of the guided filter.
GREY_WEIGHTS = np.array([0.299, 0.587, 0.114])


def add_options(parser: argparse.ArgumentParser) -> None:
    """The method's flags, with the paper's defaults."""
    g = parser.add_argument_group("dark channel prior (--model dcp)")
    g.add_argument("--dcp_patch", type=int, default=PATCH, help="side of the dark channel's square patch in pixels")
    g.add_argument("--dcp_omega", type=float, default=OMEGA,
                   help="share of the haze removed, in (0, 1]; below 1 keeps a little haze for depth")
    g.add_argument("--dcp_top", type=float, default=TOP,
                   help="share of the pixels with the brightest dark channel that the airlight is taken from")
    g.add_argument("--dcp_airlight", choices=AIRLIGHT_MODES, default="brightest",
                   help="brightest: the brightest input pixel among them (the paper); mean: their mean colour "
                        "(steadier)")
    g.add_argument("--dcp_refine", choices=REFINEMENTS, default="guided",
                   help="guided: refine the transmission with a guided filter on the grey input; none: keep "
                        "the patchwise estimate")
    g.add_argument("--dcp_radius", type=int, default=60, help="guided filter radius (about 4x the patch)")
    g.add_argument("--dcp_eps", type=float, default=1e-3, help="guided filter regularisation")
    g.add_argument("--dcp_t0", type=float, default=0.1, help="lower bound of the transmission at recovery")


def from_options(opt: argparse.Namespace) -> DarkChannelPrior:
    """The method as the --dcp_* flags describe it."""
    return DarkChannelPrior(patch=opt.dcp_patch, omega=opt.dcp_omega, top=opt.dcp_top, airlight=opt.dcp_airlight,
                            refine=opt.dcp_refine, radius=opt.dcp_radius, eps=opt.dcp_eps, t0=opt.dcp_t0)


class DarkChannelPrior:
    """Dehaze uint8 RGB images by the dark channel prior; no weights, no state between images."""

    def __init__(self, patch: int = PATCH, omega: float = OMEGA, top: float = TOP, airlight: str = "brightest",
                 refine: str = "guided", radius: int = 60, eps: float = 1e-3, t0: float = 0.1):
        if patch < 1:
            raise ValueError(f"--dcp_patch must be at least 1 pixel, got {patch}")
        if not 0 < omega <= 1:
            raise ValueError(f"--dcp_omega must lie in (0, 1], got {omega}")
        if not 0 < top <= 1:
            raise ValueError(f"--dcp_top must lie in (0, 1] (a share of the pixels), got {top}")
        if airlight not in AIRLIGHT_MODES:
            raise ValueError(f"--dcp_airlight must be one of {', '.join(AIRLIGHT_MODES)}, got {airlight!r}")
        if refine not in REFINEMENTS:
            raise ValueError(f"--dcp_refine must be one of {', '.join(REFINEMENTS)}, got {refine!r}")
        if radius < 1:
            raise ValueError(f"--dcp_radius must be at least 1 pixel, got {radius}")
        if not eps > 0:
            raise ValueError(f"--dcp_eps must be greater than 0, got {eps}")
        if not 0 < t0 <= 1:
            raise ValueError(f"--dcp_t0 must lie in (0, 1], got {t0}")
        self.patch, self.omega, self.top, self.airlight = patch, omega, top, airlight
        self.refine, self.radius, self.eps, self.t0 = refine, radius, eps, t0

    def describe(self) -> str:
        refinement = f"guided filter radius {self.radius} eps {self.eps:g}" if self.refine == "guided" else "unrefined"
        return (f"dark channel prior (patch {self.patch}, omega {self.omega:g}, airlight: {self.airlight} of the top "
                f"{100 * self.top:g}%, {refinement}, t0 {self.t0:g})")

    def estimate(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(transmission HxW in [0, 1], airlight (3,) in [0, 1]) of an HxWx3 uint8 hazy image."""
        hazy = _as_unit_float(image)
        airlight = self.estimate_airlight(hazy)
        transmission = unrefined_transmission(hazy, airlight, self.patch, self.omega)
        if self.refine == "guided":
            transmission = guided_filter(hazy @ GREY_WEIGHTS, transmission, self.radius, self.eps)
        return np.clip(transmission, 0.0, 1.0), airlight

    def estimate_airlight(self, hazy: np.ndarray) -> np.ndarray:
        """The airlight (3,) of an HxWx3 image in [0, 1], from its haziest pixels."""
        return haziest_airlight(hazy, self.patch, self.top, self.airlight)

    def restore_array(self, image: np.ndarray) -> np.ndarray:
        """The dehazed image, HxWx3 uint8 like the input: J = (I - A) / max(t, t0) + A, clipped."""
        transmission, airlight = self.estimate(image)
        hazy = _as_unit_float(image)
        clear = (hazy - airlight) / np.maximum(transmission, self.t0)[..., None] + airlight
        return np.round(np.clip(clear, 0.0, 1.0) * 255.0).astype(np.uint8)


def _as_unit_float(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        what = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(f"the dark channel prior restores HxWx3 uint8 images, got {what}")
    if image.size == 0:
        raise ValueError("the dark channel prior cannot restore an empty image")
    return image.astype(np.float64) / 255.0
