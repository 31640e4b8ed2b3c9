"""The dashboard as a user sees it: real visdom server, real browser, real training run.

The browser tests need Chromium and visdom's JS/CSS assets, which
`bash scripts/setup_test_services.sh` installs (make test runs it); without them the tests
skip, except under CI=true, where they fail.
"""
from __future__ import annotations

import base64
import hashlib
import io
import math
import os
import re
import signal
import socket
import subprocess
import sys
import tarfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.visdom_server import REPO, colour_count, distinct_colours, free_port, require_services, screenshot
from util import visdom_assets
from util.image_io import uint8_to_tensor
from util.visualizer import Visualizer

PLOT_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c")  # plotly's and the PNG curve's first traces


def photo_visuals(size: int = 96) -> dict:
    """Eight visuals from scikit-image's bundled photos, some with synthetic rain streaks."""
    from skimage import data

    rng = np.random.default_rng(0)
    clean = np.asarray(Image.fromarray(data.astronaut()[40:340, 120:420]).resize((size, size)))
    other = np.asarray(Image.fromarray(data.coffee()[60:400, 160:500]).resize((size, size)))
    rainy = clean.copy()
    for _ in range(size // 2):
        x, y = rng.integers(0, size - 4), rng.integers(0, size - 16)
        for t in range(14):
            rainy[y + t, x + t // 4] = 235
    arrays = {"real_A": rainy, "fake_B": clean, "rec_A": rainy, "idt_B": other,
              "real_B": other, "fake_A": other, "rec_B": other, "idt_A": clean}
    return {label: uint8_to_tensor(a).unsqueeze(0) for label, a in arrays.items()}


def plot_training_curves(vis: Visualizer, points: int = 60) -> None:
    rng = np.random.default_rng(1)
    for i in range(points):
        vis.plot_current_losses(1 + i // 20, (i % 20) / 20, {
            "D_A": 0.5 * math.exp(-i / 30) + 0.2 + 0.03 * rng.standard_normal(),
            "G_A": 1.0 + 0.3 * math.exp(-i / 20) + 0.05 * rng.standard_normal(),
            "NCE1": 3.0 * math.exp(-i / 25) + 0.5 + 0.05 * rng.standard_normal(),
            "idt_B": 0.4 * math.exp(-i / 15) + 0.05,
        })


def assert_rendered(shot: np.ndarray, min_colours: int) -> None:
    """Plot lines in their colours and photos (thousands of colours): not a blank page."""
    for colour in PLOT_COLOURS:
        assert colour_count(shot, colour, tolerance=20) > 150, f"no plot line in {colour}"
    assert distinct_colours(shot) > min_colours


def test_dashboard_shows_losses_and_images(visdom_server, tmp_path):
    require_services(chromium=True, assets=True)
    vis = Visualizer("dashboard", tmp_path, display_id=1, display_port=visdom_server.port, display_winsize=128,
                     no_html=True)
    plot_training_curves(vis)
    vis.display_current_results(photo_visuals(), epoch=3, save_result=False)
    vis.close()

    shot = screenshot(f"{visdom_server.url}/env/dashboard", tmp_path / "dashboard.png", size=(1400, 600))
    top_bar = shot[:45]
    panes = shot[60:500]  # where visdom lays out the first windows
    assert distinct_colours(top_bar) > 20  # the toolbar rendered (bootstrap + React)
    assert_rendered(panes, min_colours=10000)


def test_training_page_shows_curve_and_images(tmp_path):
    require_services(chromium=True)
    vis = Visualizer("dcdgan_rain", tmp_path, display_id=0, display_winsize=128)
    plot_training_curves(vis)
    vis.display_current_results(photo_visuals(), epoch=2, save_result=True)
    vis.display_current_results(photo_visuals(), epoch=3, save_result=True)

    index = tmp_path / "dcdgan_rain" / "web" / "index.html"
    shot = screenshot(index.as_uri(), tmp_path / "training_page.png")
    curve, images = shot[100:500], shot[500:]
    assert_rendered(curve, min_colours=50)
    assert distinct_colours(images) > 10000


def test_start_visdom_script_starts_a_local_server(tmp_path):
    require_services(assets=True)  # otherwise the script would download them first
    port = free_port()
    env = {**os.environ, "VISDOM_DIR": str(tmp_path), "PY": sys.executable}
    script = ["bash", str(REPO / "scripts" / "start_visdom.sh"), str(port)]
    result = subprocess.run(script, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    match = re.search(r"PID (\d+): (http://\S+)", result.stdout)
    assert match, result.stdout
    pid, url = int(match.group(1)), match.group(2)
    try:
        assert url == f"http://127.0.0.1:{port}"
        assert (tmp_path / f"server_{port}.pid").read_text().strip() == str(pid)
        assert urllib.request.urlopen(url, timeout=5).status == 200
        assert "-bind_local" in Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        assert os.getsid(pid) == pid  # its own session: survives the shell that started it
        again = subprocess.run(script, env=env, capture_output=True, text=True, timeout=60)
        assert again.returncode == 0 and "already answers" in again.stdout
    finally:
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) != 0:
                break
        time.sleep(0.1)
    else:
        pytest.fail(f"the server (PID {pid}) still answers after SIGTERM")


def _fake_tarball(pkg: visdom_assets.NpmPackage, folder: Path) -> Path:
    """A tarball laid out like the npm one (top folder 'package/'), every wanted path present."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for inside, _ in pkg.files:
            # A folder (mathjax's config/, jax/ ...) becomes a folder holding one file.
            name = f"package/{inside}" if "." in Path(inside).name else f"package/{inside}/part.js"
            payload = f"{pkg.spec} {inside}".encode()
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    path = folder / f"{pkg.name}-{pkg.version}.tgz"
    path.write_bytes(buffer.getvalue())
    return path


def test_asset_installer_copies_every_file_and_marks_the_version(tmp_path):
    static = tmp_path / "visdom" / "static"
    static.mkdir(parents=True)
    (tmp_path / "visdom" / "VERSION").write_text("0.2.4\n")
    calls = []

    def fetcher(packages, dest):
        calls.append(len(packages))
        return {pkg.spec: _fake_tarball(pkg, dest) for pkg in packages}

    assert len(visdom_assets.missing_assets(static)) > 20
    assert visdom_assets.install_assets(static, fetcher=fetcher)
    assert visdom_assets.missing_assets(static) == []
    assert (static / "version.built").read_text() == "0.2.4"
    assert (static / "js" / "jquery.min.js").read_text() == "jquery@3.1.1 dist/jquery.min.js"
    assert (static / "fonts" / "glyphicons-halflings-regular.svg#glyphicons_halflingsregular").exists()
    assert (static / "js" / "mathjax" / "2.7.5" / "config" / "part.js").exists()

    assert not visdom_assets.install_assets(static, fetcher=fetcher)  # complete: nothing fetched
    (static / "js" / "plotly-plotly.min.js").unlink()
    assert visdom_assets.missing_assets(static) == ["js/plotly-plotly.min.js"]
    assert visdom_assets.install_assets(static, fetcher=fetcher)
    assert calls == [len(visdom_assets.PACKAGES)] * 2


def test_asset_download_checks_checksum_and_host():
    data = b"tarball bytes"
    good = {"integrity": "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()}
    visdom_assets._check_integrity(data, good, "x@1")
    with pytest.raises(visdom_assets.AssetInstallError, match="checksum"):
        visdom_assets._check_integrity(data + b"!", good, "x@1")
    visdom_assets._check_integrity(data, {"shasum": hashlib.sha1(data).hexdigest()}, "x@1")
    with pytest.raises(visdom_assets.AssetInstallError, match="refusing"):
        visdom_assets._registry_get("https://cdn.example.com/jquery.tgz")


def _write_dataset(root: Path) -> None:
    rng = np.random.default_rng(0)
    for domain in ("trainA", "trainB"):
        (root / domain).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(root / domain / f"{i}.png")


def _parse_loss_log(path: Path) -> list[tuple[int, int, dict[str, str]]]:
    """(epoch, iters, {loss: value as written}) per line of loss_log.txt."""
    rows = []
    for line in path.read_text().splitlines():
        match = re.match(r"\(epoch: (\d+), iters: (\d+), [^)]*\) (.*)", line)
        if match:
            values = dict(re.findall(r"(\S+): (\S+)", match.group(3)))
            rows.append((int(match.group(1)), int(match.group(2)), values))
    return rows


@pytest.mark.skipif(not (REPO / "train.py").exists(), reason="train.py not present yet")
def test_training_run_feeds_the_dashboard(visdom_server, tmp_path):
    _write_dataset(tmp_path / "data")
    name = "e2e_dashboard"
    cmd = [sys.executable, "train.py", "--dataroot", str(tmp_path / "data"), "--name", name,
           "--model", "dcdgan", "--gpu_ids", "-1", "--ngf", "8", "--ndf", "8", "--netF_nc", "16",
           "--num_patches", "16", "--load_size", "32", "--crop_size", "32", "--n_epochs", "1",
           "--n_epochs_decay", "0", "--max_dataset_size", "3", "--display_id", "1",
           "--display_port", str(visdom_server.port), "--display_freq", "1", "--print_freq", "1",
           "--checkpoints_dir", str(tmp_path / "checkpoints")]
    try:
        result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired as err:
        pytest.fail(f"train.py ran over {err.timeout} s; its last output:\n{(err.stderr or b'')[-3000:].decode()}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "no visdom server answers" not in result.stderr

    logged = _parse_loss_log(tmp_path / "checkpoints" / name / "loss_log.txt")
    assert [iters for _, iters, _ in logged] == [1, 2, 3]
    plotted = {trace["name"]: trace
               for trace in visdom_server.window(name, f"{name}_losses")["content"]["data"]}
    assert set(plotted) == set(logged[0][2])
    for loss, trace in plotted.items():
        # The log writes 6 significant digits; the window holds the full values.
        assert [f"{y:.6g}" for y in trace["y"]] == [values[loss] for _, _, values in logged]
        assert trace["x"] == pytest.approx([epoch + iters / 3 for epoch, iters, _ in logged])
    assert visdom_server.client(name).win_exists(f"{name}_images", name)
