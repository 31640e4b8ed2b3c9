"""datasets/prepare.py and its prepare_* modules on small fakes of the real releases: folder
and file names as the archives have them (datasets/README.md gives each layout's source), tiny images."""
import io
import json
import logging
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

import numpy as np
import pytest
from PIL import Image

from datasets.prepare import main, prepare
from datasets.prepare_catalogue import PrepareError
from datasets.prepare_pairing import classify
from datasets.prepare_readers import ReleaseFile
from util.image_io import load_rgb


def _img(path: Path, seed: int, size=(16, 12)) -> np.ndarray:
    """Write a random RGB image of (width, height) ``size``; returns its pixels."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(arr).save(path)
    return arr


def _zip(folder: Path, archive: Path) -> Path:
    """Zip the contents of ``folder`` (no top folder unless ``folder`` holds one)."""
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(folder.rglob("*")):
            zf.write(path, path.relative_to(folder).as_posix())
    return archive


def _tar(folder: Path, archive: Path) -> Path:
    """A gzipped tarball of the contents of ``folder``."""
    with tarfile.open(archive, "w:gz") as tf:
        for path in sorted(folder.iterdir()):
            tf.add(path, path.name)
    return archive


def _stems(folder: Path) -> set[str]:
    return {p.stem for p in folder.iterdir()}


def _same_file(a: Path, b: Path) -> bool:
    return a.read_bytes() == b.read_bytes()


def _pixels(path: Path) -> np.ndarray:
    return np.asarray(load_rgb(path))


def _check_layout(out: Path) -> dict:
    record = json.loads((out / "prepare.json").read_text())
    assert _stems(out / "trainA") and _stems(out / "trainB")
    assert not set(record["trainA_scenes"]) & set(record["trainB_scenes"])
    assert _stems(out / "testA") == _stems(out / "testB")
    assert not list(out.glob(".prepare_*"))
    return record


def _errors(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]


# ---------------------------------------------------------------- roles from folders
@pytest.mark.parametrize(
    ("degraded", "clean"),
    [
        ("rain/X2/norain-12x2.png", "norain/norain-12.png"),  # JORDER's training zip
        ("rain_heavy_test/rain/X2/norain-12x2.png", "rain_heavy_test/norain/norain-12.png"),  # its test tarball
        ("rain_data_train_Light/rain/norain-12.png", "rain_data_train_Light/norain/norain-12.png"),
        ("RainTrainL/rain-12.png", "RainTrainL/norain-12.png"),  # PReNet: both in one folder
        ("Rain100L/rainy/rain-012.png", "Rain100L/norain-012.png"),
        ("test/Test100/input/12.png", "test/Test100/target/12.png"),  # deraining test.zip
        ("test/Rain100L/input/rain-012.png", "test/Rain100L/target/rain-012.png"),
        ("real_test_1000/rain/012.png", "real_test_1000/gt/012gt.png"),  # SPA-Data
        ("SOTS/outdoor/hazy/0012_0.8_0.2.jpg", "SOTS/outdoor/gt/0012.png"),
    ],
)
def test_folders_decide_roles_numbers_the_scene(degraded, clean):
    files = [ReleaseFile(Path(rel), PurePosixPath(rel), rel) for rel in (degraded, clean)]
    entries = classify(files, "rain100l")
    assert [(e.role, e.scene) for e in entries] == [("degraded", "0012"), ("clean", "0012")]
    assert entries[0].part == entries[1].part


@pytest.mark.parametrize(
    ("rel", "part"),
    [
        ("rain/X2/norain-1x2.png", None),  # JORDER's training zip: its archive name decides
        ("rain_data_train_Light/rain/X2/norain-1x2.png", "train"),
        ("rain_heavy_test/rain/X2/norain-1x2.png", "test"),
        ("datasets/train/RainTrainL/rain-1.png", "train"),
        ("datasets/test/Rain100L/rainy/rain-001.png", "test"),
        ("Rain100L/rain-001.png", "test"),
        ("latest_download/rain/1.png", None),
    ],
)
def test_folders_decide_the_part(rel, part):
    (entry,) = classify([ReleaseFile(Path(rel), PurePosixPath(rel), rel)], "rain100l")
    assert (entry.role, entry.part) == ("degraded", part)


# ---------------------------------------------------------------- Rain100L / Rain100H
def _jorder_updated(root: Path, n_train: int = 10, n_test: int = 3) -> tuple[Path, Path]:
    """The JORDER page's archives today: rain_data_train_Light.zip unpacks straight into rain/
    and norain/; the tarball rain_data_test_Light.gz into rain_light_test/."""
    train, test = root / "train_zip", root / "test_tar"
    for i in range(1, n_train + 1):
        _img(train / "norain" / f"norain-{i}.png", i)
        _img(train / "rain" / "X2" / f"norain-{i}x2.png", 100 + i)
        _img(train / "rainstreak" / f"norain-{i}x2.png", 200 + i)
    for i in range(1, n_test + 1):
        _img(test / "rain_light_test" / "norain" / f"norain-{i}.png", 300 + i)
        _img(test / "rain_light_test" / "rain" / "X2" / f"norain-{i}x2.png", 400 + i)
    junk = train / "__MACOSX" / "rain" / "._norain-1x2.png"
    junk.parent.mkdir(parents=True)
    junk.write_bytes(b"not an image")
    return train, test


def test_rain100l_jorder_updated_archives(tmp_path, caplog):
    train, test = _jorder_updated(tmp_path / "src")
    archives = [_zip(train, tmp_path / "rain_data_train_Light.zip"), _tar(test, tmp_path / "rain_data_test_Light.gz")]
    out = tmp_path / "out"
    with caplog.at_level(logging.INFO):
        record = prepare("rain100l", archives, out, seed=0)
    _check_layout(out)
    assert record["mode"] == "official"
    # Train scenes 1..10 and test scenes 1..3 share numbers but are never mixed.
    assert sorted(record["trainA_scenes"] + record["trainB_scenes"]) == [f"{i:04d}" for i in range(1, 11)]
    assert record["test_scenes"] == ["0001", "0002", "0003"]
    scene = record["trainA_scenes"][0]
    assert _same_file(out / "trainA" / f"{scene}.png", train / "rain" / "X2" / f"norain-{int(scene)}x2.png")
    scene = record["trainB_scenes"][0]
    assert _same_file(out / "trainB" / f"{scene}.png", train / "norain" / f"norain-{int(scene)}.png")
    clean = test / "rain_light_test" / "norain" / "norain-2.png"
    assert _same_file(out / "testB" / "0002.png", clean)

    parts = record["parts"]
    assert parts["train"]["found"] == {"scenes": 10, "pairs": 10}
    assert parts["train"]["expected"] == {"scenes": 1800, "pairs": 1800}
    assert parts["test"]["expected"] == {"scenes": 200, "pairs": 200}
    assert "updated" in parts["test"]["release"]
    assert any("3 pairs found where" in r.getMessage() for r in caplog.records if r.levelname == "WARNING")

    # The same archives extracted, passed as folders.
    (tmp_path / "rain_data_train_Light").mkdir()
    shutil.copytree(train, tmp_path / "rain_data_train_Light", dirs_exist_ok=True)
    folders = prepare("rain100l", [tmp_path / "rain_data_train_Light", test / "rain_light_test"], tmp_path / "dirs")
    assert folders["trainA_scenes"] == record["trainA_scenes"] and folders["test_scenes"] == record["test_scenes"]

    others = [prepare("rain100l", archives, tmp_path / f"s{s}", seed=s)["trainA_scenes"] for s in (1, 2, 3)]
    assert any(o != record["trainA_scenes"] for o in others)


def _prenet_tree(root: Path) -> None:
    """PReNet's download: train/RainTrain{L,H}, test/Rain100{L,H}, test/Rain12."""
    for i in range(1, 7):
        _img(root / "train" / "RainTrainL" / f"rain-{i}.png", i)
        _img(root / "train" / "RainTrainL" / f"norain-{i}.png", 10 + i)
        _img(root / "train" / "RainTrainL" / f"rainstreak-{i}.png", 20 + i)
        _img(root / "train" / "RainTrainL" / f"rainregion-{i}.png", 30 + i)
    for i in range(1, 9):  # RainTrainH keeps every clean image but drops some rainy ones
        _img(root / "train" / "RainTrainH" / f"norain-{i}.png", 40 + i)
        if i % 4:
            _img(root / "train" / "RainTrainH" / f"rain-{i}.png", 50 + i)
    for light, offset in (("L", 100), ("H", 200)):
        for i in range(1, 4):
            test = root / "test" / f"Rain100{light}"
            _img(test / f"norain-{i:03d}.png", offset + i)
            _img(test / "rainy" / f"rain-{i:03d}.png", offset + 10 + i)
            shutil.copy(test / "rainy" / f"rain-{i:03d}.png", test / f"rain-{i:03d}.png")
    for i in range(1, 3):
        _img(root / "test" / "Rain12" / f"{i:03d}_in.png", 300 + i)
        _img(root / "test" / "Rain12" / f"{i:03d}_GT.png", 310 + i)


