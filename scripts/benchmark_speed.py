"""Training and inference speed of a model, one JSON line per configuration.

    python scripts/benchmark_speed.py --model dcl --ngf 64 --crop_size 128 --amp off,on
    python scripts/benchmark_speed.py --model dcdgan --ngf 64 --skip_train --infer_sizes 512 \
        --infer_backends torch,channels_last,winograd,bf16,auto

Takes train.py's flags (--dataroot is optional: without it the batches are random tensors,
so only compute is timed). A comma-separated value of a sweepable flag (--amp,
--channels_last, --compile, --winograd, --model, --dcd_variant, --batch_size, --crop_size, --ngf, --ndf,
--netG, --num_threads) runs every combination. Each line reports:
- train: seconds per iteration (wall and this process's CPU seconds: on a shared machine
  the wall time grows with other load, the CPU time much less), iterations/s, images/s,
  peak memory (process RSS; on CUDA
  also torch.cuda.max_memory_allocated), FLOPs of one iteration counted by
  torch.utils.flop_counter.FlopCounterMode, achieved GFLOP/s and its fraction of the
  measured matmul peak of the same dtype; with --dataroot also the DataLoader's images/s;
- infer: per size (N for N x N, or WxH), images/s, megapixels/s, achieved GFLOP/s (the
  direct convolutions' count, whatever algorithm runs them), its fraction of the measured
  fp32 matmul peak and peak RSS of the restoring generator (runtime.inference.restore, the
  test.py path), whole or in tiles of --infer_tile, for each of --infer_backends
  (runtime/backends.py; `auto` is timed as the backend it chooses, named under "chosen") with
  its speed-up over the first, its largest difference to the first's output and the PSNR
  between the two (bf16 rounds far more than the fp32 backends); --infer_batch restores that
  many images per call (instance norm keeps each image's statistics its own, so batching
  changes no output);
- peak: this machine's dense matmul GFLOP/s in fp32 and bf16, measured in the same run;
- load: the 1-minute load average before and after (other processes skew CPU figures).
A header line on stderr names the CPU: torch's kernel ISA, avx512_bf16 and AMX (what
decides whether bf16 is native), and each configuration's line says which precision
--amp (on, off, auto) resolved to and why.

`--reference_costs` (dcl, dcdgan) emulates the released DCLGAN code's per-iteration costs
on the same machine: fresh encoder passes for every PatchNCE term and the broadcast cosine
similarity that materialises a P x P x C tensor (the losses are the same values).
`--against_reference` times, in the same run, each configuration's reference (its model and
sizes, no speed lever, costs emulated) and adds `speedup_over_reference` to its line.

`--profile N` profiles one more training iteration with torch.profiler and reports its N
most expensive operators (self CPU time) and the share of the convolutions.

`--nan_guard` times the steps with the training loop's NaN/Inf check (NonFiniteGuard) on:
on a GPU it reads a flag back to the host before every update, which the plain figures
leave out.

`--tiled_memory 4000x3000` instead measures peak RSS and time of restoring one image of
that size whole and in tiles (--tile, --tile_overlap), to show tiling bounds memory.
"""
from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import logging
import math
import os
import resource
import sys
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from models import create_model
from models.builders import generator_architecture
from models.dcl_model import DCLModel
from options.train_options import TrainOptions
from training.guards import NonFiniteGuard
from runtime.backends import BACKENDS, DEFAULT_BACKEND, choose_backend, inference_network
from util.distributed import compile_network, device_of, unwrap
from runtime.inference import restore
from util.log import setup_logging
from runtime.precision import cpu_features

logger = logging.getLogger("benchmark")

SWEEPABLE = ("amp", "channels_last", "compile", "winograd", "model", "dcd_variant", "batch_size", "crop_size", "ngf",
             "ndf", "netG", "num_threads")
# Inference FLOPs are counted at this size and scaled by pixel count: every layer is a
# convolution whose cost is proportional to its output area (sizes multiple of 4).
FLOP_PROBE_SIZE = 128


