"""Speed levers: bf16 autocast on the CPU, channels-last, torch.compile wiring, no host reads,
no redundant generator passes, and the benchmark script that measures them."""
import json
import sys

import pytest
import torch

import util.distributed as distributed
from models import create_model
from options.train_options import TrainOptions
from scripts import benchmark_speed
from tests.conftest import MODEL_KEYS, tiny_model_flags

BATCH_SEED = 5


def make_model(tiny_dataroot, tmp_path, *extra, model="dcl"):
    opt = TrainOptions().parse(tiny_model_flags(model, tiny_dataroot, tmp_path / "ck", "amp") + list(extra))
    torch.manual_seed(opt.seed)
    m = create_model(opt)
    m.setup()
    return m


def batch():
    g = torch.Generator().manual_seed(BATCH_SEED)
    return {"A": torch.rand(1, 3, 32, 32, generator=g) * 2 - 1, "B": torch.rand(1, 3, 32, 32, generator=g) * 2 - 1,
            "A_paths": ["a.png"], "B_paths": ["b.png"]}


def one_step(model) -> dict[str, float]:
    torch.manual_seed(0)  # same patch positions for every model compared
    model.set_input(batch())
    model.optimize_parameters()
    return model.get_current_losses()


def test_amp_on_cpu_trains_in_bf16_and_matches_fp32_within_its_tolerance(tiny_dataroot, tmp_path):
    expected = one_step(make_model(tiny_dataroot, tmp_path))
    model = make_model(tiny_dataroot, tmp_path, "--amp")
    assert model.amp_dtype == torch.bfloat16
    assert not model.scaler.is_enabled(), "bf16 has fp32's range: no gradient scaling"
    before = [p.detach().clone() for p in model.netG_A.parameters()]
    got = one_step(model)
    assert model.fake_B.dtype == torch.bfloat16
    assert all(p.dtype == torch.float32 for p in model.netG_A.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, model.netG_A.parameters()))
    # bf16 keeps 8 significant bits (relative step 2**-8 = 0.4%); a few layers compound it.
    # The CPU decides the bf16 kernels (AMX, AVX512-BF16, or emulated on AVX2); each rounds
    # to that precision, so the tolerance covers all of them. Only their speed differs.
    for name in expected:
        assert got[name] == pytest.approx(expected[name], rel=0.05, abs=0.02), name


def test_channels_last_gives_the_same_step(tiny_dataroot, tmp_path):
    plain = make_model(tiny_dataroot, tmp_path)
    cl = make_model(tiny_dataroot, tmp_path, "--channels_last")
    conv = cl.netG_A.model[1]
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    expected, got = one_step(plain), one_step(cl)
    # Other convolution kernels sum in another order: the losses differ by float32 rounding,
    # at most 6e-7 relative with the AVX-512, AVX2 and default kernels, far inside 1e-4.
    for name in expected:
        assert got[name] == pytest.approx(expected[name], rel=1e-4, abs=1e-5), name


def test_channels_last_gives_the_same_gradients_at_batch_size_1(tiny_dataroot, tmp_path):
    """torch 2.14's instance-norm backward is wrong for channels-last gradients at batch size 1;
    InstanceNorm computes that case as group norm (tests/test_speed.py). Compared in float64
    against the network's largest gradient: the biases before instance norm have an exactly
    zero gradient whose computed value is rounding noise (DEVELOPERS.md)."""
    torch.set_default_dtype(torch.float64)
    try:
        plain = make_model(tiny_dataroot, tmp_path)
        cl = make_model(tiny_dataroot, tmp_path, "--channels_last")
        assert one_step(cl) == pytest.approx(one_step(plain), rel=1e-12)
    finally:
        torch.set_default_dtype(torch.float32)
    for net in ("G_A", "G_B", "D_A", "D_B", "F1", "F2"):
        pairs = [(a, b) for a, b in zip(cl.net(net).parameters(), plain.net(net).parameters()) if b.grad is not None]
        scale = max(float(b.grad.abs().max()) for _, b in pairs)
        for a, b in pairs:
            assert torch.allclose(a.grad, b.grad, rtol=0, atol=1e-9 * scale), net


def test_compile_wraps_trainable_nets_and_checkpoints_stay_plain(tiny_dataroot, tmp_path):
    model = make_model(tiny_dataroot, tmp_path, "--compile")
    plain_keys = {name: set(net.state_dict()) for name, net in model.networks().items()}
    model.wrap_networks()  # torch.compile is lazy: nothing is compiled until the first call
    assert all(isinstance(net, torch._dynamo.eval_frame.OptimizedModule) for net in model.networks().values())
    assert {name: set(state) for name, state in model.plain_state_dicts().items()} == plain_keys


