"""CDD-GAN (Chen et al., ECCV 2022): unpaired dehazing by contrastive disentanglement.

No public code of CDD-GAN exists: this implements the paper's description (docs/METHODS.md)
and makes each interpretation a flag. Domain A is hazy, domain B clear.

Networks: a CycleGAN framework, G_A (hazy -> clear) and G_B (clear -> hazy), judged by D_A
(on clear images) and D_B (on hazy images); a projection head per generator (F_A, F_B); a
NEGCUT negative generator per direction (N_A, N_B; models/negcut_model.py) conditioned through a
momentum (EMA) copy of its direction's key head; a queue of generated negatives per
direction and NCE layer. The restoring network at test time is G_A.

Generator objective (G_A, G_B, F_A, F_B; every weight a flag):
    lambda_GAN (GAN_A + GAN_B) + lambda_cyc (L1(G_B(G_A(a)), a) + L1(G_A(G_B(b)), b))
    + lambda_NCE (NCE_A + NCE_B)
NCE_A is the adversarial contrastive loss of the pair (a, G_A(a)), NCE_B that of
(b, G_B(b)): same-location key patches are the positives (task-relevant content), the
negative generator's outputs and the queue are the negatives (the haze-related factors to
suppress), and for NCE_A unpaired clear exemplars add a positive (the clear-image factors).
With `--haze_layer asm` and `--lambda_rehaze` > 0 a D4-style self-augmentation term joins them:
    lambda_rehaze L1(G_A(render(sg(G_A(a)), t^p, A)), sg(G_A(a)))
where t and A are G_A's own transmission and airlight estimates on a (no gradient), p a random
power per image, log-uniform in [1 / --rehaze_max_power, --rehaze_max_power] (a random haze
density: t = exp(-beta d) becomes exp(-p beta d)), render the scattering model J t + A (1 - t)
and sg a stop-gradient: G_A must take off again the haze rendered on its own restoration,
at densities it has not seen.
Logged terms, each with its weight: G_A, G_B, cycle_A, cycle_B, NCE_A, NCE_B (and rehaze); "G" is
their sum, the G + F step's objective; D_A, D_B the discriminators'; N the negative generators'.

Interpretations, each a flag:
- `--cdd_query_encoder own` (default): a pair's keys and queries both come from the
  translating generator's encoder and head (NCE_A: keys F_A(enc_GA(a)), queries
  F_A(enc_GA(G_A(a)))), as in NEGCUT and the paper's "each generator's encoder". `other`:
  the DCLGAN convention, queries from the other generator's encoder and head.
- Negatives of a query: N's `num_patches` fresh negatives per image (of the whole minibatch
  with --nce_includes_all_negatives_from_minibatch, on by default because the queue spans
  images anyway) plus every entry of its direction's queue. In-image patches are not
  negatives (NEGCUT).
- `--neg_queue 4096`: entries kept per direction and NCE layer. After the G step, the
  negatives made for that step (by the just-updated N, detached) are pushed; the newest
  replace the oldest (FIFO). Queue entries are constants: only the current negatives carry
  N's gradient. The queue is saved in checkpoints. 0 disables it.
- `--cdd_clear_positives` (on): for NCE_A only, `num_patches` patches of the batch's real
  clear image b, encoded by the query's encoder and head (G_A's and F_A by default) at
  random positions and detached, form one extra positive for every query of G_A(a):
  multi-positive InfoNCE, -log of the softmax mass of {same-location key, exemplar set},
  where the exemplar set's logit is the log-mean-exp of the query's logits to its patches
  (models/losses.py). Why: b is unpaired, so no exemplar patch corresponds to a query; the
  log-mean-exp is a soft maximum that draws each restored patch towards the clear patches
  that already resemble it (clear sky towards clear sky), and the mean keeps the whole set
  worth one positive, so it cannot outweigh the key that preserves the content. Unlike a
  separate term it needs no weight of its own, and switched off NCE_A is NEGCUT's loss
  (plus the queue). Not for NCE_B: hazy exemplars would strengthen the haze factor.
- N_X minimises -NCE_X - lambda_MS_neg * diversity(N_X's fresh negatives) on detached
  queries and keys, i.e. maximises exactly the term G minimises; the two directions'
  objectives are summed into one loss "N" (their parameters are disjoint). One Adam
  optimizer for N_A and N_B at --lr_N (default --lr), betas (--beta1, --beta2).
- Update order per iteration: forward (four generator passes); D step (both D, CycleGAN's
  image pool of 50); keys, queries and N's conditions projected once (as NEGCUT); N step;
  G + F step (D and N frozen, fresh noise); queue push; EMA update of the momentum heads
  (decay --neg_ema_decay 0.9).
- Heads: Adam at --lr and betas (--beta1, --beta2), as NEGCUT. Init xavier 0.02, NCE layers
  0,4,8,12,16, 256 patches, nce_T 0.07 (NEGCUT); lsgan, lr 2e-4, 200 + 200 epochs (starting
  defaults, not the paper's: docs/METHODS.md). No identity loss and no NCE on the cycle pairs:
  the description has neither.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from util.distributed import unwrap
from util.flags import str2bool

from .builders import build_head, build_negative_generator
from .contrastive import EncoderNCE, add_contrastive_options, add_negative_options, parse_layers
from .losses import negative_diversity
from .negative_queue import NegativeQueue
from .networks.haze import render_haze
from .networks.negative import MomentumHead
from .two_domain import TwoDomainModel

DIRECTIONS = ("A", "B")  # A: the pair (a, G_A(a)), B: the pair (b, G_B(b))


@dataclass
class PairProjection:
    """One direction's PatchNCE inputs for an iteration, one entry per NCE layer."""

    queries: list[torch.Tensor]
    keys: list[torch.Tensor]
    conditions: list[torch.Tensor]  # N's input: mean momentum-head embedding per image
    exemplars: list[torch.Tensor] | None  # clear-exemplar positives (direction A only)
    batch_size: int