def test_prenet_tree_reads_only_the_requested_set(tmp_path):
    src = tmp_path / "PReNet_datasets"
    _prenet_tree(src)
    light = prepare("rain100l", [src], tmp_path / "light", seed=0)
    _check_layout(tmp_path / "light")
    assert light["counts"] == {"trainA": 3, "trainB": 3, "testA": 3, "testB": 3}
    assert light["parts"]["train"]["expected"]["pairs"] == 200
    scene = light["trainA_scenes"][0]
    rainy = src / "train" / "RainTrainL" / f"rain-{int(scene)}.png"
    assert _same_file(tmp_path / "light" / "trainA" / f"{scene}.png", rainy)
    assert _same_file(tmp_path / "light" / "testB" / "0002.png", src / "test" / "Rain100L" / "norain-002.png")

    archive = tmp_path / "PReNet.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(src, arcname="datasets")
    heavy = prepare("rain100h", [archive], tmp_path / "heavy", seed=0)
    assert heavy["counts"] == {"trainA": 3, "trainB": 3, "testA": 3, "testB": 3}
    assert heavy["incomplete_scenes"] == ["train/0004", "train/0008"]
    assert heavy["parts"]["train"]["expected"]["pairs"] == 1254

    _img(src / "test" / "Rain100L" / "rainy" / "rain-001.png", 999)
    with pytest.raises(PrepareError, match="two different degraded images for test scene '0001'"):
        prepare("rain100l", [src], tmp_path / "conflict")


