"""CUT (Park et al., ECCV 2020): one-sided translation with patchwise contrastive learning.

Networks: generator G (A -> B only), discriminator D, projection head F.
Objective (SPEC.md 3): lambda_GAN GAN(G(a)) + lambda_NCE NCE(a, G(a)); with `--nce_idt`
also lambda_NCE NCE(b, G(b)), and the two NCE terms are averaged. NCE keys are F(enc_G(x)),
queries F(enc_G(G(x))) at the same locations: G's own encoder and one head for both. The
negatives are the other sampled patches of the same image (the CUT family's default).

Choices, each a flag:
- `--nce_idt` (on): G runs once on cat(real_A, real_B); instance norm normalises every image
  on its own, so that equals two separate passes.
- `--flip_equivariance` (off; FastCUT's preset turns it on): half of the iterations G sees
  the mirrored batch and the query features are mirrored back before PatchNCE.
- F is trained with Adam at --lr and betas (--beta1, --beta2), as in the CUT reference
  (DCLGAN gives its heads Adam's defaults instead).
- Update order as in the reference: D step, then G + F step (D frozen). `--pool_size` is 0.
"""
from __future__ import annotations

import torch

from options.base_options import str2bool
from util.image_pool import ImagePool

from .base_model import BaseModel
from .contrastive import EncoderNCE, add_contrastive_options, build_head, parse_layers
from .losses import GANLoss


class CUTModel(BaseModel):
    @staticmethod
    def modify_commandline_options(parser, is_train: bool):
        add_contrastive_options(parser, all_negatives_default=False)
        g = parser.add_argument_group("cut")
        g.add_argument("--nce_idt", type=str2bool, nargs="?", const=True, default=True,
                       help="also apply PatchNCE to the identity mapping NCE(b, G(b))")
        g.add_argument("--flip_equivariance", type=str2bool, nargs="?", const=True, default=False,
                       help="mirror G's input at random and its query features back (FastCUT)")
        parser.set_defaults(gan_mode="lsgan", lambda_NCE=1.0, nce_layers="0,4,8,12,16", pool_size=0,
                            lr=0.0002, init_type="xavier", decay_full_images=True)
        return parser

    def __init__(self, opt):
        super().__init__(opt)
        self.nce_layers = parse_layers(opt.nce_layers)
        self.netG = self.build_generator("G")
        self.model_names = ["G"]
        if self.is_train:
            self.netD = self.build_discriminator()
            self.netF = build_head(opt, self.netG, self.nce_layers)
            self.model_names += ["D", "F"]
        self.add_generator_ema()
        self.place_networks()
        self.use_nce_idt = self.is_train and opt.nce_idt
        self.flipped = False
        self.loss_names = ["D", "G_GAN", "NCE"] + (["NCE_Y"] if self.use_nce_idt else []) + ["G"]
        self.visual_names = ["real_A", "fake_B", "real_B"] + (["idt_B"] if self.use_nce_idt else [])
        if self.is_train:
            self.gan_loss = GANLoss(opt.gan_mode)
            self.nce = EncoderNCE(opt, self.nce_layers)
            self.image_pools = {"fake_B": ImagePool(opt.pool_size)}
            self.optimizers = {"G": self.adam(self.netG), "D": self.adam(self.netD), "F": self.adam(self.netF)}

    @staticmethod
    def restoring_nets() -> dict[str, str]:
        """CUT learns A -> B only."""
        return {"AtoB": "G"}

    # ----- one iteration -------------------------------------------------------------
    def forward(self) -> None:
        real = torch.cat([self.real_A, self.real_B]) if self.use_nce_idt else self.real_A
        self.flipped = self.is_train and self.opt.flip_equivariance and bool(torch.rand(()) < 0.5)
        if self.flipped:
            real = torch.flip(real, [3])
        fake = self.netG(real)
        batch = self.real_A.shape[0]
        self.fake_B = fake[:batch]
        if self.use_nce_idt:
            self.idt_B = fake[batch:]

    def nce_pairs(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Loss name -> (source, its translation) for every PatchNCE term."""
        pairs = {"NCE": (self.real_A, self.fake_B)}
        if self.use_nce_idt:
            pairs["NCE_Y"] = (self.real_B, self.idt_B)
        return pairs

    def nce_losses(self) -> dict[str, torch.Tensor]:
        """The weighted PatchNCE terms, by loss name."""
        return {name: self.opt.lambda_NCE * self.nce(src, tgt, self.netG, self.netG, self.netF, self.netF,
                                                      flip_query=self.flipped)
                for name, (src, tgt) in self.nce_pairs().items()}

    def compute_D_loss(self) -> torch.Tensor:
        return self.pooled_D_loss("D", self.netD, self.real_B, "fake_B")

    def compute_G_loss(self) -> torch.Tensor:
        L = self.losses
        L["G_GAN"] = self.gan_loss(self.netD(self.fake_B), True, for_discriminator=False) * self.opt.lambda_GAN
        nce_terms = self.nce_losses()
        L.update(nce_terms)
        L["G"] = L["G_GAN"] + sum(nce_terms.values()) / len(nce_terms)
        return L["G"]

    def update_D(self) -> None:
        self.set_requires_grad([self.netD], True)
        self.minimise(self.compute_D_loss, ["D"])

    def update_G(self) -> None:
        """One step of G and F on the GAN + NCE objective, D frozen."""
        self.set_requires_grad([self.netD], False)
        self.minimise(self.compute_G_loss, ["G", "F"])

    def optimize_parameters(self) -> None:
        with self.autocast():
            self.forward()
        self.update_D()
        self.update_G()
        self.collect_visuals()
