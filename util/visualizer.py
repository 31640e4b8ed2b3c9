"""Training feedback: the dashboards (visdom, TensorBoard, W&B), the loss log file and the
HTML training page.

The dashboard is optional and must never slow down or stop training: with no server (or a
server that dies) the Visualizer warns once, keeps going, and retries the connection with an
exponential backoff. Between retries a call costs a clock read; a retry costs at most a 1 s
TCP probe, and every HTTP request to visdom is bounded by a short timeout.
"""
from __future__ import annotations

import html
import logging
import math
import re
import socket
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import torch

from util.boards import TensorBoardBoard, WandbBoard, backends_of, compose_grid
from util.html import TrainingPage
from util.image_io import tensor_to_uint8

logger = logging.getLogger(__name__)

RECONNECT_FIRST_S = 5.0
RECONNECT_MAX_S = 300.0
PROBE_TIMEOUT_S = 1.0
# (connect, read) seconds for each request to visdom; its client sets no timeout at all.
REQUEST_TIMEOUT_S = (1.0, 2.0)

# loss_log.txt: "(epoch: 3, iters: 40, time: 0.123, data: 0.001) G_GAN: 0.5 NCE: 1.25"
_LOG_LINE = re.compile(r"\(epoch: (\d+), iters: (\d+),[^)]*\)(.*)")
_RESUMED_AT = re.compile(r"=+ Training resumed at epoch (\d+), iteration (\d+) ")


def read_loss_history(log_path: Path, until: tuple[int, int], iters_per_epoch: int
                      ) -> dict[str, list[tuple[float, float]]]:
    """The loss curves of the run recorded in `log_path`, up to (epoch, iteration in epoch) `until`.

    The newest "Training Loss" header starts the run; a "Training resumed at epoch E, iteration
    K" header drops the points logged after that position (they were computed after the
    checkpoint that run resumed from, and were redone). Malformed lines are ignored.
    """
    points: list[tuple[int, int, dict[str, float]]] = []
    try:
        lines = log_path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return {}
    for line in lines:
        if line.startswith("=") and "Training Loss" in line:
            points = []
        elif (resumed := _RESUMED_AT.match(line)) is not None:
            cut = (int(resumed[1]), int(resumed[2]))
            points = [p for p in points if p[:2] <= cut]
        elif (logged := _LOG_LINE.match(line)) is not None:
            tokens = logged[3].split()
            try:
                losses = {name.rstrip(":"): float(value) for name, value in zip(tokens[::2], tokens[1::2])}
            except ValueError:
                continue
            points.append((int(logged[1]), int(logged[2]), losses))
    history: dict[str, list[tuple[float, float]]] = {}
    for epoch, iters, losses in points:
        if (epoch, iters) > until:
            continue
        for name, value in losses.items():
            if math.isfinite(value):
                history.setdefault(name, []).append((epoch + iters / iters_per_epoch, value))
    return history


class _QuietVisdomClient(logging.Filter):
    """Drops two warnings visdom's client logs on every construction with our settings."""

    _NOISE = ("Setting up a new session", "Without the incoming socket")

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self._NOISE)


def _open_client(server: str, port: int, env: str) -> Any:
    """A visdom client whose requests time out; raises OSError when the server is unreachable."""
    import visdom  # imported only when the dashboard is on (display_id > 0)

    class TimeoutVisdom(visdom.Visdom):
        def _handle_post(self, url: str, data: Any = None) -> str:
            return self.session.post(url, data=data or {}, timeout=REQUEST_TIMEOUT_S).text

    visdom_logger = logging.getLogger("visdom")
    if not any(isinstance(f, _QuietVisdomClient) for f in visdom_logger.filters):
        visdom_logger.addFilter(_QuietVisdomClient())
    # raise_exceptions: failures reach us as ConnectionError instead of printed tracebacks;
    # no incoming socket: that background thread only serves UI callbacks, which we don't use.
    return TimeoutVisdom(server=server, port=port, env=env, raise_exceptions=True,
                         use_incoming_socket=False)


def _format_options(options: Mapping[str, Any]) -> str:
    lines = [f"{key}: {value}" for key, value in sorted(options.items())]
    return "<pre>" + html.escape("\n".join(lines)) + "</pre>"


