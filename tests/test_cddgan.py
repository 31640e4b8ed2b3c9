"""CDD-GAN: one step, the adversarial game, the negative queue, checkpoints, launchers, RGB scoring."""
import importlib.util
import json
import math
import shlex
import subprocess
from pathlib import Path

import pytest
import torch

from data import create_dataset
from models import create_model
from models.losses import patch_nce_with_negatives
from restoration.loading import load_generator
from models.negative_queue import NegativeQueue
from options.train_options import TrainOptions
from tests.conftest import tiny_flags
from tests.descent import fresh_adam_state, slope_along_step

REPO = Path(__file__).resolve().parent.parent
NETS = ["G_A", "G_B", "D_A", "D_B", "F_A", "F_B", "N_A", "N_B"]
LOSSES = ["D_A", "D_B", "N", "G_A", "G_B", "cycle_A", "cycle_B", "NCE_A", "NCE_B", "G"]


def build(dataroot: Path, tmp_path: Path, *extra: str, batch_size: int = 1):
    opt = TrainOptions().parse(tiny_flags(dataroot, tmp_path / "ck", name="cdd", model="cddgan")
                               + ["--batch_size", str(batch_size), *extra])
    torch.manual_seed(0)
    model = create_model(opt)
    model.setup()
    dataset = create_dataset(opt)
    model.set_input(torch.utils.data.default_collate([dataset[(i, i + 1)] for i in range(batch_size)]))
    return model


def snapshot(model) -> dict[str, list[torch.Tensor]]:
    nets = dict(model.networks())
    nets.update({f"momentum_head_{d}": head.head for d, head in model.momentum_heads.items()})
    return {name: [p.detach().clone() for p in net.parameters()] for name, net in nets.items()}


def test_defaults_follow_the_spec(tmp_path):
    opt = TrainOptions().parse(["--dataroot", str(tmp_path), "--model", "cddgan", "--gpu_ids", "-1"])
    assert (opt.gan_mode, opt.lambda_GAN, opt.lambda_cyc, opt.lambda_NCE, opt.lambda_MS_neg) == \
        ("lsgan", 1.0, 10.0, 1.0, 1.0)
    assert (opt.lr, opt.n_epochs, opt.n_epochs_decay, opt.neg_queue) == (2e-4, 200, 200, 4096)
    assert (opt.cdd_clear_positives, opt.cdd_query_encoder, opt.nce_layers) == (True, "own", "0,4,8,12,16")


@pytest.mark.parametrize("extra,batch_size", [
    ((), 1),
    # The other interpretations, with per-image negatives over a batch of two.
    (("--cdd_query_encoder", "other", "--nce_includes_all_negatives_from_minibatch", "False"), 2),
])
def test_one_step_updates_every_network_with_finite_declared_losses(tiny_dataroot, tmp_path, extra, batch_size):
    model = build(tiny_dataroot, tmp_path, *extra, batch_size=batch_size)
    assert model.model_names == NETS
    before = snapshot(model)
    model.optimize_parameters()
    losses = model.get_current_losses()
    assert list(losses) == LOSSES
    assert all(math.isfinite(v) for v in losses.values()), losses
    assert losses["G"] == pytest.approx(sum(v for k, v in losses.items() if k not in ("D_A", "D_B", "N", "G")),
                                        rel=1e-5)
    after = snapshot(model)
    for name, params in before.items():
        assert any(not torch.equal(a, b) for a, b in zip(params, after[name])), f"{name} did not change"
    assert all(v.shape == model.real_A.shape for v in model.get_current_visuals().values())
    assert model.test_net_names()["AtoB"] == "G_A"


def test_negative_generators_raise_the_contrastive_loss_and_generators_lower_it(tiny_dataroot, tmp_path):
    # Without GAN, cycle and diversity terms, N's step minimises exactly -(NCE_A + NCE_B) and the
    # G + F step exactly NCE_A + NCE_B.
    model = build(tiny_dataroot, tmp_path, "--lambda_GAN", "0", "--lambda_cyc", "0", "--lambda_MS_neg", "0")
    model.optimize_parameters()  # fills the queue, so the measured loss includes it
    assert len(model.queues["A"]) > 0
    fresh_adam_state(model.optimizers.values())

    def prepare():
        model.forward()
        model.projections = model.project_pairs(model.nce_pairs(), model.real_B)

    def nce():  # what both steps compute: the same patches, N's noise, the queue and the exemplars
        prepare()
        losses, _ = model.contrastive_losses(model.projections, detach_queries=False)
        return sum(losses.values())

    def step(update):
        prepare()
        update()

    nets_N = [model.netN_A, model.netN_B]
    nce_before_N, slope_N = slope_along_step(nets_N, nce, lambda: step(model.update_N), seed=7)
    assert model.get_current_losses()["N"] == pytest.approx(-nce_before_N, rel=1e-5), "N's step saw other draws"
    assert slope_N > 0, slope_N
    frozen_N = [p.detach().clone() for net in nets_N for p in net.parameters()]
    nce_before_G, slope_G = slope_along_step([model.netG_A, model.netG_B, model.netF_A, model.netF_B], nce,
                                             lambda: step(model.update_G), seed=8)
    assert model.get_current_losses()["G"] == pytest.approx(nce_before_G, rel=1e-5), "G's step saw other draws"
    assert slope_G < 0, slope_G
    assert all(torch.equal(a, b) for a, b in zip(frozen_N, (p for net in nets_N for p in net.parameters())))


