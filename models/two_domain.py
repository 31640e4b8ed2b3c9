"""The CycleGAN layout that cycle_gan, dcl, dcdgan and cddgan share.

Two generators, G_A: A -> B and G_B: B -> A, and in training two discriminators: D_A judges
G_A's outputs against real B images, D_B judges G_B's against real A images, each through
an image pool (`--pool_size`). The generator objectives live in the model files; `update_G`
minimises the sum of their terms and logs it as "G".
"""
from __future__ import annotations

import torch

from util.image_pool import ImagePool

from .base_model import BaseModel
from .builders import build_discriminator, build_generator
from .losses import GANLoss, discriminator_loss, r1_penalty


class TwoDomainModel(BaseModel):
    def __init__(self, opt, device: torch.device | None = None):
        """Builds G_A, G_B and (training) D_A, D_B; a subclass adds its networks, then calls
        `place_networks` and creates its optimizers."""
        super().__init__(opt, device)
        self.netG_A = build_generator(opt)
        self.netG_B = build_generator(opt, "G_B")
        self.model_names = ["G_A", "G_B"]
        if self.is_train:
            self.netD_A = build_discriminator(opt)
            self.netD_B = build_discriminator(opt)
            self.model_names += ["D_A", "D_B"]
            self.gan_loss = GANLoss(opt.gan_mode)
            self.image_pools = {"fake_A": ImagePool(opt.pool_size), "fake_B": ImagePool(opt.pool_size)}
        self.d_steps = 0  # discriminator steps taken: the clock of --r1_every

    def run_cycles(self) -> None:
        """Both cycles, a -> fake_B -> rec_A and b -> fake_A -> rec_B, shown as visuals."""
        self.fake_B = self.netG_A(self.real_A)
        self.rec_A = self.netG_B(self.fake_B)
        self.fake_A = self.netG_B(self.real_B)
        self.rec_B = self.netG_A(self.fake_A)
        self.visuals = {"real_A": self.real_A, "fake_B": self.fake_B, "rec_A": self.rec_A,
                        "real_B": self.real_B, "fake_A": self.fake_A, "rec_B": self.rec_B}

    def compute_D_loss(self) -> dict[str, torch.Tensor]:
        """D_A on real B images against G_A's pooled outputs, D_B on real A against G_B's
        (both seen through --diffaug); every --r1_every steps the lazy R1 terms R1_A, R1_B
        (0.5 * lambda_R1 * r1_every * R1, the interval's share in one step)."""
        fake_B = self.image_pools["fake_B"].query(self.fake_B)
        fake_A = self.image_pools["fake_A"].query(self.fake_A)
        L = {"D_A": discriminator_loss(self.gan_loss, self.netD_A, self.real_B, fake_B, self.diffaug),
             "D_B": discriminator_loss(self.gan_loss, self.netD_B, self.real_A, fake_A, self.diffaug)}
        if self.opt.lambda_R1 > 0 and self.d_steps % self.opt.r1_every == 0:
            weight = 0.5 * self.opt.lambda_R1 * self.opt.r1_every
            L["R1_A"] = weight * r1_penalty(self.netD_A, self.real_B)
            L["R1_B"] = weight * r1_penalty(self.netD_B, self.real_A)
        return L

    def update_D(self) -> None:
        """One step of both discriminators on `compute_D_loss`."""
        self.set_requires_grad([self.netD_A, self.netD_B], True)
        self.minimise(self.compute_D_loss, ["D"])
        self.d_steps += 1

    def extra_state(self) -> dict:
        return {**super().extra_state(), "d_steps": self.d_steps}

    def load_extra_state(self, state: dict) -> None:
        super().load_extra_state(state)
        self.d_steps = state.get("d_steps", 0)  # checkpoints from before --lambda_R1 existed

    def update_G(self) -> None:
        """One step of the generators (and of the heads' optimizer "F" where the model has one)
        on the sum of `compute_G_loss`'s terms, logged as "G", the discriminators frozen."""
        self.set_requires_grad([self.netD_A, self.netD_B], False)
        self.minimise(self.compute_G_loss, [name for name in ("G", "F") if name in self.optimizers], log_total="G")
