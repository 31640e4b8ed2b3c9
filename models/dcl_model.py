"""DCLGAN (Han et al., 2021): two generators, two discriminators, dual PatchNCE heads.

Objective (docs/METHODS.md): 0.5 (GAN_A + GAN_B) + 0.5 l_IDT (L1(G_A(b), b) + L1(G_B(a), a))
+ 0.5 l_NCE (NCE1 + NCE2). NCE1's keys are F1 of G_A's encoding of a, its queries F2 of G_B's
encoding of G_A(a); NCE2 mirrors it. The keys are the features of the translations the
objective runs anyway (`forward` keeps them), so no encoder pass is repeated.

Logged terms, each with its share of the objective: G_A = 0.5 l_GAN GAN_A, G_B likewise,
NCE1 = 0.5 l_NCE NCE1, NCE2 likewise, idt_A = 0.5 l_IDT L1(G_A(b), b), idt_B likewise; "G"
is their sum, the generator step's objective; D_A, D_B the discriminators'.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .builders import build_head
from .contrastive import EncoderNCE, add_contrastive_options, parse_layers
from .two_domain import TwoDomainModel


class DCLModel(TwoDomainModel):
    @staticmethod
    def modify_commandline_options(parser, is_train: bool):
        add_contrastive_options(parser, all_negatives_default=True)
        parser.add_argument("--lambda_IDT", type=float, default=1.0, help="weight of the identity L1 loss")
        parser.set_defaults(gan_mode="hinge", lambda_NCE=2.0, nce_layers="4,8,12,16", pool_size=0,
                            lr=0.0002, init_type="xavier", decay_full_images=True)
        return parser

    def __init__(self, opt, device: torch.device | None = None):
        super().__init__(opt, device)
        self.nce_layers = parse_layers(opt.nce_layers)
        self.use_identity = self.is_train and opt.lambda_IDT > 0
        if self.is_train:
            self.netF1 = build_head(opt, self.netG_A, self.nce_layers)
            self.netF2 = build_head(opt, self.netG_B, self.nce_layers)
            self.model_names += ["F1", "F2"]
        self.add_generator_ema()
        self.place_networks()
        if self.is_train:
            self.nce = EncoderNCE(opt.num_patches, opt.nce_T, opt.nce_includes_all_negatives_from_minibatch)
            self.optimizers = {
                "G": self.adam(self.netG_A, self.netG_B),
                "D": self.adam(self.netD_A, self.netD_B),
                # The reference gives the heads Adam's defaults (lr 1e-3, betas 0.9/0.999).
                "F": self.adam(self.netF1, self.netF2, lr=1e-3, betas=(0.9, 0.999)),
            }

    # ----- one iteration -------------------------------------------------------------
    def forward(self) -> None:
        """The translations the objective needs, each with its input's encoder features."""
        self.fake_B, self.feat_real_A = self.netG_A(self.real_A, self.nce_layers)
        self.fake_A, self.feat_real_B = self.netG_B(self.real_B, self.nce_layers)
        self.visuals = {"real_A": self.real_A, "fake_B": self.fake_B, "real_B": self.real_B, "fake_A": self.fake_A}
        if self.use_identity:
            self.idt_A = self.netG_A(self.real_B)
            self.idt_B = self.netG_B(self.real_A)
            self.visuals.update(idt_B=self.idt_B, idt_A=self.idt_A)

    def encode(self, net_name: str, x: torch.Tensor) -> list[torch.Tensor]:
        """net<name>'s encoder features of `x` at the NCE layers (no decoder pass)."""
        return self.net(net_name)(x, self.nce_layers, encode_only=True)

    def compute_G_loss(self) -> dict[str, torch.Tensor]:
        """The weighted terms (module docstring); `update_G` minimises their sum."""
        o = self.opt
        L = {"G_A": self.generator_gan_term(self.netD_A, self.fake_B, 0.5 * o.lambda_GAN),
             "G_B": self.generator_gan_term(self.netD_B, self.fake_A, 0.5 * o.lambda_GAN),
             "NCE1": 0.5 * o.lambda_NCE * self.nce(self.feat_real_A, self.encode("G_B", self.fake_B),
                                                   self.netF1, self.netF2),
             "NCE2": 0.5 * o.lambda_NCE * self.nce(self.feat_real_B, self.encode("G_A", self.fake_A),
                                                   self.netF2, self.netF1)}
        if self.use_identity:
            L["idt_A"] = 0.5 * o.lambda_IDT * F.l1_loss(self.idt_A, self.real_B)
            L["idt_B"] = 0.5 * o.lambda_IDT * F.l1_loss(self.idt_B, self.real_A)
        return L

    def optimize_parameters(self) -> None:
        with self.autocast():
            self.forward()
        self.update_D()
        self.update_G()
