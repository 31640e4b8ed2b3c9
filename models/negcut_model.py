"""NEGCUT (Wang et al., ICCV 2021): CUT with adversarially generated hard negatives.

Networks: CUT's G, D, F plus a negative generator N (models/networks/negative.py) and a
momentum (EMA) copy of F that is not trained by gradients. PatchNCE keys and queries are
CUT's; the negatives are N's outputs instead of the other patches of the image (docs/METHODS.md).
Each iteration: D step; N step, which *maximises* the NCE loss on detached queries and keys
plus `lambda_MS_neg` times the diversity of its negatives; G + F step, which minimises
GAN + NCE with N frozen; EMA update of the momentum head (decay `--neg_ema_decay`).

Interpretations where the paper and the reference code leave room:
- N's condition, per layer: the mean over *all* positions of the key features projected by
  the momentum head (each position L2-normalised first), as in the reference. N makes
  `num_patches` negatives per image and layer; each query sees its own image's negatives
  (the whole minibatch's with --nce_includes_all_negatives_from_minibatch).
- The momentum head starts as a copy of F (the reference starts it from an independent random
  head; at decay 0.9 the difference fades within a few dozen steps) and no gradient passes
  through it. In the reference G's encoder also received gradients through the momentum head's
  input; a momentum encoder is meant to be a constant for the losses, so here it is one.
- One set of keys and queries per iteration (same features and patch locations) serves the
  N step, detached, and the G + F step; the reference recomputes them with new locations for
  the G step. Fresh noise is drawn for each step, as in the reference.
- N's loss is -(the NCE average that G minimises) - lambda_MS_neg * diversity, where the
  diversity is averaged over both NCE pairs when --nce_idt (the reference's used only the last
  pair's negatives).
Logged terms: CUT's (G_GAN, NCE, NCE_Y with their shares of lambda_NCE; "G" their sum) with
N's negatives, D, and N (the negative generator's whole objective).
- N: Adam at --lr_N (default --lr) and betas (--beta1, --beta2); init per --init_type.
"""
from __future__ import annotations

import torch

from .builders import build_negative_generator
from .contrastive import add_negative_options
from .cut_model import CUTModel
from .losses import negative_diversity
from .networks.negative import MomentumHead

# Per NCE pair: (queries, keys, N's conditions), one entry per layer.
Projection = tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]


class NEGCUTModel(CUTModel):
    @staticmethod
    def modify_commandline_options(parser, is_train: bool):
        CUTModel.modify_commandline_options(parser, is_train)
        add_negative_options(parser)
        return parser

    def __init__(self, opt, device: torch.device | None = None):
        super().__init__(opt, device)
        # Loss name -> projection: one set per iteration, see the module docstring.
        self.projections: dict[str, Projection] = {}
        if self.is_train:
            self.netN = build_negative_generator(opt, self.netG, self.nce_layers)
            self.model_names.append("N")
            self.place_networks()
            self.optimizers["N"] = self.adam(self.netN, lr=opt.lr_N)
            self.momentum_head = MomentumHead(self.netF, opt.neg_ema_decay)

    # ----- one iteration -------------------------------------------------------------
    def project_pairs(self) -> dict[str, Projection]:
        """Queries, keys and the negative generator's conditions of every NCE pair."""
        projections = {}
        for name, (src, tgt) in self.nce_pairs().items():
            feat_k = self.encode(src)
            queries, keys = self.nce.project(feat_k, self.encode(tgt), self.netF, self.netF, flip_query=self.flipped)
            projections[name] = (queries, keys, self.momentum_head.conditions(feat_k))
        return projections

    def generated_nce(self, detach_queries: bool) -> tuple[dict[str, torch.Tensor], list[list[torch.Tensor]]]:
        """NCE of every pair against freshly generated negatives, each with its share of
        lambda_NCE (so their sum is G's NCE objective), and those negatives."""
        losses, negatives = {}, []
        batch = self.real_A.shape[0]
        nce_weight = self.opt.lambda_NCE / len(self.projections)
        for name, (queries, keys, conditions) in self.projections.items():
            pair_negatives = self.netN(conditions, self.nce.num_patches)
            if detach_queries:
                queries = [q.detach() for q in queries]
            losses[name] = nce_weight * self.nce.loss(queries, keys, batch, pair_negatives)
            negatives.append(pair_negatives)
        return losses, negatives

    def compute_N_loss(self) -> dict[str, torch.Tensor]:
        """-(the NCE average G minimises) - lambda_MS_neg * diversity, on detached queries."""
        nce_terms, negatives = self.generated_nce(detach_queries=True)
        nce = sum(nce_terms.values())
        diversity = sum(negative_diversity(n, self.nce.num_patches) for n in negatives) / len(negatives)
        return {"N": -nce - self.opt.lambda_MS_neg * diversity}

    def compute_G_loss(self) -> dict[str, torch.Tensor]:
        """CUT's terms with N's negatives: G_GAN and each NCE term with its share of lambda_NCE."""
        L = {"G_GAN": self.generator_gan_term(self.netD, self.fake_B, self.opt.lambda_GAN)}
        nce, _ = self.generated_nce(detach_queries=False)
        L.update(nce)
        return L

    def update_N(self) -> None:
        """One step of N towards harder (and more diverse) negatives."""
        self.minimise(self.compute_N_loss, ["N"])

    def update_G(self) -> None:
        # N is the adversary here: frozen, so no gradient reaches or is reduced for it.
        self.set_requires_grad([self.netN], False)
        super().update_G()
        self.set_requires_grad([self.netN], True)

    def optimize_parameters(self) -> None:
        with self.autocast():
            self.forward()
        self.update_D()
        with self.autocast():
            self.projections = self.project_pairs()
        self.update_N()
        self.update_G()
        self.momentum_head.update()
        self.projections = {}  # release this iteration's graph

    # ----- checkpoints ---------------------------------------------------------------
    def extra_state(self) -> dict:
        state = super().extra_state()
        if self.is_train:
            state["momentum_head"] = self.momentum_head.state_dict()
        return state

    def load_extra_state(self, state: dict) -> None:
        super().load_extra_state(state)
        self.momentum_head.load_state_dict(state["momentum_head"])