def bench_arguments(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iters", type=int, default=10, help="timed training iterations")
    parser.add_argument("--warmup", type=int, default=2, help="untimed training iterations first")
    parser.add_argument("--infer_sizes", default="512,1024",
                        help="inference sizes, N (square) or WxH, comma-separated; empty to skip")
    parser.add_argument("--infer_tile", type=int, default=0,
                        help="restore in tiles of this size (overlap --tile_overlap), as test.py --tile; 0: whole")
    parser.add_argument("--infer_iters", type=int, default=2, help="timed images per inference size")
    parser.add_argument("--infer_backends", default=DEFAULT_BACKEND,
                        help=f"comma-separated, side by side: {', '.join(BACKENDS)}, auto (the first is the reference "
                             "for speed-ups and output differences)")
    parser.add_argument("--infer_batch", default="1",
                        help="images restored per call; comma-separated to compare (results keyed '<size> batch <n>')")
    parser.add_argument("--skip_train", action="store_true", help="inference only")
    parser.add_argument("--skip_peak", action="store_true", help="do not measure the matmul peak")
    parser.add_argument("--data_batches", type=int, default=20, help="batches read to time the DataLoader")
    parser.add_argument("--tiled_memory", default=None, metavar="WxH",
                        help="measure whole vs tiled restoration of one WxH image instead")
    parser.add_argument("--tile", type=int, default=512, help="tile size for --tiled_memory")
    parser.add_argument("--tile_overlap", type=int, default=32, help="tile overlap for --tiled_memory and --infer_tile")
    parser.add_argument("--reference_costs", action="store_true",
                        help="dcl/dcdgan: emulate the released DCLGAN code's costs (see emulate_reference_costs)")
    parser.add_argument("--against_reference", action="store_true",
                        help="dcl/dcdgan: also time each configuration as the released code computes it, without "
                             "speed levers, and report the speed-up over it")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="profile one training iteration; report its N most expensive operators")
    parser.add_argument("--nan_guard", action="store_true",
                        help="time the steps with the training loop's NaN/Inf check (NonFiniteGuard) on")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--out", default=None, help="also append the JSON lines to this file")
    return parser.parse_known_args(argv)


def expand_sweeps(argv: list[str]) -> list[list[str]]:
    """One argument list per combination of the comma-separated sweepable values."""
    axes: list[tuple[int, list[str]]] = []
    for i, token in enumerate(argv[:-1]):
        if token.startswith("--") and token[2:] in SWEEPABLE and "," in argv[i + 1]:
            axes.append((i + 1, argv[i + 1].split(",")))
    configs = []
    for values in itertools.product(*(choices for _, choices in axes)):
        config = list(argv)
        for (pos, _), value in zip(axes, values):
            config[pos] = value
        configs.append(config)
    return configs


# ----- measurements ------------------------------------------------------------------
def reset_peak_rss() -> None:
    """Restart the kernel's peak-RSS counter (VmHWM) so each phase reports its own peak."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        logger.warning("cannot reset the peak RSS (no /proc/self/clear_refs): peaks accumulate over the run")


def peak_rss_mb() -> float:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_device_peak(device: torch.device) -> None:
    reset_peak_rss()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def device_peak_mb(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None


def matmul_peak_gflops(device: torch.device, dtype: torch.dtype, seconds: float = 1.5) -> float:
    """Dense square matmul throughput, the practical ceiling for convolution-heavy nets.

    The size grows until one product takes a measurable time: a CPU without native bf16
    runs bf16 products hundreds of times slower than fp32, and a fixed large size would
    take minutes there.
    """
    n = 256
    while True:
        a = torch.randn(n, n, device=device).to(dtype)
        b = torch.randn(n, n, device=device).to(dtype)
        torch.mm(a, b)
        synchronize(device)
        start = time.perf_counter()
        torch.mm(a, b)
        synchronize(device)
        if time.perf_counter() - start > 0.02 or n >= 8192:
            break
        n *= 2
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        torch.mm(a, b)
        synchronize(device)
        count += 1
    return 2 * n**3 * count / (time.perf_counter() - start) / 1e9


def cpu_description() -> dict:
    """What decides CPU speed here: the kernels torch picked and native bf16 support."""
    features = cpu_features()
    flags: set[str] = set()
    model = ""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags") and not flags:
                    flags = set(line.split(":", 1)[1].split())
                elif line.startswith("model name") and not model:
                    model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return {"model": model, "cores": os.cpu_count(), "torch_capability": features.capability,
            "avx512_bf16": features.avx512_bf16, "amx": features.amx, "native_bf16": features.native_bf16,
            "avx512f": "avx512f" in flags}


def broadcast_patch_nce(q: torch.Tensor, k: torch.Tensor, batch_size: int, nce_T: float) -> torch.Tensor:
    """PatchNCE the way the released DCLGAN code computes it: a cosine similarity on
    broadcast (N, 1, C) x (1, N, C) tensors, which materialises N x N x C. Same values as
    models.losses.PatchNCELoss with negatives from the whole minibatch, at a far higher cost."""
    del batch_size
    k = k.detach()
    l_pos = torch.cosine_similarity(q, k, dim=-1)[:, None]
    l_neg = torch.cosine_similarity(q[:, None, :], k[None, :, :], dim=-1)
    eye = torch.eye(l_neg.shape[0], dtype=torch.bool, device=q.device)
    logits = torch.cat([l_pos, l_neg.masked_fill(eye, -10.0)], dim=1) / nce_T
    target = torch.zeros(logits.shape[0], dtype=torch.long, device=q.device)
    return torch.nn.functional.cross_entropy(logits, target, reduction="none")


def separate_encoder_passes(net: torch.nn.Module) -> None:
    """Make a generator compute the features a translation returns in a second, encode-only
    pass instead of keeping the translation's own: the same values at the cost of fresh passes."""
    forward = net.forward

    def translate_then_encode(x, layers=None, encode_only=False):
        if layers and not encode_only:
            return forward(x), forward(x, layers, encode_only=True)
        return forward(x, layers, encode_only)
    net.forward = translate_then_encode


