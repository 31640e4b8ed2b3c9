"""The collapse monitor (training/collapse.py): forced collapses warn once and end with exit 6,
healthy runs do not."""
from __future__ import annotations

import logging
import random
from pathlib import Path

import pytest
import torch

import train
from training.collapse import (D_NEAR_ZERO, EXIT_COLLAPSED, FLAT_SPREAD, CollapseMonitor, restoration_spread,
                               stretch_iterations)
from util.visualizer import _LOG_LINE, Visualizer
from tests.conftest import tiny_flags

HEALTHY_LOG = Path(__file__).resolve().parents[1] / "docs" / "results" / "collapse" / "healthy_quick600_loss_log.txt"
PINNED = {"D_A": 0.2, "D_B": 0.0, "G_A": 0.6, "G_B": 1.0, "idt_A": 0.25, "idt_B": 0.01, "sparse_A": 0.05,
          "sparse_B": 0.02, "G": 2.1}


def healthy_losses(rng: random.Random) -> dict[str, float]:
    return {"D_A": rng.uniform(0.05, 0.5), "D_B": rng.uniform(0.05, 0.5), "G_A": rng.uniform(0.3, 1.2),
            "G_B": rng.uniform(0.3, 1.2), "NCE1": 0.0, "idt_A": rng.uniform(0.005, 0.05),
            "sparse_A": rng.uniform(0.02, 0.1), "G": rng.uniform(1, 3)}


def feed(monitor: CollapseMonitor, checks: list[dict[str, float]], first: int, every: int) -> list[str]:
    warnings = []
    for index, losses in enumerate(checks):
        losses = dict(losses)
        spread = losses.pop("spread", None)
        warning = monitor.observe(first + index * every, losses, spread)
        if warning:
            warnings.append(warning)
    return warnings


def test_constant_losses_warn_once_naming_what_collapsed_and_what_to_try():
    rng = random.Random(0)
    monitor = CollapseMonitor(100, 4000)
    checks = [healthy_losses(rng) for _ in range(10)]
    checks += [{**PINNED, "D_A": rng.uniform(0.1, 0.3), "idt_B": rng.uniform(0.01, 0.05),
                "sparse_B": rng.uniform(0.01, 0.05), "G_A": rng.uniform(0.5, 1), "G_B": rng.uniform(0.5, 1),
                "G": rng.uniform(1, 3)} for _ in range(30)]
    warnings = feed(monitor, checks, 100, 100)
    assert len(warnings) == 1
    (warning,) = warnings
    for words in ("D_B near 0", "idt_A pinned at 0.25", "sparse_A pinned at 0.05", "--lr", "--seed", "--diffaug",
                  "gray_soft"):
        assert words in warning
    assert "D_A" not in warning and "idt_B" not in warning
    # The pinned values began at the 11th check (iteration 1100), and lasted 1000 iterations before the warning.
    assert "since iteration 1100" in warning
    verdict = monitor.verdict()
    assert verdict and verdict.startswith("training ended collapsed") and "idt_A" in verdict


def test_a_model_without_a_discriminator_gets_advice_of_its_own():
    """--model paired: a flat change at every pixel (a saturated tanh) is named without GAN terms."""
    monitor = CollapseMonitor(100, 4000, adversarial=False)
    checks = [{"L1": 0.05, "spread": 0.2}] * 5 + [{"L1": 0.6, "spread": 0.0}] * 30
    (warning,) = feed(monitor, checks, 100, 100)
    assert warning.startswith("training looks collapsed") and "same change at every pixel" in warning
    assert "--init_type residual" in warning and "--rain_layer linear" in warning and "--lr" in warning
    assert "--diffaug" not in warning
    verdict = monitor.verdict()
    assert verdict and "--init_type residual" in verdict and "gray_soft" not in verdict


def test_a_resumed_monitor_goes_on_with_its_streaks():
    rng = random.Random(0)
    checks = [healthy_losses(rng) for _ in range(10)] + [dict(PINNED) for _ in range(30)]
    whole = CollapseMonitor(100, 4000)
    assert len(feed(whole, checks, 100, 100)) == 1
    first = CollapseMonitor(100, 4000)
    assert feed(first, checks[:15], 100, 100) == []  # stopped 500 iterations into the collapse
    resumed = CollapseMonitor(100, 4000)
    resumed.load_state_dict(first.state_dict())
    warnings = feed(resumed, checks[15:], 1600, 100)
    assert len(warnings) == 1 and "since iteration 1100" in warnings[0], "the streak did not start over"
    assert resumed.verdict() == whole.verdict()
    fresh = CollapseMonitor(100, 4000)
    fresh.load_state_dict(None)  # a checkpoint from before the monitor kept state
    assert fresh.state_dict() == CollapseMonitor(100, 4000).state_dict()


