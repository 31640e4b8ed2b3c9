"""Loss functions: GAN objectives, PatchNCE, the negative generator's diversity term, SSIM.

Each takes what it needs as arguments; the model files combine them into their objectives
(docs/METHODS.md).
"""
from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F


class GANLoss(nn.Module):
    """`lsgan` (MSE to 1/0), `vanilla` (BCE with logits) or `hinge`.

    Hinge follows the DCLGAN family: D minimises mean relu(1 - D(real)) and
    mean relu(1 + D(fake)); G minimises mean relu(1 - D(fake)).
    """

    modes = ("lsgan", "vanilla", "hinge")

    def __init__(self, gan_mode: str):
        super().__init__()
        if gan_mode not in self.modes:
            raise ValueError(f"unknown --gan_mode '{gan_mode}'; choose one of {self.modes}")
        self.gan_mode = gan_mode

    def forward(self, prediction: torch.Tensor, target_is_real: bool, for_discriminator: bool = True) -> torch.Tensor:
        prediction = prediction.float()
        if self.gan_mode == "hinge":
            if for_discriminator:
                margin = 1 - prediction if target_is_real else 1 + prediction
            else:
                if not target_is_real:
                    raise ValueError("the generator's hinge loss only has a 'real' target")
                margin = 1 - prediction
            return F.relu(margin).mean()
        target = torch.full_like(prediction, 1.0 if target_is_real else 0.0)
        if self.gan_mode == "lsgan":
            return F.mse_loss(prediction, target)
        return F.binary_cross_entropy_with_logits(prediction, target)


