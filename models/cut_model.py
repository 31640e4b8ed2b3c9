"""CUT (Park et al., ECCV 2020): one-sided translation with patchwise contrastive learning.

Networks: generator G (A -> B only), discriminator D, projection head F.
Objective (docs/METHODS.md): lambda_GAN GAN(G(a)) + lambda_NCE NCE(a, G(a)); with `--nce_idt`
also lambda_NCE NCE(b, G(b)), and the two NCE terms are averaged. Logged terms, each with its
share of the objective: G_GAN = lambda_GAN GAN(G(a)), NCE = (lambda_NCE / n) NCE(a, G(a)) and
NCE_Y = (lambda_NCE / n) NCE(b, G(b)), n the number of NCE terms (2 with --nce_idt, else 1);
"G" is their sum, the G + F step's objective; D the discriminator's. NCE keys are F(enc_G(x)),
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

from util.flags import str2bool
from util.image_pool import ImagePool

from .base_model import BaseModel
from .builders import build_discriminator, build_generator, build_head
from .contrastive import EncoderNCE, add_contrastive_options, parse_layers
from .losses import GANLoss, discriminator_loss


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

    def __init__(self, opt, device: torch.device | None = None):
        super().__init__(opt, device)
        self.netG = build_generator(opt, "G")
        self.nce_layers = parse_layers(opt.nce_layers)
        self.model_names = ["G"]
        if self.is_train:
            self.netD = build_discriminator(opt)
            self.netF = build_head(opt, self.netG, self.nce_layers)
            self.model_names += ["D", "F"]
        self.add_generator_ema()
        self.place_networks()
        self.use_nce_idt = self.is_train and opt.nce_idt
        self.flip_equivariance = self.is_train and opt.flip_equivariance
        self.flipped = False
        if self.is_train:
            self.gan_loss = GANLoss(opt.gan_mode)
            self.nce = EncoderNCE(opt.num_patches, opt.nce_T, opt.nce_includes_all_negatives_from_minibatch)
            self.image_pools = {"fake_B": ImagePool(opt.pool_size)}
            self.optimizers = {"G": self.adam(self.netG), "D": self.adam(self.netD), "F": self.adam(self.netF)}

    @staticmethod
    def restoring_nets() -> dict[str, str]:
        """CUT learns A -> B only."""
        return {"AtoB": "G"}

    # ----- one iteration -------------------------------------------------------------
    def forward(self) -> None:
        real = torch.cat([self.real_A, self.real_B]) if self.use_nce_idt else self.real_A
        self.flipped = self.flip_equivariance and bool(torch.rand(()) < 0.5)
        if self.flipped:
            real = torch.flip(real, [3])
        fake = self.netG(real)
        batch = self.real_A.shape[0]
        self.fake_B = fake[:batch]
        self.visuals = {"real_A": self.real_A, "fake_B": self.fake_B, "real_B": self.real_B}
        if self.use_nce_idt:
            self.idt_B = fake[batch:]
            self.visuals["idt_B"] = self.idt_B

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """G's encoder features of `x` at the NCE layers (no decoder pass)."""
        return self.netG(x, self.nce_layers, encode_only=True)

    def nce_pairs(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Loss name -> (source, its translation) for every PatchNCE term."""
        pairs = {"NCE": (self.real_A, self.fake_B)}
        if self.use_nce_idt:
            pairs["NCE_Y"] = (self.real_B, self.idt_B)
        return pairs

    def compute_D_loss(self) -> dict[str, torch.Tensor]:
        fake_B = self.image_pools["fake_B"].query(self.fake_B)
        return {"D": discriminator_loss(self.gan_loss, self.netD, self.real_B, fake_B, self.diffaug)}

    def compute_G_loss(self) -> dict[str, torch.Tensor]:
        """G_GAN and each NCE term with its share of lambda_NCE (module docstring); G's encoder
        and F give both the keys (from the source) and the queries (from its translation)."""
        pairs = self.nce_pairs()
        nce_weight = self.opt.lambda_NCE / len(pairs)
        L = {"G_GAN": self.generator_gan_term(self.netD, self.fake_B, self.opt.lambda_GAN)}
        for name, (src, tgt) in pairs.items():
            L[name] = nce_weight * self.nce(self.encode(src), self.encode(tgt), self.netF, self.netF,
                                            flip_query=self.flipped)
        return L

    def update_D(self) -> None:
        self.set_requires_grad([self.netD], True)
        self.minimise(self.compute_D_loss, ["D"])

    def update_G(self) -> None:
        """One step of G and F on the GAN + NCE objective (the terms' sum, logged as "G"), D frozen."""
        self.set_requires_grad([self.netD], False)
        self.minimise(self.compute_G_loss, ["G", "F"], log_total="G")

    def optimize_parameters(self) -> None:
        with self.autocast():
            self.forward()
        self.update_D()
        self.update_G()
