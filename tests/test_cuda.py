"""What only a GPU can check. Skipped without one; `bash scripts/gpu_check.sh` runs it on one.

- every model's training step with bf16 autocast, with fp16 and the gradient scaler, and
  channels-last; torch.compile (dcdgan) or an error that names --compile;
- no host synchronisation inside a training step (torch.cuda.set_sync_debug_mode), and the
  two places that do synchronise by design: the NaN guard and fp16's gradient scaler;
- resume on CUDA of a checkpoint saved on the CPU, and the reverse;
- test.py (whole and tiled) and tiled restoration on CUDA against the CPU;
- one rank with NCCL under torchrun, DDP-wrapped; cuDNN benchmark mode during training.

fp16 is forced by making `torch.cuda.is_bf16_supported()` answer no: the model then picks
fp16 and the gradient scaler itself, exactly as on a GPU without bf16 (V100, T4).

CPU counterparts: tests/test_amp.py (bf16 on the CPU, fp16 + scaler emulated for every
model, channels-last, compile wiring and its errors, host reads in a step), test_resume.py,
test_test_script.py, test_tiling.py and test_ddp.py (gloo).
"""
import json
import os
import subprocess
import sys
import traceback
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import train
from models import create_model
from restoration.loading import load_generator
from options.train_options import TrainOptions
from tests.conftest import MODEL_KEYS, tiny_model_flags, write_images
from restoration import cli
from training.guards import NonFiniteGuard
from training.trainer import Trainer
from util.checkpoint import load_checkpoint
from runtime.inference import restore

REPO = Path(__file__).resolve().parent.parent
NO_GPU = "needs a CUDA GPU (torch.cuda.is_available() is False); scripts/gpu_check.sh runs these on one"
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_GPU)

# fp16 starts its loss scale at 2**16 and halves it at every update whose gradients overflow
# (the update is skipped): 20 steps let it fall below 1 before every network must have moved.
STEPS = {"bf16": 2, "fp16": 20, "bf16-channels_last": 2}
# test.py writes uint8 images. cuDNN runs fp32 convolutions in TF32 by default (10-bit
# mantissa), a relative error near 1e-3 after a few layers: a grey level at most here and there.
MAX_GREY_LEVELS, MEAN_GREY_LEVELS = 3, 0.2
RELATIVE_ERROR = {"fp32": 3e-3, "bf16": 3e-2}


def on_gpu(flags: list[str]) -> list[str]:
    """The same flags with --gpu_ids 0 instead of -1."""
    i = flags.index("--gpu_ids")
    return flags[:i + 1] + ["0"] + flags[i + 2:]


def tiny_options(model_key: str, dataroot: Path, checkpoints: Path, *extra: str, gpu: bool = True, name="tiny"):
    flags = tiny_model_flags(model_key, dataroot, checkpoints, name)
    return TrainOptions().parse((on_gpu(flags) if gpu else flags) + list(extra))


def build(model_key: str, dataroot: Path, tmp_path: Path, *extra: str):
    opt = tiny_options(model_key, dataroot, tmp_path / "ck", *extra)
    torch.manual_seed(0)
    model = create_model(opt)
    model.setup()
    model.wrap_networks()
    return model


def batch(seed: int) -> dict:
    """A 32-px batch in pinned memory, as the training DataLoader delivers it on CUDA."""
    g = torch.Generator().manual_seed(seed)
    a, b = (torch.rand(1, 3, 32, 32, generator=g) * 2 - 1 for _ in range(2))
    return {"A": a.pin_memory(), "B": b.pin_memory(), "A_paths": ["a.png"], "B_paths": ["b.png"]}


def step(model, seed: int = 0) -> None:
    model.set_input(batch(seed))
    model.optimize_parameters()


@contextmanager
def host_syncs_raise():
    """Any operation that makes the host wait for the GPU raises inside this block."""
    torch.cuda.set_sync_debug_mode("error")
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode("default")


def parameters(model) -> dict[str, list[torch.Tensor]]:
    return {name: [p.detach().clone() for p in net.parameters()] for name, net in model.networks().items()}


