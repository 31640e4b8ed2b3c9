"""Test helpers for the dashboard: a real visdom server on a free loopback port (conftest's
`visdom_server` fixture starts one per test module), a headless Chromium screenshot, and a few
image statistics to tell a rendered page from a blank one."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from util.visdom_assets import missing_assets

REPO = Path(__file__).resolve().parents[1]
SETUP_HINT = "run `bash scripts/setup_test_services.sh` (make test does)"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def assets_installed() -> bool:
    return not missing_assets()


@dataclass
class VisdomServer:
    process: subprocess.Popen
    port: int
    env_path: Path
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, env: str):
        import visdom

        return visdom.Visdom(server="http://127.0.0.1", port=self.port, env=env,
                             raise_exceptions=True, use_incoming_socket=False)

    def window(self, env: str, win: str) -> dict:
        """The window's JSON as the server holds it (traces under content.data)."""
        return json.loads(self.client(env).get_window_data(win, env))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_visdom_server(env_path: Path, port: int | None = None, timeout_s: float = 30.0) -> VisdomServer:
    """Start `python -m visdom.server` on `port` (default: a free one), listening on 127.0.0.1
    only, and wait until it answers.

    With the dashboard assets missing, visdom's own start-up would try to download them from
    CDNs; the server is then started through run_server.main(), which skips that: the API
    works, only the page would be blank (the browser tests skip or fail for that reason).
    """
    port = port or free_port()
    env_path.mkdir(parents=True, exist_ok=True)
    log_path = env_path / "server.log"
    args = ["-port", str(port), "-bind_local", "-env_path", str(env_path)]
    if assets_installed():
        cmd = [sys.executable, "-m", "visdom.server", *args]
    else:
        cmd = [sys.executable, "-c", "from visdom.server.run_server import main; main()", *args]
    with open(log_path, "w") as log:
        process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=REPO)
    server = VisdomServer(process, port, env_path, log_path)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            urllib.request.urlopen(server.url, timeout=1).close()
            return server
        except OSError:
            time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"visdom server did not come up on port {port}:\n{log_path.read_text()[-3000:]}")


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def require_services(chromium: bool = False, assets: bool = False) -> None:
    """Skip the test when Chromium or the dashboard assets are missing; under CI, fail instead."""
    problems = []
    if chromium and chromium_path() is None:
        problems.append("chromium is not installed")
    if assets and not assets_installed():
        problems.append("visdom's dashboard assets are not installed")
    if problems:
        message = f"{' and '.join(problems)}: {SETUP_HINT}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def screenshot(url: str, out: Path, size: tuple[int, int] = (1400, 1000), budget_ms: int = 5000) -> np.ndarray:
    """Render `url` in headless Chromium and return the screenshot as HxWx3 uint8."""
    require_services(chromium=True)
    with tempfile.TemporaryDirectory(prefix="chromium_profile_") as profile:
        cmd = [chromium_path(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={profile}", f"--window-size={size[0]},{size[1]}",
               f"--virtual-time-budget={budget_ms}", f"--screenshot={out}", url]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if result.returncode != 0 or not out.exists():
        raise RuntimeError(f"chromium failed ({result.returncode}): {result.stderr[-2000:]}")
    keep_dir = os.environ.get("DASHBOARD_SCREENSHOT_DIR")
    if keep_dir:
        # How docs/*.png are refreshed: DASHBOARD_SCREENSHOT_DIR=docs pytest tests/test_dashboard.py
        shutil.copyfile(out, Path(keep_dir) / out.name)
    return np.asarray(Image.open(out).convert("RGB"))


def colour_count(region: np.ndarray, colour: str, tolerance: int = 40) -> int:
    """Pixels of `region` within `tolerance` (per channel) of the hex `colour`."""
    target = np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(region.astype(int) - target).max(axis=-1) <= tolerance).sum())


def distinct_colours(region: np.ndarray) -> int:
    return len(np.unique(region.reshape(-1, 3), axis=0))
