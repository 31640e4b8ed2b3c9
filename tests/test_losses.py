"""PatchNCE and the GAN objectives against values computed by hand."""
import math

import pytest
import torch
import torch.nn.functional as F

from models.losses import GANLoss, PatchNCELoss, patch_nce_with_negatives


def reference_patch_nce(q, k, T):
    """Straight from the definition, one patch at a time, in plain Python."""
    losses = []
    n = len(q)
    for i in range(n):
        logits = [sum(a * b for a, b in zip(q[i], k[i])) / T]
        for j in range(n):
            logits.append(-10.0 / T if j == i else sum(a * b for a, b in zip(q[i], k[j])) / T)
        top = max(logits)
        log_sum = top + math.log(sum(math.exp(v - top) for v in logits))
        losses.append(log_sum - logits[0])
    return losses


def unit(rows):
    return F.normalize(torch.tensor(rows, dtype=torch.float64), dim=1)


def test_patch_nce_matches_hand_computation():
    q = unit([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
    k = unit([[0.8, 0.6], [0.6, 0.8], [-1.0, 0.2]])
    loss = PatchNCELoss(nce_T=0.07)(q, k, batch_size=1)
    expected = reference_patch_nce(q.tolist(), k.tolist(), 0.07)
    assert loss.shape == (3,)
    assert torch.allclose(loss.double(), torch.tensor(expected, dtype=torch.float64), rtol=1e-5)


def test_patch_nce_keeps_negatives_within_each_image_unless_told():
    torch.manual_seed(0)
    q = F.normalize(torch.randn(2 * 4, 8), dim=1)
    k = F.normalize(torch.randn(2 * 4, 8), dim=1)
    per_image = PatchNCELoss(0.07, all_negatives_from_minibatch=False)(q, k, batch_size=2)
    separately = torch.cat([PatchNCELoss(0.07)(q[:4], k[:4], 1), PatchNCELoss(0.07)(q[4:], k[4:], 1)])
    assert torch.allclose(per_image, separately, atol=1e-6)
    whole_batch = PatchNCELoss(0.07, all_negatives_from_minibatch=True)(q, k, batch_size=2)
    expected = torch.tensor(reference_patch_nce(q.tolist(), k.tolist(), 0.07))
    assert torch.allclose(whole_batch, expected, atol=1e-4)


def test_patch_nce_does_not_backpropagate_into_keys():
    q = F.normalize(torch.randn(4, 8), dim=1).requires_grad_()
    k = F.normalize(torch.randn(4, 8), dim=1).requires_grad_()
    PatchNCELoss()(q, k, 1).mean().backward()
    assert q.grad is not None and k.grad is None


def test_patch_nce_with_given_negatives():
    q = unit([[1.0, 0.0], [0.0, 1.0]])
    k = unit([[1.0, 0.0], [0.6, 0.8]])
    negatives = unit([[0.0, 1.0], [-1.0, 0.0], [0.8, 0.6]])
    loss = patch_nce_with_negatives(q, k, negatives, nce_T=0.5)
    for i in range(2):
        logits = [float(q[i] @ k[i]) / 0.5] + [float(q[i] @ n) / 0.5 for n in negatives]
        expected = -logits[0] + math.log(sum(math.exp(v) for v in logits))
        assert loss[i].item() == pytest.approx(expected, rel=1e-6)


def test_lsgan_values():
    gan = GANLoss("lsgan")
    pred = torch.tensor([0.5, 1.5])
    assert gan(pred, True).item() == pytest.approx((0.25 + 0.25) / 2)
    assert gan(pred, False).item() == pytest.approx((0.25 + 2.25) / 2)


def test_vanilla_values():
    gan = GANLoss("vanilla")
    assert gan(torch.zeros(3), True).item() == pytest.approx(math.log(2))
    assert gan(torch.tensor([2.0]), False).item() == pytest.approx(math.log(1 + math.exp(2)))


def test_hinge_values():
    gan = GANLoss("hinge")
    pred = torch.tensor([0.5, -2.0, 3.0])
    assert gan(pred, True).item() == pytest.approx((0.5 + 3.0 + 0.0) / 3)      # relu(1 - x)
    assert gan(pred, False).item() == pytest.approx((1.5 + 0.0 + 4.0) / 3)     # relu(1 + x)
    assert gan(pred, True, for_discriminator=False).item() == pytest.approx((0.5 + 3.0 + 0.0) / 3)
    with pytest.raises(ValueError):
        gan(pred, False, for_discriminator=False)


def test_unknown_gan_mode():
    with pytest.raises(ValueError, match="gan_mode"):
        GANLoss("wgan")