class _Dashboard:
    """One visdom environment: loss plot, image grid, options. Never raises for connection trouble."""

    def __init__(self, server: str, port: int, env: str, run_name: str, options_html: str,
                 keep_existing_plot: bool, ncols: int, cell_size: int):
        if "://" not in server:
            server = "http://" + server
        self.server, self.port, self.env = server, port, env
        self.host = urlparse(server).hostname or "localhost"
        # Window ids carry the run name, so runs sharing an env get their own windows.
        self.loss_win = f"{run_name}_losses"
        self.image_win = f"{run_name}_images"
        self.options_win = f"{run_name}_options"
        self.options_html = options_html
        self.run_name = run_name
        self.ncols, self.cell_size = ncols, cell_size
        self._client: Any = None
        self._retry_at = 0.0
        self._backoff = RECONNECT_FIRST_S
        self._warned = False
        self._replace_plot = not keep_existing_plot
        self._sent: dict[str, int] = {}  # per loss: how many of its points the window holds

    @property
    def url(self) -> str:
        return f"{self.server}:{self.port}/env/{self.env}"

    def _connected(self) -> bool:
        if self._client is not None:
            return True
        if time.monotonic() < self._retry_at:
            return False
        try:
            # A refused or silent port fails here within the probe timeout; visdom's own
            # constructor would otherwise wait on the default socket timeout.
            socket.create_connection((self.host, self.port), timeout=PROBE_TIMEOUT_S).close()
            client = _open_client(self.server, self.port, self.env)
            exists = client.win_exists(self.loss_win)
            if exists and self._replace_plot:
                client.close(self.loss_win)  # a new run under an old name starts a clean plot
            if not exists or self._replace_plot:
                self._sent = {}  # the window is new (or the server restarted): send all points
            self._replace_plot = False
            client.text(self.options_html, win=self.options_win, opts={"title": f"{self.run_name} options"})
        except ImportError as err:
            self._retry_at = math.inf
            logger.warning("--display_id > 0 but visdom cannot be imported (%s); the dashboard is off. "
                           "Install it (make venv) or pass --display_id 0.", err)
            return False
        except OSError as err:
            self._fail(err)
            return False
        self._client = client
        self._backoff = RECONNECT_FIRST_S
        if self._warned:
            logger.info("visdom dashboard reconnected: %s", self.url)
        else:
            logger.info("visdom dashboard: %s", self.url)
        self._warned = False
        return True

    def _fail(self, err: OSError) -> None:
        if self._client is not None:
            self._client.session.close()
        self._client = None
        self._retry_at = time.monotonic() + self._backoff
        if not self._warned:
            logger.warning(
                "no visdom server answers at %s:%d (%s); training continues without the dashboard. "
                "Start one with `bash scripts/start_visdom.sh %d`, or pass --display_id 0 to turn it off. "
                "Retrying after %.0f s, backing off up to %.0f s.",
                self.server, self.port, err, self.port, self._backoff, RECONNECT_MAX_S)
            self._warned = True
        self._backoff = min(self._backoff * 2, RECONNECT_MAX_S)

    def plot(self, history: Mapping[str, list[tuple[float, float]]]) -> None:
        if not self._connected():
            return
        try:
            for name, points in history.items():
                new = points[self._sent.get(name, 0):]
                if not new:
                    continue
                xs, ys = zip(*new)
                # 'append' per trace: creates the window or trace if missing, extends it otherwise.
                self._client.line(X=np.array(xs), Y=np.array(ys), win=self.loss_win, name=name,
                                  update="append",
                                  opts={"title": f"{self.run_name} losses", "xlabel": "epoch",
                                        "ylabel": "loss", "showlegend": True})
                self._sent[name] = len(points)
        except OSError as err:
            self._fail(err)

    def replace_plot(self) -> None:
        """Start the loss window afresh with the next `plot` (the whole history is resent)."""
        self._sent = {}
        if self._client is None:
            self._replace_plot = True
            return
        try:
            self._client.close(self.loss_win)
        except OSError as err:
            self._fail(err)

    def show_images(self, images: Mapping[str, np.ndarray], title: str) -> None:
        if not self._connected():
            return
        grid = compose_grid(images, self.ncols, self.cell_size).transpose(2, 0, 1)  # visdom wants CxHxW
        caption = " | ".join(images)
        try:
            # The caption takes two text lines that visdom does not add to the pane's height.
            self._client.image(grid, win=self.image_win, opts={
                "title": title, "caption": caption, "width": grid.shape[2], "height": grid.shape[1] + 50})
        except OSError as err:
            self._fail(err)

    def show_text(self, text: str, title: str) -> None:
        """A text pane of its own (window `<run>_warnings`)."""
        if not self._connected():
            return
        try:
            self._client.text(f"<p>{html.escape(text)}</p>", win=f"{self.run_name}_warnings", opts={"title": title})
        except OSError as err:
            self._fail(err)

    def close(self) -> None:
        if self._client is not None:
            self._client.session.close()
            self._client = None


