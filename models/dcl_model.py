"""DCLGAN (Han et al., 2021): two generators, two discriminators, dual PatchNCE heads.

Objective (SPEC.md 3): 0.5 (GAN_A + GAN_B) + 0.5 l_NCE (NCE1 + NCE2)
+ 0.5 l_IDT (L1(G_A(b), b) + L1(G_B(a), a)). NCE1 keys come from G_A's encoder on a, its
queries from G_B's encoder on G_A(a); NCE2 mirrors it.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from util.image_pool import ImagePool

from .base_model import BaseModel
from .contrastive import EncoderNCE, add_contrastive_options, build_head, parse_layers
from .losses import GANLoss


class DCLModel(BaseModel):
    @staticmethod
    def modify_commandline_options(parser, is_train: bool):
        add_contrastive_options(parser, all_negatives_default=True)
        parser.add_argument("--lambda_IDT", type=float, default=1.0, help="weight of the identity L1 loss")
        parser.set_defaults(gan_mode="hinge", lambda_NCE=2.0, nce_layers="4,8,12,16", pool_size=0,
                            lr=0.0002, init_type="xavier", decay_full_images=True)
        return parser

    def __init__(self, opt):
        super().__init__(opt)
        self.nce_layers = parse_layers(opt.nce_layers)
        self.netG_A = self.build_generator()
        self.netG_B = self.build_generator("G_B")
        self.model_names = ["G_A", "G_B"]
        if self.is_train:
            self.netD_A = self.build_discriminator()
            self.netD_B = self.build_discriminator()
            self.netF1 = build_head(opt, self.netG_A, self.nce_layers)
            self.netF2 = build_head(opt, self.netG_B, self.nce_layers)
            self.model_names += ["D_A", "D_B", "F1", "F2"]
        self.add_generator_ema()
        self.place_networks()
        self.loss_names = self.declared_losses()
        self.visual_names = self.declared_visuals()
        if self.is_train:
            self.gan_loss = GANLoss(opt.gan_mode)
            self.nce = EncoderNCE(opt, self.nce_layers)
            self.image_pools = {"fake_A": ImagePool(opt.pool_size), "fake_B": ImagePool(opt.pool_size)}
            self.optimizers = {
                "G": self.adam(self.netG_A, self.netG_B),
                "D": self.adam(self.netD_A, self.netD_B),
                # The reference gives the heads Adam's defaults (lr 1e-3, betas 0.9/0.999).
                "F": self.adam(self.netF1, self.netF2, lr=1e-3, betas=(0.9, 0.999)),
            }

    def declared_losses(self) -> list[str]:
        names = ["D_A", "G_A", "NCE1", "D_B", "G_B", "NCE2"]
        if self.opt.lambda_IDT > 0:
            names += ["idt_A", "idt_B"]
        return names + ["G"]

    def declared_visuals(self) -> list[str]:
        names = ["real_A", "fake_B", "real_B", "fake_A"]
        if self.is_train and self.opt.lambda_IDT > 0:
            names += ["idt_B", "idt_A"]
        return names

    # ----- one iteration -------------------------------------------------------------
    def forward(self) -> None:
        """The translations the objective needs, and nothing else."""
        self.features = {}
        self.fake_B = self.translate("G_A", self.real_A)
        self.fake_A = self.translate("G_B", self.real_B)
        if self.opt.lambda_IDT > 0:
            self.idt_A = self.netG_A(self.real_B)
            self.idt_B = self.netG_B(self.real_A)

    def translate(self, net_name: str, x: torch.Tensor) -> torch.Tensor:
        """net<name>(x), keeping its NCE-layer features for `encoder` to reuse."""
        out, feats = self.net(net_name)(x, self.nce_layers)
        self.features[(net_name, id(x))] = (x, feats)
        return out

    def encoder(self, net_name: str):
        """net<name> as EncoderNCE's encoder, without a second pass over an image it translated.

        The keys of every PatchNCE term (and in DCD-GAN's paper variant two of the queries)
        are features of a translation the objective runs anyway; the weights do not change
        in between, so the reused features equal a fresh encoder pass.
        """
        net = self.net(net_name)

        def encode(x: torch.Tensor, layers: list[int], encode_only: bool = True) -> list[torch.Tensor]:
            cached = self.features.get((net_name, id(x)))
            if cached is not None and cached[0] is x and layers == self.nce_layers:
                return cached[1]
            return net(x, layers, encode_only=encode_only)
        return encode

    def compute_D_loss(self) -> torch.Tensor:
        return self.two_domain_D_loss()

    def generator_terms(self) -> dict[str, torch.Tensor]:
        """The weighted terms shared by DCLGAN and both DCD-GAN variants."""
        o, L = self.opt, self.losses
        L["G_A"] = self.gan_loss(self.netD_A(self.fake_B), True, for_discriminator=False) * o.lambda_GAN
        L["G_B"] = self.gan_loss(self.netD_B(self.fake_A), True, for_discriminator=False) * o.lambda_GAN
        G_A, G_B = self.encoder("G_A"), self.encoder("G_B")
        L["NCE1"] = self.nce(self.real_A, self.fake_B, G_A, G_B, self.netF1, self.netF2) * o.lambda_NCE
        L["NCE2"] = self.nce(self.real_B, self.fake_A, G_B, G_A, self.netF2, self.netF1) * o.lambda_NCE
        terms = {"gan": 0.5 * (L["G_A"] + L["G_B"])}
        if o.lambda_IDT > 0:
            L["idt_A"] = F.l1_loss(self.idt_A, self.real_B) * o.lambda_IDT
            L["idt_B"] = F.l1_loss(self.idt_B, self.real_A) * o.lambda_IDT
            terms["idt"] = 0.5 * (L["idt_A"] + L["idt_B"])
        return terms

    def compute_G_loss(self) -> torch.Tensor:
        terms = self.generator_terms()
        terms["nce"] = 0.5 * (self.losses["NCE1"] + self.losses["NCE2"])
        self.losses["G"] = sum(terms.values())
        return self.losses["G"]

    def optimize_parameters(self) -> None:
        with self.autocast():
            self.forward()
        discriminators = [self.netD_A, self.netD_B]
        self.set_requires_grad(discriminators, True)
        self.minimise(self.compute_D_loss, ["D"])
        self.set_requires_grad(discriminators, False)
        self.minimise(self.compute_G_loss, ["G", "F"])
        self.collect_visuals()