def test_a_collapse_that_ends_leaves_no_verdict():
    rng = random.Random(1)
    monitor = CollapseMonitor(100, 8000)
    checks = [healthy_losses(rng) for _ in range(10)] + [dict(PINNED) for _ in range(15)]
    checks += [healthy_losses(rng) for _ in range(10)]
    assert len(feed(monitor, checks, 100, 100)) == 1
    assert monitor.verdict() is None


def test_the_stretch_follows_the_run_and_the_checks():
    assert stretch_iterations(100, 4000) == 1000
    assert stretch_iterations(100, 40000) == 1000
    assert stretch_iterations(10, 200) == 50
    assert stretch_iterations(100, 600) == 500  # never fewer than 5 checks
    rng = random.Random(2)
    short = CollapseMonitor(100, 600)
    # Four checks of D near 0 are not yet sustained; the fifth is.
    checks = [healthy_losses(rng)] + [{**healthy_losses(rng), "D_B": D_NEAR_ZERO / 2} for _ in range(5)]
    assert feed(short, checks[:5], 100, 100) == []
    assert len(feed(short, checks[5:], 600, 100)) == 1


def test_healthy_and_short_runs_never_warn():
    rng = random.Random(3)
    monitor = CollapseMonitor(100, 10000)
    assert feed(monitor, [{**healthy_losses(rng), "spread": rng.uniform(0.02, 0.2)} for _ in range(100)],
                100, 100) == []
    assert monitor.verdict() is None
    smoke = CollapseMonitor(1, 50)  # a smoke test: not watched at all
    assert feed(smoke, [dict(PINNED) for _ in range(50)], 1, 1) == [] and smoke.verdict() is None


def test_the_loss_log_of_a_healthy_quick_run_raises_no_alarm():
    """docs/results/collapse/healthy_quick600_loss_log.txt: `ITERS=600 bash scripts/train_quick.sh`
    (DCD-GAN then; scripts/train_quick_gan.sh now) on make_synthetic's varied_heavy set (64 px),
    +3.95 dB over its input; its last check has D_B at 0.002."""
    monitor = CollapseMonitor(100, 600)
    total, warnings = 0, []
    for line in HEALTHY_LOG.read_text().splitlines():
        if (logged := _LOG_LINE.match(line)) is not None:
            total += 100
            tokens = logged[3].split()
            warning = monitor.observe(total, {n.rstrip(":"): float(v) for n, v in zip(tokens[::2], tokens[1::2])})
            warnings += [warning] if warning else []
    assert total == 600 and warnings == [] and monitor.verdict() is None


def test_restoration_spread_sees_flat_changes_but_not_restorations():
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    assert restoration_spread({"real_A": x, "fake_B": x.clone()}) == 0.0
    brightened = (x + 0.1).clamp(-1, 1)  # the saturated gray rain layer: clipped pixels excluded
    assert restoration_spread({"real_A": x, "fake_B": brightened}) < FLAT_SPREAD
    streaks = x.clone()
    streaks[..., ::4, :] -= 0.3
    assert restoration_spread({"real_A": x, "fake_B": streaks.clamp(-1, 1)}) > 10 * FLAT_SPREAD
    assert restoration_spread({"real_B": x}) is None
    # Flat after restoring something, or the input bit for bit: a collapse.
    for before in (0.05, 0.0):
        flat = CollapseMonitor(100, 4000)
        checks = [{"D_A": 0.2 + i / 100, "spread": before} for i in range(10)]
        checks += [{"D_A": 0.2 + i / 100, "spread": 0.0 if before == 0 else 1e-5} for i in range(20)]
        (warning,) = feed(flat, checks, 100, 100)
        assert "no longer restore anything (the same change at every pixel) since iteration 1100" in warning \
            or before == 0
    # Near the identity from the start (a residual generator that has not yet learnt), after the
    # small spread of its random initialisation: no alarm.
    waking = CollapseMonitor(100, 4000)
    checks = [{"D_A": 0.2 + i / 100, "spread": 3e-3 if i < 6 else 1e-5 * (1 + i)} for i in range(30)]
    assert feed(waking, checks, 100, 100) == []
    assert feed(waking, [{"D_A": 0.3, "spread": 0.02}], 3100, 100) == [] and waking.verdict() is None
    # ... but a run that ends that way restored nothing: the verdict says so (exit 6).
    idle = CollapseMonitor(100, 4000)
    assert feed(idle, checks, 100, 100) == []
    assert idle.verdict().startswith("training ended with G_A restoring nothing (G_A still returns its inputs")