def emulate_reference_costs(model) -> None:
    """Make a dcl/dcdgan model cost what the released DCLGAN code costs per iteration:
    every PatchNCE term runs its own encoder passes and uses the broadcast similarity."""
    if not isinstance(model, DCLModel):
        raise SystemExit(f"--reference_costs applies to dcl and dcdgan, not --model {model.opt.model}")
    for name in ("G_A", "G_B"):
        separate_encoder_passes(model.net(name))
    nce_T = model.opt.nce_T
    model.nce.criterion.forward = lambda q, k, batch_size: broadcast_patch_nce(q, k, batch_size, nce_T)


def random_batch(opt) -> dict:
    shape = (opt.batch_size, opt.input_nc, opt.crop_size, opt.crop_size)
    names = [f"random_{i}.png" for i in range(opt.batch_size)]
    return {"A": torch.rand(shape) * 2 - 1, "B": torch.rand(shape) * 2 - 1, "A_paths": names, "B_paths": names}


def loader_images_per_s(opt, batches: int) -> float:
    """Images/s the DataLoader delivers alone (to compare with training throughput)."""
    from data import create_dataset
    from training.trainer import build_loader

    loader, sampler = build_loader(create_dataset(opt), opt)
    sampler.set_epoch(0)
    count = 0
    start = time.perf_counter()
    for i, batch in enumerate(itertools.cycle(loader)):
        count += batch["A"].shape[0]
        if i + 1 >= batches:
            break
    return count / (time.perf_counter() - start)


def benchmark_training(opt, model, batch, args) -> dict:
    device = model.device
    # Count FLOPs on the first (eager, untimed) iteration: the counter sees aten ops, which a
    # compiled graph would hide. Forward and backward of every network are included.
    model.set_input(batch)
    with FlopCounterMode(display=False) as counter:
        model.optimize_parameters()
    flops = counter.get_total_flops()
    model.wrap_networks(distributed=False)
    if args.nan_guard:  # as the trainer sets it
        model.step_guard = NonFiniteGuard("stop", {"total_iters": 0}).allows_step
    for _ in range(args.warmup):
        model.set_input(batch)
        model.optimize_parameters()
    synchronize(device)
    reset_device_peak(device)
    start, cpu_start = time.perf_counter(), time.process_time()
    times = []
    for _ in range(args.iters):
        tick = time.perf_counter()
        model.set_input(batch)
        model.optimize_parameters()
        if device.type != "cuda":  # on CUDA a per-iteration time would need a sync
            times.append(time.perf_counter() - tick)
    synchronize(device)
    per_iter = (time.perf_counter() - start) / args.iters
    # CPU seconds of this process: on a shared machine wall time grows with other load,
    # this much less (all threads summed, so up to threads x wall time when idle).
    cpu_per_iter = (time.process_time() - cpu_start) / args.iters
    # The fastest iteration is the least disturbed by other processes on a shared CPU.
    result = {"sec_per_iter": per_iter, "best_sec_per_iter": min(times) if times else None,
              "cpu_sec_per_iter": cpu_per_iter, "iters_per_s": 1 / per_iter,
              "images_per_s": opt.batch_size / per_iter,
              "peak_rss_mb": peak_rss_mb(), "cuda_max_allocated_mb": device_peak_mb(device),
              "flops_per_iter": flops, "achieved_gflops": flops / per_iter / 1e9, "nan_guard": args.nan_guard}
    losses = model.get_current_losses()  # read once, after timing: a host-device sync
    if not all(math.isfinite(v) for v in losses.values()):
        logger.warning("non-finite losses in the benchmark run: %s", losses)
    if args.profile:
        result["profile"] = profile_iteration(model, batch, args.profile)
    return result