def _deraining_test_zip(root: Path) -> Path:
    """The test.zip linked by MPRNet / Restormer: five sets, each input/ + target/."""
    names = {"Rain100H": "rain-{:03d}.png", "Rain100L": "rain-{:03d}.png", "Test100": "{}.png",
             "Test1200": "{}.png", "Test2800": "{}_1.png"}
    for k, (folder, pattern) in enumerate(names.items()):
        for i in range(1, 6):
            _img(root / "test" / folder / "input" / pattern.format(i), 100 * k + i)
            _img(root / "test" / folder / "target" / pattern.format(i), 100 * k + 50 + i)
    return _zip(root, root.parent / "test.zip")


def test_deraining_test_zip_selects_the_set(tmp_path, caplog):
    archive = _deraining_test_zip(tmp_path / "src")
    light = prepare("rain100l", [archive], tmp_path / "light", seed=0)
    _check_layout(tmp_path / "light")
    assert light["mode"] == "holdout" and light["parts"]["test"]["expected"]["pairs"] == 100
    stem = light["test_scenes"][0]
    target = tmp_path / "src" / "test" / "Rain100L" / "target" / f"rain-{int(stem):03d}.png"
    assert _same_file(tmp_path / "light" / "testB" / f"{stem}.png", target)

    test100 = prepare("rain800", [archive], tmp_path / "test100", seed=0)
    assert "Test100" in test100["parts"]["test"]["release"]
    stem = test100["test_scenes"][0]
    target = tmp_path / "src" / "test" / "Test100" / "target" / f"{int(stem)}.png"
    assert _same_file(tmp_path / "test100" / "testB" / f"{stem}.png", target)

    # PReNet's training set with the test.zip's Rain100L: the official split.
    prenet = tmp_path / "prenet"
    _prenet_tree(prenet)
    both = prepare("rain100l", [prenet / "train" / "RainTrainL", archive], tmp_path / "both", seed=0)
    assert both["mode"] == "official" and both["counts"]["testA"] == 5
    assert {p["release"] for p in both["parts"].values()} == {light["parts"]["test"]["release"]}

    rain100 = tmp_path / "rain100"
    for folder in ("Rain100H", "Rain100L"):
        shutil.copytree(tmp_path / "src" / "test" / folder, rain100 / folder)
    assert main(["rain800", "--archive", str(rain100), "--out", str(tmp_path / "none")]) == 2
    assert _errors(caplog) == [f"'{rain100}' holds Rain100H, Rain100L but no rain800 folder: pass the archive "
                               "that holds it (datasets/README.md lists the folder names of each set)"]


