"""Winograd convolutions on the CPU (NNPACK): the same convolution with fewer multiplications.

A stride-1 3x3 convolution computed with Winograd's minimal filtering algorithm (NNPACK's
F(6x6, 3x3)) needs about a fifth of the multiplications of the direct method; on this
project's CPU the generators' 3x3 convolutions ran 2.2-3.3x faster than oneDNN's direct
kernels (one thread, best of 7 calls, 2026-11-26). The price is rounding: outputs differ
from the direct convolution by about 1e-5 of their magnitude (a direct float32
convolution: about 3e-7).

`use_winograd(net)` turns every eligible `nn.Conv2d` of a network into a `WinogradConv2d`:
the same parameters and state dict, whose float32 CPU forward runs through NNPACK, and
whose backward computes the input's gradient (a convolution with the flipped, transposed
kernel) through NNPACK as well and the kernel's gradient with PyTorch's own kernel. Other
inputs (CUDA, bf16 autocast, float64, channels-last) take the ordinary convolution.

PyTorch only picks NNPACK itself for batches of 16 or more without oneDNN; here it is
called directly, wrapped as a custom operator so torch.compile and autograd see it.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
from torch.utils.flop_counter import register_flop_formula

# NNPACK's limits: kernels up to 16 x 16 and padding smaller than the kernel.
MAX_KERNEL = 16


def winograd_available() -> bool:
    """True where this PyTorch was built with NNPACK and NNPACK runs on this CPU.

    The call also initialises NNPACK, which its convolution needs before the first use.
    """
    return torch.backends.nnpack.is_available()


@torch.library.custom_op("dcdgan::winograd_conv2d", mutates_args=())
def winograd_conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                    padding: Sequence[int]) -> torch.Tensor:
    """Stride-1 convolution of a float32 NCHW CPU tensor through NNPACK (zero padding)."""
    x, weight = x.contiguous(), weight.contiguous()
    # One image at a time: NNPACK's batched path (nnp_convolution_output) took 1.3-2.2x
    # longer per image than its single-image inference path here.
    outputs = [torch._nnpack_spatial_convolution(image, weight, bias, list(padding), [1, 1]) for image in x.split(1)]
    return outputs[0] if len(outputs) == 1 else torch.cat(outputs)


@winograd_conv2d.register_fake
def _winograd_conv2d_shape(x, weight, bias, padding):
    height = x.shape[2] + 2 * padding[0] - weight.shape[2] + 1
    width = x.shape[3] + 2 * padding[1] - weight.shape[3] + 1
    return x.new_empty(x.shape[0], weight.shape[0], height, width)


def _save_for_backward(ctx, inputs, output) -> None:
    x, weight, bias, padding = inputs
    ctx.save_for_backward(x, weight)
    ctx.padding = list(padding)
    ctx.has_bias = bias is not None


def _winograd_conv2d_backward(ctx, grad: torch.Tensor):
    x, weight = ctx.saved_tensors
    needs_x, needs_weight, needs_bias = ctx.needs_input_grad[:3]
    grad_x = grad_weight = grad_bias = None
    if needs_x:
        # d(conv)/dx is the "full" convolution of the gradient with the kernel flipped and
        # its in/out channels swapped: padding k - 1 - p, also a Winograd-sized problem.
        kh, kw = weight.shape[2:]
        flipped = weight.transpose(0, 1).flip(2, 3)
        grad_x = winograd_conv2d(grad, flipped, None, [kh - 1 - ctx.padding[0], kw - 1 - ctx.padding[1]])
    if needs_weight or needs_bias:
        bias_sizes = [weight.shape[0]] if ctx.has_bias else None
        _, grad_weight, grad_bias = torch.ops.aten.convolution_backward(
            grad, x, weight, bias_sizes, [1, 1], ctx.padding, [1, 1], False, [0, 0], 1,
            [False, needs_weight, needs_bias and ctx.has_bias])
    return grad_x, grad_weight, grad_bias, None


winograd_conv2d.register_autograd(_winograd_conv2d_backward, setup_context=_save_for_backward)


@register_flop_formula(torch.ops.dcdgan.winograd_conv2d)
def _winograd_conv2d_flops(x_shape, w_shape, bias_shape, padding, *, out_shape, **kwargs) -> int:
    """The direct convolution's FLOPs, so that figures compare across algorithms.

    Counted over the smaller of input and output: an input gradient (a "full" convolution,
    larger out than in) then costs what its forward did, as PyTorch's own count has it.
    """
    batch, channels_in = x_shape[:2]
    channels_out, _, kh, kw = w_shape
    area = min(x_shape[2] * x_shape[3], out_shape[2] * out_shape[3])
    return 2 * batch * channels_in * channels_out * kh * kw * area


class WinogradConv2d(nn.Conv2d):
    """An `nn.Conv2d` (stride 1, zero padding) whose float32 CPU convolutions use NNPACK."""

    def _conv_forward(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        if (x.device.type == "cpu" and x.dtype == weight.dtype == torch.float32 and x.dim() == 4
                and x.is_contiguous() and not torch.is_autocast_enabled("cpu")):
            return winograd_conv2d(x, weight, bias, self.padding)
        return super()._conv_forward(x, weight, bias)


def _eligible(conv: nn.Module) -> bool:
    return (type(conv) is nn.Conv2d and conv.stride == (1, 1) and conv.dilation == (1, 1) and conv.groups == 1
            and conv.padding_mode == "zeros" and not isinstance(conv.padding, str)
            and max(conv.kernel_size) <= MAX_KERNEL
            and all(p < k for p, k in zip(conv.padding, conv.kernel_size)))


def use_winograd(net: nn.Module) -> int:
    """Make `net`'s eligible convolutions WinogradConv2d in place; returns how many.

    Only the class changes: parameters (and so optimizers, EMA copies and checkpoints) stay
    as they are. Without NNPACK (see `winograd_available`) nothing changes.
    """
    if not winograd_available():
        return 0
    count = 0
    for module in net.modules():
        if _eligible(module):
            module.__class__ = WinogradConv2d
            count += 1
    return count
