"""--amp auto and --backend auto: bf16 only where the CPU has it natively and a probe finds it
faster; every backend's images against the plain network's within its stated tolerance;
checkpoints trained in one precision resume and restore in the other."""
import math

import numpy as np
import pytest
import torch
import torch.nn as nn

import train as train_script
import runtime.backends as backends
import runtime.precision as precision
from models import create_model
from models.networks import define_generator
from restoration import Restorer
from options.test_options import TestOptions
from options.train_options import TrainOptions
from tests.conftest import tiny_flags
from restoration import cli
from runtime.backends import BF16_MIN_PSNR, FP32_TOLERANCE, choose_backend, inference_network
from runtime.inference import restore
from runtime.precision import CpuFeatures, amp_dtype, amp_mode, bf16_verdict

CPU = torch.device("cpu")
AVX2 = CpuFeatures("AVX2", avx512_bf16=False, amx=False)
AVX512 = CpuFeatures("AVX512", avx512_bf16=False, amx=False)
ZEN4 = CpuFeatures("AVX512", avx512_bf16=True, amx=False)
AMX = CpuFeatures("AVX512", avx512_bf16=True, amx=True)


@pytest.fixture(autouse=True)
def fresh_caches(monkeypatch):
    """Each test decides afresh: the per-process caches would carry verdicts between tests."""
    monkeypatch.setattr(precision, "_VERDICTS", {})
    monkeypatch.setattr(backends, "_CHOICES", {})


def probe_saying(speedup: float):
    calls = []

    def probe(width, train):
        calls.append((width, train))
        return speedup
    probe.calls = calls
    return probe


# ----- --amp's values ----------------------------------------------------------------------
@pytest.mark.parametrize("argv, expected", [([], "auto"), (["--amp"], "on"), (["--amp", "on"], "on"),
                                            (["--amp", "true"], "on"), (["--amp", "off"], "off"),
                                            (["--amp", "False"], "off"), (["--amp", "auto"], "auto")])
def test_amp_takes_auto_on_off_and_the_old_boolean_spellings(tiny_dataroot, tmp_path, argv, expected):
    opt = TrainOptions().parse(tiny_flags(tiny_dataroot, tmp_path) + argv)
    assert opt.amp == expected
    assert amp_mode(True) == "on" and amp_mode(False) == "off"


