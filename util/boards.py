"""File-based dashboards beside visdom: TensorBoard event files and Weights & Biases.

Each board takes the same three things the visdom dashboard shows: loss scalars, the grid of
current visuals and the run's options. Their packages are imported only when a board is
asked for; a missing package turns that board off with one warning, as a missing visdom
does, so training never stops for a dashboard.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

logger = logging.getLogger(__name__)

# --display_backend values; "both" is visdom and TensorBoard.
DISPLAY_BACKENDS = ("visdom", "tensorboard", "both", "wandb")
TENSORBOARD_EVENTS = "events.out.tfevents.*"


def backends_of(display_backend: str) -> tuple[str, ...]:
    """The dashboards a --display_backend value names."""
    return ("visdom", "tensorboard") if display_backend == "both" else (display_backend,)


def compose_grid(images: Mapping[str, np.ndarray], ncols: int, cell: int) -> np.ndarray:
    """The visuals side by side, `ncols` per row, each scaled to fit `cell` px, label below;
    HxWx3 uint8."""
    font = ImageFont.load_default(size=14)
    label_h, pad = 20, 4
    ncols = max(1, min(ncols, len(images)))
    nrows = math.ceil(len(images) / ncols)
    grid = Image.new("RGB", (ncols * (cell + pad) + pad, nrows * (cell + label_h + pad) + pad), "white")
    draw = ImageDraw.Draw(grid)
    for i, (label, array) in enumerate(images.items()):
        img = Image.fromarray(array)
        scale = cell / max(img.size)
        # Nearest when enlarging keeps the pixels of small crops visible instead of a blur.
        resample = Image.NEAREST if scale >= 1 else Image.LANCZOS
        img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), resample)
        x = pad + (i % ncols) * (cell + pad)
        y = pad + (i // ncols) * (cell + label_h + pad)
        grid.paste(img, (x + (cell - img.width) // 2, y + (cell - img.height) // 2))
        draw.text((x + cell // 2, y + cell + 2), label, fill="black", font=font, anchor="ma")
    return np.asarray(grid)


def options_markdown(options: Mapping[str, Any]) -> str:
    """The options as a two-column markdown table (TensorBoard renders text as markdown)."""
    lines = ["| option | value |", "|---|---|"]
    lines += [f"| {key} | {str(value).replace('|', '/')} |" for key, value in sorted(options.items())]
    return "\n".join(lines)


class TensorBoardBoard:
    """Event files in the run folder: `loss/<name>` scalars, a `visuals` image, `options` text.

    A new run under an old name deletes the old event files (as the loss log and HTML page
    start over); a resumed run drops the events logged after its checkpoint (`purge_step`),
    which are being redone. The writer opens on first use, after `resume`.
    """

    def __init__(self, run_dir: Path, options: Mapping[str, Any], continue_train: bool):
        self.run_dir = run_dir
        self.options = options
        self.purge_step: int | None = None
        self._writer: Any = None
        self._off = False
        if not continue_train:
            for old in run_dir.glob(TENSORBOARD_EVENTS):
                old.unlink()

    def resume(self, step: int) -> None:
        """Resuming from a checkpoint saved at iteration `step`: later events are being redone."""
        self.purge_step = step + 1

    def _open(self) -> Any:
        if self._writer is None and not self._off:
            try:
                from torch.utils.tensorboard import SummaryWriter  # imported only when TensorBoard is asked for
            except ImportError as err:
                self._off = True
                logger.warning("--display_backend asks for TensorBoard but it cannot be imported (%s); "
                               "install tensorboard (make venv)", err)
                return None
            self._writer = SummaryWriter(log_dir=str(self.run_dir), purge_step=self.purge_step)
            self._writer.add_text("options", options_markdown(self.options), global_step=self.purge_step or 0)
            logger.info("TensorBoard events in %s: tensorboard --logdir %s", self.run_dir, self.run_dir.parent)
        return self._writer

    def plot_losses(self, step: int, losses: Mapping[str, float]) -> None:
        if (writer := self._open()) is not None:
            for name, value in losses.items():
                writer.add_scalar(f"loss/{name}", value, global_step=step)
            writer.flush()  # so a running TensorBoard (and a crash) sees every point at once

    def show_images(self, step: int, grid: np.ndarray, caption: str) -> None:
        del caption  # the labels are drawn into the grid
        if (writer := self._open()) is not None:
            writer.add_image("visuals", grid, global_step=step, dataformats="HWC")
            writer.flush()

    def show_text(self, step: int, tag: str, text: str) -> None:
        if (writer := self._open()) is not None:
            writer.add_text(tag, text, global_step=step)
            writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class WandbBoard:
    """A Weights & Biases run named after the training run, files under the run folder.

    `wandb` is imported only here. Set WANDB_MODE=offline to log without an account or a
    network (`wandb sync` uploads later); the run's options are its config.
    """

    def __init__(self, run_dir: Path, name: str, project: str, options: Mapping[str, Any]):
        self.run_dir, self.name, self.project, self.options = run_dir, name, project, options
        self._run: Any = None
        self._off = False

    def resume(self, step: int) -> None:
        del step  # W&B keeps its own step; a resumed run logs from its checkpoint's iteration on

    def _open(self) -> Any:
        if self._run is None and not self._off:
            try:
                import wandb  # imported only when W&B is asked for
                self._run = wandb.init(project=self.project, name=self.name, dir=str(self.run_dir),
                                       config=dict(self.options), reinit="finish_previous")
            except Exception as err:  # noqa: BLE001 - no dashboard may stop training (no package, no login)
                self._off = True
                logger.warning("W&B is off (%s: %s); training continues. Install wandb, log in, or set "
                               "WANDB_MODE=offline", type(err).__name__, err)
                return None
        return self._run

    def plot_losses(self, step: int, losses: Mapping[str, float]) -> None:
        if (run := self._open()) is not None:
            run.log({f"loss/{name}": value for name, value in losses.items()}, step=step)

    def show_images(self, step: int, grid: np.ndarray, caption: str) -> None:
        if (run := self._open()) is not None:
            import wandb
            run.log({"visuals": wandb.Image(grid, caption=caption)}, step=step)

    def show_text(self, step: int, tag: str, text: str) -> None:
        """The run's summary shows it; the history keeps it as an HTML panel at `step`."""
        if (run := self._open()) is not None:
            import html

            import wandb
            run.summary[tag] = text
            run.log({tag: wandb.Html(f"<p>{html.escape(text)}</p>")}, step=step)

    def close(self) -> None:
        if self._run is not None:
            self._run.finish()
            self._run = None