def test_compile_without_a_cpu_compiler_fails_with_a_clear_message(monkeypatch):
    monkeypatch.setattr(distributed.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="C\\+\\+ compiler.*without --compile"):
        distributed.compile_network(torch.nn.Conv2d(3, 3, 1), torch.device("cpu"))


class FailingBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        raise RuntimeError("backend compiler failed")


def test_a_backward_failure_under_compile_names_the_flag(tiny_dataroot, tmp_path):
    model = make_model(tiny_dataroot, tmp_path, "--compile")
    loss = FailingBackward.apply(torch.ones((), requires_grad=True))
    with pytest.raises(RuntimeError, match="backend compiler failed") as info:
        model.backward_and_step(loss, ["G"])
    assert any("run without --compile" in note for note in info.value.__notes__)


# fastcut's flip-equivariance draws its coin from torch's CPU generator and reads it (a CPU
# tensor, no device sync): tests/test_cuda.py checks fastcut with CUDA's sync debug mode.
@pytest.mark.parametrize("model_name", [key for key in MODEL_KEYS if key != "fastcut"])
def test_a_training_step_reads_nothing_back_to_the_host(tiny_dataroot, tmp_path, monkeypatch, model_name):
    """On CUDA every tensor -> Python read waits for the GPU; the models' steps make none.

    Losses are read only at --print_freq (get_current_losses). Reads inside torch itself
    (Adam's step counter is a CPU scalar) are not device syncs and are allowed.
    """
    model = make_model(tiny_dataroot, tmp_path, model=model_name)
    reads = []

    def recording(original):
        def read(self, *args, **kwargs):
            caller = sys._getframe(1).f_code.co_filename
            if "site-packages" not in caller and "/torch/" not in caller:
                reads.append(f"{original.__name__} from {caller}:{sys._getframe(1).f_lineno}")
            return original(self, *args, **kwargs)
        return read

    for method in ("item", "tolist", "__float__", "__int__", "__bool__"):
        monkeypatch.setattr(torch.Tensor, method, recording(getattr(torch.Tensor, method)))
    model.set_input(batch())
    model.optimize_parameters()
    monkeypatch.undo()
    assert reads == []


def steps_with_and_without_reuse(tiny_dataroot, tmp_path, *flags, model_name):
    """One step with the features of the translations reused, one with fresh encoder passes."""
    reused = make_model(tiny_dataroot, tmp_path, *flags, model=model_name)
    fresh = make_model(tiny_dataroot, tmp_path, *flags, model=model_name)
    separate_encoder_passes = benchmark_speed.separate_encoder_passes
    for name in ("G_A", "G_B"):  # the features of every translation come from a fresh encoder pass
        separate_encoder_passes(fresh.net(name))
    calls = []
    reused.netG_A.register_forward_hook(lambda *args: calls.append(1))
    return reused, fresh, one_step(reused), one_step(fresh), len(calls)


def assert_same_gradients(reused, fresh):
    # Compare gradients, not weights: Adam's first step is about lr * sign(grad), so rounding
    # noise in a near-zero gradient would flip a weight by 2 lr.
    for net in ("G_A", "G_B"):
        for a, b in zip(reused.net(net).parameters(), fresh.net(net).parameters()):
            scale = float(b.grad.abs().max())
            assert torch.allclose(a.grad, b.grad, rtol=1e-4, atol=1e-4 * scale), net


@pytest.mark.parametrize("model_name, flags, calls", [
    # dcl: G_A runs on a (fake_B), on b (identity) and encodes fake_A for NCE2's queries.
    ("dcl", [], 3),
    # dcdgan paper: + rec_B = G_A(fake_A), whose features serve NCE2's queries and NCE4's
    # keys, and the encoding of rec_A for NCE3's queries.
    ("dcdgan", ["--dcd_variant", "paper"], 4),
])
def test_contrastive_terms_reuse_the_translations_features(tiny_dataroot, tmp_path, model_name, flags, calls):
    """No redundant generator passes; the losses are those of fresh encoder passes."""
    reused, fresh, got, expected, count = steps_with_and_without_reuse(tiny_dataroot, tmp_path, *flags,
                                                                       model_name=model_name)
    assert count == calls
    assert got == expected
    if model_name == "dcl":  # only keys are reused there, and keys carry no gradient
        assert_same_gradients(reused, fresh)