def profile_iteration(model, batch: dict, rows: int) -> dict:
    """Where one training iteration spends its time: the `rows` operators with the most self
    time (CPU; on CUDA the device time), and the convolutions' share of all of it."""
    activities = [torch.profiler.ProfilerActivity.CPU]
    if model.device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.profiler.profile(activities=activities) as profiler:
        model.set_input(batch)
        model.optimize_parameters()
        synchronize(model.device)
    attribute = "self_device_time_total" if model.device.type == "cuda" else "self_cpu_time_total"
    events = sorted(profiler.key_averages(), key=lambda e: getattr(e, attribute), reverse=True)
    total = sum(getattr(e, attribute) for e in events)
    logger.info("profile of one iteration:\n%s", profiler.key_averages().table(
        sort_by=attribute, row_limit=rows, max_name_column_width=50))
    # aten::convolution_backward, aten::mkldnn_convolution, dcdgan::winograd_conv2d, aten::_nnpack_...
    convolutions = sum(getattr(e, attribute) for e in events if "conv" in e.key or "nnpack" in e.key)
    return {"seconds": total / 1e6, "convolution_share": convolutions / total,
            "operators": [{"name": e.key, "self_seconds": getattr(e, attribute) / 1e6, "calls": e.count,
                           "share": getattr(e, attribute) / total} for e in events[:rows]]}


def parse_size(text: str) -> tuple[int, int]:
    """(height, width) of an --infer_sizes entry: N for N x N, or WxH."""
    width, _, height = text.lower().partition("x")
    return (int(height or width), int(width))


def inference_flops(net: torch.nn.Module, opt, device: torch.device) -> int:
    x = torch.zeros(1, opt.input_nc, FLOP_PROBE_SIZE, FLOP_PROBE_SIZE, device=device)
    with FlopCounterMode(display=False) as counter:
        restore(net, x)
    return counter.get_total_flops()


def time_restoration(net, x, iters: int, tile: int, overlap: int, autocast) -> tuple[torch.Tensor, float]:
    """(output, seconds per call) of restoring `x`, after one untimed call."""
    with autocast:
        out = restore(net, x, tile, overlap)  # warm-up: allocator, oneDNN/cuDNN kernel choice, compilation
        synchronize(x.device)
        reset_device_peak(x.device)
        start = time.perf_counter()
        for _ in range(iters):
            restore(net, x, tile, overlap)
        synchronize(x.device)
    return out, (time.perf_counter() - start) / iters


