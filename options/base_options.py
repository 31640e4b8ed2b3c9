"""Flags shared by training and testing, in the CycleGAN/CUT vocabulary, and how they are checked.

Each options class checks its values in `validate` right after parsing: a value that cannot
work ends the program with exit status 2 and one line naming the flag and the fix, before
any data is read or anything is written.
"""
from __future__ import annotations

import argparse
import logging
import math
import os
import unicodedata
from pathlib import Path

import torch

from util.atomic_file import atomic_write
from runtime.precision import amp_mode

logger = logging.getLogger(__name__)


def default_gpu_ids() -> str:
    return "0" if torch.cuda.is_available() else "-1"


class OptionError(ValueError):
    """A flag's value cannot work; the message names the flag and the fix."""


# The filesystem's limit on one path component (ext4, XFS, btrfs, tmpfs: 255 bytes).
NAME_MAX_BYTES = 255
# The longest file named from --epoch: '<epoch>.pt' and its temporary '<epoch>.pt.<8 random>.tmp'.
EPOCH_FILE_EXTRA = len(".pt.12345678.tmp")


def check_plain_name(flag: str, value: str, extra_bytes: int = 0) -> None:
    """`value` names one folder or file (no '/', '..'): it is joined to --checkpoints_dir or --results_dir.

    No control characters (a newline in a folder name breaks every log and listing), and short
    enough that the longest file named from it (`extra_bytes` longer) fits the filesystem.
    """
    if value in ("", ".", "..") or any(sep in value for sep in {"/", "\\", os.sep}) or "\0" in value:
        raise OptionError(f"{flag} '{value}' must be a plain name without '/' or '..': it names a folder "
                          "or file inside --checkpoints_dir / --results_dir")
    control = [c for c in value if unicodedata.category(c) == "Cc"]
    if control:
        raise OptionError(f"{flag} {value!r} holds a control character ({control[0]!r}): give a name of "
                          "printable characters")
    limit = NAME_MAX_BYTES - extra_bytes
    size = len(value.encode("utf-8", "surrogateescape"))
    if size > limit:
        raise OptionError(f"{flag} is {size} bytes long ('{value[:24]}...'): the files named from it must fit the "
                          f"filesystem's {NAME_MAX_BYTES} bytes per name, so give at most {limit}")


def parse_gpu_ids(text: str) -> list[int]:
    """'0,1' -> [0, 1]; '-1' -> [] (the CPU). Refuses anything else and GPUs that are not there.

    Only -1 alone means the CPU: another negative number, an empty value or a GPU named twice
    names no GPU, and a silent CPU run would take hours where the user expected minutes.
    """
    usage = "GPU numbers separated by commas (e.g. 0 or 0,1; -1 alone for the CPU)"
    try:
        ids = [int(x) for x in str(text).split(",")]
    except ValueError:
        raise OptionError(f"--gpu_ids must be {usage}, got '{text}'") from None
    if ids == [-1]:
        return []
    if any(i < 0 for i in ids) or len(set(ids)) != len(ids):
        raise OptionError(f"--gpu_ids must be {usage}, got '{text}'")
    visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
    absent = [i for i in ids if i >= visible]
    if absent:
        seen = f"only GPUs 0..{visible - 1} are visible" if visible else "no GPU is available"
        raise OptionError(f"--gpu_ids {text} asks for GPU {absent[0]}, but {seen}; use --gpu_ids -1 for the CPU")
    return ids


def check_finite(opt: argparse.Namespace) -> None:
    """Every number-valued option is finite: inf or nan as a rate, weight or gain would train
    on NaN losses or stop at the first iteration with a message about the loss, not the flag."""
    for name, value in sorted(vars(opt).items()):
        if isinstance(value, float) and not math.isfinite(value):
            raise OptionError(f"--{name} must be a finite number, got {value}")


def max_threads() -> int:
    """More threads than this only oversubscribe the cores (and libgomp runs out of memory
    long before a thread count like 100000)."""
    return 4 * (os.cpu_count() or 1)


def check_thread_count(flag: str, value: int | None) -> None:
    if value is not None and value > max_threads():
        raise OptionError(f"{flag} {value} is more than 4 threads per core of this machine ({os.cpu_count()} "
                          f"cores): give at most {max_threads()}")


def at_least(opt: argparse.Namespace, low: int, *names: str) -> None:
    """Each named option (those this parser has, unless None) is >= `low`."""
    for name in names:
        value = getattr(opt, name, None)
        if value is not None and value < low:
            raise OptionError(f"--{name} must be at least {low}, got {value}")


class BaseOptions:
    is_train = False

    def initialize(self, parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
        g = parser.add_argument_group("experiment")
        g.add_argument("--dataroot", required=True,
                       help="dataset root (trainA/trainB/testA[/testB]); for test.py also a plain folder of images")
        g.add_argument("--name", default="experiment_name", help="run name: checkpoints/<name>/, results/<name>/")
        g.add_argument("--gpu_ids", default=default_gpu_ids(),
                       help="e.g. 0 or 0,1; -1 for CPU. Default: the first GPU if there is one, else the CPU")
        g.add_argument("--checkpoints_dir", default="./checkpoints", help="models and logs are saved here")
        g.add_argument("--epoch", default="latest", help="which checkpoint to load: latest or an epoch number")
        g.add_argument("--direction", default="AtoB", choices=("AtoB", "BtoA"),
                       help="AtoB restores (rainy -> clean); BtoA degrades")
        g.add_argument("--amp", type=amp_mode, nargs="?", const="on", default="auto", metavar="{auto,on,off}",
                       help="mixed precision. on (also --amp alone): bf16 autocast on CPU and CUDA (fp16 + grad "
                            "scaler on a GPU without bf16); off: fp32; auto: bf16 where it is measured faster "
                            "(native bf16 CPU or bf16 GPU, wide enough network), else fp32")
        g.add_argument("--verbose", action="store_true", help="debug logging and network summaries")
        return parser

    def parse(self, argv: list[str] | None = None) -> argparse.Namespace:
        """The options of `argv`, checked; subclasses build their parser in `gather_options`.

        A value that cannot work exits with status 2 and one line (`OneLineParser.error`).
        """
        opt = self.gather_options(argv)
        opt.is_train = self.is_train
        try:
            self.validate(opt)
        except OptionError as err:
            self.parser.error(str(err))
        self.opt = opt
        return opt

    def validate(self, opt: argparse.Namespace) -> None:
        """Raise `OptionError` for a value that cannot work; turns --gpu_ids into a list of ints."""
        check_plain_name("--name", opt.name)
        check_plain_name("--epoch", opt.epoch, EPOCH_FILE_EXTRA)
        check_finite(opt)
        opt.gpu_ids = parse_gpu_ids(opt.gpu_ids)

    def format_options(self, opt: argparse.Namespace) -> str:
        lines = ["----------------- Options ---------------"]
        for key, value in sorted(vars(opt).items()):
            default = self.parser.get_default(key)
            note = f"\t[default: {default}]" if value != default else ""
            lines.append(f"{key:>28}: {value!s:<30}{note}")
        lines.append("----------------- End -------------------")
        return "\n".join(lines)

    def save_options(self, opt: argparse.Namespace, filename: str) -> Path:
        """Write the options to checkpoints/<name>/<filename> (train_opt.txt / test_opt.txt)."""
        run_dir = Path(opt.checkpoints_dir) / opt.name
        run_dir.mkdir(parents=True, exist_ok=True)
        path = run_dir / filename
        with atomic_write(path, "w") as fh:
            fh.write(self.format_options(opt) + "\n")
        logger.debug("options written to %s", path)
        return path
