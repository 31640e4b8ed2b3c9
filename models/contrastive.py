"""Pieces shared by the contrastive models (CUT, DCLGAN, DCD-GAN, NEGCUT, CDD-GAN)."""
from __future__ import annotations

import torch
import torch.nn as nn

from options.base_options import str2bool

from .losses import PatchNCELoss
from .networks import define_head


def add_contrastive_options(parser, all_negatives_default: bool):
    """The PatchNCE flags; each family picks whether negatives span the minibatch."""
    g = parser.add_argument_group("contrastive loss")
    g.add_argument("--lambda_GAN", type=float, default=1.0, help="weight of the GAN losses")
    g.add_argument("--lambda_NCE", type=float, default=1.0, help="weight of the PatchNCE losses")
    g.add_argument("--nce_layers", default="0,4,8,12,16", help="generator layers used by PatchNCE")
    g.add_argument("--nce_T", type=float, default=0.07, help="softmax temperature of PatchNCE")
    g.add_argument("--num_patches", type=int, default=256, help="patches sampled per layer")
    g.add_argument("--netF", default="mlp_sample", help="projection head: mlp_sample | sample")
    g.add_argument("--netF_nc", type=int, default=256, help="projection head output size")
    g.add_argument("--nce_includes_all_negatives_from_minibatch", type=str2bool, nargs="?", const=True,
                   default=all_negatives_default,
                   help="draw negatives from every image of the minibatch, not only the same image")
    return parser


def parse_layers(text: str) -> list[int]:
    try:
        layers = [int(x) for x in str(text).split(",") if x.strip()]
    except ValueError as err:
        raise ValueError(f"--nce_layers must be comma-separated integers, got '{text}'") from err
    if not layers:
        raise ValueError("--nce_layers is empty")
    return layers


def encoder_channels(generator: nn.Module, layers: list[int], input_nc: int) -> list[int]:
    """Channel count of each requested layer, from a dry run on a small blank image."""
    with torch.no_grad():
        device = next(generator.parameters()).device
        feats = generator(torch.zeros(1, input_nc, 32, 32, device=device), layers, encode_only=True)
    return [f.shape[1] for f in feats]


def build_head(opt, generator: nn.Module, layers: list[int]) -> nn.Module:
    head = define_head(opt.netF, opt.netF_nc, opt.init_type, opt.init_gain)
    return head.build(encoder_channels(generator, layers, opt.input_nc))


class EncoderNCE:
    """PatchNCE between a source image and its translation, in encoder feature space.

    For a pair (X, Y): keys come from `head_src(enc_src(X))`, queries from
    `head_tgt(enc_tgt(Y))` at the same sampled locations; the loss is the mean over
    patches, then over layers.
    """

    def __init__(self, opt, layers: list[int]):
        self.layers = layers
        self.num_patches = opt.num_patches
        self.criterion = PatchNCELoss(opt.nce_T, opt.nce_includes_all_negatives_from_minibatch)

    def __call__(self, src: torch.Tensor, tgt: torch.Tensor, enc_src: nn.Module, enc_tgt: nn.Module,
                 head_src: nn.Module, head_tgt: nn.Module) -> torch.Tensor:
        feat_k = enc_src(src, self.layers, encode_only=True)
        feat_q = enc_tgt(tgt, self.layers, encode_only=True)
        k_pool, ids = head_src(feat_k, self.num_patches)
        q_pool, _ = head_tgt(feat_q, self.num_patches, ids)
        total = sum(self.criterion(q, k, src.shape[0]).mean() for q, k in zip(q_pool, k_pool))
        return total / len(self.layers)