# ---------------------------------------------------------------- Rain800
def test_rain800_side_by_side_pairs(tmp_path):
    src = tmp_path / "Rain800"
    for i in range(1, 5):
        _img(src / "rain" / "training" / f"{i}.jpg", i, size=(20, 8))
    for i in range(1, 3):
        _img(src / "rain" / "test_syn" / f"{i}.jpg", 10 + i, size=(20, 8))
    _img(src / "rain" / "test_nature" / "1.jpg", 99, size=(15, 8))  # real rain, no ground truth
    out = tmp_path / "out"
    record = prepare("rain800", [src], out)
    _check_layout(out)
    assert record["counts"] == {"trainA": 2, "trainB": 2, "testA": 2, "testB": 2}
    assert record["parts"]["train"]["expected"]["pairs"] == 700
    pair = _pixels(src / "rain" / "test_syn" / "2.jpg")
    assert np.array_equal(_pixels(out / "testB" / "0002.png"), pair[:, :10])
    assert np.array_equal(_pixels(out / "testA" / "0002.png"), pair[:, 10:])
    scene = record["trainA_scenes"][0]
    rainy = _pixels(src / "rain" / "training" / f"{int(scene)}.jpg")[:, 10:]
    assert np.array_equal(_pixels(out / "trainA" / f"{scene}.png"), rainy)

    swapped = prepare("rain800", [src], tmp_path / "swapped", rainy_side="left")
    assert swapped["trainA_scenes"] == record["trainA_scenes"]
    assert np.array_equal(_pixels(tmp_path / "swapped" / "testA" / "0002.png"), pair[:, :10])


def test_rain800_t7_release_names_what_to_download(tmp_path, caplog):
    t7 = tmp_path / "Rain800.t7"
    t7.write_bytes(b"\x04\x00\x00\x00torch")
    assert main(["rain800", "--archive", str(t7), "--out", str(tmp_path / "out")]) == 2
    (message,) = _errors(caplog)
    assert message.startswith(f"'{t7}' is a Torch7 file") and "Test100/" in message and "torchfile" in message
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- SPA-Data
def test_spa_test_set_holdout(tmp_path):
    src = tmp_path / "SPA"
    for i in range(10):
        _img(src / "real_test_1000" / "rain" / f"{i:03d}.png", i)
        _img(src / "real_test_1000" / "gt" / f"{i:03d}gt.png", 100 + i)
    _img(src / "Real_Internet" / "000.png", 500)  # real rain without ground truth
    out = tmp_path / "out"
    record = prepare("spa", [_zip(src, tmp_path / "spa.zip")], out, seed=0, test_fraction=0.2)
    _check_layout(out)
    assert record["mode"] == "holdout"
    assert record["parts"]["test"]["expected"] == {"scenes": 1000, "pairs": 1000}
    assert len(record["test_scenes"]) == 2 and len(record["trainA_scenes"]) == 4 == len(record["trainB_scenes"])
    scenes = record["test_scenes"] + record["trainA_scenes"] + record["trainB_scenes"]
    assert sorted(scenes) == [f"{i:04d}" for i in range(10)]
    stem = record["test_scenes"][0]
    assert _same_file(out / "testB" / f"{stem}.png", src / "real_test_1000" / "gt" / f"{int(stem):03d}gt.png")
    assert _same_file(out / "testA" / f"{stem}.png", src / "real_test_1000" / "rain" / f"{int(stem):03d}.png")


def test_spa_flat_naming(tmp_path, caplog):
    src = tmp_path / "spa_flat"
    for i in range(5):
        _img(src / f"{i}.png", i)
        _img(src / f"{i}_gt.png", 50 + i)
    record = prepare("spa", [src], tmp_path / "out", test_fraction=0.2)
    assert record["counts"] == {"trainA": 2, "trainB": 2, "testA": 1, "testB": 1}
    # No folder names the release and its size matches none: counts recorded, no expectation.
    assert record["parts"]["test"] == {"found": {"scenes": 5, "pairs": 5}, "expected": None, "release": None}
    assert any("no known release has that many (1000 pairs in" in r.getMessage() for r in caplog.records)


