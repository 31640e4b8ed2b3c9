"""How a restoring generator runs at test time (test.py --backend, benchmark_speed.py --infer_backends).

- `torch`: the network as it is, in PyTorch (NCHW).
- `channels_last`: the same in channels-last memory layout (oneDNN's NHWC kernels).
- `winograd`: 3x3 and other stride-1 convolutions through NNPACK's Winograd algorithm on
  the CPU (util/winograd.py): outputs within about 1e-4 of `torch`; elsewhere (CUDA, no
  NNPACK) the same as `torch`.
- `compile`: `winograd` under torch.compile (needs a C++ compiler; each new image size
  compiles once, which costs tens of seconds on a small CPU).
- `onnxruntime`: the generator exported to ONNX (util/onnx_export.py) and run by
  onnxruntime's CPU kernels with torch's thread count.

Each returns a module that takes and returns an N x C x H x W float32 tensor, so
util.inference.restore (padding, tiling) works with any of them.
"""
from __future__ import annotations

import copy
import io
import logging

import torch
import torch.nn as nn

from .distributed import compile_network
from .onnx_export import export_onnx
from .winograd import use_winograd, winograd_available

logger = logging.getLogger(__name__)

BACKENDS = ("torch", "channels_last", "winograd", "compile", "onnxruntime")
DEFAULT_BACKEND = "winograd"


class BackendError(RuntimeError):
    """A backend that cannot run here (onnxruntime missing, no compiler, the wrong device)."""


class OnnxRuntimeNet(nn.Module):
    """An onnxruntime session behind a module's call: tensor in, tensor out (on the input's device)."""

    def __init__(self, session, size_multiple: int):
        super().__init__()
        self.session = session
        self.size_multiple = size_multiple

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (out,) = self.session.run(None, {"image": x.detach().float().cpu().numpy()})
        return torch.from_numpy(out).to(x.device)


def onnxruntime_network(net: nn.Module) -> OnnxRuntimeNet:
    """`net` exported to ONNX in memory and loaded into an onnxruntime CPU session."""
    try:
        import onnxruntime
    except ImportError as err:
        raise BackendError("--backend onnxruntime needs onnxruntime (pip install onnxruntime)") from err
    buffer = io.BytesIO()
    export_onnx(net, buffer)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = onnxruntime.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])
    return OnnxRuntimeNet(session, getattr(net, "size_multiple", 4))


def inference_network(net: nn.Module, backend: str, device: torch.device) -> nn.Module:
    """`net` (a plain generator in eval mode, on `device`) prepared to run with `backend`.

    `net` itself is left unchanged: the backends that alter modules work on a copy. Raises
    BackendError where the backend cannot run.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend '{backend}'; choose one of {BACKENDS}")
    if backend == "torch":
        return net
    if backend == "onnxruntime":
        if device.type != "cpu":
            raise BackendError("--backend onnxruntime runs on the CPU; use --gpu_ids -1 or another backend")
        return onnxruntime_network(net)
    if backend == "channels_last":
        return copy.deepcopy(net).to(memory_format=torch.channels_last)
    fast = copy.deepcopy(net)
    if device.type == "cpu" and not winograd_available():
        logger.warning("this PyTorch has no NNPACK: --backend %s keeps the direct convolutions", backend)
    elif device.type == "cpu":
        logger.info("%d convolutions run as Winograd convolutions (NNPACK)", use_winograd(fast))
    if backend == "compile":
        try:
            return compile_network(fast, device)
        except RuntimeError as err:
            raise BackendError(str(err)) from err
    return fast
