"""A restoring generator as ONNX: dynamic batch, height and width, padding inside the graph."""
from __future__ import annotations

import io
import warnings
from pathlib import Path

import torch
import torch.nn as nn

from .inference import pad_to_multiple

# Traced at a size that needs padding, so the graph holds the pad (a zero pad is a no-op).
TRACE_SIZE = (70, 66)
MIN_SIDE = 16
# The pad's size depends on the input's: opsets below 11 only export constant pads.
MIN_OPSET = 11


class PaddedRestorer(nn.Module):
    """generator(reflect-pad to a multiple of 4) cropped back to the input size."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net
        self.multiple = getattr(net, "size_multiple", 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded, (h, w) = pad_to_multiple(x, self.multiple)
        return self.net(padded)[..., :h, :w]


def export_onnx(net: nn.Module, out: str | Path | io.BytesIO, opset: int = 17) -> None:
    """Write `net` wrapped in PaddedRestorer as ONNX to a file or a buffer.

    The graph takes a float32 N x 3 x H x W image in [-1, 1] (input 'image', H and W at
    least MIN_SIDE) and returns the restored image of the same size ('restored').
    """
    model = PaddedRestorer(net).eval()
    example = torch.zeros(1, 3, *TRACE_SIZE)
    with warnings.catch_warnings():
        # The pad/crop sizes are read from the input's shape: the tracer warns that Python
        # branches on them become constants, which holds here (the pad is always present;
        # its amount stays dynamic in the graph, as the onnxruntime check confirms).
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
        warnings.filterwarnings("ignore", message=".*Constant folding.*")
        warnings.filterwarnings("ignore", message="The feature will be removed", category=DeprecationWarning)
        # Instance norm without running statistics always normalises by the input's own
        # statistics, which is what the exporter's train=True means here.
        warnings.filterwarnings("ignore", message=".*operator 'instance_norm' is set to train=True.*")
        axes = {0: "batch", 2: "height", 3: "width"}
        torch.onnx.export(model, (example,), out if isinstance(out, io.BytesIO) else str(out), dynamo=False,
                          opset_version=opset, input_names=["image"], output_names=["restored"],
                          dynamic_axes={"image": axes, "restored": axes})
