"""What a checkpoint's saved options and network names mean: the generator they describe,
which network restores a direction, and which architecture flags a resumed run must keep.
Loading a checkpoint to restore with is restoration/loading.py's."""
from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch.nn as nn

from util.checkpoint import CheckpointError

from .builders import rain_layer_sign
from .networks import define_generator
from .networks.layers import LEGACY_UPSAMPLE_TAPS

logger = logging.getLogger(__name__)

# A checkpoint's option name -> define_generator's argument. Options a checkpoint lacks take
# define_generator's defaults, the values those flags had before they existed.
GENERATOR_OPTIONS = {"netG": "netG", "input_nc": "input_nc", "output_nc": "output_nc", "ngf": "ngf",
                     "normG": "norm", "no_antialias": "no_antialias", "no_antialias_up": "no_antialias_up",
                     "global_residual": "global_residual", "rain_layer": "rain_layer", "skips": "skips",
                     "haze_layer": "haze_layer", "t_min": "t_min", "haze_init": "haze_init"}


def upsample_taps_of(saved_options: Mapping[str, Any]) -> int:
    """The upsampling filter of the generators a checkpoint's options describe.

    Checkpoints written before `--upsample_taps` existed used the 3-tap filter; they are
    rebuilt with it (and say so), so their weights keep producing the images they did.
    """
    if "upsample_taps" not in saved_options:
        logger.info("checkpoint predates --upsample_taps: using its 3-tap upsampling filter")
        return LEGACY_UPSAMPLE_TAPS
    return int(saved_options["upsample_taps"])


def generator_from_saved_options(saved_options: Mapping[str, Any], net_name: str = "G_A") -> nn.Module:
    """Generator `net_name` as a checkpoint's options dict describes it (uninitialised: load
    weights into it)."""
    kwargs = {arg: saved_options[key] for key, arg in GENERATOR_OPTIONS.items() if key in saved_options}
    return define_generator(**kwargs, upsample_taps=upsample_taps_of(saved_options),
                            rain_layer_sign=rain_layer_sign(net_name))


def restoring_net_name(state: Mapping[str, Any], path: str | Path, direction: str) -> str:
    """The network of a loaded checkpoint that restores `direction` (its `test_nets` entry)."""
    names = state.get("test_nets", {})
    net_name = names.get(direction)
    if net_name is None or net_name not in state["nets"]:
        raise CheckpointError(f"'{path}' has no generator for direction {direction} "
                              f"(available: {sorted(names) or 'none'})")
    return net_name


def first_line(err: BaseException) -> str:
    """The first line of an error's message (torch's size-mismatch reports run to 50 lines)."""
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


# Options that decide the networks' shapes or what the saved state means: resuming with
# another value would load weights into the wrong network (or train another objective).
ARCHITECTURE_FLAGS = ("model", "netG", "ngf", "normG", "input_nc", "output_nc", "no_antialias", "no_antialias_up",
                      "upsample_taps", "global_residual", "rain_layer", "skips", "haze_layer", "t_min", "haze_init",
                      "netD", "ndf", "n_layers_D", "normD", "netF", "netF_nc", "nce_layers", "neg_nz", "dcd_variant")


def architecture_differences(saved_options: Mapping[str, Any], current: Mapping[str, Any]) -> dict[str, tuple]:
    """{flag: (saved value, current value)} for each architecture flag the two option sets
    disagree on. A flag a checkpoint predates counts as its old default (`upsample_taps`: 3)."""
    saved = dict(saved_options)
    if "upsample_taps" not in saved and not current.get("no_antialias_up"):
        saved["upsample_taps"] = upsample_taps_of(saved)
    return {flag: (saved[flag], current[flag]) for flag in ARCHITECTURE_FLAGS
            if flag in saved and flag in current and saved[flag] != current[flag]
            and not (flag == "upsample_taps" and current.get("no_antialias_up"))}


def architecture_refusal(path: str | Path, differences: Mapping[str, tuple]) -> str:
    """One line saying which architecture flags a checkpoint was trained with and what the
    options ask for instead: "'run/latest.pt' was trained with --ngf 8 and without --skips;
    these options ask for --ngf 16 and --skips: ..."."""
    def trained(flag: str, value: Any) -> str:
        if isinstance(value, bool):
            return f"with --{flag}" if value else f"without --{flag}"
        return f"with --{flag} {value}"

    def asked(flag: str, value: Any) -> str:
        if isinstance(value, bool):
            return f"--{flag}" if value else f"no --{flag}"
        return f"--{flag} {value}"

    was = " and ".join(trained(flag, old) for flag, (old, _) in differences.items())
    now = " and ".join(asked(flag, new) for flag, (_, new) in differences.items())
    return (f"'{path}' was trained {was}; these options ask for {now}: resume with the checkpoint's values, or start "
            "a new run under another --name")