def force_fp16(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: False)


# ----- a training step in every precision -----------------------------------------------
@pytest.mark.parametrize("precision", list(STEPS))
@pytest.mark.parametrize("model_key", MODEL_KEYS)
def test_training_steps_on_cuda(tiny_dataroot, tmp_path, monkeypatch, model_key, precision):
    if precision == "fp16":
        force_fp16(monkeypatch)
    flags = ["--amp", "--channels_last"] if precision.endswith("channels_last") else ["--amp"]
    model = build(model_key, tiny_dataroot, tmp_path, *flags)
    dtype = torch.float16 if precision == "fp16" else torch.bfloat16
    assert model.amp_dtype == dtype and model.scaler.is_enabled() == (dtype == torch.float16)
    before = parameters(model)
    for i in range(STEPS[precision]):
        step(model, i)
    losses = model.get_current_losses()
    assert all(np.isfinite(v) for v in losses.values()), losses
    assert model.fake_B.is_cuda and model.fake_B.dtype == dtype
    for name, params in parameters(model).items():
        assert all(torch.isfinite(p).all() for p in params), name
        assert any(not torch.equal(a, b) for a, b in zip(before[name], params)), \
            f"net{name} did not change (loss scale now {model.scaler.get_scale()})"
    if "--channels_last" in flags:
        convs = [m for net in model.networks().values() for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
        assert all(conv.weight.is_contiguous(memory_format=torch.channels_last) for conv in convs)


# ----- host synchronisation -------------------------------------------------------------
@pytest.mark.parametrize("model_key", MODEL_KEYS)
def test_a_training_step_never_waits_for_the_gpu(tiny_dataroot, tmp_path, model_key):
    """Inside optimize_parameters nothing reads the GPU back: losses are read every --print_freq."""
    model = build(model_key, tiny_dataroot, tmp_path, "--amp")
    step(model, 0)  # warm-up: cuDNN's algorithm search, the optimizers' state
    model.set_input(batch(1))
    with host_syncs_raise():
        model.optimize_parameters()


def frames_of(err: BaseException) -> list[str]:
    return [f"{Path(frame.filename).name}:{frame.name}" for frame in traceback.extract_tb(err.__traceback__)]


def test_the_nan_guard_waits_for_the_gpu_before_each_update(tiny_dataroot, tmp_path):
    """Documents a synchronisation by design: the training loop's NaN/Inf check (--nan_policy,
    training.guards.NonFiniteGuard) must know that the losses are finite before the weights
    change, so it reads one flag back per optimizer step group (two per iteration for D and
    G, three with a negative generator). --nan_policy has no setting that turns it off;
    `benchmark_speed.py --nan_guard` measures what it costs."""
    model = build("dcdgan:official", tiny_dataroot, tmp_path, "--amp")
    step(model, 0)
    model.set_input(batch(1))
    model.step_guard = NonFiniteGuard("stop", {"total_iters": 1}).allows_step  # as the trainer sets it
    with pytest.raises(RuntimeError, match="synchroniz") as info, host_syncs_raise():
        model.optimize_parameters()
    assert "guards.py:non_finite_names" in frames_of(info.value)


def test_fp16s_gradient_scaler_waits_for_the_gpu_before_each_update(tiny_dataroot, tmp_path, monkeypatch):
    """Documents torch's own synchronisation under fp16: GradScaler.step reads its overflow
    flag on the host to decide whether to skip the update. bf16 needs no scaler (above)."""
    force_fp16(monkeypatch)
    model = build("dcdgan:official", tiny_dataroot, tmp_path, "--amp")
    step(model, 0)
    model.set_input(batch(1))
    with pytest.raises(RuntimeError, match="synchroniz") as info, host_syncs_raise():
        model.optimize_parameters()
    assert any(frame.startswith("grad_scaler.py:") for frame in frames_of(info.value))


# ----- torch.compile --------------------------------------------------------------------
def test_compile_trains_or_fails_naming_the_flag(tiny_dataroot, tmp_path):
    """dcdgan stands for the models here (they share their networks); compiling all of them
    would take minutes. Where torch cannot compile the step, the error must say --compile."""
    model = build("dcdgan:official", tiny_dataroot, tmp_path, "--amp", "--compile")
    assert all(type(net).__name__ == "OptimizedModule" for net in model.networks().values())
    try:
        for i in range(2):
            step(model, i)
    except Exception as err:  # torch.compile raises many types
        text = " ".join([str(err), *getattr(err, "__notes__", [])])
        assert "--compile" in text, f"compiling failed without naming --compile: {err!r}"
        pytest.xfail(f"torch {torch.__version__} cannot compile the training step; the error names "
                     f"--compile: {str(err)[:300]}")
    assert all(np.isfinite(v) for v in model.get_current_losses().values())


# ----- resume across devices ------------------------------------------------------------
def train_to(model_key: str, dataroot: Path, tmp_path: Path, gpu: bool, *extra: str) -> Trainer:
    # 4 images -> 4 iterations per epoch, 2 epochs.
    opt = tiny_options(model_key, dataroot, tmp_path / "ck", "--n_epochs", "1", "--n_epochs_decay", "1",
                       "--save_latest_freq", "1000", *extra, gpu=gpu, name="moved")
    trainer = Trainer(opt)
    trainer.run()
    return trainer


@pytest.mark.parametrize("model_key, saved_on", [("dcdgan:official", "cpu"), ("dcdgan:official", "cuda"),
                                                  ("cycle_gan", "cpu"), ("cddgan", "cpu")])
def test_resume_on_the_other_device(tiny_dataroot, tmp_path, model_key, saved_on):
    """A checkpoint saved on one device resumes on the other with every tensor where it
    belongs; on CUDA the resumed steps still never wait for the GPU (Adam's step counters
    stay on the CPU). cycle_gan brings image pools, cddgan negative queues and EMA heads."""
    train_to(model_key, tiny_dataroot, tmp_path, saved_on == "cuda", "--max_iters", "2")
    saved = load_checkpoint(tmp_path / "ck" / "moved" / "latest.pt")
    resumed = Trainer(tiny_options(model_key, tiny_dataroot, tmp_path / "ck", "--n_epochs", "1",
                                   "--n_epochs_decay", "1", "--save_latest_freq", "1000", "--continue_train",
                                   gpu=saved_on == "cpu", name="moved"))
    model = resumed.model
    assert resumed.position["total_iters"] == 2
    for name, state in model.plain_state_dicts().items():
        for key, value in state.items():
            assert value.device.type == model.device.type, (name, key)
            assert torch.equal(value.cpu(), saved["nets"][name][key]), f"net{name}.{key} differs from the checkpoint"
    for name, optimizer in model.optimizers.items():
        for state in optimizer.state.values():
            assert state["step"].device.type == "cpu", name
            assert state["exp_avg"].device.type == model.device.type, name
    resumed.run()
    assert resumed.position["total_iters"] == 8
    if model.device.type == "cuda":
        model.set_input(batch(3))
        with host_syncs_raise():
            model.optimize_parameters()


# ----- restoration against the CPU --------------------------------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny DCD-GAN trained for two iterations on the CPU, and 40x48 paired test images."""
    tmp = tmp_path_factory.mktemp("trained")
    root = tmp / "data"
    for folder, seed in (("trainA", 1), ("trainB", 2), ("testA", 3), ("testB", 4)):
        write_images(root / folder, 2, seed=seed)
    assert train.main(tiny_model_flags("dcdgan:official", root, tmp / "ck", "t") + ["--max_iters", "2"]) == 0
    return tmp


@pytest.mark.parametrize("tile", [0, 32], ids=["whole", "tiled"])
def test_test_py_on_cuda_matches_the_cpu(trained, tile):
    outputs = {}
    for device, gpu_ids in (("cpu", "-1"), ("cuda", "0")):
        results = trained / f"results_{device}_{tile}"
        assert cli.main(["--dataroot", str(trained / "data"), "--name", "t", "--checkpoints_dir",
                         str(trained / "ck"), "--results_dir", str(results), "--gpu_ids", gpu_ids,
                         "--tile", str(tile), "--tile_overlap", "8"]) == 0
        outputs[device] = {p.name: np.asarray(Image.open(p), dtype=np.int16)
                           for p in sorted((results / "t" / "test_latest" / "images").glob("*.png"))}
    assert list(outputs["cuda"]) == list(outputs["cpu"]) and len(outputs["cpu"]) == 2
    for name, cpu in outputs["cpu"].items():
        diff = np.abs(outputs["cuda"][name] - cpu)
        assert diff.max() <= MAX_GREY_LEVELS and diff.mean() <= MEAN_GREY_LEVELS, \
            f"{name}: CUDA differs from the CPU by up to {diff.max()} grey levels, {diff.mean():.3f} on average"


@pytest.mark.parametrize("precision", list(RELATIVE_ERROR))
def test_tiled_restoration_on_cuda_matches_the_cpu(trained, precision):
    """A 150x200 image in 64-px tiles: ||cuda - cpu|| / ||cpu|| within RELATIVE_ERROR (fp32 here
    means cuDNN's default TF32 convolutions; bf16 is test.py --amp)."""
    checkpoint = trained / "ck" / "t" / "latest.pt"
    x = torch.rand(1, 3, 150, 200, generator=torch.Generator().manual_seed(0)) * 2 - 1
    reference = restore(load_generator(checkpoint)[0], x, tile=64, overlap=16)
    net = load_generator(checkpoint, device=torch.device("cuda"))[0]
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=precision == "bf16"):
        got = restore(net, x.cuda(), tile=64, overlap=16).float().cpu()
    error = float((got - reference).norm() / reference.norm())
    assert error <= RELATIVE_ERROR[precision], f"relative error {error:.2e} on CUDA ({precision})"


