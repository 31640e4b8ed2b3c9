"""datasets/prepare.py on small fake releases named like the real ones."""
import json
import shutil
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from datasets.prepare import PrepareError, main, prepare
from util.image_io import load_rgb


def _img(path: Path, seed: int, size=(16, 12)) -> np.ndarray:
    """Write a random RGB image of (width, height) ``size``; returns its pixels."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(arr).save(path)
    return arr


def _zip(folder: Path, archive: Path) -> Path:
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(folder.rglob("*")):
            zf.write(path, path.relative_to(folder).as_posix())
    return archive


def _stems(folder: Path) -> set[str]:
    return {p.stem for p in folder.iterdir()}


def _pixels(path: Path) -> np.ndarray:
    return np.asarray(load_rgb(path))


def _check_layout(out: Path) -> dict:
    record = json.loads((out / "prepare.json").read_text())
    assert _stems(out / "trainA") and _stems(out / "trainB")
    assert not set(record["trainA_scenes"]) & set(record["trainB_scenes"])
    assert _stems(out / "testA") == _stems(out / "testB")
    return record


def _jorder_release(root: Path, n_train: int = 10, n_test: int = 3) -> dict:
    clean = {}
    for i in range(1, n_train + 1):
        clean[("train", i)] = _img(root / "train" / "rain_data_train_Light" / "norain" / f"norain-{i}.png", i)
        _img(root / "train" / "rain_data_train_Light" / "rain" / f"norain-{i}x2.png", 100 + i)
        _img(root / "train" / "rain_data_train_Light" / "rainstreak" / f"norain-{i}x2.png", 200 + i)
    for i in range(1, n_test + 1):
        clean[("test", i)] = _img(root / "test" / "rain_data_test_Light" / "norain" / f"norain-{i:03d}.png", 300 + i)
        _img(root / "test" / "rain_data_test_Light" / "rain" / "X2" / f"norain-{i:03d}x2.png", 400 + i)
    junk = root / "train" / "__MACOSX" / "rain_data_train_Light" / "rain" / "._norain-1x2.png"
    junk.parent.mkdir(parents=True)
    junk.write_bytes(b"not an image")
    return clean


def test_rain100l_jorder_zips(tmp_path):
    clean = _jorder_release(tmp_path / "src")
    archives = [_zip(tmp_path / "src" / part, tmp_path / f"{part}.zip") for part in ("train", "test")]
    out = tmp_path / "out"
    record = prepare("rain100l", archives, out, seed=0)
    _check_layout(out)
    assert record["mode"] == "official"
    assert len(record["trainA_scenes"]) == 5 and len(record["trainB_scenes"]) == 5
    assert sorted(record["trainA_scenes"] + record["trainB_scenes"]) == [f"{i:04d}" for i in range(1, 11)]
    assert _stems(out / "testA") == {"0001", "0002", "0003"}
    # trainA holds the rainy images (not the streak layers), trainB the clean ones.
    scene = record["trainA_scenes"][0]
    rainy_src = tmp_path / "src" / "train" / "rain_data_train_Light" / "rain" / f"norain-{int(scene)}x2.png"
    assert (out / "trainA" / f"{scene}.png").read_bytes() == rainy_src.read_bytes()
    scene = record["trainB_scenes"][0]
    assert np.array_equal(_pixels(out / "trainB" / f"{scene}.png"), clean[("train", int(scene))])
    assert np.array_equal(_pixels(out / "testB" / "0002.png"), clean[("test", 2)])
    assert not (out / ".extract_").exists() and not list(out.glob(".extract_*"))

    again = prepare("rain100l", archives, tmp_path / "again", seed=0)
    assert again["trainA_scenes"] == record["trainA_scenes"]
    others = [prepare("rain100l", archives, tmp_path / f"s{s}", seed=s)["trainA_scenes"] for s in (1, 2, 3)]
    assert any(o != record["trainA_scenes"] for o in others)


def test_rain100h_prenet_folder_and_tar(tmp_path):
    src = tmp_path / "src"
    for i in range(1, 7):
        _img(src / "RainTrainH" / f"rain-{i}.png", i)
        _img(src / "RainTrainH" / f"norain-{i}.png", 50 + i)
    for i in range(1, 3):
        _img(src / "Rain100H" / f"rain-{i:03d}.png", 100 + i)
        _img(src / "Rain100H" / f"norain-{i:03d}.png", 150 + i)
    # A repackaging that holds a second, identical copy is accepted.
    (src / "Rain100H" / "rainy").mkdir()
    shutil.copy(src / "Rain100H" / "rain-001.png", src / "Rain100H" / "rainy" / "rain-001.png")
    record = prepare("rain100h", [src], tmp_path / "from_folder", seed=0)
    _check_layout(tmp_path / "from_folder")
    assert record["counts"] == {"trainA": 3, "trainB": 3, "testA": 2, "testB": 2}

    archive = tmp_path / "rain100h.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(src, arcname="Rain100H_release")
    from_tar = prepare("rain100h", [archive], tmp_path / "from_tar", seed=0)
    assert from_tar["trainA_scenes"] == record["trainA_scenes"]

    _img(src / "Rain100H" / "rainy" / "rain-001.png", 999)
    with pytest.raises(PrepareError, match="two different degraded images"):
        prepare("rain100h", [src], tmp_path / "conflict")


def test_rain800_splits_side_by_side_pairs(tmp_path):
    src = tmp_path / "Rain800"
    for i in range(1, 5):
        _img(src / "training" / f"{i}.jpg", i, size=(20, 8))
    for i in range(1, 3):
        _img(src / "test_syn" / f"{i}.jpg", 10 + i, size=(20, 8))
    _img(src / "test_nature" / "1.jpg", 99, size=(15, 8))  # real rain, no ground truth
    out = tmp_path / "out"
    record = prepare("rain800", [src], out)
    _check_layout(out)
    assert record["counts"] == {"trainA": 2, "trainB": 2, "testA": 2, "testB": 2}
    pair = _pixels(src / "test_syn" / "2.jpg")
    assert np.array_equal(_pixels(out / "testB" / "0002.png"), pair[:, :10])
    assert np.array_equal(_pixels(out / "testA" / "0002.png"), pair[:, 10:])
    scene = record["trainA_scenes"][0]
    assert np.array_equal(_pixels(out / "trainA" / f"{scene}.png"), _pixels(src / "training" / f"{int(scene)}.jpg")[:, 10:])

    swapped = prepare("rain800", [src], tmp_path / "swapped", rainy_side="left")
    assert swapped["trainA_scenes"] == record["trainA_scenes"]
    assert np.array_equal(_pixels(tmp_path / "swapped" / "testA" / "0002.png"), pair[:, :10])


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
    assert len(record["test_scenes"]) == 2 and len(record["trainA_scenes"]) == 4 == len(record["trainB_scenes"])
    scenes = record["test_scenes"] + record["trainA_scenes"] + record["trainB_scenes"]
    assert sorted(scenes) == [f"{i:04d}" for i in range(10)]
    stem = record["test_scenes"][0]
    assert (out / "testB" / f"{stem}.png").read_bytes() == (src / "real_test_1000" / "gt" / f"{int(stem):03d}gt.png").read_bytes()
    assert (out / "testA" / f"{stem}.png").read_bytes() == (src / "real_test_1000" / "rain" / f"{int(stem):03d}.png").read_bytes()


def test_spa_flat_naming(tmp_path):
    src = tmp_path / "spa_flat"
    for i in range(5):
        _img(src / f"{i}.png", i)
        _img(src / f"{i}_gt.png", 50 + i)
    record = prepare("spa", [src], tmp_path / "out", test_fraction=0.2)
    assert record["counts"] == {"trainA": 2, "trainB": 2, "testA": 1, "testB": 1}


def _sots_release(root: Path) -> None:
    for i in range(6):
        _img(root / "SOTS" / "indoor" / "nyuhaze500" / "gt" / f"{1400 + i}.png", i, size=(24, 20))
        for j in range(1, 4):
            _img(root / "SOTS" / "indoor" / "nyuhaze500" / "hazy" / f"{1400 + i}_{j}.png", 10 * i + j, size=(20, 16))
    for i in range(1, 6):
        _img(root / "SOTS" / "outdoor" / "gt" / f"{i:04d}.png", 100 + i)
        _img(root / "SOTS" / "outdoor" / "hazy" / f"{i:04d}_0.8_0.2.jpg", 200 + i)


def test_reside_sots_indoor_crops_ground_truth(tmp_path):
    _sots_release(tmp_path / "src")
    out = tmp_path / "indoor"
    record = main(["reside_sots", "--subset", "indoor", "--archive", str(tmp_path / "src"), "--out", str(out)])
    assert record == 0
    record = _check_layout(out)
    assert len(record["test_scenes"]) == 1 and record["test_scenes"][0].startswith("14")
    scene = record["test_scenes"][0]
    assert _stems(out / "testA") == {f"{scene}_{j}" for j in (1, 2, 3)}
    gt = _pixels(tmp_path / "src" / "SOTS" / "indoor" / "nyuhaze500" / "gt" / f"{scene}.png")
    for j in (1, 2, 3):
        assert np.array_equal(_pixels(out / "testB" / f"{scene}_{j}.png"), gt[2:18, 2:22])
    assert len(list((out / "trainA").iterdir())) == 3 * len(record["trainA_scenes"])
    for path in (out / "trainB").iterdir():
        assert Image.open(path).size == (20, 16)


def test_reside_sots_outdoor(tmp_path):
    _sots_release(tmp_path / "src")
    out = tmp_path / "outdoor"
    record = prepare("reside_sots", [tmp_path / "src"], out, subset="outdoor")
    _check_layout(out)
    assert all(not s.startswith("14") for s in record["trainA_scenes"] + record["trainB_scenes"])
    assert {p.name for p in (out / "testA").iterdir()} == {f"{s}_0.8_0.2.jpg" for s in record["test_scenes"]}


def test_errors_are_clear(tmp_path, caplog):
    src = tmp_path / "src"
    _img(src / "holiday.png", 0)
    with pytest.raises(PrepareError, match="README"):
        prepare("rain100l", [src], tmp_path / "out")
    with pytest.raises(PrepareError, match="does not exist"):
        prepare("rain100l", [tmp_path / "missing.zip"], tmp_path / "out")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(PrepareError, match="neither a folder nor a zip"):
        prepare("rain100l", [tmp_path / "notes.txt"], tmp_path / "out")
    empty = tmp_path / "empty"
    empty.mkdir()
    shutil.copy(_zip(src, tmp_path / "inner.zip"), empty / "inner.zip")
    with pytest.raises(PrepareError, match="inner.zip"):
        prepare("rain100l", [empty], tmp_path / "out")

    _jorder_release(tmp_path / "rel")
    prepare("rain100l", [tmp_path / "rel"], tmp_path / "done")
    with pytest.raises(PrepareError, match="overwrite"):
        prepare("rain100l", [tmp_path / "rel"], tmp_path / "done")
    assert prepare("rain100l", [tmp_path / "rel"], tmp_path / "done", overwrite=True)["counts"]["testA"] == 3
    assert main(["rain100l", "--archive", str(src), "--out", str(tmp_path / "cli")]) == 2
    assert any("README" in r.getMessage() for r in caplog.records if r.levelname == "ERROR")