# ---------------------------------------------------------------- RESIDE SOTS
def _sots_indoor(root: Path, scenes: int = 6, hazy: int = 10) -> None:
    """nyuhaze500/: gt/1400.png with hazy/1400_1.png ... 1400_10.png (clear frames have a border)."""
    for i in range(scenes):
        _img(root / "nyuhaze500" / "gt" / f"{1400 + i}.png", i, size=(12, 10))
        for j in range(1, hazy + 1):
            _img(root / "nyuhaze500" / "hazy" / f"{1400 + i}_{j}.png", 10 * i + j, size=(8, 6))


def _sots_outdoor(root: Path) -> None:
    for i in range(1, 6):
        _img(root / "gt" / f"{i:04d}.png", 100 + i)
        _img(root / "hazy" / f"{i:04d}_0.8_0.2.jpg", 200 + i)


def test_reside_sots_extracted(tmp_path):
    src = tmp_path / "SOTS"
    _sots_indoor(src / "indoor", hazy=3)
    _sots_outdoor(src / "outdoor")
    out = tmp_path / "indoor"
    assert main(["reside_sots", "--subset", "indoor", "--archive", str(src), "--out", str(out)]) == 0
    record = _check_layout(out)
    assert record["parts"]["test"]["found"] == {"scenes": 6, "pairs": 18}
    assert record["parts"]["test"]["expected"] == {"scenes": 50, "pairs": 500}
    scene = record["test_scenes"][0]
    assert _stems(out / "testA") == {f"{scene}_{j}" for j in (1, 2, 3)}
    gt = _pixels(src / "indoor" / "nyuhaze500" / "gt" / f"{scene}.png")
    for j in (1, 2, 3):
        assert np.array_equal(_pixels(out / "testB" / f"{scene}_{j}.png"), gt[2:8, 2:10])
    assert len(list((out / "trainA").iterdir())) == 3 * len(record["trainA_scenes"])
    assert all(Image.open(p).size == (8, 6) for p in (out / "trainB").iterdir())

    outdoor = prepare("reside_sots", [src], tmp_path / "outdoor", subset="outdoor")
    assert all(not s.startswith("14") for s in outdoor["trainA_scenes"] + outdoor["trainB_scenes"])
    names = {p.name for p in (tmp_path / "outdoor" / "testA").iterdir()}
    assert names == {f"{s}_0.8_0.2.jpg" for s in outdoor["test_scenes"]}


def _sots_download(tmp_path: Path) -> Path:
    """SOTS.zip as downloaded: indoor.rar beside outdoor.zip (the fake rar is a zip inside)."""
    _sots_indoor(tmp_path / "indoor_src")
    _sots_outdoor(tmp_path / "outdoor_src" / "outdoor")
    download = tmp_path / "download" / "SOTS"
    download.mkdir(parents=True)
    _zip(tmp_path / "indoor_src", download / "indoor.rar")
    _zip(tmp_path / "outdoor_src", download / "outdoor.zip")
    return _zip(tmp_path / "download", tmp_path / "SOTS.zip")


def _fake_7z(bin_dir: Path) -> None:
    """A stand-in for `7z x -y -o<dest> <archive>` that unpacks zip files."""
    bin_dir.mkdir()
    script = bin_dir / "7z"
    script.write_text(
        f"#!{sys.executable}\nimport sys, zipfile\n"
        "dest = next(a[2:] for a in sys.argv if a.startswith('-o'))\n"
        "zipfile.ZipFile(sys.argv[-1]).extractall(dest)\n"
    )
    script.chmod(0o755)


