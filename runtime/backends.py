"""How a restoring generator runs at test time (test.py --backend, benchmark_speed.py --infer_backends).

- `torch`: the network as it is, in PyTorch (NCHW).
- `channels_last`: the same in channels-last memory layout (oneDNN's NHWC kernels).
- `winograd`: 3x3 and other stride-1 convolutions through NNPACK's Winograd algorithm on
  the CPU (runtime/winograd.py): outputs within about 1e-4 of `torch`; elsewhere (CUDA, no
  NNPACK) the same as `torch`.
- `bf16`: `channels_last` under bf16 autocast, the output cast back to float32: fast where
  the CPU has native bf16 (avx512_bf16, AMX) or on a GPU; its images differ from `torch`'s
  by rounding (BF16_MIN_PSNR states how much at most).
- `compile`: `winograd` under torch.compile (needs a C++ compiler; each new image size
  compiles once, which costs tens of seconds on a small CPU).
- `onnxruntime`: the generator exported to ONNX (runtime/onnx_export.py) and run by
  onnxruntime's CPU kernels with torch's thread count.

Each returns a module that takes and returns an N x C x H x W float32 tensor, so
runtime.inference.restore (padding, tiling) works with any of them.

`auto` (test.py's default) is not a backend but a choice among them: `choose_backend`.
"""
from __future__ import annotations

import copy
import io
import logging
from collections.abc import Callable

import torch
import torch.nn as nn

from util.distributed import compile_network
from .inference import run_padded
from .onnx_export import export_onnx
from .precision import MIN_PROBE_WIDTH, MIN_SPEEDUP, CpuFeatures, amp_mode, best_times, cpu_features
from .winograd import use_winograd, winograd_available

logger = logging.getLogger(__name__)

BACKENDS = ("torch", "channels_last", "winograd", "bf16", "compile", "onnxruntime")
BACKEND_CHOICES = ("auto", *BACKENDS)
DEFAULT_BACKEND = "auto"
# The fp32 backends agree with `torch` to float32 rounding (about 1e-5 of the output range).
FP32_TOLERANCE = 1e-3
# `bf16` keeps 8 significant bits: its images agree with fp32's to at least this PSNR
# (measured: 47 dB for a random ngf 64 network, see tests/test_precision.py).
BF16_MIN_PSNR = 35.0
PROBE_SIZE = 128


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


class Bf16Net(nn.Module):
    """A network run in channels-last layout under bf16 autocast; float32 in and out."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net
        self.size_multiple = getattr(net, "size_multiple", 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, dtype=torch.bfloat16):
            out = self.net(x.contiguous(memory_format=torch.channels_last))
        return out.float().contiguous()


def check_backend_amp(backend: str, amp: str) -> None:
    """Raise ValueError (one line naming the flags) for a backend and an --amp mode that cannot
    both hold; `amp` is amp_mode's 'auto', 'on' or 'off'."""
    if backend == "bf16" and amp == "off":
        raise ValueError("--backend bf16 runs the generator in bf16, which --amp off rules out: drop one of "
                         "the two (--backend torch for fp32)")
    if backend == "onnxruntime" and amp == "on":
        # Measured with onnxruntime 1.32 on the CPU: its Conv has no bfloat16 kernel (the graph is
        # refused as invalid), so --amp on could only be ignored.
        raise ValueError("--backend onnxruntime runs in fp32 only (onnxruntime's CPU convolutions have no "
                         "bf16), so --amp on cannot apply: use --backend bf16 for bf16, or drop --amp on")


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
    if backend == "bf16":
        return Bf16Net(copy.deepcopy(net).to(memory_format=torch.channels_last))
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


def network_width(net: nn.Module) -> int:
    """The channels of the first convolution: a generator's ngf."""
    first = next((m for m in net.modules() if isinstance(m, nn.Conv2d)), None)
    return first.out_channels if first is not None else 0


def probe_backends(net: nn.Module, names: list[str], device: torch.device, size: int = PROBE_SIZE,
                   repeats: int = 3) -> dict[str, float]:
    """Seconds per size x size restoration of each backend (best of `repeats`, interleaved)."""
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(1, 3, size, size, generator=g) * 2 - 1).to(device)
    runs = {}
    for name in names:
        prepared = inference_network(net, name, device)
        runs[name] = lambda prepared=prepared: run_padded(prepared, x)
    return best_times(runs, repeats)


_CHOICES: dict[tuple, tuple[str, str]] = {}


def choose_backend(net: nn.Module, device: torch.device, amp: str | bool = "auto",
                   features: CpuFeatures | None = None,
                   probe: Callable[[nn.Module, list[str], torch.device], dict[str, float]] = probe_backends,
                   ) -> tuple[str, str]:
    """The backend `auto` runs `net` with here, and why (for one log line).

    --amp on: `bf16`; on CUDA `bf16` where the GPU has it (--amp off: `torch`). On the CPU,
    networks narrower than MIN_PROBE_WIDTH keep `winograd` (NNPACK; `channels_last`
    without it); wider ones time a short restoration with each fp32 candidate (`winograd`,
    `channels_last`) and, where the CPU has native bf16 and --amp is not off, with `bf16`,
    which is taken only when it is MIN_SPEEDUP times faster than the best fp32 one.
    `onnxruntime` and `compile` are never picked: each costs an export or a compilation
    per run before its first image. The choice is kept per process.
    """
    amp = amp_mode(amp)
    if amp == "on":
        return "bf16", "--amp on"
    if device.type != "cpu":
        if amp == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported():
            return "bf16", "the GPU supports bf16"
        return "torch", "fp32 on the GPU" if amp == "auto" else "--amp off"
    fp32 = ["winograd", "channels_last"] if winograd_available() else ["channels_last"]
    width = network_width(net)
    if width < MIN_PROBE_WIDTH:
        return fp32[0], f"ngf {width} < {MIN_PROBE_WIDTH}: too narrow for a probe to pay"
    features = features or cpu_features()
    bf16 = amp == "auto" and features.native_bf16
    key = (width, sum(p.numel() for p in net.parameters()), torch.get_num_threads(), amp, features, probe)
    if key in _CHOICES:
        return _CHOICES[key]
    times = probe(net, fp32 + (["bf16"] if bf16 else []), device)
    fastest = min(fp32, key=times.__getitem__)
    speeds = ", ".join(f"{name} {1e3 * seconds:.0f} ms" for name, seconds in times.items())
    if not bf16:
        why = "bf16 off by --amp" if amp == "off" else f"CPU ({features.describe()}) would emulate bf16"
        choice = (fastest, f"{why}; probe at ngf {width}: {speeds}")
    else:
        gain = times[fastest] / times["bf16"]
        have = "AMX" if features.amx else "avx512_bf16"
        if gain >= MIN_SPEEDUP:
            choice = ("bf16", f"CPU has {have}, probe {gain:.2f}x {fastest} at ngf {width}")
        else:
            choice = (fastest, f"CPU has {have} but bf16 probed {gain:.2f}x {fastest} at ngf {width}, "
                               f"under the {MIN_SPEEDUP}x needed")
    _CHOICES[key] = choice
    return choice
