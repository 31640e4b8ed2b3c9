"""Paired upper bound: the restoring generator trained with L1 on aligned pairs (no GAN).

Objective (docs/METHODS.md): lambda_L1 * L1(G_A(a), b), where b is the clean ground truth of
a, logged as L1; optionally (off by default)
    ssim = lambda_ssim (1 - SSIM(G_A(a), b)),
    channel = lambda_channel mean |r_c - mean_c' r_c'|, r = a - G_A(a) the removed layer:
the channel-consistency term, rain being colourless (zero for a generator with a grey
`--rain_layer`, which cannot remove a tint);
    under = lambda_under mean max(b - G_A(a), 0): an extra L1 on the pixels the output makes
darker than the ground truth. With it the loss is a pinball loss: where the generator cannot
tell how much rain a pixel holds it leaves rather than over-subtracts (the 1 + lambda_under
over 2 + lambda_under quantile instead of L1's median), because a dark ghost of a streak is
plainer to the eye than a faint remainder of one;
    under_flat = lambda_under_flat mean flat(b) max(b - G_A(a), 0): the same extra L1 only
where the ground truth is flat (util.metrics' flatness, in which dark pixels are counted):
a smooth sky is where a dark ghost shows and where a real scene has no dark detail to keep, so
there the output may leave more than elsewhere. The second stage of the two-stage recipe
(scripts/train_two_stage.sh) trains this model on pseudo pairs (`--dataset_mode pseudo_pair`).
The unpaired models never see such pairs; this model shows how far the same generator
gets when it does, at the same budget (docs/EXPERIMENTS.md "Which levers won"). Needs paired data
(`--dataset_mode aligned`, its default), e.g. `python -m datasets.make_synthetic --paired`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from util.metrics import FLAT_STD_LEVELS, FLAT_WINDOW

from .base_model import BaseModel
from .builders import build_generator
from .losses import ssim_loss
from .rain_matching import flat_mask


def channel_consistency(removed: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of each channel of a removed layer (BxCxHxW) from the mean
    over channels: 0 for a colourless layer."""
    return (removed - removed.mean(dim=1, keepdim=True)).abs().mean()


class PairedModel(BaseModel):
    @staticmethod
    def modify_commandline_options(parser, is_train: bool):
        parser.add_argument("--lambda_L1", type=float, default=1.0, help="weight of the L1 loss to the ground truth")
        parser.add_argument("--lambda_ssim", type=float, default=0.0,
                            help="weight of 1 - SSIM to the ground truth (0 disables)")
        parser.add_argument("--lambda_channel", type=float, default=0.0,
                            help="weight of the channel consistency of the removed layer input - output: rain "
                                 "is colourless (0 disables)")
        parser.add_argument("--lambda_under", type=float, default=0.0,
                            help="extra weight of the L1 loss where the output is darker than the ground truth: "
                                 "leaves faint rain rather than dark ghosts of over-subtracted streaks (0 disables)")
        parser.add_argument("--lambda_under_flat", type=float, default=0.0,
                            help="extra weight of the L1 loss where the output is darker than the ground truth and the "
                                 "ground truth is flat (a smooth sky, where dark pixels are counted; 0 disables)")
        parser.set_defaults(dataset_mode="aligned", pool_size=0, init_type="xavier")
        return parser

    def __init__(self, opt, device: torch.device | None = None):
        super().__init__(opt, device)
        self.netG_A = build_generator(opt)
        self.model_names = ["G_A"]
        self.add_generator_ema()
        self.place_networks()
        if self.is_train:
            self.optimizers = {"G": self.adam(self.netG_A)}

    @staticmethod
    def restoring_nets() -> dict[str, str]:
        """Only A -> B is learned."""
        return {"AtoB": "G_A"}

    def compute_G_loss(self) -> dict[str, torch.Tensor]:
        self.fake_B = self.netG_A(self.real_A)
        self.visuals = {"real_A": self.real_A, "fake_B": self.fake_B, "real_B": self.real_B}
        o = self.opt
        L = {"L1": o.lambda_L1 * F.l1_loss(self.fake_B, self.real_B)}
        if o.lambda_ssim > 0:
            L["ssim"] = o.lambda_ssim * ssim_loss(self.fake_B, self.real_B)
        if o.lambda_channel > 0:
            L["channel"] = o.lambda_channel * channel_consistency(self.real_A - self.fake_B)
        darker = (self.real_B - self.fake_B).clamp(min=0)  # how far the output is under the truth
        if o.lambda_under > 0:
            L["under"] = o.lambda_under * darker.mean()
        if o.lambda_under_flat > 0:
            flat = flat_mask(self.real_B, FLAT_WINDOW, FLAT_STD_LEVELS)
            L["under_flat"] = o.lambda_under_flat * (flat * darker).mean()
        return L

    def optimize_parameters(self) -> None:
        self.minimise(self.compute_G_loss, ["G"])