def test_a_bad_amp_value_is_one_line_naming_the_flag(tiny_dataroot, tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        TrainOptions().parse(tiny_flags(tiny_dataroot, tmp_path) + ["--amp", "fast"])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "--amp" in err and "auto, on or off" in err and len(err.splitlines()) == 1


def test_test_py_defaults_to_auto_backend_and_auto_precision(tiny_dataroot):
    opt = TestOptions().parse(["--dataroot", str(tiny_dataroot)])
    assert opt.backend == "auto" and opt.amp == "auto"


# ----- the bf16 verdict ---------------------------------------------------------------------
@pytest.mark.parametrize("features", [AVX2, AVX512])
def test_auto_never_takes_bf16_where_the_cpu_would_emulate_it(features):
    probe = probe_saying(10.0)
    for train in (True, False):
        dtype, reason = amp_dtype("auto", CPU, 64, train, features, probe)
        assert dtype is None and "emulate" in reason
    assert probe.calls == [], "no probe where bf16 is emulated: it would take seconds"


@pytest.mark.parametrize("features", [ZEN4, AMX])
def test_auto_takes_bf16_where_native_and_the_probe_finds_it_faster(features):
    probe = probe_saying(2.1)
    dtype, reason = amp_dtype("auto", CPU, 64, True, features, probe)
    assert dtype == torch.bfloat16
    assert "2.10x fp32 at ngf 64" in reason and ("AMX" if features.amx else "avx512_bf16") in reason
    assert probe.calls == [(64, True)]


def test_auto_keeps_fp32_where_the_probe_finds_bf16_slower_or_barely_faster():
    for speedup in (0.8, 1.1):
        precision._VERDICTS.clear()
        dtype, reason = amp_dtype("auto", CPU, 64, True, AMX, probe_saying(speedup))
        assert dtype is None and "under the" in reason


def test_auto_skips_the_probe_for_narrow_networks_and_caches_its_verdict():
    probe = probe_saying(3.0)
    for width in (8, 16):  # the quick configuration's ngf 16 gained 1.05x (Zen 4), 0.75-1.2x (AMX)
        dtype, reason = amp_dtype("auto", CPU, width, True, AMX, probe)
        assert dtype is None and "too narrow" in reason
    assert probe.calls == []
    for _ in range(3):
        assert bf16_verdict(CPU, 64, False, AMX, probe).use
    assert probe.calls == [(64, False)], "one probe per width and workload per process"


def test_on_and_off_decide_without_a_probe():
    probe = probe_saying(0.5)
    assert amp_dtype("on", CPU, 64, True, AVX2, probe)[0] == torch.bfloat16
    assert amp_dtype(True, CPU, 64, True, AMX, probe)[0] == torch.bfloat16
    assert amp_dtype("off", CPU, 64, True, AMX, probe)[0] is None
    assert probe.calls == []


def test_auto_on_cuda_is_bf16_where_supported_never_fp16(monkeypatch):
    cuda = torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert amp_dtype("auto", cuda, 64, True)[0] == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert amp_dtype("auto", cuda, 64, True)[0] is None
    assert amp_dtype("on", cuda, 64, True)[0] == torch.float16, "--amp on keeps fp16 + scaler there"


def test_the_layer_probe_measures_and_leaves_the_global_random_state():
    state = torch.get_rng_state()
    speedup = precision.layer_speedup(32, True, size=16, repeats=1)
    assert math.isfinite(speedup) and speedup > 0
    assert torch.equal(torch.get_rng_state(), state)


def test_the_cpu_features_are_read_from_torch():
    features = precision.cpu_features()
    assert features.capability == torch.backends.cpu.get_cpu_capability()
    assert features.native_bf16 == (features.avx512_bf16 or features.amx)
    assert features.capability in features.describe()


def test_a_model_under_auto_trains_in_fp32_below_the_probe_width(tiny_dataroot, tmp_path):
    opt = TrainOptions().parse(tiny_flags(tiny_dataroot, tmp_path))
    model = create_model(opt)
    assert opt.amp == "auto" and model.amp_dtype is None and not model.scaler.is_enabled()


# ----- the backend choice --------------------------------------------------------------------
def generator(ngf: int) -> nn.Module:
    torch.manual_seed(0)
    net = define_generator("resnet_6blocks", ngf=ngf).eval()
    for module in net.modules():
        if isinstance(module, nn.Conv2d):
            module.reset_parameters()
    return net


def backend_probe(times: dict[str, float]):
    calls = []

    def probe(net, names, device):
        calls.append(list(names))
        return {name: times[name] for name in names}
    probe.calls = calls
    return probe


def test_backend_auto_never_probes_bf16_on_an_avx2_cpu():
    probe = backend_probe({"winograd": 1.0, "channels_last": 1.5, "bf16": 0.01})
    name, reason = choose_backend(generator(16), CPU, "auto", AVX2, probe)
    assert name == "winograd" and "emulate" in reason
    assert all("bf16" not in names for names in probe.calls)


def test_backend_auto_takes_bf16_where_native_and_faster():
    probe = backend_probe({"winograd": 1.0, "channels_last": 0.8, "bf16": 0.4})
    name, reason = choose_backend(generator(16), CPU, "auto", AMX, probe)
    assert name == "bf16"
    assert reason.startswith("CPU has AMX, probe 2.00x") and "ngf 16" in reason


def test_backend_auto_keeps_the_fastest_fp32_backend_where_bf16_probes_slower():
    probe = backend_probe({"winograd": 1.0, "channels_last": 0.8, "bf16": 0.75})
    name, reason = choose_backend(generator(16), CPU, "auto", ZEN4, probe)
    assert name == "channels_last" and "under the" in reason


def test_backend_auto_with_amp_off_or_on_and_narrow_networks():
    probe = backend_probe({"winograd": 1.0, "channels_last": 2.0, "bf16": 0.1})
    assert choose_backend(generator(16), CPU, "off", AMX, probe)[0] == "winograd"
    assert all("bf16" not in names for names in probe.calls)
    assert choose_backend(generator(16), CPU, "on", AVX2, probe) == ("bf16", "--amp on")
    calls = len(probe.calls)
    name, reason = choose_backend(generator(8), CPU, "auto", AMX, probe)
    assert name in ("winograd", "channels_last") and "too narrow" in reason and len(probe.calls) == calls


def test_the_backend_probe_times_every_candidate():
    times = backends.probe_backends(generator(8), ["channels_last", "bf16"], CPU, size=32, repeats=1)
    assert set(times) == {"channels_last", "bf16"} and all(t > 0 for t in times.values())


# ----- every backend's images ----------------------------------------------------------------
def psnr_between(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR of two images in [-1, 1] (peak-to-peak 2)."""
    return 10 * math.log10(4 / float((a - b).pow(2).mean()))


@pytest.mark.parametrize("backend", ["channels_last", "winograd", "bf16"])
def test_every_backend_gives_the_plain_networks_image_within_its_tolerance(backend):
    net = generator(16)
    x = torch.rand(1, 3, 68, 52, generator=torch.Generator().manual_seed(1)) * 2 - 1
    expected = restore(net, x)
    got = restore(inference_network(net, backend, CPU), x)
    assert expected.std() > 0.1 and got.dtype == torch.float32 and got.shape == expected.shape
    if backend == "bf16":
        difference = psnr_between(got, expected)
        assert BF16_MIN_PSNR < difference < 80, "bf16 rounds, but within its bound"
    else:
        assert float((got - expected).abs().max()) < FP32_TOLERANCE


# ----- checkpoints across precisions ---------------------------------------------------------
def train(dataroot, checkpoints, caplog, *flags) -> list[str]:
    """train.py on the tiny dcdgan run 'cross'; returns the precision it logged."""
    caplog.clear()
    caplog.set_level("INFO")
    assert train_script.main(tiny_flags(dataroot, checkpoints, "cross") + ["--save_latest_freq", "2", *flags]) == 0
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("precision: ")]


def test_a_checkpoint_trained_in_bf16_resumes_in_fp32_and_restores_both_ways(tiny_dataroot, tmp_path, caplog):
    checkpoints = tmp_path / "ck"
    assert train(tiny_dataroot, checkpoints, caplog, "--amp", "--max_iters", "2") == ["precision: bfloat16 (--amp on)"]
    latest = checkpoints / "cross" / "latest.pt"
    state = torch.load(latest, weights_only=True)
    assert all(t.dtype == torch.float32 for net in state["nets"].values() for t in net.values()
               if t.is_floating_point()), "weights stay fp32 under autocast"
    assert train(tiny_dataroot, checkpoints, caplog, "--amp", "off", "--max_iters", "4", "--continue_train") == [
        "precision: float32 (--amp off)"]
    resumed = torch.load(latest, weights_only=True)
    assert resumed["position"]["total_iters"] == 4
    assert any(not torch.equal(resumed["nets"]["G_A"][k], v) for k, v in state["nets"]["G_A"].items())
    image = (np.random.default_rng(0).random((40, 36, 3)) * 255).astype(np.uint8)
    # fp32 (amp off) and the bf16 backend (which amp off would contradict: refused since 2026-12-06)
    outputs = {backend: Restorer.from_checkpoint(latest, backend=backend, amp=amp).restore_array(image)
               for backend, amp in (("torch", "off"), ("bf16", "auto"))}
    assert outputs["torch"].shape == outputs["bf16"].shape == image.shape
    assert np.abs(outputs["bf16"].astype(int) - outputs["torch"]).mean() < 3, "bf16 restores what fp32 restores"


def test_test_py_logs_its_backend_choice_in_one_line(tiny_dataroot, tmp_path, caplog):
    train(tiny_dataroot, tmp_path / "ck", caplog, "--max_iters", "1")
    assert cli.main(["--dataroot", str(tiny_dataroot), "--name", "cross", "--checkpoints_dir",
                     str(tmp_path / "ck"), "--results_dir", str(tmp_path / "r"), "--gpu_ids", "-1",
                     "--nr_metrics", "false"]) == 0
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("backend ")]
    fp32 = "winograd" if backends.winograd_available() else "channels_last"
    assert len(lines) == 1 and lines[0].startswith(f"backend auto: {fp32} (ngf 8 < 16")
