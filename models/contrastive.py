"""Pieces shared by the contrastive models (CUT, DCLGAN, DCD-GAN, NEGCUT, CDD-GAN): their
flags and PatchNCE between the encoder features of an image and of its translation."""
from __future__ import annotations

import torch
import torch.nn as nn

from util.flags import str2bool

from .losses import PatchNCELoss, patch_nce_with_negatives
from .networks.heads import HEADS


def add_contrastive_options(parser, all_negatives_default: bool):
    """The PatchNCE flags; each family picks whether negatives span the minibatch."""
    g = parser.add_argument_group("contrastive loss")
    g.add_argument("--lambda_GAN", type=float, default=1.0, help="weight of the GAN losses")
    g.add_argument("--lambda_NCE", type=float, default=1.0, help="weight of the PatchNCE losses")
    g.add_argument("--nce_layers", default="0,4,8,12,16", help="generator layers used by PatchNCE")
    g.add_argument("--nce_T", type=float, default=0.07, help="softmax temperature of PatchNCE")
    g.add_argument("--num_patches", type=int, default=256, help="patches sampled per layer")
    g.add_argument("--netF", default="mlp_sample", choices=HEADS, help="projection head: mlp_sample | sample")
    g.add_argument("--netF_nc", type=int, default=256, help="projection head output size")
    g.add_argument("--nce_includes_all_negatives_from_minibatch", type=str2bool, nargs="?", const=True,
                   default=all_negatives_default,
                   help="draw negatives from every image of the minibatch, not only the same image")
    return parser


def add_negative_options(parser):
    """Flags of the generated hard negatives (NEGCUT, CDD-GAN; docs/METHODS.md)."""
    g = parser.add_argument_group("generated negatives")
    g.add_argument("--lambda_MS_neg", type=float, default=1.0,
                   help="weight of the negatives' diversity (mode-seeking) term in the negative generator's objective")
    g.add_argument("--neg_nz", type=int, default=64, help="noise size of the negative generator")
    g.add_argument("--neg_ema_decay", type=float, default=0.9,
                   help="EMA decay of the momentum projection head whose mean embedding conditions the negatives")
    g.add_argument("--lr_N", type=float, default=None, help="learning rate of the negative generator (default: --lr)")
    return parser


def parse_layers(text: str) -> list[int]:
    try:
        layers = [int(x) for x in str(text).split(",") if x.strip()]
    except ValueError as err:
        raise ValueError(f"--nce_layers must be comma-separated integers, got '{text}'") from err
    if not layers:
        raise ValueError("--nce_layers is empty")
    return layers


class EncoderNCE:
    """PatchNCE between a source image and its translation, in encoder feature space.

    For a pair (X, Y) the caller passes X's features (the keys' source) and Y's (the
    queries' source), one map per NCE layer; keys are `head_k(feat_k)`, queries
    `head_q(feat_q)` at the same sampled locations; the loss is the mean over patches, then
    over layers.
    """

    def __init__(self, num_patches: int, nce_T: float, all_negatives_from_minibatch: bool):
        self.num_patches = num_patches
        self.nce_T = nce_T
        self.all_negatives_from_minibatch = all_negatives_from_minibatch
        self.criterion = PatchNCELoss(nce_T, all_negatives_from_minibatch)

    def __call__(self, feat_k: list[torch.Tensor], feat_q: list[torch.Tensor], head_k: nn.Module,
                 head_q: nn.Module, flip_query: bool = False) -> torch.Tensor:
        queries, keys = self.project(feat_k, feat_q, head_k, head_q, flip_query)
        return self.loss(queries, keys, feat_k[0].shape[0])

    def project(self, feat_k: list[torch.Tensor], feat_q: list[torch.Tensor], head_k: nn.Module,
                head_q: nn.Module, flip_query: bool = False) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """(queries, keys), one entry per layer.

        `flip_query` mirrors the query features back when Y was translated from a mirrored
        X (flip-equivariance), so a patch index means the same place in both.
        """
        if flip_query:
            feat_q = [torch.flip(f, [3]) for f in feat_q]
        k_pool, ids = head_k(feat_k, self.num_patches)
        q_pool, _ = head_q(feat_q, self.num_patches, ids)
        return q_pool, k_pool
    def loss(self, queries: list[torch.Tensor], keys: list[torch.Tensor], batch_size: int,
             negatives: list[torch.Tensor] | None = None,
             shared_negatives: list[torch.Tensor | None] | None = None,
             extra_positives: list[torch.Tensor] | None = None) -> torch.Tensor:
        """Mean over patches, then over layers.

        Negatives are the other sampled patches (PatchNCE) or, when given, one tensor of
        generated negatives per layer, per image unless negatives span the minibatch.
        With generated negatives, CDD-GAN may add per layer `shared_negatives` (a queue seen
        by every query; None for an empty one) and `extra_positives` (grouped like the
        negatives); see `patch_nce_with_negatives`.
        """
        if negatives is None:
            per_layer = [self.criterion(q, k, batch_size).mean() for q, k in zip(queries, keys)]
        else:
            groups = 1 if self.all_negatives_from_minibatch else batch_size
            shared = shared_negatives or [None] * len(queries)
            extra = extra_positives or [None] * len(queries)
            per_layer = [patch_nce_with_negatives(q, k, n, self.nce_T, groups, s, e).mean()
                         for q, k, n, s, e in zip(queries, keys, negatives, shared, extra)]
        return sum(per_layer) / len(per_layer)