# ----- training loop: cuDNN and torchrun ------------------------------------------------
def test_training_on_cuda_turns_on_cudnn_benchmark(tiny_dataroot, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    flags = tiny_model_flags("dcdgan:official", tiny_dataroot, tmp_path / "ck")
    assert train.main(on_gpu(flags) + ["--max_iters", "1"]) == 0
    assert torch.backends.cudnn.benchmark


def test_torchrun_one_rank_trains_ddp_wrapped_networks_over_nccl(tiny_dataroot, tmp_path):
    """train.py forms no process group for a single process (WORLD_SIZE 1 is plain training),
    so this worker forms the NCCL group itself under torchrun and trains DDP-wrapped networks:
    the gradient all-reduce then runs through NCCL, as with several GPUs."""
    out = tmp_path / "worker.json"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1", __file__,
           str(tiny_dataroot), str(tmp_path / "ck"), str(out)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    result = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["backend"] == "nccl" and report["world_size"] == 1
    assert set(report["ddp"]) == {"G_A", "G_B", "D_A", "D_B", "F1", "F2"}
    assert all(np.isfinite(v) for v in report["losses"].values())
    assert report["plain_keys"], "checkpoints hold plain state dicts (no 'module.' prefix)"


def nccl_worker(dataroot: str, checkpoints: str, out: str) -> None:
    """Run by torchrun (see the test above): one rank, NCCL, two DDP-wrapped steps."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    local_rank = int(os.environ["LOCAL_RANK"])
    torch.cuda.set_device(local_rank)
    dist.init_process_group("nccl")
    try:
        opt = tiny_options("dcdgan:official", Path(dataroot), Path(checkpoints), "--amp")
        torch.manual_seed(0)
        model = create_model(opt)
        model.setup()
        model.wrap_networks(distributed=True)
        for i in range(2):
            step(model, i)
        report = {"backend": dist.get_backend(), "world_size": dist.get_world_size(),
                  "ddp": [name for name, net in model.networks().items() if isinstance(net, DistributedDataParallel)],
                  "losses": model.get_current_losses(),
                  "plain_keys": all(not key.startswith("module.") for state in model.plain_state_dicts().values()
                                    for key in state)}
        Path(out).write_text(json.dumps(report))
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    nccl_worker(*sys.argv[1:4])