def test_paper_variant_gradients_match_fresh_encoder_passes(tiny_dataroot, tmp_path):
    """The paper variant reuses *queries* (they carry gradients), so compare in float64.

    In float32 the sums behind a few gradients round differently on the two paths; in float64
    every gradient agrees to 1e-9 of the network's largest. The biases of convolutions followed
    by instance norm have an exactly-zero gradient (the norm removes any constant), so their
    values on either path are rounding noise; the network-wide scale absorbs them.
    """
    torch.set_default_dtype(torch.float64)
    try:
        reused, fresh, got, expected, _ = steps_with_and_without_reuse(
            tiny_dataroot, tmp_path, "--dcd_variant", "paper", model_name="dcdgan")
    finally:
        torch.set_default_dtype(torch.float32)
    assert next(reused.netG_A.parameters()).dtype == torch.float64
    assert got == pytest.approx(expected, rel=1e-12)
    for net in ("G_A", "G_B"):
        pairs = list(zip(reused.net(net).parameters(), fresh.net(net).parameters()))
        scale = max(float(b.grad.abs().max()) for _, b in pairs)
        assert scale > 0
        for a, b in pairs:
            assert torch.allclose(a.grad, b.grad, rtol=0, atol=1e-9 * scale), net


# benchmark_speed.py on a tiny dcl: the tests add what they measure.
TINY_BENCHMARK = ["--model", "dcl", "--gpu_ids", "-1", "--ngf", "4", "--ndf", "4", "--netF_nc", "16",
                  "--num_patches", "16", "--netG", "resnet_6blocks"]
TINY_TRAIN_BENCHMARK = TINY_BENCHMARK + ["--crop_size", "32", "--iters", "1", "--warmup", "0"]


def test_benchmark_sweeps_comma_separated_levers_only():
    configs = benchmark_speed.expand_sweeps(["--model", "dcl", "--amp", "false,true", "--ngf", "8,16",
                                             "--nce_layers", "0,4"])
    assert len(configs) == 4
    assert {(c[3], c[5]) for c in configs} == {("false", "8"), ("false", "16"), ("true", "8"), ("true", "16")}
    assert all(c[-1] == "0,4" for c in configs)


def test_benchmark_prints_one_json_line_per_configuration(capsys):
    status = benchmark_speed.main([
        *TINY_TRAIN_BENCHMARK, "--infer_sizes", "32", "--infer_iters", "1", "--skip_peak", "--reference_costs",
        "--channels_last", "false,true"])
    assert status == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["config"]["channels_last"] for line in lines] == [False, True]
    for line in lines:
        assert line["train"]["flops_per_iter"] > 0 and line["train"]["sec_per_iter"] > 0
        assert line["train"]["peak_rss_mb"] > 0
        assert line["infer"]["32"]["megapixels_per_s"] > 0


def test_benchmark_times_tiled_wxh_inference_and_the_nan_guard(capsys):
    """The GPU check's inference at 4000x3000 in tiles and its NaN-guard row, in miniature."""
    status = benchmark_speed.main([
        *TINY_TRAIN_BENCHMARK, "--skip_peak", "--infer_sizes", "32,48x40", "--infer_tile", "32", "--tile_overlap", "8",
        "--infer_iters", "1", "--nan_guard"])
    assert status == 0
    line = json.loads(capsys.readouterr().out)
    assert line["train"]["nan_guard"] is True
    wide = line["infer"]["48x40"]
    assert wide["tile"] == 32 and line["infer"]["32"]["tile"] == 0, "an image within one tile is restored whole"
    assert wide["megapixels_per_s"] == pytest.approx(48 * 40 / 1e6 / wide["sec_per_image"])
    assert wide["flops_per_image"] == pytest.approx(line["infer"]["32"]["flops_per_image"] * 48 * 40 / 32**2)


@pytest.mark.parametrize("model_key", MODEL_KEYS)
def test_fp16_steps_of_every_model_go_through_the_gradient_scaler(tiny_dataroot, tmp_path, model_key):
    """The CUDA path for GPUs without bf16 (fp16 autocast + GradScaler), emulated on the CPU.

    Each update scales its loss, and every optimizer it names must get gradients from that
    backward, or `scaler.step` fails ("No inf checks were recorded"). CPU autocast keeps other
    ops in fp32 than CUDA autocast does: CUDA computes `norm` in fp32, the CPU in fp16, where
    the projection heads' near-zero embeddings normalise to NaN and every generator update is
    skipped. So losses and updates are checked on the GPU (tests/test_cuda.py); here, that
    skipped updates leave the weights finite.
    """
    opt = TrainOptions().parse(tiny_model_flags(model_key, tiny_dataroot, tmp_path / "ck") + ["--amp"])
    torch.manual_seed(opt.seed)
    model = create_model(opt)
    model.setup()
    model.amp_dtype = torch.float16  # what _pick_amp_dtype chooses on a GPU without bf16
    model.scaler = torch.amp.GradScaler("cpu")
    for _ in range(2):
        model.set_input(batch())
        model.optimize_parameters()
    assert model.fake_B.dtype == torch.float16
    assert model.scaler.get_scale() < 2.0**16, "the scaler saw the (overflowing) first steps"
    for name, net in model.networks().items():
        assert all(torch.isfinite(p).all() for p in net.parameters()), name