def benchmark_inference(opt, model, sizes: list[str], iters: int, tile: int = 0, overlap: int = 32,
                        backends: list[str] | None = None, batches: list[int] | None = None,
                        peak_gflops: float | None = None) -> dict:
    """{size (with ' batch <n>' when several batch sizes are compared): figures of the first
    backend, with every backend's figures under "backends"}."""
    device = model.device
    plain = unwrap(model.net(model.test_net_names()[opt.direction])).eval()
    probe_flops = inference_flops(plain, opt, device)
    nets, chosen = {}, {}
    for name in backends or [DEFAULT_BACKEND]:
        if name == "auto":
            chosen[name], why = choose_backend(plain, device, opt.amp)
            logger.info("backend auto: %s (%s)", chosen[name], why)
        nets[name] = inference_network(plain, chosen.get(name, name), device)
        if opt.compile and name != "compile":
            nets[name] = compile_network(nets[name], device)
    # As test.py: only --amp on runs every backend under autocast; auto leaves bf16 to `bf16`.
    autocast = model.autocast() if opt.amp == "on" else contextlib.nullcontext()
    batches = batches or [1]
    results = {}
    for size, batch in itertools.product(sizes, batches):
        height, width = parse_size(size)
        x = model.to_device(torch.rand(batch, opt.input_nc, height, width, device=device) * 2 - 1)
        # Counted on the image's pixels: the work tiles repeat in their overlaps is left out.
        flops = probe_flops * height * width / FLOP_PROBE_SIZE**2
        figures, reference = {}, None
        for name, net in nets.items():
            out, per_call = time_restoration(net, x, iters, tile, overlap, autocast)
            per_image = per_call / batch
            entry = {"backend": name, "sec_per_image": per_image, "images_per_s": 1 / per_image,
                     "megapixels_per_s": height * width / 1e6 / per_image, "batch": batch,
                     "tile": tile if height > tile or width > tile else 0,  # restore() skips tiling then
                     "flops_per_image": flops, "achieved_gflops": flops / per_image / 1e9,
                     "peak_rss_mb": peak_rss_mb(), "cuda_max_allocated_mb": device_peak_mb(device)}
            if peak_gflops:
                entry["fraction_of_peak"] = entry["achieved_gflops"] / peak_gflops
            if reference is None:
                reference = (out.float(), per_image)
            else:
                entry["speedup"] = reference[1] / per_image
                entry["max_abs_difference"] = float((out.float() - reference[0]).abs().max())
                entry["psnr_to_first"] = psnr_between(out.float(), reference[0])
            if name in chosen:
                entry["chosen"] = chosen[name]
            figures[name] = entry
        key = size if len(batches) == 1 else f"{size} batch {batch}"
        results[key] = {**next(iter(figures.values())), "backends": figures}
    return results


