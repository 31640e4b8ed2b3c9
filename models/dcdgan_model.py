"""DCD-GAN (Chen et al., CVPR 2022): unpaired deraining with dual contrastive learning.

Two branches (docs/METHODS.md):
- Bidirectional Translation Branch (BTB): G_A = G_R2N (rainy -> clean), G_B = G_N2R, judged
  by D_A (= D_N, on clean images) and D_B (= D_R, on rainy images); both cycles
  R -> N_R -> R* and N -> R_N -> N*.
- Contrastive Guidance Branch (CGB): PatchNCE in encoder feature space between (R, N_R),
  (N, R_N), (N_R, R*) and (R_N, N*). For a pair (X, Y = G(X)) the keys come from G's
  encoder on X and the queries from the other generator's encoder on Y.

Generator objective: the sum of the logged terms, each weighted where it is computed
(`compute_G_loss`); the variant chooses which terms exist:
- `--dcd_variant official`, the released code's objective (DCLGAN's; its cycle, pixel and
  FFT losses are computed there but never added), from four generator passes:
      G_A + G_B + idt_A + idt_B + NCE1 + NCE2
- `--dcd_variant paper`, BTB + CGB as the paper describes them:
      G_A + G_B + idt_A + idt_B + cycle_A + cycle_B + NCE1 + NCE2 + NCE3 + NCE4
  The cycle passes' features are the queries of NCE1 / NCE2 and the keys of NCE3 / NCE4.
with G_X = 0.5 lambda_GAN hinge(D_X(...)), idt = 0.5 lambda_IDT L1, cycle = lambda_cyc L1,
NCE = s lambda_NCE PatchNCE, s = 0.5 (official: two NCE terms) or 0.25 (paper: four).
The log shows these terms, "G" (their sum) and the discriminator step's D_A, D_B (DCLGAN's,
models/dcl_model.py).
Either variant may add this repository's sparsity terms (`--lambda_sparse`, off by default):
      sparse_A = 0.5 lambda_sparse L1(G_A(a), a),  sparse_B = 0.5 lambda_sparse L1(G_B(b), b)
and the pseudo-pair terms (`--lambda_pseudo`, `--pseudo_ssim`, off by default): G_B's rainy
rendering of a clean image b, detached, is a pair with a known answer for G_A,
      pseudo = w lambda_pseudo L1(G_A(sg(G_B(b))), b),
      pseudo_ssim = w pseudo_ssim (1 - SSIM(G_A(sg(G_B(b))), b)),
with w ramping linearly from 0 to 1 over the first `--pseudo_warmup` iterations (G_B's early
renderings are poor rain); one extra G_A pass, and no gradient reaches G_B through it.
Two levers make G_B's rain look like trainA's (off by default; they feed the pseudo pairs of
the two-stage recipe, scripts/train_two_stage.sh). Both see rain as the high-pass residual of
the luma, hp(x) = Y(x) - blur(Y(x)) in levels (models/rain_matching.py), the same estimate for
a real rainy image (whose clean version is unknown) and for G_B's rendering:
      rain_stats = lambda_rain_stats (|log (c(hp(G_B(b))) + 0.001) / (c_A + 0.001)|
                                      + |log (m(hp(G_B(b))) + 1) / (m_A + 1)|)
  with c, m the coverage (share above 15 levels) and mean brightness of those pixels (soft
  threshold), c_A, m_A a moving average of them on the real rainy batches;
      G_R = 0.5 lambda_rain_D GAN(D_R(hp(G_B(b)) / 127.5)),
      D_R = 0.5 (D_R's loss on hp(a) / 127.5 + on hp(sg(G_B(b))) / 127.5),
  a one-channel discriminator on the rain layer (the shape of streaks, not the scene), trained
  with D_A and D_B. Both reach G_B only.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from util.weight_init import init_weights

from .dcl_model import DCLModel
from .losses import discriminator_loss, ssim_loss
from .networks.discriminators import define_discriminator
from .rain_matching import StatisticsMatch, high_pass_luma

# hp(x) is in levels (about -128..128); the rain-layer discriminator sees it on the images' scale.
RAIN_D_SCALE = 127.5


class DCDGANModel(DCLModel):
    @staticmethod
    def modify_commandline_options(parser, is_train: bool):
        DCLModel.modify_commandline_options(parser, is_train)
        # 'official' is the objective behind the published numbers, and it scored higher and
        # costs less per iteration in this repository's comparison (docs/EXPERIMENTS.md).
        parser.add_argument("--dcd_variant", default="official", choices=("paper", "official"),
                            help="official: the released (DCLGAN) objective; paper: + BTB cycles and the two "
                                 "cycle-pair CGB NCE terms")
        parser.add_argument("--lambda_cyc", type=float, default=1.0, help="weight of the cycle L1 (paper variant)")
        parser.add_argument("--lambda_sparse", type=float, default=0.0,
                            help="weight of the sparsity term 0.5 (L1(G_A(a), a) + L1(G_B(b), b)): the rain a "
                                 "translation removes or adds should be sparse (not in the paper; 0 disables)")
        parser.add_argument("--lambda_pseudo", type=float, default=0.0,
                            help="weight of the pseudo-pair L1 L1(G_A(sg(G_B(b))), b): G_A learns to restore G_B's "
                                 "rainy rendering of a clean image (not in the paper; 0 disables)")
        parser.add_argument("--pseudo_ssim", type=float, default=0.0,
                            help="weight of (1 - SSIM) on the same pseudo pair (0 disables)")
        parser.add_argument("--pseudo_warmup", type=int, default=0,
                            help="iterations over which the pseudo-pair weights ramp linearly from 0 to their "
                                 "value (0: full weight from the start)")
        parser.add_argument("--lambda_rain_stats", type=float, default=0.0,
                            help="weight of the rain-statistics match: coverage and brightness of G_B's rain "
                                 "(high-pass of the luma) against the real rainy images' (0 disables)")
        parser.add_argument("--lambda_rain_D", type=float, default=0.0,
                            help="weight of G_B's term against D_R, a discriminator on the rain layer (high-pass "
                                 "of the luma) of real rainy images and of G_B's (0 disables, and builds no D_R)")
        parser.set_defaults(lr=0.0001, n_epochs=300, n_epochs_decay=300, load_size=512, crop_size=256,
                            save_epoch_freq=10)
        return parser

    def __init__(self, opt, device: torch.device | None = None):
        super().__init__(opt, device)
        self.paper = opt.dcd_variant == "paper"
        self.use_pseudo = self.is_train and (opt.lambda_pseudo > 0 or opt.pseudo_ssim > 0)
        self.pseudo_warmup = opt.pseudo_warmup
        self.pseudo_steps = 0  # generator steps taken: the pseudo-pair warm-up's clock
        self.rain_match = StatisticsMatch() if self.is_train and opt.lambda_rain_stats > 0 else None
        self.use_rain_D = self.is_train and opt.lambda_rain_D > 0
        if self.use_rain_D:
            net = define_discriminator(opt.netD, 1, opt.ndf, opt.n_layers_D, opt.normD, opt.no_antialias)
            self.netD_R = init_weights(net, opt.init_type, opt.init_gain).to(self.device)
            if self.channels_last:
                self.netD_R.to(memory_format=torch.channels_last)
            self.model_names.append("D_R")
            self.optimizers["D"] = self.adam(self.netD_A, self.netD_B, self.netD_R)

    def pseudo_ramp(self) -> float:
        """The pseudo-pair weights' share: linear from 0 to 1 over --pseudo_warmup steps."""
        if self.pseudo_warmup <= 0:
            return 1.0
        return min(1.0, self.pseudo_steps / self.pseudo_warmup)

    @staticmethod
    def rain_input(x: torch.Tensor) -> torch.Tensor:
        """What D_R sees of an image batch: its luma's high-pass residual, scaled to about [-1, 1]."""
        return high_pass_luma(x) / RAIN_D_SCALE

    def forward(self) -> None:
        """DCLGAN's translations and identity passes; the paper variant adds both cycles,
        keeping the encoder features of their inputs N_R and R_N."""
        super().forward()
        if self.paper:
            self.rec_A, self.feat_fake_B = self.netG_B(self.fake_B, self.nce_layers)
            self.rec_B, self.feat_fake_A = self.netG_A(self.fake_A, self.nce_layers)
            self.visuals.update(rec_A=self.rec_A, rec_B=self.rec_B)
        if self.use_pseudo:
            # Detached: the pseudo pair teaches G_A only; G_B is not pulled towards easy rain.
            self.pseudo_A = self.fake_A.detach()
            self.pseudo_restored = self.netG_A(self.pseudo_A)
            self.visuals.update(pseudo_A=self.pseudo_A, pseudo_restored=self.pseudo_restored)

    def compute_G_loss(self) -> dict[str, torch.Tensor]:
        """The chosen variant's weighted terms (module docstring); `update_G` minimises their sum."""
        o = self.opt
        nce_share = 0.25 if self.paper else 0.5
        L = {"G_A": self.generator_gan_term(self.netD_A, self.fake_B, 0.5 * o.lambda_GAN),
             "G_B": self.generator_gan_term(self.netD_B, self.fake_A, 0.5 * o.lambda_GAN)}
        # CGB on the translations. (R, N_R): keys G_A's encoding of R, queries G_B's of N_R,
        # which the paper variant's cycle pass R* = G_B(N_R) has computed already.
        # --lambda_NCE 0 skips the encoder passes and heads (all of CGB's cost) and logs 0.
        if o.lambda_NCE > 0:
            queries_N_R = self.feat_fake_B if self.paper else self.encode("G_B", self.fake_B)
            L["NCE1"] = nce_share * o.lambda_NCE * self.nce(self.feat_real_A, queries_N_R, self.netF1, self.netF2)
            queries_R_N = self.feat_fake_A if self.paper else self.encode("G_A", self.fake_A)
            L["NCE2"] = nce_share * o.lambda_NCE * self.nce(self.feat_real_B, queries_R_N, self.netF2, self.netF1)
        else:
            L["NCE1"] = L["NCE2"] = torch.zeros((), device=self.fake_B.device)
        # BTB's identity terms: each generator leaves an image of its target domain alone.
        if self.use_identity:
            L["idt_A"] = 0.5 * o.lambda_IDT * F.l1_loss(self.idt_A, self.real_B)
            L["idt_B"] = 0.5 * o.lambda_IDT * F.l1_loss(self.idt_B, self.real_A)
        # The rain layer a translation removes (adds) is sparse: L1 of its change (--lambda_sparse).
        if o.lambda_sparse > 0:
            L["sparse_A"] = 0.5 * o.lambda_sparse * F.l1_loss(self.fake_B, self.real_A)
            L["sparse_B"] = 0.5 * o.lambda_sparse * F.l1_loss(self.fake_A, self.real_B)
        # G_A restores G_B's rendering of b, whose clean answer is b itself (--lambda_pseudo).
        if self.use_pseudo:
            ramp = self.pseudo_ramp()
            if o.lambda_pseudo > 0:
                L["pseudo"] = ramp * o.lambda_pseudo * F.l1_loss(self.pseudo_restored, self.real_B)
            if o.pseudo_ssim > 0:
                L["pseudo_ssim"] = ramp * o.pseudo_ssim * ssim_loss(self.pseudo_restored, self.real_B)
        # G_B's rain against the real rain: its statistics, and a discriminator on its layer.
        if self.rain_match is not None:
            self.rain_match.update_target(high_pass_luma(self.real_A))
            L["rain_stats"] = o.lambda_rain_stats * self.rain_match.loss(high_pass_luma(self.fake_A))
        if self.use_rain_D:
            L["G_R"] = self.generator_gan_term(self.netD_R, self.rain_input(self.fake_A), 0.5 * o.lambda_rain_D)
        if not self.paper:
            return L
        # BTB's cycles, then CGB on them. (N_R, R*): R* = G_B(N_R), so the keys are G_B's
        # encoding of N_R and the queries G_A's encoding of R*.
        L["cycle_A"] = o.lambda_cyc * F.l1_loss(self.rec_A, self.real_A)
        L["cycle_B"] = o.lambda_cyc * F.l1_loss(self.rec_B, self.real_B)
        if o.lambda_NCE > 0:
            L["NCE3"] = nce_share * o.lambda_NCE * self.nce(self.feat_fake_B, self.encode("G_A", self.rec_A),
                                                            self.netF2, self.netF1)
            L["NCE4"] = nce_share * o.lambda_NCE * self.nce(self.feat_fake_A, self.encode("G_B", self.rec_B),
                                                            self.netF1, self.netF2)
        else:
            L["NCE3"] = L["NCE4"] = torch.zeros((), device=self.fake_B.device)
        return L

    def compute_D_loss(self) -> dict[str, torch.Tensor]:
        """D_A and D_B; with --lambda_rain_D also D_R on real rain layers against G_B's."""
        L = super().compute_D_loss()
        if self.use_rain_D:
            L["D_R"] = discriminator_loss(self.gan_loss, self.netD_R, self.rain_input(self.real_A),
                                          self.rain_input(self.fake_A.detach()))
        return L

    def update_D(self) -> None:
        if self.use_rain_D:
            self.set_requires_grad([self.netD_R], True)
        super().update_D()

    def update_G(self) -> None:
        if self.use_rain_D:
            self.set_requires_grad([self.netD_R], False)
        super().update_G()

    def optimize_parameters(self) -> None:
        super().optimize_parameters()
        self.pseudo_steps += 1

    # ----- checkpoints ---------------------------------------------------------------
    def extra_state(self) -> dict:
        state = {**super().extra_state(), "pseudo_steps": self.pseudo_steps}
        if self.rain_match is not None:
            state["rain_match"] = self.rain_match.state_dict()
        return state

    def load_extra_state(self, state: dict) -> None:
        super().load_extra_state(state)
        # A checkpoint from before the pseudo pair existed restarts its warm-up.
        self.pseudo_steps = state.get("pseudo_steps", 0)
        if self.rain_match is not None:
            self.rain_match.load_state_dict(state.get("rain_match", {}))
