"""Reliability, round 3: bad values are one-line errors (exit 2) before anything runs, nothing
is deleted unasked, a damaged model is not used silently, and tiling keeps its memory promise."""
from __future__ import annotations

import argparse
import collections
import http.server
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import train
from options.test_options import TestOptions
from options.train_options import TrainOptions
from restoration import Restorer, cli
from restoration.batch import out_of_memory_hint
from restoration.loading import load_generator
from tests.conftest import save_tiny_dcdgan, tiny_flags, write_images
from tests.test_options import refused
from tests.test_pretrained import export_pretrained
from util.checkpoint import CheckpointError, file_digest, load_checkpoint
from util.image_io import load_rgb, tensor_to_uint8, uint8_to_tensor
from runtime.inference import restore, restore_tiled_uint8

REPO = Path(__file__).resolve().parent.parent

BAD_TRAIN_VALUES = {
    "infinite nce_T": (["--nce_T", "inf"], "--nce_T must be a finite number"),
    "infinite lr": (["--lr", "inf"], "--lr must be a finite number"),
    "nan lambda_GAN": (["--lambda_GAN", "nan"], "--lambda_GAN must be a finite number"),
    "nan init_gain": (["--init_gain", "nan"], "--init_gain must be a finite number"),
    "negative seed": (["--seed", "-1"], "--seed must lie in 0..4294967295"),
    "seed past numpy's range": (["--seed", str(2**32)], "--seed must lie in 0..4294967295"),
    "crop not a multiple of 4": (["--load_size", "30", "--crop_size", "30"], "--crop_size 30: the generators need"),
    "crop too small": (["--load_size", "4", "--crop_size", "4"], "--crop_size 4: the generators need"),
    "discriminator too deep": (["--netD", "n_layers", "--n_layers_D", "6"], "--n_layers_D 6 cannot judge a 32-pixel"),
    "model base": (["--model", "base"], "--model 'base' is not a model name: choose one of"),
    "model path": (["--model", "../models/cut"], "--model '../models/cut' is not a model name"),
    "dataset_mode base": (["--dataset_mode", "base"], "--dataset_mode 'base' is not a dataset name"),
    "gpu -2": (["--gpu_ids", "-2"], "--gpu_ids must be GPU numbers"),
    "gpu empty": (["--gpu_ids", ""], "--gpu_ids must be GPU numbers"),
    "gpu -1 with another": (["--gpu_ids=-1,0"], "--gpu_ids must be GPU numbers"),
    "gpu twice": (["--gpu_ids", "0,0"], "--gpu_ids must be GPU numbers"),
    "absurd workers": (["--num_threads", "100000"], "--num_threads 100000 is more than 4 threads per core"),
}


@pytest.mark.parametrize("case", sorted(BAD_TRAIN_VALUES))
def test_bad_training_values_are_one_line_errors(tmp_path, capsys, case):
    extra, expected = BAD_TRAIN_VALUES[case]
    line = refused(TrainOptions().parse, tiny_flags(tmp_path, tmp_path / "ck") + extra, capsys)
    assert expected in line, line


BAD_TEST_VALUES = {
    "overlap one under the tile": (["--tile", "64", "--tile_overlap", "63"], "more than half of --tile 64"),
    "absurd threads": (["--threads", "100000"], "--threads 100000 is more than 4 threads per core"),
    "gpu -2": (["--gpu_ids", "-2"], "--gpu_ids must be GPU numbers"),
    "zero threads": (["--threads", "0"],
                              "--threads must be at least 1"),
}


@pytest.mark.parametrize("case", sorted(BAD_TEST_VALUES))
def test_bad_test_values_are_one_line_errors(capsys, case):
    extra, expected = BAD_TEST_VALUES[case]
    assert expected in refused(TestOptions().parse, ["--dataroot", "x", "--gpu_ids", "-1"] + extra, capsys)