class Visualizer:
    """Loss log file, dashboards and HTML training page (unless no_html).

    Everything goes under `<checkpoints_dir>/<name>/`. `display_backend` (util.boards.
    DISPLAY_BACKENDS) picks the dashboards: visdom (when display_id > 0) talks to
    `display_server:display_port` in environment `display_env` ('' = the run name);
    TensorBoard writes event files into the run folder; W&B logs to project `wandb_project`.
    Each shows the loss curves, the grid of visuals (`display_ncols` per row at
    `display_winsize` px, as on the HTML page) and `options` (e.g. the run's flags). With
    `continue_train` the log, plots and page of an earlier run under the same name are
    extended instead of replaced.
    """

    def __init__(self, name: str, checkpoints_dir: str | Path, *, display_id: int = 0,
                 display_server: str = "http://localhost", display_port: int = 8097, display_env: str = "",
                 display_ncols: int = 4, display_winsize: int = 256, no_html: bool = False,
                 update_html_freq: int = 1000, continue_train: bool = False,
                 options: Mapping[str, Any] | None = None, display_backend: str = "visdom",
                 wandb_project: str = "dcdgan"):
        self.name = name
        self.run_dir = Path(checkpoints_dir) / name
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.run_dir / "loss_log.txt"
        # Everything plotted so far, per loss: (fractional epoch, value); the HTML curve uses it.
        self.loss_history: dict[str, list[tuple[float, float]]] = {}
        self._log_started = False
        self._resumed_at: tuple[int, int] | None = None
        self._nonfinite_warned: set[str] = set()
        self._continue_train = continue_train
        self._steps = 0  # the boards' x axis when a caller gives no iteration
        self.ncols, self.cell_size = display_ncols, display_winsize

        backends = backends_of(display_backend)
        self.dashboard: _Dashboard | None = None
        if "visdom" in backends and display_id > 0:
            self.dashboard = _Dashboard(
                server=display_server, port=display_port, env=display_env or name, run_name=name,
                options_html=_format_options(options or {}), keep_existing_plot=continue_train,
                ncols=display_ncols, cell_size=display_winsize)

        self.boards: list[TensorBoardBoard | WandbBoard] = []
        if "tensorboard" in backends:
            self.boards.append(TensorBoardBoard(self.run_dir, options or {}, continue_train))
        if "wandb" in backends:
            self.boards.append(WandbBoard(self.run_dir, name, wandb_project, options or {}))

        self.page: TrainingPage | None = None
        if not no_html:
            self.page = TrainingPage(
                self.run_dir / "web", title=f"Training: {name}", image_width=display_winsize,
                ncols=display_ncols, keep_existing=continue_train,
                subtitle=f"Visuals saved every {update_html_freq} iterations; newest epoch first.")

    def resume(self, position: Mapping[str, int], iters_per_epoch: int) -> None:
        """--continue_train: the curves restart from the loss log, up to the checkpoint's position.

        So the dashboard and the HTML page show the whole run, also after a visdom restart or
        a crash that logged iterations past the last checkpoint (those are dropped: they are
        being redone). Without a loss log the dashboard keeps its window and appends.
        """
        self._resumed_at = (int(position["epoch"]), int(position["epoch_iter"]))
        self._steps = int(position.get("total_iters", 0))
        for board in self.boards:
            board.resume(self._steps)
        self.loss_history = read_loss_history(self.log_path, self._resumed_at, iters_per_epoch)
        if self.loss_history and self.dashboard is not None:
            self.dashboard.replace_plot()
            self.dashboard.plot(self.loss_history)

    def display_current_results(self, visuals: Mapping[str, torch.Tensor], epoch: int, save_result: bool,
                                step: int | None = None) -> None:
        """Show the visuals (tensors in [-1, 1], 1xCxHxW) on the dashboards (at iteration
        `step`); with `save_result` also save them to the HTML page with the current loss curve."""
        # A batch shows its first image, as a preview.
        images = {label: tensor_to_uint8(t[:1] if t.dim() == 4 else t) for label, t in visuals.items()}
        if not images:
            return
        if self.dashboard is not None:
            self.dashboard.show_images(images, title=f"{self.name} epoch {epoch}")
        if self.boards:
            grid = compose_grid(images, self.ncols, self.cell_size)
            for board in self.boards:
                board.show_images(self._steps if step is None else step, grid, caption=" | ".join(images))
        if save_result and self.page is not None:
            self.page.add_epoch(epoch, images)
            self.page.set_loss_curve(self.loss_history)
            self.page.render()

    def plot_current_losses(self, epoch: int, counter_ratio: float, losses: Mapping[str, float],
                            step: int | None = None) -> None:
        """Add one point per loss at x = epoch + counter_ratio (fraction of the epoch done) on
        visdom and the HTML page, at x = `step` (the iteration) on TensorBoard and W&B."""
        x = epoch + counter_ratio
        self._steps = self._steps + 1 if step is None else step
        finite = {}
        for name, value in losses.items():
            value = float(value)
            if not math.isfinite(value):
                # JSON has no NaN/inf: one such value would break the dashboard page.
                if name not in self._nonfinite_warned:
                    logger.warning("loss %s is %s at epoch %.3f; non-finite values are not plotted", name, value, x)
                    self._nonfinite_warned.add(name)
                continue
            self.loss_history.setdefault(name, []).append((x, value))
            finite[name] = value
        if self.dashboard is not None:
            self.dashboard.plot(self.loss_history)
        for board in self.boards:
            board.plot_losses(self._steps, finite)

    def log_losses(self, epoch: int, iters: int, losses: Mapping[str, float], t_comp: float, t_data: float) -> None:
        """Append one line to `<run>/loss_log.txt` and log it; `t_comp`, `t_data`: seconds of
        computation and of data loading. A new log starts with a dated header line."""
        message = f"(epoch: {epoch}, iters: {iters}, time: {t_comp:.3f}, data: {t_data:.3f}) "
        message += " ".join(f"{name}: {float(value):.6g}" for name, value in losses.items())
        with open(self.log_path, "a", encoding="utf-8") as log_file:
            if not self._log_started:
                fresh = log_file.tell() == 0
                # Without --continue_train this is a new run, even if an old log is there.
                if self._resumed_at is not None:
                    what = "Training resumed at epoch {}, iteration {}".format(*self._resumed_at)
                else:
                    what = "Training resumed" if self._continue_train and not fresh else "Training Loss"
                log_file.write(f"================ {what} ({time.strftime('%c')}) ================\n")
                self._log_started = True
            log_file.write(message + "\n")
        logger.info("%s", message)

    def show_warning(self, text: str, step: int | None = None) -> None:
        """A warning about the run (e.g. training/collapse.py's) where a user watching it looks: a
        visdom text pane, TensorBoard text `warnings`, the W&B run, and a line of the loss log
        (which `read_loss_history` skips). The caller logs it."""
        if self.dashboard is not None:
            self.dashboard.show_text(text, title=f"{self.name}: warning")
        for board in self.boards:
            board.show_text(self._steps if step is None else step, "warnings", text)
        with open(self.log_path, "a", encoding="utf-8") as log_file:
            log_file.write(f"WARNING: {text}\n")

    def close(self) -> None:
        """Release the dashboard connection and flush the boards' files."""
        if self.dashboard is not None:
            self.dashboard.close()
        for board in self.boards:
            board.close()
