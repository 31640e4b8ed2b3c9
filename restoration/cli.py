"""test.py's command line (also the `dcdgan-test` command): options, logging, signals and exit status.

    python test.py --dataroot DIR --name NAME [--epoch latest]     a training run's checkpoint
    python test.py --dataroot DIR --pretrained rain_synthetic      a shipped model
    python test.py --dataroot DIR --model dcp [--dcp_patch 15]     a method without training

Results go to <results_dir>/<name>/test_<epoch>/, <results_dir>/<NAME>/test_pretrained/ or
<results_dir>/<method>/test_method/ (restoration/batch.py writes them). Exit status: 0 all
images restored; 3 some skipped (skipped.txt); 129 / 130 / 143 stopped by SIGHUP / SIGINT /
SIGTERM; 2 bad options, no usable checkpoint or folder, a --backend that cannot run here,
results that cannot be written, inputs inside the results folder, or a results folder another
test.py is writing.
"""
from __future__ import annotations

import argparse
import logging
import signal
import threading
from contextlib import contextmanager
from pathlib import Path

import torch

from data.image_folder import DatasetError
from options.base_options import OptionError
from options.test_options import TestOptions
from runtime.backends import BackendError
from util.checkpoint import CheckpointError
from util.distributed import device_of
from util.log import setup_logging
from util.metrics import CropBorderError

from .batch import restore_folder
from .loading import open_restorer
from .methods import add_method_options, method_names
from .page_folder import PageFolderError
from .restorer import Restorer

logger = logging.getLogger("test")

EXIT_USAGE = 2
# The results folder's label for a method without training: <results_dir>/<method>/test_method/.
METHOD_LABEL = "method"


class RestoreOptions(TestOptions):
    """TestOptions with `--model`, which names a method without training (restoration/methods.py),
    and every method's own flags. A trained model's name is ignored like the other training
    flags: the checkpoint knows its model."""

    def initialize(self, parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
        parser = super().initialize(parser)
        group = parser.add_argument_group("methods without training")
        group.add_argument("--model", default=None, metavar="METHOD",
                           help=f"restore with a method without training instead of a checkpoint "
                                f"({', '.join(method_names()) or 'none in this checkout'}); results go to "
                                f"<results_dir>/METHOD/test_{METHOD_LABEL}/")
        return add_method_options(parser)  # each method's own flags

    def ignored_arguments(self, opt: argparse.Namespace, ignored: list[str]) -> list[str]:
        """`--model NAME` of a trained model is ignored like the other training flags."""
        if opt.model is not None and opt.model not in method_names():
            ignored, opt.model = ["--model", opt.model, *ignored], None
        return ignored

    def validate(self, opt: argparse.Namespace) -> None:
        super().validate(opt)
        if opt.model is not None and opt.pretrained:
            raise OptionError(f"--model {opt.model} restores without weights: give it or --pretrained, not both")
        if opt.model is not None and opt.direction != "AtoB":
            raise OptionError(f"--model {opt.model} restores (AtoB) only; drop --direction {opt.direction}")


def make_restorer(opt: argparse.Namespace) -> tuple[Restorer, str, str]:
    """The restorer the options ask for, and the run name and label of its results folder."""
    settings = {"device": device_of(opt.gpu_ids), "tile": opt.tile, "tile_overlap": opt.tile_overlap, "amp": opt.amp,
                "backend": opt.backend}
    if opt.model is not None:
        return open_restorer(method=opt.model, method_options=opt, **settings), opt.model, METHOD_LABEL
    if opt.pretrained:
        return open_restorer(pretrained=opt.pretrained, **settings), Path(opt.pretrained).stem, "pretrained"
    checkpoint = Path(opt.checkpoints_dir) / opt.name / f"{opt.epoch}.pt"
    return open_restorer(checkpoint=checkpoint, direction=opt.direction, **settings), opt.name, opt.epoch


def run(opt: argparse.Namespace) -> int:
    if opt.threads:
        torch.set_num_threads(opt.threads)
    restorer, run_name, label = make_restorer(opt)
    logger.info("%s", restorer.backend_choice)
    return restore_folder(restorer, opt.dataroot, Path(opt.results_dir) / run_name / f"test_{label}",
                          title=f"{run_name} / {label}", direction=opt.direction, gt_dir=opt.gt_dir,
                          num_test=opt.num_test, metric_channel=opt.metric_channel, crop_border=opt.crop_border,
                          nr_metrics=opt.nr_metrics)


@contextmanager
def stop_on_signals():
    """SIGTERM and SIGHUP end the run like Ctrl-C: as an exception, so that every file being
    written is removed (util.atomic_file) instead of left as a temporary file."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise SystemExit(128 + signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: list[str] | None = None) -> int:
    """test.py: parse the options, restore, and map what went wrong to the exit status."""
    opt = RestoreOptions().parse(argv)
    setup_logging(opt.verbose)
    try:
        with stop_on_signals():
            return run(opt)
    except (CheckpointError, DatasetError, BackendError, CropBorderError, PageFolderError) as err:
        logger.error("%s", err)
        return EXIT_USAGE
    except OSError as err:  # results that cannot be written: no space left, a file in the way, permissions
        logger.error("cannot write the results: %s", err)
        return EXIT_USAGE
    except KeyboardInterrupt:
        logger.warning("stopped by SIGINT; the images restored so far are in the results folder")
        return 128 + signal.SIGINT
    except SystemExit as stopped:
        logger.warning("stopped by signal %d; the images restored so far are in the results folder",
                       stopped.code - 128)
        return stopped.code