def discriminator_loss(criterion: GANLoss, net_D: nn.Module, real: torch.Tensor, fake: torch.Tensor,
                       augment: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """One discriminator's objective: 0.5 * (its loss on `real` + its loss on the detached `fake`).

    `augment` (--diffaug) transforms both before D sees them, each with its own random draw."""
    fake = fake.detach()
    if augment is not None:
        real, fake = augment(real), augment(fake)
    return 0.5 * (criterion(net_D(real), True) + criterion(net_D(fake), False))


def r1_penalty(net_D: nn.Module, real: torch.Tensor) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): the squared norm of D's gradient with respect to its real
    input, summed over each image's pixels and averaged over the batch. For a PatchGAN the
    gradient is that of the sum of its patch outputs. Built with `create_graph`, so D's
    step can minimise it."""
    real = real.detach().float().requires_grad_(True)
    out = net_D(real).float()
    (grad,) = torch.autograd.grad(out.sum(), real, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()


class PatchNCELoss(nn.Module):
    """InfoNCE over sampled patches: the same location is the positive, others negatives.

    q and k have shape (B * P, C) and are L2-normalised, so a dot product is a cosine.
    All similarities are one batched matrix product (the reference's broadcast cosine
    materialises a P x P x C tensor and dominates its run time). The self-similarity
    column among the negatives is masked to -10 as in the reference.
    """

    def __init__(self, nce_T: float = 0.07, all_negatives_from_minibatch: bool = False):
        super().__init__()
        self.nce_T = nce_T
        self.all_negatives_from_minibatch = all_negatives_from_minibatch

    def forward(self, q: torch.Tensor, k: torch.Tensor, batch_size: int) -> torch.Tensor:
        """Return the per-patch loss, shape (B * P,)."""
        k = k.detach()
        q, k = q.float(), k.float()
        l_pos = (q * k).sum(dim=1, keepdim=True)
        groups = 1 if self.all_negatives_from_minibatch else batch_size
        dim = q.shape[1]
        qg = q.reshape(groups, -1, dim)
        kg = k.reshape(groups, -1, dim)
        l_neg = torch.bmm(qg, kg.transpose(1, 2))
        n = l_neg.shape[-1]
        eye = torch.eye(n, dtype=torch.bool, device=q.device)[None]
        l_neg = l_neg.masked_fill(eye, -10.0).reshape(-1, n)
        logits = torch.cat([l_pos, l_neg], dim=1) / self.nce_T
        target = torch.zeros(logits.shape[0], dtype=torch.long, device=q.device)
        return F.cross_entropy(logits, target, reduction="none")


def patch_nce_with_negatives(q: torch.Tensor, k: torch.Tensor, negatives: torch.Tensor,
                             nce_T: float = 0.07, groups: int = 1, shared_negatives: torch.Tensor | None = None,
                             extra_positives: torch.Tensor | None = None) -> torch.Tensor:
    """InfoNCE where the negatives are given (NEGCUT / CDD-GAN): q, k (N, C), negatives (M, C).

    With `groups` 1 every query shares the same M negatives. With `groups` g the rows of q
    and of the negatives split into g equal consecutive blocks (one per image) and each
    query sees only its own block's negatives. Returns the per-patch loss, shape (N,).

    CDD-GAN's additions, both optional and detached: `shared_negatives` (K, C), e.g. a
    queue of earlier negatives, are seen by every query. `extra_positives` (E, C), grouped
    like the negatives, form one more positive whose logit is the log-mean-exp of the
    query's logits to them; the loss is then -log of the two positives' softmax mass. The
    mean (not the sum) keeps E unanchored vectors from outweighing the same-location key.
    """
    dim = q.shape[1]

    def grouped_logits(others: torch.Tensor) -> torch.Tensor:
        sims = torch.bmm(q.reshape(groups, -1, dim), others.reshape(groups, -1, dim).transpose(1, 2))
        return sims.reshape(q.shape[0], -1)

    l_pos = (q * k.detach()).sum(dim=1, keepdim=True)
    l_neg = grouped_logits(negatives)
    if shared_negatives is not None:
        l_neg = torch.cat([l_neg, q @ shared_negatives.detach().to(q.dtype).T], dim=1)
    if extra_positives is None:
        logits = torch.cat([l_pos, l_neg], dim=1) / nce_T
        target = torch.zeros(logits.shape[0], dtype=torch.long, device=q.device)
        return F.cross_entropy(logits.float(), target, reduction="none")
    l_extra = grouped_logits(extra_positives.detach()).float() / nce_T
    extra = torch.logsumexp(l_extra, dim=1, keepdim=True) - math.log(l_extra.shape[1])
    positives = torch.cat([l_pos.float() / nce_T, extra], dim=1)
    everything = torch.cat([positives, l_neg.float() / nce_T], dim=1)
    return torch.logsumexp(everything, dim=1) - torch.logsumexp(positives, dim=1)


def negative_diversity(negatives: list[torch.Tensor], count: int) -> torch.Tensor:
    """Mean |first half - second half| of each image's negatives, averaged over layers.

    The generator maximises it so that different noise gives different negatives (a
    mode-seeking term; without it N tends to emit one vector per image).
    """
    half = count // 2
    per_layer = []
    for neg in negatives:
        per_image = neg.reshape(-1, count, neg.shape[1])
        per_layer.append((per_image[:, :half] - per_image[:, half:2 * half]).abs().float().mean())
    return sum(per_layer) / len(per_layer)


def gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """A normalised 2-D Gaussian window, shape (size, size)."""
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-x ** 2 / (2 * sigma ** 2))
    g = g / g.sum()
    return g[:, None] * g[None, :]


def ssim_loss(x: torch.Tensor, y: torch.Tensor, window_size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """1 - SSIM of two image batches in [-1, 1], differentiable in both.

    Wang et al.'s SSIM on the images mapped to [0, 1] (data range 1, K1 0.01, K2 0.03), per
    RGB channel with a Gaussian window (sigma 1.5, 11 px) over the positions where the window
    fits (no padding), averaged over positions, channels and images: the convention of
    docs/METHODS.md section 5 (scikit-image's `gaussian_weights=True`), here on float images.
    """
    if min(x.shape[-2:]) < window_size:
        raise ValueError(f"SSIM needs images of at least {window_size} x {window_size} px, got {tuple(x.shape[-2:])}")
    # Variances are differences of close local means: half precision (autocast's convolutions
    # included) would cancel them away, so this runs in float32 at least.
    dtype = torch.promote_types(x.dtype, torch.float32)
    with torch.autocast(device_type=x.device.type, enabled=False):
        x, y = (x.to(dtype) + 1) / 2, (y.to(dtype) + 1) / 2
        channels = x.shape[1]
        window = gaussian_window(window_size, sigma).to(x).expand(channels, 1, window_size, window_size)

        def local_mean(t: torch.Tensor) -> torch.Tensor:
            return F.conv2d(t, window, groups=channels)

        mu_x, mu_y = local_mean(x), local_mean(y)
        var_x = local_mean(x * x) - mu_x * mu_x
        var_y = local_mean(y * y) - mu_y * mu_y
        cov = local_mean(x * y) - mu_x * mu_y
        c1, c2 = 0.01 ** 2, 0.03 ** 2
        ssim_map = (((2 * mu_x * mu_y + c1) * (2 * cov + c2))
                    / ((mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2)))
        return 1 - ssim_map.mean()

