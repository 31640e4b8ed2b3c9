"""Visualizer against a real visdom server, without one, and the HTML pages it writes."""
from __future__ import annotations

import importlib
import logging
import re
import socket
import sys
import time
import types
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import requests
import torch
from PIL import Image

import util.visualizer as visualizer_module
from tests.visdom_server import free_port, start_visdom_server
from util.html import draw_loss_curve, save_test_page
from util.visualizer import PROBE_TIMEOUT_S, RECONNECT_FIRST_S, REQUEST_TIMEOUT_S, Visualizer, read_loss_history


def visualizer_args(tmp_path: Path, name: str, port: int = 0, **overrides) -> dict:
    """The Visualizer's keyword arguments for a run under tmp_path."""
    opt = dict(name=name, checkpoints_dir=str(tmp_path / "checkpoints"), display_id=1 if port else 0,
               display_server="http://localhost", display_port=port, display_env="",
               display_ncols=4, display_winsize=64, no_html=False, update_html_freq=1,
               continue_train=False)
    opt.update(overrides)
    return opt


def visuals(seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {label: torch.rand(1, 3, 24, 32, generator=gen) * 2 - 1 for label in ("real_A", "fake_B", "real_B")}


def traces(server, env: str, win: str) -> dict[str, tuple[list, list]]:
    data = server.window(env, win)["content"]["data"]
    return {trace["name"]: (trace["x"], trace["y"]) for trace in data}


def test_losses_images_and_options_reach_the_dashboard(visdom_server, tmp_path):
    opt = visualizer_args(tmp_path, "run_exact", visdom_server.port, options={"lr": "<b>0.0002</b>"})
    vis = Visualizer(**opt)
    sent = [{"G_GAN": 0.75, "NCE": 2.5}, {"G_GAN": 0.5, "NCE": 2.25}, {"G_GAN": 0.125, "NCE": 1.0}]
    for i, losses in enumerate(sent):
        vis.plot_current_losses(2, i / 4, losses)
    vis.display_current_results(visuals(), epoch=2, save_result=False)
    vis.close()

    assert traces(visdom_server, "run_exact", "run_exact_losses") == {
        "G_GAN": ([2.0, 2.25, 2.5], [0.75, 0.5, 0.125]),
        "NCE": ([2.0, 2.25, 2.5], [2.5, 2.25, 1.0]),
    }
    client = visdom_server.client("run_exact")
    assert client.win_exists("run_exact_images", "run_exact")
    image = visdom_server.window("run_exact", "run_exact_images")
    assert image["content"]["src"].startswith("data:image/png;base64,")
    assert image["content"]["caption"] == "real_A | fake_B | real_B"
    options = visdom_server.window("run_exact", "run_exact_options")["content"]
    assert "lr: &lt;b&gt;0.0002&lt;/b&gt;" in options and "<b>" not in options


def test_continue_train_extends_the_same_window_and_a_new_run_replaces_it(visdom_server, tmp_path):
    first = Visualizer(**visualizer_args(tmp_path, "run_resume", visdom_server.port))
    first.plot_current_losses(1, 0.0, {"D": 1.0})
    first.plot_current_losses(1, 0.5, {"D": 0.5})
    first.close()

    resumed = Visualizer(**visualizer_args(tmp_path, "run_resume", visdom_server.port, continue_train=True))
    resumed.plot_current_losses(2, 0.0, {"D": 0.25, "G": 3.0})
    resumed.close()
    assert traces(visdom_server, "run_resume", "run_resume_losses") == {
        "D": ([1.0, 1.5, 2.0], [1.0, 0.5, 0.25]), "G": ([2.0], [3.0])}

    restarted = Visualizer(**visualizer_args(tmp_path, "run_resume", visdom_server.port))
    restarted.plot_current_losses(1, 0.0, {"D": 9.0})
    restarted.close()
    assert traces(visdom_server, "run_resume", "run_resume_losses") == {"D": ([1.0], [9.0])}


class HandClock:
    """Stands in for util.visualizer's `time`: monotonic() moves only when the test moves it."""

    strftime = staticmethod(time.strftime)

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


def watch_the_dashboard(monkeypatch) -> tuple[HandClock, list[tuple[tuple[str, int], float]]]:
    """Give util.visualizer a HandClock and record each TCP probe it opens: (address, timeout)."""
    clock, probes = HandClock(), []

    def create_connection(address, timeout):
        probes.append((address, timeout))
        return socket.create_connection(address, timeout=timeout)

    monkeypatch.setattr(visualizer_module, "time", clock)
    monkeypatch.setattr(visualizer_module, "socket", types.SimpleNamespace(create_connection=create_connection))
    return clock, probes


def record_requests(monkeypatch) -> list[tuple[str, object, Exception | None]]:
    """Record each HTTP request made through `requests`: (method, timeout, the error it raised or None)."""
    made = []
    send = requests.Session.request

    def request(self, method, url, *args, **kwargs):
        try:
            response = send(self, method, url, *args, **kwargs)
        except Exception as err:
            made.append((method, kwargs.get("timeout"), err))
            raise
        made.append((method, kwargs.get("timeout"), None))
        return response

    monkeypatch.setattr(requests.Session, "request", request)
    return made


def test_without_server_it_warns_once_probes_once_per_backoff_and_recovers(tmp_path, caplog, monkeypatch):
    clock, probes = watch_the_dashboard(monkeypatch)
    port = free_port()  # nothing listens here
    vis = Visualizer(**visualizer_args(tmp_path, "run_down", port))
    with caplog.at_level(logging.INFO, logger="util.visualizer"):
        for i in range(5):
            vis.plot_current_losses(1, i / 5, {"G": float(i)})
            vis.display_current_results(visuals(i), 1, save_result=False)
        # Ten calls cost one refused probe, bounded by its timeout; the backoff skips the rest.
        assert probes == [(("localhost", port), PROBE_TIMEOUT_S)]
        clock.now += RECONNECT_FIRST_S - 0.5
        vis.display_current_results(visuals(5), 1, save_result=False)
        assert len(probes) == 1
        clock.now += 0.5  # the backoff has expired: the next call probes again
        vis.plot_current_losses(1, 1.0, {"G": 5.0})
        assert len(probes) == 2
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "bash scripts/start_visdom.sh" in warnings[0].getMessage() and str(port) in warnings[0].getMessage()
    assert vis.dashboard._backoff == 20.0  # two failed probes: 5 s, then 10 s, next 20 s

    # The server appears on that port: after the backoff the whole history arrives.
    server = start_visdom_server(tmp_path / "late_env", port=port)
    try:
        clock.now += 2 * RECONNECT_FIRST_S
        vis.plot_current_losses(1, 1.2, {"G": 6.0})
        assert len(probes) == 3
        assert traces(server, "run_down", "run_down_losses") == {
            "G": ([1 + i / 5 for i in range(5)] + [2.0, 1 + 1.2], [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0])}
    finally:
        server.stop()
    vis.close()


def test_a_hung_server_costs_one_probe_and_one_request_ended_by_its_timeout(tmp_path, caplog, monkeypatch):
    clock, probes = watch_the_dashboard(monkeypatch)
    made = record_requests(monkeypatch)
    # A listening socket nobody serves: connections succeed, requests never get an answer.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        vis = Visualizer(**visualizer_args(tmp_path, "run_hung", port, display_server="http://127.0.0.1"))
        with caplog.at_level(logging.WARNING, logger="util.visualizer"):
            vis.plot_current_losses(1, 0.0, {"G": 1.0})
            ((method, timeout, error),) = made
            assert method == "POST" and timeout == REQUEST_TIMEOUT_S and isinstance(error, requests.ReadTimeout)
            clock.now += RECONNECT_FIRST_S - 0.5
            vis.plot_current_losses(1, 0.5, {"G": 0.5})  # within the backoff: neither probe nor request
    assert probes == [(("127.0.0.1", port), PROBE_TIMEOUT_S)] and len(made) == 1
    assert len(caplog.records) == 1


def test_display_off_never_imports_visdom(tmp_path, monkeypatch):
    # None in sys.modules makes any `import visdom` raise; reload the module under that rule.
    monkeypatch.setitem(sys.modules, "visdom", None)
    monkeypatch.delitem(sys.modules, "util.visualizer")
    fresh = importlib.import_module("util.visualizer")
    vis = fresh.Visualizer(**visualizer_args(tmp_path, "run_off"))
    vis.plot_current_losses(1, 0.5, {"G": 1.0})
    vis.display_current_results(visuals(), 1, save_result=True)
    vis.log_losses(1, 1, {"G": 1.0}, 0.1, 0.0)
    vis.close()
    assert vis.dashboard is None
    assert (tmp_path / "checkpoints" / "run_off" / "web" / "index.html").exists()


def test_loss_log_has_a_dated_header_and_one_line_per_call(tmp_path):
    opt = visualizer_args(tmp_path, "run_log")
    vis = Visualizer(**opt)
    vis.log_losses(1, 10, {"G_GAN": 0.693147, "NCE": 1.5}, t_comp=0.25, t_data=0.01)
    vis.log_losses(1, 20, {"G_GAN": 0.5, "NCE": 1.25}, t_comp=0.25, t_data=0.01)
    Visualizer(**visualizer_args(tmp_path, "run_log", continue_train=True)).log_losses(2, 5, {"G_GAN": 0.25}, 0.2, 0.0)

    lines = (tmp_path / "checkpoints" / "run_log" / "loss_log.txt").read_text().splitlines()
    assert re.fullmatch(rf"=+ Training Loss \(.*{time.strftime('%Y')}.*\) =+", lines[0])
    assert lines[1] == "(epoch: 1, iters: 10, time: 0.250, data: 0.010) G_GAN: 0.693147 NCE: 1.5"
    assert lines[2] == "(epoch: 1, iters: 20, time: 0.250, data: 0.010) G_GAN: 0.5 NCE: 1.25"
    assert lines[3].startswith("================ Training resumed (")
    assert lines[4] == "(epoch: 2, iters: 5, time: 0.200, data: 0.000) G_GAN: 0.25"


def test_non_finite_losses_are_logged_but_not_plotted(tmp_path, caplog):
    vis = Visualizer(**visualizer_args(tmp_path, "run_nan"))
    with caplog.at_level(logging.WARNING, logger="util.visualizer"):
        vis.plot_current_losses(1, 0.0, {"G": float("nan"), "D": 1.0})
        vis.plot_current_losses(1, 0.5, {"G": float("inf"), "D": 0.5})
    assert vis.loss_history == {"D": [(1.0, 1.0), (1.5, 0.5)]}
    assert len(caplog.records) == 1 and "G" in caplog.records[0].getMessage()


def test_training_page_adds_epochs_without_rewriting_older_ones(tmp_path):
    vis = Visualizer(**visualizer_args(tmp_path, "run_page"))
    vis.plot_current_losses(1, 0.5, {"G": 1.0, "D": 0.5})
    vis.display_current_results(visuals(1), epoch=1, save_result=True)
    web = tmp_path / "checkpoints" / "run_page" / "web"
    first_image = web / "images" / "epoch001_real_A.png"
    first_fragment = web / "epochs" / "epoch001.html"
    stamps = first_image.stat().st_mtime_ns, first_fragment.stat().st_mtime_ns
    time.sleep(0.01)

    vis.plot_current_losses(2, 0.5, {"G": 0.5, "D": 0.25})
    vis.display_current_results(visuals(2), epoch=2, save_result=True)
    vis.display_current_results(visuals(3), epoch=2, save_result=False)  # dashboard only

    assert (first_image.stat().st_mtime_ns, first_fragment.stat().st_mtime_ns) == stamps
    page = (web / "index.html").read_text()
    assert page.index("epoch 2") < page.index("epoch 1")
    assert "images/loss_curve.png" in page
    for src in re.findall(r'src="([^"?]+)', page):
        assert (web / unquote(src)).is_file(), src
    saved = np.asarray(Image.open(web / "images" / "epoch002_fake_B.png"))
    assert saved.shape == (24, 32, 3)
    assert len(re.findall(r"epoch00\d_real_A\.png", page)) == 4  # two epochs, img + link each

    # A new run under the same name does not inherit the old epochs.
    Visualizer(**visualizer_args(tmp_path, "run_page")).display_current_results(visuals(4), 5, True)
    page = (web / "index.html").read_text()
    assert "epoch 5" in page and "epoch 1<" not in page


def test_no_html_writes_no_page(tmp_path):
    vis = Visualizer(**visualizer_args(tmp_path, "run_nohtml", no_html=True))
    vis.display_current_results(visuals(), 1, save_result=True)
    assert not (tmp_path / "checkpoints" / "run_nohtml" / "web").exists()


def test_loss_curve_draws_each_loss_in_its_colour(tmp_path):
    path = tmp_path / "curve.png"
    history = {"G": [(1.0, 2.0), (1.5, 1.0), (2.0, 0.5)], "D": [(1.0, 0.2), (2.0, float("nan")), (2.5, 0.3)]}
    draw_loss_curve(history, path)
    pixels = np.asarray(Image.open(path).convert("RGB")).reshape(-1, 3).astype(int)
    for colour in ((0x1F, 0x77, 0xB4), (0xFF, 0x7F, 0x0E)):  # first two palette colours
        assert (np.abs(pixels - colour).max(axis=1) < 10).sum() > 50
    draw_loss_curve({}, path)  # an empty history still gives a valid image
    assert Image.open(path).size == (900, 380)


def test_test_page_escapes_names_and_quotes_paths(tmp_path):
    evil = "<script>alert(1)</script>.png"
    for folder in ("input", "output", "gt"):
        target = tmp_path / folder / evil  # the '/' in the name makes a sub-folder
        target.parent.mkdir(parents=True)
        Image.new("RGB", (8, 8), "red").save(target, format="PNG")
    rows = [
        {"name": evil, "input": f"input/{evil}", "output": f"output/{evil}", "gt": f"gt/{evil}",
         "psnr": 30.0, "ssim": 0.9},
        {"name": "plain.png", "input": "input/plain.png", "output": "output/plain.png", "psnr": 20.0,
         "ssim": 0.7, "input_psnr": 18.5},
    ]
    path = save_test_page(tmp_path, rows, title="results <b>test</b>")
    page = path.read_text()
    assert path == tmp_path / "index.html"
    assert "<script>" not in page and "<b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.png" in page
    srcs = re.findall(r'src="([^"]+)"', page)
    assert "input/%3Cscript%3Ealert%281%29%3C/script%3E.png" in srcs
    assert all((tmp_path / unquote(src)).is_file() for src in srcs if "plain" not in src)
    assert "ground truth" in page and "25.00" in page and "0.8000" in page  # the means
    assert "input PSNR (dB)" in page and page.count("18.50") == 2 and "input SSIM" not in page


def test_test_page_without_ground_truth_has_no_metric_columns(tmp_path):
    page = save_test_page(tmp_path, [{"name": "a.png", "input": "in/a.png", "output": "out/a.png"}], "t")
    text = page.read_text()
    assert "ground truth" not in text and "PSNR" not in text and "mean of" not in text
    assert ">a.png<" in text


def test_loss_history_is_read_back_from_the_log_up_to_the_resume_position(tmp_path):
    log = tmp_path / "loss_log.txt"
    log.write_text("\n".join([
        "================ Training Loss (old run) ================",
        "(epoch: 1, iters: 2, time: 0.1, data: 0.0) G: 7",
        "================ Training Loss (this run) ================",
        "(epoch: 1, iters: 2, time: 0.1, data: 0.0) G: 1 D: 0.5",
        "(epoch: 1, iters: 4, time: 0.1, data: 0.0) G: 2 D: nan",
        "(epoch: 2, iters: 2, time: 0.1, data: 0.0) G: 3",  # after the checkpoint at (2, 0): redone
        "================ Training resumed at epoch 2, iteration 0 (then) ================",
        "(epoch: 2, iters: 2, time: 0.1, data: 0.0) G: 4",
        "a line some tool appended",
        "(epoch: 2, iters: 4, time: 0.1, data: 0.0) G: 5",
    ]) + "\n")
    assert read_loss_history(log, (2, 4), iters_per_epoch=4) == {
        "G": [(1.5, 1.0), (2.0, 2.0), (2.5, 4.0), (3.0, 5.0)], "D": [(1.5, 0.5)]}
    assert read_loss_history(log, (2, 2), iters_per_epoch=4)["G"][-1] == (2.5, 4.0)
    assert read_loss_history(tmp_path / "missing.txt", (1, 0), 4) == {}


def test_resume_replaces_a_stale_dashboard_plot_with_the_logged_history(visdom_server, tmp_path):
    first = Visualizer(**visualizer_args(tmp_path, "run_stale", visdom_server.port))
    first.log_losses(1, 2, {"D": 1.0}, 0.1, 0.0)
    first.plot_current_losses(1, 0.5, {"D": 1.0})
    first.log_losses(1, 4, {"D": 9.0}, 0.1, 0.0)  # logged and plotted, but never checkpointed
    first.plot_current_losses(1, 1.0, {"D": 9.0})
    first.close()

    resumed = Visualizer(**visualizer_args(tmp_path, "run_stale", visdom_server.port, continue_train=True))
    resumed.resume({"epoch": 1, "epoch_iter": 2, "total_iters": 2}, iters_per_epoch=4)
    resumed.plot_current_losses(1, 0.75, {"D": 0.5})
    resumed.close()
    assert traces(visdom_server, "run_stale", "run_stale_losses") == {"D": ([1.5, 1.75], [1.0, 0.5])}
