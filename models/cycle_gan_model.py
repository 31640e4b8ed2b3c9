"""CycleGAN (Zhu et al., ICCV 2017): two generators, two discriminators, cycle consistency.

Objective (docs/METHODS.md): GAN_A + GAN_B + lambda_A L1(G_B(G_A(a)), a) + lambda_B L1(G_A(G_B(b)), b)
+ lambda_identity (lambda_B L1(G_A(b), b) + lambda_A L1(G_B(a), a)). The logged terms are its
summands, each with its weight: G_A, G_B (GAN), cycle_A, cycle_B, idt_A, idt_B; "G" is their
sum, the generator step's objective; D_A, D_B the discriminators'. D_A judges G_A's
outputs against real B images, D_B judges G_B's against real A images; both see fakes through
an image pool of 50.

Choices, each a flag:
- The generator and discriminator are this repository's shared ones, anti-aliased by default,
  so all baselines differ only in their objective. The paper's strided / transposed
  convolutions: `--no_antialias --no_antialias_up` (scripts/train_cycle_gan_rain100l.sh).
- Update order as in the reference: generators first (discriminators frozen), then both
  discriminators on the pooled fakes.
- 100 + 100 epochs and `normal` init (gain 0.02), the reference defaults.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .two_domain import TwoDomainModel


class CycleGANModel(TwoDomainModel):
    @staticmethod
    def modify_commandline_options(parser, is_train: bool):
        g = parser.add_argument_group("cycle_gan")
        g.add_argument("--lambda_A", type=float, default=10.0, help="weight of the cycle loss A -> B -> A")
        g.add_argument("--lambda_B", type=float, default=10.0, help="weight of the cycle loss B -> A -> B")
        g.add_argument("--lambda_identity", type=float, default=0.5,
                       help="identity loss weight, relative to the cycle weights; 0 disables identity passes")
        parser.set_defaults(gan_mode="lsgan", pool_size=50, lr=0.0002, init_type="normal", init_gain=0.02,
                            n_epochs=100, n_epochs_decay=100)
        return parser

    def __init__(self, opt, device: torch.device | None = None):
        super().__init__(opt, device)
        self.add_generator_ema()
        self.place_networks()
        self.use_identity = self.is_train and opt.lambda_identity > 0
        if self.is_train:
            self.optimizers = {"G": self.adam(self.netG_A, self.netG_B), "D": self.adam(self.netD_A, self.netD_B)}

    def forward(self) -> None:
        self.run_cycles()
        if self.use_identity:
            self.idt_A = self.netG_A(self.real_B)
            self.idt_B = self.netG_B(self.real_A)
            self.visuals.update(idt_B=self.idt_B, idt_A=self.idt_A)

    def compute_G_loss(self) -> dict[str, torch.Tensor]:
        o = self.opt
        L = {"G_A": self.generator_gan_term(self.netD_A, self.fake_B, 1.0),
             "G_B": self.generator_gan_term(self.netD_B, self.fake_A, 1.0),
             "cycle_A": o.lambda_A * F.l1_loss(self.rec_A, self.real_A),
             "cycle_B": o.lambda_B * F.l1_loss(self.rec_B, self.real_B)}
        if self.use_identity:
            L["idt_A"] = o.lambda_B * o.lambda_identity * F.l1_loss(self.idt_A, self.real_B)
            L["idt_B"] = o.lambda_A * o.lambda_identity * F.l1_loss(self.idt_B, self.real_A)
        return L

    def optimize_parameters(self) -> None:
        with self.autocast():
            self.forward()
        self.update_G()  # the reference's order: generators first
        self.update_D()
