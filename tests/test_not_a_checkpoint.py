"""Files that are not checkpoints: every loader and entry point refuses them in one line that
says what the file is, with exit status 2, and never with another exception."""
from __future__ import annotations

import io
import os
import pickle
import random
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from restoration import Restorer
from tests.conftest import save_tiny_dcdgan, write_images
from util.checkpoint import CheckpointError, check_layout, load_checkpoint

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> bytes:
    """The bytes of a real (tiny) training checkpoint."""
    root = tmp_path_factory.mktemp("ck")
    write_images(root / "data" / "trainA", 2, seed=1)
    write_images(root / "data" / "trainB", 2, seed=2)
    save_tiny_dcdgan(root / "data", root / "ck", "t")
    return (root / "ck" / "t" / "latest.pt").read_bytes()


def zip_of(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buf.getvalue()


def byte_patterns(real: bytes) -> dict[str, bytes]:
    """A few hundred files that are not (whole) checkpoints, by name."""
    rng = random.Random(0)
    patterns = {
        "empty": b"",
        "text": b"this is the README, saved as latest.pt by mistake\n" * 3,
        "one byte": b"\n",
        "pickle of a list": pickle.dumps([1, 2, 3]),
        "pickle of a dict": pickle.dumps({"nets": {"G_A": [1.0]}}),
        "pickle protocol 2 of a list": pickle.dumps([1, 2], protocol=2),
        "zip of text": zip_of({"notes.txt": b"hello"}),
        "empty zip": zip_of({}),
        "zip with a data.pkl of junk": zip_of({"archive/data.pkl": b"\x80\x02junk"}),
        "zip magic and junk": b"PK\x03\x04" + bytes(rng.randrange(256) for _ in range(300)),
        "pickle magic and junk": b"\x80" + bytes(rng.randrange(256) for _ in range(300)),
        "gzip": b"\x1f\x8b\x08\x00" + bytes(40),
        "png header": b"\x89PNG\r\n\x1a\n" + bytes(40),
    }
    for length in [1, 2, 3, 4, 7, 16, 64, 100, 512, 4096, 65536] + [rng.randrange(1, 20000) for _ in range(60)]:
        patterns[f"random {length} bytes #{len(patterns)}"] = rng.randbytes(length)
    offsets = sorted({1, 2, 3, 4, 5, 30, 64, len(real) - 1, len(real) - 22, len(real) - 23}
                     | {rng.randrange(1, len(real)) for _ in range(120)})
    for cut in offsets:
        patterns[f"truncated at {cut}"] = real[:cut]
    for i in range(100):
        flipped = bytearray(real)
        # Bits of the headers and the pickle (the first few kB and the zip directory at the end) matter most.
        where = rng.randrange(0, 4096) if i % 2 else rng.randrange(len(real) - 2048, len(real))
        flipped[where] ^= 1 << rng.randrange(8)
        patterns[f"bit {where} flipped #{i}"] = bytes(flipped)
    return patterns


def test_over_three_hundred_byte_patterns_raise_one_line_checkpoint_errors_and_nothing_else(tmp_path,
                                                                                            tiny_checkpoint):
    patterns = byte_patterns(tiny_checkpoint)
    assert len(patterns) > 300
    path = tmp_path / "latest.pt"
    loaded = 0
    for label, content in patterns.items():
        path.write_bytes(content)
        try:
            state = load_checkpoint(path)
        except CheckpointError as err:
            message = str(err)
            assert len(message.splitlines()) == 1 and str(path) in message, (label, message)
            assert "Traceback" not in message and "weights_only" not in message, (label, message)
            assert "holds Python objects" not in message, (label, message)  # none of these holds code
            continue
        except Exception as err:  # noqa: BLE001 - what the test is about
            pytest.fail(f"{label}: {type(err).__name__}: {err}")
        check_layout(state, path)  # a flipped bit in a weight loads: the layout must still hold
        loaded += 1
    assert loaded < len(patterns) // 3


@pytest.mark.parametrize("content,says", [
    (b"", "is empty (0 bytes)"),
    (b"hello, world\n", "is not a checkpoint: it is a text file"),
    (bytes(range(200, 256)), "is not a checkpoint: it is binary data"),
    ("truncated", "is corrupt or truncated (a zip archive without its directory"),
    (zip_of({"notes.txt": b"hi"}), "is not a checkpoint: a zip archive written by another program"),
    (pickle.dumps([1, 2, 3]), "is not a checkpoint: a pickle that torch.save did not write"),
], ids=["empty", "text", "binary", "truncated", "foreign zip", "foreign pickle"])
def test_the_refusal_says_what_the_file_is(tmp_path, tiny_checkpoint, content, says):
    path = tmp_path / "latest.pt"
    path.write_bytes(tiny_checkpoint[: len(tiny_checkpoint) // 2] if content == "truncated" else content)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert says in str(info.value) and f"'{path}'" in str(info.value)


@pytest.mark.parametrize("state,says", [
    ({"nets": {"G_A": [1, 2]}}, "its network 'G_A' is not a dict of tensors"),
    ({"nets": {"G_A": {}}, "test_nets": ["AtoB"]}, "its 'test_nets' is not a dict of network names"),
    ({"nets": {"G_A": {}}, "opt": [1]}, "its 'opt' is not a dict of options"),
    ({"nets": {"G_A": {}}, "position": {"epoch": "one"}}, "its 'position' is not a dict of counts"),
], ids=["nets", "test_nets", "opt", "position"])
def test_a_dict_of_the_wrong_shape_is_refused_in_one_line(tmp_path, state, says):
    path = tmp_path / "latest.pt"
    torch.save(state, path)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert says in str(info.value) and len(str(info.value).splitlines()) == 1


def test_a_shipped_model_is_no_state_to_resume_training_from(tmp_path, tiny_checkpoint):
    path = tmp_path / "latest.pt"
    path.write_bytes(tiny_checkpoint)
    state = load_checkpoint(path, training=True)
    del state["optimizers"]
    torch.save(state, path)
    assert load_checkpoint(path)["nets"]
    with pytest.raises(CheckpointError, match="no training state to resume .optimizers."):
        load_checkpoint(path, training=True)
    state = load_checkpoint(tmp_path / "latest.pt")
    state["optimizers"], state["rng"] = {}, {"torch": [1]}
    torch.save(state, path)
    with pytest.raises(CheckpointError, match="random number generator states"):
        load_checkpoint(path, training=True)


def test_restorer_refuses_with_checkpoint_error(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(b"not a model")
    with pytest.raises(CheckpointError, match="is not a checkpoint: it is a text file"):
        Restorer.from_checkpoint(path)
    with pytest.raises(CheckpointError, match="is not a checkpoint: it is a text file"):
        Restorer.from_pretrained(str(path))


# Each entry point, as a user runs it; {ck} is the checkpoints folder (run 't'), {data} a dataset.
ENTRY_POINTS = {
    "test.py --name": ["test.py", "--dataroot", "{data}/testA", "--name", "t", "--checkpoints_dir", "{ck}",
                       "--results_dir", "{results}", "--gpu_ids", "-1"],
    "test.py --pretrained": ["test.py", "--dataroot", "{data}/testA", "--pretrained", "{ck}/t/latest.pt",
                             "--results_dir", "{results}", "--gpu_ids", "-1"],
    "export_onnx.py": ["-m", "scripts.export_onnx", "--name", "t", "--checkpoints_dir", "{ck}",
                       "--out", "{results}/g.onnx"],
    "export_pretrained.py": ["-m", "scripts.export_pretrained", "--name", "t", "--checkpoints_dir", "{ck}",
                             "--out", "{results}/m.pt"],
    "train.py --continue_train": ["train.py", "--dataroot", "{data}", "--name", "t", "--checkpoints_dir", "{ck}",
                                  "--continue_train", "--gpu_ids", "-1", "--ngf", "8", "--ndf", "8",
                                  "--load_size", "36", "--crop_size", "32", "--num_threads", "0",
                                  "--display_id", "0", "--max_iters", "1"],
}


@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
@pytest.mark.parametrize("content,says", [(b"text saved as latest.pt\n", "is not a checkpoint: it is a text file"),
                                          (b"\x93\x00\xff" * 50, "is not a checkpoint: it is binary data")],
                         ids=["text", "random"])
def test_every_entry_point_refuses_in_one_line_with_exit_2(tmp_path, entry, content, says):
    data = tmp_path / "data"
    for folder, seed in (("trainA", 1), ("trainB", 2), ("testA", 3)):
        write_images(data / folder, 1, seed=seed)
    latest = tmp_path / "ck" / "t" / "latest.pt"
    latest.parent.mkdir(parents=True)
    latest.write_bytes(content)
    argv = [arg.format(ck=tmp_path / "ck", data=data, results=tmp_path / "results") for arg in ENTRY_POINTS[entry]]
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, *argv], cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "ERROR" in lines[0] and says in lines[0] and str(latest) in lines[0], done.stderr