def test_reside_sots_download_with_nested_archives(tmp_path, monkeypatch, caplog):
    archive = _sots_download(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))  # no unrar / 7z
    outdoor = prepare("reside_sots", [archive], tmp_path / "outdoor", subset="outdoor")  # indoor.rar stays closed
    assert outdoor["counts"]["testA"] == 1 and outdoor["parts"]["test"]["release"] == "SOTS outdoor"

    assert main(["reside_sots", "--archive", str(archive), "--out", str(tmp_path / "no_tool")]) == 2
    (message,) = _errors(caplog)
    assert message.startswith(f"'{archive}:SOTS/indoor.rar' is a RAR archive")
    assert "`unrar x indoor.rar` or `7z x indoor.rar`" in message
    assert not (tmp_path / "no_tool").exists()

    _fake_7z(tmp_path / "bin")
    caplog.clear()
    with caplog.at_level(logging.INFO):
        indoor = prepare("reside_sots", [archive], tmp_path / "indoor", subset="indoor")
    _check_layout(tmp_path / "indoor")
    assert indoor["parts"]["test"]["found"] == {"scenes": 6, "pairs": 60}
    assert indoor["counts"]["trainA"] == 10 * len(indoor["trainA_scenes"])
    assert any("pass --one_hazy_per_scene" in r.getMessage() for r in caplog.records)

    one = prepare("reside_sots", [archive], tmp_path / "one", subset="indoor", one_hazy_per_scene=True)
    assert one["trainA_scenes"] == indoor["trainA_scenes"] and one["test_scenes"] == indoor["test_scenes"]
    assert one["counts"]["trainA"] == len(one["trainA_scenes"]) and one["counts"]["testA"] == indoor["counts"]["testA"]
    assert {p.stem.split("_")[0] for p in (tmp_path / "one" / "trainA").iterdir()} == set(one["trainA_scenes"])


def test_reside_ground_truth_stored_per_hazy_image(tmp_path):
    """DehazeFormer's RESIDE-IN: train (ITS) and test (SOTS indoor), GT/1400_1.png beside hazy/1400_1.png."""
    root = tmp_path / "data" / "RESIDE-IN"
    for part, first, scenes in (("train", 1, 6), ("test", 1400, 2)):
        for i in range(first, first + scenes):
            for j in range(1, 4):
                stem = f"{i}_{j}_0.9" if part == "train" else f"{i}_{j}"
                _img(root / part / "GT" / f"{stem}.png", i)  # the same clear image for every hazy one
                _img(root / part / "hazy" / f"{stem}.png", 1000 * i + j)
    out = tmp_path / "out"
    record = prepare("reside_sots", [tmp_path / "data"], out, seed=0)
    _check_layout(out)
    assert record["mode"] == "official" and record["test_scenes"] == ["1400", "1401"]
    assert record["parts"]["train"]["expected"] == {"scenes": 1399, "pairs": 13990}
    assert record["counts"] == {"trainA": 9, "trainB": 3, "testA": 6, "testB": 6}
    assert _same_file(out / "testB" / "1401_2.png", root / "test" / "GT" / "1401_2.png")


# ---------------------------------------------------------------- failures
def _headers(data: bytes, signature: bytes, offset: int, value: int) -> bytes:
    """Set the 16-bit field at `offset` of every zip header starting with `signature`."""
    out = bytearray(data)
    at = out.find(signature)
    while at >= 0:
        out[at + offset:at + offset + 2] = value.to_bytes(2, "little")
        at = out.find(signature, at + 4)
    return bytes(out)


def _unknown_compression(data: bytes) -> bytes:
    return _headers(_headers(data, b"PK\x03\x04", 8, 99), b"PK\x01\x02", 10, 99)


def _encrypted(data: bytes) -> bytes:
    return _headers(_headers(data, b"PK\x03\x04", 6, 1), b"PK\x01\x02", 8, 1)


