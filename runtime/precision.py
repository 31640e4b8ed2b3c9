"""Whether bf16 autocast pays here: what the CPU is, and a short measured probe (--amp auto).

Where the CPU has no native bf16 (neither avx512_bf16 nor AMX), torch emulates it about
100x slower than fp32, so bf16 is never chosen there. Where it is native, the gain depends
on the width: on an AMX Xeon a 3x3 convolution gained 2.6-3.5x at 64-256 channels and
nothing (0.75-1.2x) at 16; on a Zen 4 EPYC (avx512_bf16, no AMX) 1.4x at 64 channels and
1.9x at 256, and a whole training iteration 1.5x at ngf 64 but 1.05x at ngf 16. So `auto`
leaves networks under MIN_BF16_WIDTH channels in fp32, and for wider ones measures one
convolution at the network's width in fp32 and in bf16 and takes bf16 only when it is
clearly faster; the verdict is kept for the process.

On CUDA `auto` means bf16 where the GPU supports it and fp32 elsewhere: fp16, the other
half precision, needs a gradient scaler and can overflow, so only an explicit --amp on
chooses it (on GPUs without bf16).

Weights, optimizer state and checkpoints stay fp32 whatever is chosen: autocast only
changes the precision the operators compute in.
"""
from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

logger = logging.getLogger(__name__)

AMP_MODES = ("auto", "on", "off")
# bf16 must beat fp32 by this much to be chosen: the probe is a few ms on a shared CPU, so
# a smaller measured gain may be noise, and bf16 costs precision (8 significant bits).
MIN_SPEEDUP = 1.2
# Narrower networks cost milliseconds per image: a probe would cost more than it could save.
MIN_PROBE_WIDTH = 16
# Below this width the other operators (norms, pads, casts) dominate a training iteration:
# bf16 gained 1.05x at ngf 16 on a Zen 4 EPYC, 0.75-1.2x on an AMX Xeon.
MIN_BF16_WIDTH = 32
PROBE_SIZE = 128

_TRUE = ("on", "true", "yes", "1")
_FALSE = ("off", "false", "no", "0")


def amp_mode(value: str | bool | None) -> str:
    """--amp's value: 'auto', 'on' or 'off'; true/false, yes/no, 1/0 (and Python bools) still work."""
    if value is None:
        return "auto"
    if isinstance(value, bool):
        return "on" if value else "off"
    text = str(value).strip().lower()
    if text == "auto":
        return "auto"
    if text in _TRUE:
        return "on"
    if text in _FALSE:
        return "off"
    raise argparse.ArgumentTypeError(f"expected auto, on or off (or true/false), got '{value}'")


@dataclass(frozen=True)
class CpuFeatures:
    """What decides the CPU's bf16 speed. `capability` is torch's kernel ISA ('AVX2', 'AVX512', ...)."""
    capability: str
    avx512_bf16: bool
    amx: bool

    @property
    def native_bf16(self) -> bool:
        return self.avx512_bf16 or self.amx

    def describe(self) -> str:
        """e.g. 'AVX512, avx512_bf16, no AMX'."""
        bf16 = "avx512_bf16" if self.avx512_bf16 else "no avx512_bf16"
        return f"{self.capability}, {bf16}, {'AMX' if self.amx else 'no AMX'}"


def _cpuinfo_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_features() -> CpuFeatures:
    """This CPU's features, from torch's own checks (cpuinfo's flags where torch lacks them)."""
    avx512_bf16 = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    amx = getattr(torch.cpu, "_is_amx_tile_supported", None)
    flags = _cpuinfo_flags() if avx512_bf16 is None or amx is None else set()
    return CpuFeatures(capability=torch.backends.cpu.get_cpu_capability(),
                       avx512_bf16=avx512_bf16() if avx512_bf16 else "avx512_bf16" in flags,
                       amx=amx() if amx else "amx_bf16" in flags)


@dataclass(frozen=True)
class Bf16Verdict:
    """Whether bf16 autocast is worth it, and why (one clause for a log line)."""
    use: bool
    reason: str