def psnr_between(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR (dB) between two outputs in [-1, 1] (peak-to-peak 2); inf when equal."""
    mse = float((a - b).pow(2).mean())
    return 10 * math.log10(4 / mse) if mse > 0 else math.inf


def describe(opt, model) -> dict:
    config = {key: getattr(opt, key) for key in SWEEPABLE if hasattr(opt, key)}
    amp_dtype = str(model.amp_dtype).replace("torch.", "") if model.amp_dtype else None
    # "amp": whether autocast runs (what the GPU check's tables read), "amp_mode": the flag.
    config.update(amp=model.amp_dtype is not None, amp_mode=opt.amp, device=str(model.device), cpu=cpu_description(),
                  amp_dtype=amp_dtype,
                  torch=torch.__version__, threads=torch.get_num_threads(),
                  nce_layers=getattr(opt, "nce_layers", None), num_patches=getattr(opt, "num_patches", None))
    return config


def parse_config(argv: list[str]):
    if "--dataroot" not in argv:
        argv = ["--dataroot", "<random tensors>", *argv]
    return TrainOptions().parse(argv + ["--display_id", "0"])


def run_config(opt, args, peak: dict) -> dict:
    torch.manual_seed(opt.seed)
    if opt.gpu_ids:
        torch.backends.cudnn.benchmark = True  # as the Trainer does for fixed crop sizes
    load_before = os.getloadavg()[0]
    model = create_model(opt)
    model.setup()
    model.train()
    if args.reference_costs:
        emulate_reference_costs(model)
    line = {"kind": "speed", "reference_costs": args.reference_costs, "config": describe(opt, model),
            "peak_matmul_gflops": peak}
    peak_for_dtype = peak.get("bf16" if model.amp_dtype == torch.bfloat16 else "fp32")
    if not args.skip_train:
        line["train"] = benchmark_training(opt, model, random_batch(opt), args)
        if peak_for_dtype:
            line["train"]["fraction_of_peak"] = line["train"]["achieved_gflops"] / peak_for_dtype
        if os.path.isdir(opt.dataroot):
            line["train"]["loader_images_per_s"] = loader_images_per_s(opt, args.data_batches)
    sizes = [s.strip() for s in args.infer_sizes.split(",") if s.strip()]
    if sizes:
        backends = [b.strip() for b in args.infer_backends.split(",") if b.strip()]
        batches = [int(b) for b in args.infer_batch.split(",") if b.strip()]
        line["infer"] = benchmark_inference(opt, model, sizes, args.infer_iters, args.infer_tile, args.tile_overlap,
                                            backends, batches, peak_for_dtype)
    line["load_avg_1min"] = {"before": load_before, "after": os.getloadavg()[0]}
    return line


def tiled_memory(argv: list[str], args) -> dict:
    """Peak RSS and time of restoring one large image whole and in tiles."""
    opt = parse_config(argv)
    width, height = (int(v) for v in args.tiled_memory.lower().split("x"))
    torch.manual_seed(opt.seed)
    net = generator_architecture(opt).eval()
    x = torch.rand(1, opt.input_nc, height, width) * 2 - 1
    line = {"kind": "tiled_memory", "size": [width, height], "ngf": opt.ngf, "netG": opt.netG,
            "tile": args.tile, "tile_overlap": args.tile_overlap, "load_avg_1min": {"before": os.getloadavg()[0]}}
    outputs = {}
    for label, tile in (("tiled", args.tile), ("whole", 0)):
        reset_peak_rss()
        start = time.perf_counter()
        outputs[label] = restore(net, x, tile, args.tile_overlap)
        line[label] = {"seconds": time.perf_counter() - start, "peak_rss_mb": peak_rss_mb()}
    line["input_and_output_mb"] = 2 * x.numel() * 4 / 2**20
    line["mean_abs_difference"] = float((outputs["tiled"] - outputs["whole"]).abs().mean())
    line["load_avg_1min"]["after"] = os.getloadavg()[0]
    return line


def emit(line: dict, out: str | None) -> None:
    text = json.dumps(line)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
    if out:
        with open(out, "a") as fh:
            fh.write(text + "\n")


def main(argv: list[str] | None = None) -> int:
    args, rest = bench_arguments(sys.argv[1:] if argv is None else argv)
    setup_logging("--verbose" in rest)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.tiled_memory:
        emit(tiled_memory(rest, args), args.out)
        return 0
    configs = [parse_config(config) for config in expand_sweeps(rest)]
    device = device_of(configs[0].gpu_ids)
    peak = {} if args.skip_peak else {"fp32": matmul_peak_gflops(device, torch.float32),
                                      "bf16": matmul_peak_gflops(device, torch.bfloat16)}
    logger.info("CPU: %s: %s (torch %s, %d threads)", cpu_description()["model"] or "unknown model",
                cpu_features().describe(), torch.__version__, torch.get_num_threads())
    logger.info("matmul peak on %s: %s GFLOP/s; %d configuration(s)", device, peak, len(configs))
    references: dict[tuple, dict] = {}
    for opt in configs:
        logger.info("benchmarking %s", {key: getattr(opt, key) for key in SWEEPABLE if hasattr(opt, key)})
        line = run_config(opt, args, peak)
        if args.against_reference and "train" in line:
            reference = reference_line(opt, args, peak, references)
            line["train"]["speedup_over_reference"] = (reference["train"]["sec_per_iter"]
                                                       / line["train"]["sec_per_iter"])
        emit(line, args.out)
    return 0


# The levers --against_reference turns off: the released code has none of them.
LEVERS = {"amp": "off", "channels_last": False, "compile": False, "winograd": False}


def reference_line(opt, args, peak: dict, cache: dict[tuple, dict]) -> dict:
    """The reference of `opt` (same model and sizes, no lever, the released code's costs),
    timed and emitted the first time a configuration needs it."""
    ref_opt = argparse.Namespace(**{**vars(opt), **LEVERS})
    key = tuple(getattr(ref_opt, name, None) for name in SWEEPABLE)
    if key not in cache:
        logger.info("benchmarking the reference of %s", {k: getattr(opt, k) for k in SWEEPABLE if hasattr(opt, k)})
        ref_args = argparse.Namespace(**{**vars(args), "reference_costs": True, "infer_sizes": "", "profile": 0})
        cache[key] = run_config(ref_opt, ref_args, peak)
        emit(cache[key], args.out)
    return cache[key]


if __name__ == "__main__":
    sys.exit(main())