def test_the_settings_in_use_still_pass(tmp_path):
    TrainOptions().parse(tiny_flags(tmp_path, tmp_path / "ck") + ["--seed", str(2**32 - 1), "--gpu_ids", "-1"])
    TrainOptions().parse(["--dataroot", "x", "--model", "paired", "--gpu_ids", "-1", "--load_size", "16",
                          "--crop_size", "16"])  # no discriminator: a crop the PatchGAN could not judge is fine
    TestOptions().parse(["--dataroot", "x", "--gpu_ids", "-1", "--tile", "64", "--tile_overlap", "32"])


def test_help_with_a_model_lists_that_models_flags():
    shown = subprocess.run([sys.executable, "train.py", "--model", "cut", "--help"], cwd=REPO, capture_output=True,
                           text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert "--lambda_NCE" in shown.stdout and "--nce_idt" in shown.stdout and "--dataroot" in shown.stdout


def test_overwrite_run_deletes_only_what_a_training_writes(tmp_path):
    root = tmp_path / "data"
    write_images(root / "trainA", 2, seed=1)
    write_images(root / "trainB", 2, seed=2)
    run_flags = tiny_flags(root, tmp_path / "ck", "run") + ["--max_iters", "1"]
    run_dir = tmp_path / "ck" / "run"
    run_dir.mkdir(parents=True)
    (run_dir / "my_best.pt").write_bytes(b"the user's own file")
    assert train.main(run_flags) == 0, "a folder holding only the user's own file is no earlier run"
    (run_dir / "7.pt").write_bytes((run_dir / "latest.pt").read_bytes())
    assert train.main(run_flags + ["--overwrite_run"]) == 0
    assert sorted(p.name for p in run_dir.glob("*.pt")) == ["latest.pt", "my_best.pt"]
    assert (run_dir / "my_best.pt").read_bytes() == b"the user's own file"


def test_a_failed_start_leaves_no_empty_run_folder(tmp_path, caplog):
    flags = tiny_flags(tmp_path / "missing", tmp_path / "ck", "run")
    assert train.main(flags) == 2 and "not a folder" in caplog.text
    assert not (tmp_path / "ck" / "run").exists()
    (tmp_path / "ck" / "mine").mkdir()  # a folder the user made is theirs, even empty
    assert train.main(flags[:4] + ["--name", "mine"] + flags[6:]) == 2
    assert (tmp_path / "ck" / "mine").is_dir()


def run_script(script: str, *args: str, env: dict, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(REPO / "scripts" / script), *args], cwd=cwd, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", **env}, timeout=120)


@pytest.mark.parametrize("iters", ["abc", "0", "1", "-5", "4e3", "99999999999999999999"])
def test_train_quick_refuses_iters_that_is_not_a_number(iters):
    done = run_script("train_quick.sh", "data", "run", env={"PY": "echo", "ITERS": iters})
    assert done.returncode == 2 and "ITERS must be a whole number" in done.stderr and not done.stdout
    assert len(done.stderr.strip().splitlines()) == 1


def test_demo_refuses_to_replace_an_earlier_demo_run_unless_asked(tmp_path):
    # CHECKPOINTS_DIR and RESULTS_DIR keep the demo's run out of the working tree.
    name = "rain_demo"
    run_dir = tmp_path / "ck" / name
    run_dir.mkdir(parents=True)
    (run_dir / "latest.pt").write_bytes(b"an earlier demo")
    data = tmp_path / "data"
    data.mkdir()
    dirs = {"CHECKPOINTS_DIR": str(tmp_path / "ck"), "RESULTS_DIR": str(tmp_path / "results")}
    refused_run = run_script("demo.sh", env={"PY": "echo", "DEMO_NAME": name, "DEMO_DATA": str(data), **dirs})
    assert refused_run.returncode == 2 and "OVERWRITE=1 make demo" in refused_run.stderr
    assert "train.py" not in refused_run.stdout and (run_dir / "latest.pt").read_bytes() == b"an earlier demo"
    (data / "meta.json").write_text("{}")
    asked = run_script("demo.sh", env={"PY": "echo", "DEMO_NAME": name, "DEMO_DATA": str(data), "OVERWRITE": "1",
                                       **dirs})
    assert any(line.startswith("train.py") and "--overwrite_run" in line for line in asked.stdout.splitlines())
    # Every step of the demo works in the folders it was given.
    steps = [line for line in asked.stdout.splitlines() if line.startswith(("train.py", "test.py"))]
    assert len(steps) == 3 and all(f"--checkpoints_dir {tmp_path / 'ck'}" in line for line in steps)
    assert all(f"--results_dir {tmp_path / 'results'}" in line for line in steps[1:])


@pytest.mark.parametrize("port", ["0", "65536", "99999999999999999999", "80a"])
def test_start_visdom_refuses_ports_out_of_range_in_one_line(tmp_path, port):
    done = run_script("start_visdom.sh", port, env={"PY": sys.executable, "VISDOM_DIR": str(tmp_path / "v")})
    assert done.returncode == 2 and "ports run from 1 to 65535" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not (tmp_path / "v").exists()


@pytest.mark.parametrize("speaks_http", [False, True], ids=["plain socket", "http server"])
def test_start_visdom_refuses_a_port_held_by_another_program(tmp_path, speaks_http):
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        server = None
        if speaks_http:
            held.close()
            server = http.server.HTTPServer(("127.0.0.1", port), http.server.SimpleHTTPRequestHandler)
            threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            done = run_script("start_visdom.sh", str(port), env={"PY": sys.executable,
                                                                 "VISDOM_DIR": str(tmp_path / "v")})
        finally:
            if server is not None:
                server.shutdown()
                server.server_close()
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert f"port {port} is held by another program" in done.stderr and not done.stdout
    assert not list((tmp_path / "v").glob("*.pid")), "no server was started"


@pytest.fixture(scope="module")
def shipped_model(tmp_path_factory):
    """A tiny DCD-GAN exported as a shipped model, with its card."""
    tmp = tmp_path_factory.mktemp("shipped")
    save_tiny_dcdgan(tmp / "data", tmp / "ck", "run")
    out = tmp / "models" / "tiny.pt"
    assert export_pretrained.main(["--name", "run", "--checkpoints_dir", str(tmp / "ck"), "--out", str(out)]) == 0
    return tmp, out


def test_export_replaces_an_existing_model_only_when_asked_and_then_with_a_new_card(shipped_model, tmp_path,
                                                                                      caplog):
    tmp, _ = shipped_model
    out = tmp_path / "mine.pt"
    export = ["--name", "run", "--checkpoints_dir", str(tmp / "ck"), "--out", str(out)]
    assert export_pretrained.main(export) == 0
    out.write_bytes(b"an older model")
    out.with_suffix(".md").write_text("- `mine.pt`, 1.00 MB, SHA-256 `" + "0" * 64 + "`; the older model's card\n")
    assert export_pretrained.main(export) == 2 and "--overwrite" in caplog.text
    assert out.read_bytes() == b"an older model", "nothing replaced unasked"
    assert export_pretrained.main(export + ["--max_mb", "0.0001", "--overwrite"]) == 2
    assert out.read_bytes() == b"an older model", "a refused export keeps the old model"
    assert export_pretrained.main(export + ["--overwrite"]) == 0
    card = out.with_suffix(".md").read_text()
    assert "older model" not in card and file_digest(out, 64) in card
    Restorer.from_pretrained(str(out))  # the new card describes the new weights
    assert not list(tmp_path.glob(".*")), "no staging file is left"


def damage(path: Path, length: int = 4096) -> None:
    """Overwrite `length` bytes in the middle of the file's largest tensor (its zip member's data)."""
    with zipfile.ZipFile(path) as archive:
        member = max(archive.infolist(), key=lambda info: info.file_size)
    data = bytearray(path.read_bytes())
    name_length, extra_length = struct.unpack("<HH", data[member.header_offset + 26:member.header_offset + 30])
    start = member.header_offset + 30 + name_length + extra_length + (member.file_size - length) // 2
    data[start:start + length] = b"\xff" * length
    path.write_bytes(bytes(data))


def test_a_damaged_shipped_model_is_refused_naming_the_file_and_how_to_restore_it(shipped_model, tmp_path,
                                                                                   caplog):
    _, out = shipped_model
    copy = tmp_path / "tiny.pt"
    copy.write_bytes(out.read_bytes())
    copy.with_suffix(".md").write_text(out.with_suffix(".md").read_text())
    Restorer.from_pretrained(str(copy))
    damage(copy)
    with pytest.raises(CheckpointError, match="git checkout -- ") as refused_load:
        Restorer.from_pretrained(str(copy))
    assert str(copy) in str(refused_load.value) and "model card" in str(refused_load.value)
    write_images(tmp_path / "photos", 1, seed=5)
    assert cli.main(["--dataroot", str(tmp_path / "photos"), "--pretrained", str(copy), "--gpu_ids", "-1",
                     "--results_dir", str(tmp_path / "results")]) == 2
    assert "is damaged or was replaced" in caplog.text


def test_non_finite_or_constant_outputs_are_reported(shipped_model, caplog):
    tmp, _ = shipped_model
    net, source = load_generator(tmp / "ck" / "run" / "latest.pt")
    image = np.random.default_rng(0).integers(0, 256, (40, 48, 3), dtype=np.uint8)
    assert Restorer(net, source, backend="torch").restore_array(image) is not None
    assert "the restored" not in caplog.text, "a sound model gives no warning"
    last = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)][-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.zero_()
    Restorer(net, source, backend="torch").restore_array(image, label="photo.png")
    assert "the restored photo.png has one value" in caplog.text and str(source.path) in caplog.text
    with torch.no_grad():
        last.bias.fill_(float("nan"))
    Restorer(net, source, backend="torch").restore_array(image, label="photo.png")
    assert "the restored photo.png has non-finite values" in caplog.text
    flat = np.full((40, 48, 3), 90, np.uint8)
    caplog.clear()
    with torch.no_grad():
        last.bias.zero_()
    Restorer(net, source, backend="torch").restore_array(flat)
    assert "the restored" not in caplog.text, "a flat input may give a flat output"


def test_the_python_interface_honours_exif_orientation_like_test_py(shipped_model, tmp_path):
    _, out = shipped_model
    arr = np.random.default_rng(2).integers(0, 256, (40, 64, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    path = tmp_path / "rotated.jpg"
    Image.fromarray(arr).save(path, exif=exif, quality=95)
    restorer = Restorer.from_pretrained(str(out), backend="torch")
    with Image.open(path) as photo:
        from_pil = np.asarray(restorer.restore(photo))
    from_file = restorer.restore_array(np.asarray(load_rgb(path)))
    assert from_pil.shape == (64, 40, 3) and np.array_equal(from_pil, from_file)


@pytest.mark.parametrize("bad", [np.zeros((0, 0, 3), np.uint8), np.zeros((5, 0, 3), np.uint8),
                                 np.zeros((4, 4), np.uint8), [[1, 2, 3]]], ids=["0x0", "5x0", "grey", "list"])
def test_the_python_interface_refuses_empty_and_misshapen_arrays_in_one_line(shipped_model, bad):
    _, out = shipped_model
    with pytest.raises(ValueError) as refused_array:
        Restorer.from_pretrained(str(out)).restore(bad)
    assert len(str(refused_array.value).splitlines()) == 1 and "expected" in str(refused_array.value)


@pytest.mark.parametrize("tile, overlap", [(64, 63), (32, 8), (-64, 8), (64, -1)])
def test_the_python_interface_refuses_tiles_that_crawl_or_leave_gaps(shipped_model, tile, overlap):
    _, out = shipped_model
    with pytest.raises(ValueError, match="tile"):
        Restorer.from_pretrained(str(out), tile=tile, tile_overlap=overlap)


def test_make_clean_removes_only_what_the_project_generates(tmp_path):
    generated = [".venv/bin/python", "datasets/rain_heavy/meta.json", "datasets/photos/a.jpg",
                 "checkpoints/rain_demo/latest.pt", "results/rain_demo/test_latest/index.html",
                 "models/__pycache__/x.pyc"]
    owned = ["checkpoints/my_run/latest.pt", "datasets/my_photos/holiday.jpg", "datasets/Rain100L/trainA/1.png",
             "results/my_run/test_latest/index.html", "checkpoints/README.md"]
    for name in generated + owned:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    done = subprocess.run(["make", "-s", "-f", str(REPO / "Makefile"), "-C", str(tmp_path), "clean"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert [name for name in owned if not (tmp_path / name).exists()] == []
    assert [name for name in generated if (tmp_path / name).exists()] == []
    assert "kept" in done.stdout


def test_the_refusal_of_a_non_weights_checkpoint_is_one_line_and_never_suggests_unsafe_loading(tmp_path):
    path = tmp_path / "foreign.pt"
    torch.save({"nets": {}, "extra": collections.OrderedDict(a=1), "opt": argparse.Namespace(lr=1)}, path)
    with pytest.raises(CheckpointError) as refusal:
        load_checkpoint(path)
    message = str(refusal.value)
    assert len(message.splitlines()) == 1 and str(path) in message and "refusing to load" in message
    assert "weights_only" not in message and "argparse.Namespace" in message


def test_the_architecture_refusal_reads_as_a_sentence(tmp_path, caplog):
    root = tmp_path / "data"
    write_images(root / "trainA", 2, seed=1)
    write_images(root / "trainB", 2, seed=2)
    flags = tiny_flags(root, tmp_path / "ck", "run") + ["--max_iters", "1"]
    assert train.main(flags) == 0
    assert train.main(flags + ["--continue_train", "--max_iters", "2", "--skips"]) == 2
    message = caplog.records[-1].getMessage()
    assert "was trained without --skips; these options ask for --skips" in message, message


def test_tiled_uint8_restoration_matches_the_float_path(shipped_model):
    tmp, _ = shipped_model
    net, _ = load_generator(tmp / "ck" / "run" / "latest.pt")
    image = np.random.default_rng(3).integers(0, 256, (150, 170, 3), dtype=np.uint8)
    expected = tensor_to_uint8(restore(net, uint8_to_tensor(image)[None], 64, 16))
    got, finite = restore_tiled_uint8(net, image, 64, 16, torch.device("cpu"))
    assert finite and got.shape == image.shape and got.dtype == np.uint8
    difference = np.abs(got.astype(int) - expected)
    assert difference.max() <= 1 and (difference > 0).mean() < 0.001, "only float rounding of the blend differs"


MEMORY_PROBE = """
import sys
import numpy as np, torch
from restoration import Restorer
from restoration.loading import LoadedCheckpoint
def rss(key):
    return int([l for l in open("/proc/self/status") if l.startswith(key)][0].split()[1]) * 1024
restorer = Restorer(torch.nn.Conv2d(3, 3, 1), LoadedCheckpoint("stand-in", {}, {}, "0"), tile=512, backend="torch")
image = np.full((2000, 3000, 3), 7, np.uint8)
before = rss("VmHWM")
restorer.restore_array(image)
print((rss("VmHWM") - before) / (2000 * 3000 * 3 * 4))
"""


def test_tiling_holds_few_whole_image_float_buffers():
    """--tile bounds memory: besides one tile, a tiled restoration holds the float32 accumulator
    and the uint8 input and output (1.5 float buffers; 1.9 measured), not the 5 it used to."""
    done = subprocess.run([sys.executable, "-c", MEMORY_PROBE], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    buffers = float(done.stdout.strip().splitlines()[-1])
    assert buffers < 2.5, f"the restoration's peak held {buffers:.1f} whole-image float32 buffers"


def test_the_out_of_memory_advice_does_not_go_in_circles():
    photo = np.zeros((4000, 6000, 3), np.uint8)
    assert "--tile 512" in out_of_memory_hint(photo, 0)
    assert "a smaller --tile (e.g. --tile 512)" in out_of_memory_hint(photo, 1024)
    for tile in (256, 128, 64):
        hint = out_of_memory_hint(photo, tile)
        assert "smaller --tile does not" in hint and "MB" in hint and "downscaled" in hint, hint


def restore_folder(model: Path, folder: Path, results: Path, *extra: str) -> int:
    return cli.main(["--dataroot", str(folder), "--pretrained", str(model), "--gpu_ids", "-1",
                     "--results_dir", str(results), "--nr_metrics", "False", "--backend", "torch", *extra])


def test_inputs_differing_only_by_extension_get_names_that_do_not_depend_on_their_order(shipped_model, tmp_path):
    _, model = shipped_model
    photos = tmp_path / "photos"
    write_images(photos, 2, seed=7, prefix="a")
    (photos / "a000.png").rename(photos / "a.png")
    Image.open(photos / "a001.png").save(photos / "a.bmp")
    (photos / "a001.png").unlink()
    assert restore_folder(model, photos, tmp_path / "results") == 0
    page = tmp_path / "results" / model.stem / "test_pretrained"
    assert sorted(p.name for p in (page / "images").iterdir()) == ["a_bmp.png", "a_png.png"]
    for source, name in (("a.png", "a_png.png"), ("a.bmp", "a_bmp.png")):
        assert np.array_equal(np.asarray(Image.open(page / "inputs" / name)), np.asarray(load_rgb(photos / source)))


def test_an_image_format_test_py_does_not_read_is_listed_and_counted(shipped_model, tmp_path, caplog):
    _, model = shipped_model
    photos = tmp_path / "photos"
    write_images(photos, 1, seed=8)
    Image.open(photos / "img000.png").save(photos / "animation.gif")
    (photos / "notes.txt").write_text("not an image: not listed")
    assert restore_folder(model, photos, tmp_path / "results") == 3
    skipped = (tmp_path / "results" / model.stem / "test_pretrained" / "skipped.txt").read_text()
    assert "animation.gif" in skipped and ".gif files" in skipped and "notes.txt" not in skipped
    assert "1 images were skipped" in caplog.text


STOPPED_MID_WRITE = """
import os, signal, sys
import restoration.batch
from restoration import cli
from util.atomic_file import atomic_write

def save_then_stop(array, path):
    with atomic_write(path, "wb") as fh:
        fh.write(b"half a PNG")
        os.kill(os.getpid(), signal.SIGTERM)
        fh.write(b"the rest")

restoration.batch.save_image = save_then_stop
sys.exit(cli.main(sys.argv[1:]))
"""


def test_a_test_run_stopped_by_a_signal_leaves_no_temporary_files(shipped_model, tmp_path):
    _, model = shipped_model
    write_images(tmp_path / "photos", 1, seed=9)
    results = tmp_path / "results"
    done = subprocess.run([sys.executable, "-c", STOPPED_MID_WRITE, "--dataroot", str(tmp_path / "photos"),
                           "--pretrained", str(model), "--gpu_ids", "-1", "--results_dir", str(results),
                           "--backend", "torch"], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 128 + signal.SIGTERM, done.stderr[-2000:]
    assert [p for p in results.rglob("*") if p.is_file()] == [], "no temporary or half-written file is left"