def best_times(runs: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """The least wall time of `repeats` calls of each run, calls interleaved (A B A B ...) so
    that other load slows all of them alike; one untimed call of each first. (This process's
    CPU seconds would be steadier on a shared CPU but misjudge NNPACK: measured here, its
    Winograd convolutions counted slower than channels-last in CPU time and ran faster.)"""
    for run in runs.values():
        run()
    best = {name: float("inf") for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def layer_speedup(width: int, train: bool, size: int = PROBE_SIZE, repeats: int = 5) -> float:
    """fp32 time / bf16 time of one 3x3 convolution and ReLU at `width` channels on a
    size x size CPU map; forward and backward when `train`. (With an instance norm the
    layer measured 0.75x where whole training iterations ran 1.5x faster in bf16.)

    Its own random generator: the probe leaves torch's global random state as it was."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, width, size, size, generator=g)
    weight = (torch.randn(width, width, 3, 3, generator=g) / (3 * width ** 0.5)).requires_grad_(train)

    def layer(bf16: bool) -> Callable[[], None]:
        def run() -> None:
            with torch.set_grad_enabled(train), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                y = F.relu(F.conv2d(x, weight, padding=1))
            if train:
                y.float().sum().backward()
                weight.grad = None
        return run

    times = best_times({"fp32": layer(False), "bf16": layer(True)}, repeats)
    return times["fp32"] / times["bf16"]


_VERDICTS: dict[tuple, Bf16Verdict] = {}


def bf16_verdict(device: torch.device, width: int, train: bool, features: CpuFeatures | None = None,
                 probe: Callable[[int, bool], float] = layer_speedup) -> Bf16Verdict:
    """Whether bf16 autocast makes a network of `width` channels (ngf) faster on `device`.

    CPU: never without native bf16, never below MIN_BF16_WIDTH channels, otherwise when
    `probe(width, train)` (fp32 time / bf16 time) reaches MIN_SPEEDUP; kept per process.
    """
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported():
            return Bf16Verdict(True, "the GPU supports bf16")
        return Bf16Verdict(False, "the GPU has no bf16 (fp16 needs --amp on)")
    if device.type != "cpu":
        return Bf16Verdict(False, f"no bf16 rule for {device.type}")
    features = features or cpu_features()
    if not features.native_bf16:
        return Bf16Verdict(False, f"CPU ({features.describe()}) would emulate bf16, far slower than fp32")
    if width < MIN_BF16_WIDTH:
        return Bf16Verdict(False, f"ngf {width} < {MIN_BF16_WIDTH}: too narrow for bf16 to gain")
    key = (width, train, torch.get_num_threads(), features, probe)
    if key not in _VERDICTS:
        speedup = probe(width, train)
        have = "AMX" if features.amx else "avx512_bf16"
        verdict = f"CPU has {have}, probe {speedup:.2f}x fp32 at ngf {width}"
        if speedup < MIN_SPEEDUP:
            verdict += f", under the {MIN_SPEEDUP}x needed"
        _VERDICTS[key] = Bf16Verdict(speedup >= MIN_SPEEDUP, verdict)
    return _VERDICTS[key]


def amp_dtype(mode: str | bool, device: torch.device, width: int, train: bool,
              features: CpuFeatures | None = None,
              probe: Callable[[int, bool], float] = layer_speedup) -> tuple[torch.dtype | None, str]:
    """The autocast dtype for --amp `mode` (None: fp32) and why.

    on: bf16 (fp16 on a GPU without bf16, with the gradient scaler); off: fp32; auto: bf16
    where `bf16_verdict` says it is faster, otherwise fp32 (never fp16).
    """
    mode = amp_mode(mode)
    if mode == "off":
        return None, "--amp off"
    if mode == "on":
        if device.type == "cuda" and not torch.cuda.is_bf16_supported():
            return torch.float16, "--amp on, the GPU has no bf16"
        return torch.bfloat16, "--amp on"
    verdict = bf16_verdict(device, width, train, features, probe)
    return (torch.bfloat16 if verdict.use else None), verdict.reason