def saturate_generators(monkeypatch) -> None:
    """Build every generator with its last convolution's bias at -50: the tanh sits at -1 and the
    gray rain layer's leak brightens (G_A) / darkens (G_B) every pixel by 0.1 (issue 29)."""
    import models.two_domain as two_domain
    build = two_domain.build_generator

    def saturated(opt, net_name="G_A"):
        net = build(opt, net_name)
        last_conv = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)][-1]
        with torch.no_grad():
            last_conv.bias.fill_(-50.0)
        return net
    monkeypatch.setattr(two_domain, "build_generator", saturated)


QUICK = ["--global_residual", "--rain_layer", "gray", "--lambda_sparse", "1", "--lambda_NCE", "0", "--normG",
         "none", "--lambda_IDT", "5", "--dcd_variant", "official", "--max_iters", "100", "--n_epochs", "25",
         "--n_epochs_decay", "0", "--save_latest_freq", "1000", "--no_html"]


def test_a_training_forced_into_collapse_warns_once_and_exits_6(tiny_dataroot, tmp_path, monkeypatch, caplog):
    saturate_generators(monkeypatch)
    flags = tiny_flags(tiny_dataroot, tmp_path, "collapsed") + QUICK
    with caplog.at_level(logging.INFO):
        status = train.main(flags)
    assert status == EXIT_COLLAPSED
    warnings = [r.getMessage() for r in caplog.records if "looks collapsed" in r.getMessage()]
    assert len(warnings) == 1 and "idt_A pinned at 0.25" in warnings[0] and "sparse_A pinned at 0.05" in warnings[0]
    last = caplog.records[-1]
    assert last.levelno == logging.ERROR and last.getMessage().startswith("training ended collapsed")
    log = (tmp_path / "collapsed" / "loss_log.txt").read_text()
    assert log.count("WARNING: the GAN looks collapsed") == 1
    assert (tmp_path / "collapsed" / "latest.pt").is_file()  # the run is saved all the same


def test_a_resumed_collapsed_training_keeps_the_monitor_s_state(tiny_dataroot, tmp_path, monkeypatch, caplog):
    saturate_generators(monkeypatch)
    flags = tiny_flags(tiny_dataroot, tmp_path, "collapsed") + QUICK
    assert train.main(flags) == EXIT_COLLAPSED
    state = torch.load(tmp_path / "collapsed" / "latest.pt", weights_only=False)["extra"]["trainer"]["collapse"]
    assert state["warned"] and any(key.startswith("pinned:idt_A") for key in state["active"])
    more = [{"100": "160", "25": "40"}.get(f, f) for f in flags]  # --max_iters 100 -> 160, --n_epochs 25 -> 40
    caplog.clear()
    with caplog.at_level(logging.INFO):
        status = train.main(more + ["--continue_train"])
    assert status == EXIT_COLLAPSED
    assert not [r for r in caplog.records if "looks collapsed" in r.getMessage()], "warned twice for one collapse"
    assert "pinned at 0.25 since iteration 11;" in caplog.records[-1].getMessage(), "the streak started over"


def test_a_healthy_tiny_training_of_the_same_length_does_not_warn(tiny_dataroot, tmp_path, caplog):
    """The same length without the saturation. Not a residual generator: one of this size is
    still at the identity after 100 iterations on 4 images, which the verdict rightly calls a
    run that restored nothing. With --diffaug: without it D_A overfits the 4 images and sits
    near 0 from about iteration 60 (a real collapse, which the monitor reports)."""
    flags = (tiny_flags(tiny_dataroot, tmp_path, "healthy") + QUICK[QUICK.index("--lambda_sparse"):]
             + ["--diffaug", "color,translation,cutout"])
    with caplog.at_level(logging.INFO):
        assert train.main(flags) == 0
    assert not [r for r in caplog.records if "collapse" in r.getMessage()]


def test_the_warning_reaches_the_dashboards(tmp_path):
    pytest.importorskip("torch.utils.tensorboard")
    visualizer = Visualizer("run", tmp_path, display_backend="tensorboard")
    visualizer.plot_current_losses(1, 0.5, {"D_A": 0.1}, step=5)
    visualizer.show_warning("the GAN looks collapsed: D_B near 0", step=5)
    visualizer.close()
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    events = EventAccumulator(str(tmp_path / "run"), size_guidance={"tensors": 0})
    events.Reload()
    texts = [event.tensor_proto.string_val[0].decode() for event in events.Tensors("warnings/text_summary")]
    assert texts == ["the GAN looks collapsed: D_B near 0"]
    assert "WARNING: the GAN looks collapsed" in (tmp_path / "run" / "loss_log.txt").read_text()
