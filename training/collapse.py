"""Notice a collapsing GAN while it trains (`CollapseMonitor`), so that no run ends silently
with outputs worse than its inputs.

The trainer feeds the monitor the logged losses every --print_freq iterations, and the
spread of the restoring generator's change to its input (`restoration_spread`). Three
symptoms count, each only once it has lasted a sustained stretch (`stretch_iterations`):
- a discriminator loss (`D`, `D_A`, `D_B`) near 0: that discriminator tells every fake from
  every real image, and its generator no longer learns from it;
- a generator term pinned at a constant (e.g. `idt_A` at exactly 0.25 and `sparse_A` at 0.05
  for 1,000+ iterations, the saturated `--rain_layer gray` of docs/TROUBLESHOOTING.md): a term
  that no longer depends on the images means the network's output no longer does either;
- outputs that stop changing anything: G_A's change to its input is one constant over every
  pixel it does not clip (the input brightened by a constant), after it had restored
  something, or it returns its input bit for bit; a G_A that never left the identity counts
  only at the end (`verdict`), as a run that restored nothing.
Runs planned shorter than MIN_PLANNED_ITERATIONS and the first tenth of longer ones are not
watched (a generator starts near its initialisation).
The first time one lasts the stretch, the trainer writes ONE warning line (`warning_text`);
if a symptom still holds at the last check, `verdict()` describes it and train.py exits
with status 6 (`EXIT_COLLAPSED`). The monitor starts afresh when a run resumes.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

# A discriminator loss below this is "near 0". A healthy least-squares D sits around
# 0.1-0.5 (0.07 was the lowest check of a healthy 600-iteration quick run) and hinge or BCE
# discriminators higher; the collapses reported in issue 29 logged 0.
D_NEAR_ZERO = 0.01
# A term whose logged values stay within this fraction of their mean is pinned. L1 and GAN
# terms on random crops move by tens of percent between checks; the pinned idt/sparse terms
# of a saturated rain layer move only through the few pixels that clip (well under 2%).
PIN_RELATIVE = 0.02
# Terms at or below this are off (a disabled term is logged as 0), not pinned.
PIN_FLOOR = 1e-6
# G_A's change to its input (in [-1, 1] units) spreading less than this over the pixels it
# does not clip is "no restoration": a quarter of one of 255 grey levels.
FLAT_SPREAD = 0.5 / 255
# G_A has restored something once its change spread this much (2.5 grey levels) at a watched
# check: well above the spread of a freshly initialised residual generator (about 1e-3),
# which the identity term first pulls towards the identity before it learns to restore.
RESTORED_SPREAD = 5 * FLAT_SPREAD
# Pixels this close to +-1 in the output are clipped: there the change is cut short.
CLIP_MARGIN = 1e-3
# How long a symptom must last: SUSTAINED_ITERATIONS (the collapses held for 1,000+
# iterations), but never more than a quarter of the run (a short run that collapses for its
# last quarter has collapsed) and never fewer than MIN_CHECKS checks (a healthy run's first
# hundred iterations may look flat: its generator starts near the identity).
SUSTAINED_ITERATIONS = 1000
MIN_CHECKS = 5
# Runs planned shorter than this are smoke tests, not watched: their generators have barely
# left their initialisation (near the identity with --global_residual, NCE at its chance
# value). In longer runs the first tenth (WARMUP_SHARE) is not watched, for the same reason.
MIN_PLANNED_ITERATIONS = 100
WARMUP_SHARE = 0.1
# train.py's exit status when a collapse lasted to the end of training.
EXIT_COLLAPSED = 6

ADVICE = ("try a lower --lr, another --seed, --rain_layer gray_soft, or the small-data stabilisers "
          "--diffaug color,translation,cutout, --lambda_R1 1, --normD spectral (docs/TROUBLESHOOTING.md)")
# A model without a discriminator (--model paired) collapses another way: a generator whose last
# tanh saturated after a too-large step, or whose signal vanished under its initialisation.
SUPERVISED_ADVICE = ("try a lower --lr, another --seed, --rain_layer linear (no tanh to saturate), or "
                     "--init_type residual for a generator without normalisation (docs/TROUBLESHOOTING.md)")


def stretch_iterations(print_freq: int, planned_iterations: int) -> int:
    """How many iterations a symptom must last before it counts (see the constants)."""
    return max(MIN_CHECKS * print_freq, min(SUSTAINED_ITERATIONS, planned_iterations // 4))


def is_discriminator_loss(name: str) -> bool:
    return name == "D" or name.startswith("D_")


def restoration_spread(visuals: dict[str, torch.Tensor]) -> float | None:
    """The standard deviation of G_A's change to its input (`fake_B - real_A`) over the pixels
    where the output is not clipped to +-1; None without those visuals or such pixels."""
    if "real_A" not in visuals or "fake_B" not in visuals:
        return None
    real, fake = visuals["real_A"].detach().float(), visuals["fake_B"].detach().float()
    if real.shape != fake.shape:
        return None
    inside = fake.abs() < 1 - CLIP_MARGIN
    if inside.sum() < 2:
        return None
    return float((fake - real)[inside].std())


@dataclass
class _Streak:
    """An unbroken run of checks showing one symptom: where it began and the band of its values."""

    start: int
    low: float
    high: float


class CollapseMonitor:
    """Feed `observe` every --print_freq iterations; read `verdict()` at the end."""

    def __init__(self, print_freq: int, planned_iterations: int, adversarial: bool = True):
        self.print_freq = print_freq
        self.what, self.advice = ("the GAN", ADVICE) if adversarial else ("training", SUPERVISED_ADVICE)
        self.stretch = stretch_iterations(print_freq, planned_iterations)
        self.watched = planned_iterations >= MIN_PLANNED_ITERATIONS
        self.warmup = int(planned_iterations * WARMUP_SHARE)
        self.streaks: dict[str, _Streak] = {}  # symptom key -> its current streak
        self.active: dict[str, str] = {}  # symptom key -> description, for the lasting ones
        self.warned = False
        self.has_restored = False  # G_A's change has varied over the image at some check

    def lasted(self, streak: _Streak, iteration: int) -> bool:
        # Each check stands for the print_freq iterations that end at it.
        return iteration - streak.start + self.print_freq >= self.stretch

    def _track(self, key: str, iteration: int, value: float, holds: Callable[[_Streak], bool]) -> None:
        """Extend the streak of symptom `key` with this check's value if the symptom still holds
        for the widened band, else start a new one here (or none, if it does not hold at all)."""
        streak = self.streaks.get(key)
        if streak is not None:
            grown = _Streak(streak.start, min(streak.low, value), max(streak.high, value))
            if holds(grown):
                self.streaks[key] = grown
                return
        fresh = _Streak(iteration, value, value)
        if holds(fresh):
            self.streaks[key] = fresh
        else:
            self.streaks.pop(key, None)

    def observe(self, iteration: int, losses: dict[str, float], spread: float | None = None) -> str | None:
        """Record one check at `iteration` (total iterations); returns the warning line the first
        time a symptom has lasted the stretch, else None."""
        if not self.watched or iteration <= self.warmup:
            return None
        if spread is not None and spread >= RESTORED_SPREAD:
            self.has_restored = True
        seen = set()
        for name, value in losses.items():
            if is_discriminator_loss(name):
                key = f"near0:{name}"
                self._track(key, iteration, value, lambda s: s.high < D_NEAR_ZERO)
            elif not name.startswith("R1") and name != "G":
                key = f"pinned:{name}"
                self._track(key, iteration, value, lambda s: s.low > PIN_FLOOR and
                            s.high - s.low <= PIN_RELATIVE * (s.high + s.low) / 2)
            else:
                continue
            seen.add(key)
        if spread is not None:
            # Flat after it had restored something, or its input returned bit for bit: a collapse.
            # Flat from the start is how a residual generator (--global_residual) begins, so it
            # counts only if it lasts to the end ("identity": a run that restored nothing).
            self._track("flat:G_A", iteration, spread,
                        lambda s: s.high < FLAT_SPREAD and (self.has_restored or s.high == 0))
            self._track("identity:G_A", iteration, spread,
                        lambda s: 0 < s.high < FLAT_SPREAD and not self.has_restored)
            seen.update(("flat:G_A", "identity:G_A"))
        for key in set(self.streaks) - seen:  # a term no longer logged ends its streak
            del self.streaks[key]
        self.active = {key: self.describe(key, streak) for key, streak in self.streaks.items()
                       if self.lasted(streak, iteration)}
        if any(not key.startswith("identity:") for key in self.active) and not self.warned:
            self.warned = True
            return self.warning_text()
        return None

    def state_dict(self) -> dict:
        """What the monitor has seen, for the checkpoint: a resumed run (--continue_train) goes
        on with the streaks it had instead of starting them over."""
        return {"streaks": {key: [s.start, s.low, s.high] for key, s in self.streaks.items()},
                "active": dict(self.active), "warned": self.warned, "has_restored": self.has_restored}

    def load_state_dict(self, state: dict | None) -> None:
        """Go on from `state_dict()`'s; None (a checkpoint from before the monitor kept state)
        leaves it fresh."""
        if not state:
            return
        self.streaks = {key: _Streak(int(start), float(low), float(high))
                        for key, (start, low, high) in state["streaks"].items()}
        self.active = dict(state["active"])
        self.warned = bool(state["warned"])
        self.has_restored = bool(state["has_restored"])

    def describe(self, key: str, streak: _Streak) -> str:
        kind, name = key.split(":", 1)
        since = f"since iteration {streak.start}"
        if kind == "near0":
            return f"{name} near 0 ({streak.high:.2g}) {since}"
        if kind == "pinned":
            return f"{name} pinned at {streak.high:.3g} {since}"  # clipped pixels only lower it
        if kind == "identity":
            return f"G_A still returns its inputs all but unchanged, having restored nothing {since}"
        return f"G_A's outputs no longer restore anything (the same change at every pixel) {since}"

    def summary(self, keys=None) -> str:
        return "; ".join(self.active[key] for key in sorted(self.active if keys is None else keys))

    def warning_text(self) -> str:
        collapsed = [key for key in self.active if not key.startswith("identity:")]
        return f"{self.what} looks collapsed: {self.summary(collapsed)}; {self.advice}"

    def verdict(self) -> str | None:
        """At the end of training: what was still collapsed at the last check, or None. A G_A that
        never left the identity counts here too (a run that restored nothing, issue 32)."""
        if not self.active:
            return None
        if all(key.startswith("identity:") for key in self.active):
            return (f"training ended with G_A restoring nothing ({self.summary()}): train longer (a larger ITERS or "
                    f"budget), or {self.advice}")
        return (f"training ended collapsed ({self.summary()}): its outputs are likely worse than its inputs; "
                f"{self.advice}")