def test_queue_keeps_the_newest_entries_oldest_first():
    def labelled(*labels):
        return [torch.tensor([[float(x), 0.0] for x in labels])]

    queue = NegativeQueue(capacity=5, num_layers=1)
    assert len(queue) == 0 and queue.negatives() is None
    queue.push(labelled(0, 1, 2))
    queue.push(labelled(3, 4, 5, 6))
    assert len(queue) == 5
    assert queue.negatives()[0][:, 0].tolist() == [2, 3, 4, 5, 6]
    queue.push(labelled(*range(10, 17)))  # more than fits at once: the newest five
    assert queue.negatives()[0][:, 0].tolist() == [12, 13, 14, 15, 16]
    disabled = NegativeQueue(capacity=0, num_layers=1)
    disabled.push(labelled(1))
    assert len(disabled) == 0


def test_extra_positives_and_shared_negatives_follow_their_definition():
    def unit(rows):
        return torch.nn.functional.normalize(torch.tensor(rows), dim=1)

    q, k = unit([[1.0, 0.0], [0.0, 1.0]]), unit([[1.0, 0.2], [0.6, 0.8]])
    negatives, queue = unit([[0.0, 1.0], [-1.0, 0.0]]), unit([[0.8, -0.6]])
    exemplars = unit([[1.0, 1.0], [-0.2, 1.0], [0.5, -1.0]])
    loss = patch_nce_with_negatives(q, k, negatives, 0.5, 1, queue, exemplars)
    for i in range(2):
        def e(v):
            return math.exp(float(v) / 0.5)
        positive = e(q[i] @ k[i]) + sum(e(q[i] @ x) for x in exemplars) / len(exemplars)
        negative = sum(e(q[i] @ n) for n in torch.cat([negatives, queue]))
        assert loss[i].item() == pytest.approx(-math.log(positive / (positive + negative)), rel=1e-5)


def test_checkpoint_round_trip_keeps_queues_momentum_heads_and_fifo_order(tiny_dataroot, tmp_path):
    model = build(tiny_dataroot, tmp_path, "--neg_queue", "24")  # 16 negatives per step and layer
    model.optimize_parameters()
    first = [t.clone() for t in model.queues["A"].negatives()]
    model.optimize_parameters()
    second = model.queues["A"].negatives()
    assert all(len(t) == 24 for t in second)
    assert all(torch.equal(b[:8], a[8:]) for a, b in zip(first, second)), "the oldest 8 must go first"

    path = model.save("latest", {"epoch": 1, "epoch_iter": 2, "total_iters": 2})
    torch.manual_seed(123)  # different fresh weights: loading must overwrite them
    flags = tiny_flags(tiny_dataroot, tmp_path / "ck", name="cdd", model="cddgan")
    fresh = create_model(TrainOptions().parse(flags + ["--neg_queue", "24", "--continue_train"]))
    fresh.setup()
    for d in ("A", "B"):
        for saved, loaded in zip(model.queues[d].negatives(), fresh.queues[d].negatives()):
            assert torch.equal(saved, loaded)
        for key, value in model.momentum_heads[d].state_dict().items():
            assert torch.equal(value, fresh.momentum_heads[d].state_dict()[key])
    for name in NETS:
        assert all(torch.equal(a, b) for a, b in zip(model.net(name).parameters(), fresh.net(name).parameters()))
    net, _ = load_generator(path, "AtoB")
    assert all(torch.equal(a, b) for a, b in zip(net.parameters(), model.netG_A.parameters()))


@pytest.mark.parametrize("script,name,sizes", [
    ("train_cddgan_sots.sh", "cddgan_sots", (286, 256)),
    ("train_cddgan_synthetic_haze.sh", "cddgan_synthetic_haze", (143, 128)),
])
def test_launchers_pass_valid_flags_and_build_missing_synthetic_data(tmp_path, script, name, sizes):
    env = {"PATH": "/usr/bin:/bin", "PY": "echo", "DATAROOT": str(tmp_path / "data")}
    lines = subprocess.run(["bash", str(REPO / "scripts" / script), "--max_iters", "3"], env=env,
                           capture_output=True, text=True, check=True).stdout.splitlines()
    if script == "train_cddgan_synthetic_haze.sh":  # no meta.json yet: it builds the haze set first
        assert shlex.split(lines[0])[:5] == ["-m", "datasets.make_synthetic", "--kind", "haze", "--out"]
    argv = shlex.split(lines[-1])
    assert argv[0] == "train.py"
    opt = TrainOptions().parse(argv[1:] + ["--gpu_ids", "-1"])
    assert (opt.model, opt.dataroot, opt.name, opt.max_iters) == ("cddgan", str(tmp_path / "data"), name, 3)
    assert (opt.n_epochs, opt.n_epochs_decay, opt.lambda_cyc, opt.neg_queue) == (200, 200, 10.0, 4096)
    assert (opt.load_size, opt.crop_size, opt.cdd_clear_positives) == (*sizes, True)


def test_dehazing_workflow_trains_restores_and_scores_on_rgb(tiny_dataroot, tmp_path):
    spec = importlib.util.spec_from_file_location("benchmark_quality", REPO / "scripts" / "benchmark_quality.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "bench"
    assert bench.main(["--dataroot", str(tiny_dataroot), "--models", "cddgan", "--iters", "2", "--channel", "rgb",
                       "--ngf", "8", "--ndf", "8", "--load_size", "36", "--crop_size", "32", "--num_patches", "16",
                       "--netF_nc", "16", "--gpu_ids", "-1", "--out", str(out), "--num_threads", "0",
                       "--netG", "resnet_6blocks"]) == 0
    run = json.loads((out / "results.json").read_text())["runs"][0]
    assert (run["restoring_net"], run["iterations"], run["images"]) == ("G_A", 2, 2)
    assert math.isfinite(run["psnr"])
    assert "RGB channel" in (out / "results" / "cddgan" / "test_latest" / "metrics.txt").read_text()