class CDDGANModel(TwoDomainModel):
    @staticmethod
    def modify_commandline_options(parser, is_train: bool):
        add_contrastive_options(parser, all_negatives_default=True)
        add_negative_options(parser)
        g = parser.add_argument_group("cddgan")
        g.add_argument("--lambda_cyc", type=float, default=10.0, help="weight of each cycle L1 loss")
        g.add_argument("--neg_queue", type=int, default=4096,
                       help="generated negatives kept across iterations per direction and NCE layer "
                            "(FIFO, newest replace oldest); 0 disables the queue")
        g.add_argument("--cdd_clear_positives", type=str2bool, nargs="?", const=True, default=True,
                       help="patches of the unpaired real clear image, through the query's encoder and head, "
                            "form one extra (log-mean-exp) positive for the restored image's queries")
        g.add_argument("--cdd_query_encoder", choices=("own", "other"), default="own",
                       help="own: queries from the translating generator's encoder and head (NEGCUT); "
                            "other: from the other generator's (DCLGAN)")
        g.add_argument("--lambda_rehaze", type=float, default=0.0,
                       help="with --haze_layer asm: weight of the re-hazing term (D4-style self-augmentation: G_A's "
                            "restoration is hazed again through G_A's own transmission at a random density and G_A "
                            "must restore it back, L1); 0 disables it")
        g.add_argument("--rehaze_max_power", type=float, default=2.0,
                       help="the re-hazing term raises the transmission to a power drawn log-uniformly from "
                            "[1 / this, this] per image (> 1: denser haze, < 1: lighter)")
        parser.set_defaults(gan_mode="lsgan", lambda_GAN=1.0, lambda_NCE=1.0, lambda_MS_neg=1.0,
                            nce_layers="0,4,8,12,16", pool_size=50, lr=0.0002, init_type="xavier", init_gain=0.02,
                            n_epochs=200, n_epochs_decay=200)
        return parser

    def __init__(self, opt, device: torch.device | None = None):
        super().__init__(opt, device)
        self.nce_layers = parse_layers(opt.nce_layers)
        self.projections: dict[str, PairProjection] = {}
        self.fresh_negatives: dict[str, list[torch.Tensor]] = {}
        self.own_query_encoder = opt.cdd_query_encoder == "own"
        self.clear_positives = opt.cdd_clear_positives
        if not self.is_train:
            self.place_networks()
            return
        if opt.neg_queue < 0:
            raise ValueError(f"--neg_queue must be >= 0 (0 disables the queue), got {opt.neg_queue}")
        self.netF_A = build_head(opt, self.netG_A, self.nce_layers)
        self.netF_B = build_head(opt, self.netG_B, self.nce_layers)
        self.netN_A = build_negative_generator(opt, self.netG_A, self.nce_layers)
        self.netN_B = build_negative_generator(opt, self.netG_B, self.nce_layers)
        self.model_names += ["F_A", "F_B", "N_A", "N_B"]
        self.add_generator_ema()
        self.place_networks()
        self.momentum_heads = {d: MomentumHead(self.net("F_" + d), opt.neg_ema_decay) for d in DIRECTIONS}
        self.queues = {d: NegativeQueue(opt.neg_queue, len(self.nce_layers)) for d in DIRECTIONS}
        self.nce = EncoderNCE(opt.num_patches, opt.nce_T, opt.nce_includes_all_negatives_from_minibatch)
        self.optimizers = {"G": self.adam(self.netG_A, self.netG_B), "D": self.adam(self.netD_A, self.netD_B),
                           "F": self.adam(self.netF_A, self.netF_B),
                           "N": self.adam(self.netN_A, self.netN_B, lr=opt.lr_N)}

    # ----- one iteration -------------------------------------------------------------
    def forward(self) -> None:
        self.run_cycles()

    def nce_pairs(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Direction -> (source, its translation)."""
        return {"A": (self.real_A, self.fake_B), "B": (self.real_B, self.fake_A)}

    def encoders(self, direction: str) -> tuple[nn.Module, nn.Module, nn.Module, nn.Module]:
        """(key encoder, key head, query encoder, query head) of a direction's pair."""
        other = "B" if direction == "A" else "A"
        own_nets = (self.net("G_" + direction), self.net("F_" + direction))
        other_nets = (self.net("G_" + other), self.net("F_" + other))
        return (*own_nets, *(own_nets if self.own_query_encoder else other_nets))

    def encode(self, encoder: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
        """`encoder`'s features of `x` at the NCE layers (no decoder pass)."""
        return encoder(x, self.nce_layers, encode_only=True)

    @torch.no_grad()
    def exemplar_embeddings(self, clear: torch.Tensor, encoder: nn.Module, head: nn.Module) -> list[torch.Tensor]:
        """`num_patches` projected patches per clear image and layer, at random positions."""
        samples, _ = head(self.encode(encoder, clear), self.nce.num_patches)
        return samples

    def project_pairs(self, pairs: dict[str, tuple[torch.Tensor, torch.Tensor]],
                      clear_exemplars: torch.Tensor) -> dict[str, PairProjection]:
        """Queries, keys, N's conditions and (direction A) the clear-exemplar positives."""
        projections = {}
        for direction, (src, tgt) in pairs.items():
            enc_k, head_k, enc_q, head_q = self.encoders(direction)
            feat_k = self.encode(enc_k, src)
            queries, keys = self.nce.project(feat_k, self.encode(enc_q, tgt), head_k, head_q)
            exemplars = None
            if direction == "A" and self.clear_positives:
                exemplars = self.exemplar_embeddings(clear_exemplars, enc_q, head_q)
            conditions = self.momentum_heads[direction].conditions(feat_k)
            projections[direction] = PairProjection(queries, keys, conditions, exemplars, src.shape[0])
        return projections

    def contrastive_losses(self, projections: dict[str, PairProjection], detach_queries: bool
                           ) -> tuple[dict[str, torch.Tensor], dict[str, list[torch.Tensor]]]:
        """Weighted NCE_<direction> against fresh negatives + the queue, and the fresh negatives."""
        losses, fresh = {}, {}
        for direction, p in projections.items():
            negatives = self.net("N_" + direction)(p.conditions, self.nce.num_patches)
            queries = [q.detach() for q in p.queries] if detach_queries else p.queries
            losses["NCE_" + direction] = self.opt.lambda_NCE * self.nce.loss(
                queries, p.keys, p.batch_size, negatives, self.queues[direction].negatives(), p.exemplars)
            fresh[direction] = negatives
        return losses, fresh

    def compute_N_loss(self) -> dict[str, torch.Tensor]:
        """Both directions' -NCE - lambda_MS_neg * diversity, on detached queries (one loss: the
        two negative generators' parameters are disjoint)."""
        nce, fresh = self.contrastive_losses(self.projections, detach_queries=True)
        diversity = sum(negative_diversity(n, self.nce.num_patches) for n in fresh.values())
        return {"N": -sum(nce.values()) - self.opt.lambda_MS_neg * diversity}

    def compute_G_loss(self) -> dict[str, torch.Tensor]:
        o = self.opt
        L = {"G_A": self.generator_gan_term(self.netD_A, self.fake_B, o.lambda_GAN),
             "G_B": self.generator_gan_term(self.netD_B, self.fake_A, o.lambda_GAN),
             "cycle_A": o.lambda_cyc * F.l1_loss(self.rec_A, self.real_A),
             "cycle_B": o.lambda_cyc * F.l1_loss(self.rec_B, self.real_B)}
        nce, self.fresh_negatives = self.contrastive_losses(self.projections, detach_queries=False)
        L.update(nce)
        if o.lambda_rehaze > 0:
            L["rehaze"] = o.lambda_rehaze * self.rehaze_loss()
        return L

    def rehaze_loss(self) -> torch.Tensor:
        """L1 between G_A's restoration of its own output hazed again at a random density and that
        output (both the haze and the target without gradient)."""
        with torch.no_grad():
            transmission, airlight = unwrap(self.netG_A).scattering(self.real_A)
            span = math.log(self.opt.rehaze_max_power)
            power = torch.empty(transmission.shape[0], 1, 1, 1, device=transmission.device).uniform_(-span, span).exp()
            target = self.fake_B.detach()
            rehazed = 2 * render_haze((target.float() + 1) / 2, transmission ** power, airlight) - 1
        return F.l1_loss(self.netG_A(rehazed.to(target.dtype)), target)

    def update_N(self) -> None:
        """One step of both negative generators towards harder, more diverse negatives."""
        self.minimise(self.compute_N_loss, ["N"])

    def update_G(self) -> None:
        """One step of the generators and heads; D and N are frozen adversaries here."""
        self.set_requires_grad([self.netN_A, self.netN_B], False)
        super().update_G()
        self.set_requires_grad([self.netN_A, self.netN_B], True)

    def optimize_parameters(self) -> None:
        with self.autocast():
            self.forward()
        self.update_D()
        with self.autocast():
            self.projections = self.project_pairs(self.nce_pairs(), self.real_B)
        self.update_N()
        self.update_G()
        for direction in DIRECTIONS:
            self.queues[direction].push(self.fresh_negatives[direction])
            self.momentum_heads[direction].update()
        self.projections, self.fresh_negatives = {}, {}  # release this iteration's graph

    # ----- checkpoints ---------------------------------------------------------------
    def extra_state(self) -> dict:
        state = super().extra_state()
        if self.is_train:
            state["momentum_heads"] = {d: head.state_dict() for d, head in self.momentum_heads.items()}
            state["neg_queues"] = {d: queue.state_dict() for d, queue in self.queues.items()}
        return state

    def load_extra_state(self, state: dict) -> None:
        super().load_extra_state(state)
        for d in DIRECTIONS:
            self.momentum_heads[d].load_state_dict(state["momentum_heads"][d])
            self.queues[d].load_state_dict(state["neg_queues"][d], self.device)