def test_errors_are_one_line_and_name_the_fix(tmp_path, caplog):
    src = tmp_path / "src"
    _img(src / "holiday.png", 0)

    def fails(argv: list[str], *expected: str) -> None:
        caplog.clear()
        assert main(argv) == 2
        (message,) = _errors(caplog)
        assert "\n" not in message and all(text in message for text in expected), message

    out = ["--out", str(tmp_path / "out")]
    fails(["rain100l", "--archive", str(src), *out], "no degraded/clean pair", "datasets/README.md")
    fails(["rain100l", "--archive", str(tmp_path / "missing.zip"), *out], "missing.zip' does not exist")
    (tmp_path / "notes.txt").write_text("hello")
    fails(["rain100l", "--archive", str(tmp_path / "notes.txt"), *out], "notes.txt' is neither a folder nor")
    broken = tmp_path / "broken.zip"
    broken.write_bytes(_zip(src, tmp_path / "whole.zip").read_bytes()[:-30])
    fails(["rain100l", "--archive", str(broken), *out], "broken.zip", "download it again")
    for damage, expected in ((_unknown_compression, "compression method"), (_encrypted, "encrypted")):
        archive = tmp_path / f"{damage.__name__}.zip"
        archive.write_bytes(damage(_zip(src, tmp_path / "whole.zip").read_bytes()))
        fails(["rain100l", "--archive", str(archive), *out], archive.name, expected)
    fails(["rain100l", "--archive", str(src), "--out", str(tmp_path / "notes.txt")], "is a file, not a folder")

    # A JORDER training zip renamed without 'train' cannot be told apart from the test archive.
    train, test = _jorder_updated(tmp_path / "rel")
    renamed = [_zip(train, tmp_path / "light.zip"), _tar(test, tmp_path / "rain_data_test_Light.gz")]
    fails(["rain100l", *[f"--archive={a}" for a in renamed], *out], "light.zip:", "'train' or 'test'")
    assert not (tmp_path / "out").exists()

    # What a user sees: one line on stderr, exit status 2, no traceback.
    run = subprocess.run(
        [sys.executable, "-m", "datasets.prepare", "rain100l", "--archive", str(broken), *out],
        cwd=Path(__file__).resolve().parent.parent, capture_output=True, text=True,
    )
    assert run.returncode == 2
    assert run.stderr.splitlines() == [f"ERROR: cannot unpack '{broken}' (File is not a zip file): "
                                       "the download may be incomplete; download it again"]


@pytest.mark.parametrize(
    ("member", "link", "reason"),
    [
        ("../escape.png", None, "a path leading outside the folder it is unpacked into"),
        ("rain/2.png", "/etc/hostname", "a link to an absolute path"),
        ("rain/2.png", "../../../elsewhere.png", "a link leading outside the folder it is unpacked into"),
    ],
)
def test_an_unsafe_archive_member_is_refused_as_unsafe(tmp_path, caplog, member, link, reason):
    """Not reported as a damaged download: the archive is whole, one of its members was refused."""
    image = tmp_path / "1.png"
    _img(image, 0)
    archive = tmp_path / "rain_data_train_Light.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(image, "rain/1.png")
        tf.add(image, "norain/1.png")
        unsafe = tarfile.TarInfo(member)
        if link is None:
            unsafe.size = image.stat().st_size
            tf.addfile(unsafe, io.BytesIO(image.read_bytes()))
        else:
            unsafe.type, unsafe.linkname = tarfile.SYMTYPE, link
            tf.addfile(unsafe)
    assert main(["rain100l", "--archive", str(archive), "--out", str(tmp_path / "out")]) == 2
    assert _errors(caplog) == [f"refused to unpack '{archive}': its member '{member}' is unsafe ({reason}); "
                               "no benchmark release holds such a member: check where the archive comes from"]
    assert not (tmp_path / "out").exists() and not (tmp_path / "escape.png").exists()


def test_failed_run_leaves_the_old_dataset(tmp_path):
    train, test = _jorder_updated(tmp_path / "rel")
    folders = [tmp_path / "rain_data_train_Light", test / "rain_light_test"]
    shutil.copytree(train, folders[0])
    done = tmp_path / "done"
    first = prepare("rain100l", folders, done)
    with pytest.raises(PrepareError, match="overwrite"):
        prepare("rain100l", folders, done)
    before = {p.relative_to(done): p.read_bytes() for p in done.rglob("*") if p.is_file()}

    damaged = folders[1] / "norain" / "norain-2.png"
    intact = damaged.read_bytes()
    damaged.write_bytes(b"half a download")
    with pytest.raises(PrepareError, match=r"cannot read image '.*norain-2.png'.*download it again"):
        prepare("rain100l", folders, done, overwrite=True)
    assert {p.relative_to(done): p.read_bytes() for p in done.rglob("*") if p.is_file()} == before
    with pytest.raises(PrepareError):
        prepare("rain100l", folders, tmp_path / "fresh")
    assert not (tmp_path / "fresh").exists()

    damaged.write_bytes(intact)
    again = prepare("rain100l", folders, done, overwrite=True)
    assert again["trainA_scenes"] == first["trainA_scenes"] and not list(done.glob(".prepare_*"))
