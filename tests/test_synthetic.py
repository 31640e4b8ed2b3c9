"""Synthetic rain / haze: determinism, value ranges, strength order, disjoint split."""
import json

import numpy as np
import pytest
from PIL import Image

from datasets import make_synthetic
from datasets.make_synthetic import add_haze, add_rain, build_dataset, load_photos
from util.metrics import psnr

SMALL = dict(crops_per_image=3, test_per_image=2, size=64, test_size=96)


def _clean_crops(n: int = 4) -> list[np.ndarray]:
    photos = dict(load_photos(None, max_side=None))
    return [photos[name][100:228, 10:138].astype(np.float32) / 255 for name in ("astronaut", "coffee", "rocket", "chelsea")[:n]]


def _u8(img: np.ndarray) -> np.ndarray:
    return (img * 255 + 0.5).astype(np.uint8)


def test_rain_is_deterministic_and_in_range():
    clean = _clean_crops(1)[0]
    a, params_a = add_rain(clean, np.random.default_rng(7), "heavy")
    b, params_b = add_rain(clean, np.random.default_rng(7), "heavy")
    c, _ = add_rain(clean, np.random.default_rng(8), "heavy")
    assert np.array_equal(a, b) and params_a == params_b
    assert not np.array_equal(a, c)
    assert a.dtype == np.float32 and a.shape == clean.shape
    assert a.min() >= 0 and a.max() <= 1
    assert len(params_a["layers"]) >= 2 and params_a["veil"] > 0


def test_light_rain_is_sparse_bright_streaks():
    clean = _clean_crops(1)[0]
    rainy, params = add_rain(clean, np.random.default_rng(0), "light")
    assert len(params["layers"]) == 1 and params["veil"] == 0
    # Screen blending only brightens, and streaks cover a small part of the image.
    assert np.all(rainy >= clean - 1e-6)
    changed = np.abs(rainy - clean).max(axis=2) > 0.02
    assert 0.01 < changed.mean() < 0.25


def test_light_rain_lowers_psnr_less_than_heavy():
    scores = {"light": [], "heavy": []}
    for i, clean in enumerate(_clean_crops()):
        for preset in scores:
            rainy, _ = add_rain(clean, np.random.default_rng(i), preset)
            scores[preset].append(psnr(_u8(rainy), _u8(clean)))
    light, heavy = np.mean(scores["light"]), np.mean(scores["heavy"])
    assert 22 < light < 34
    assert 12 < heavy < 22
    assert light > heavy + 5


def test_haze_follows_the_scattering_model():
    clean = _clean_crops(1)[0]
    hazy, params = add_haze(clean, np.random.default_rng(3))
    again, _ = add_haze(clean, np.random.default_rng(3))
    assert np.array_equal(hazy, again)
    assert 0.6 <= params["beta"] <= 1.8 and 0.7 <= params["A"] <= 1.0
    assert 0 < params["t_min"] < params["t_mean"] <= 1
    # I = J t + A (1 - t) lies between J and A at every pixel.
    low = np.minimum(clean, params["A"]) - 1e-5
    high = np.maximum(clean, params["A"]) + 1e-5
    assert np.all((hazy >= low) & (hazy <= high))
    assert psnr(_u8(hazy), _u8(clean)) < 25


def test_unknown_preset_and_bad_image():
    clean = _clean_crops(1)[0]
    with pytest.raises(ValueError, match="preset"):
        add_rain(clean, np.random.default_rng(0), "drizzle")
    with pytest.raises(ValueError, match="HxWx3 float"):
        add_haze(_u8(clean), np.random.default_rng(0))


def _read_all(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.png"))}


def test_build_dataset_layout_determinism_and_split(tmp_path):
    meta = build_dataset(tmp_path / "a", kind="rain", preset="light", seed=1, **SMALL)
    build_dataset(tmp_path / "b", kind="rain", preset="light", seed=1, **SMALL)
    build_dataset(tmp_path / "c", kind="rain", preset="light", seed=2, **SMALL)
    files_a, files_b, files_c = (_read_all(tmp_path / d) for d in "abc")
    assert files_a == files_b
    assert files_a != files_c

    n_photos = len(meta["photos"])
    assert len(list((tmp_path / "a" / "trainA").iterdir())) == 3 * n_photos
    assert len(list((tmp_path / "a" / "trainB").iterdir())) == 3 * n_photos
    test_a = sorted(p.name for p in (tmp_path / "a" / "testA").iterdir())
    assert test_a == sorted(p.name for p in (tmp_path / "a" / "testB").iterdir())
    assert len(test_a) == len(meta["test"]) >= n_photos
    assert json.loads((tmp_path / "a" / "meta.json").read_text()) == json.loads(json.dumps(meta))

    photos = dict(load_photos(None, max_side=None))
    for info in meta["photos"]:
        regions = info["regions"]
        cols = {k: set(range(r[1], r[1] + r[3])) for k, r in regions.items()}
        assert not (cols["trainA"] & cols["trainB"]) and not (cols["test"] & (cols["trainA"] | cols["trainB"]))
        for domain, region_key in (("trainA", "trainA"), ("trainB", "trainB"), ("test", "test")):
            for entry in (e for e in meta[domain] if e["photo"] == info["name"]):
                top, left, h, w = entry["box"]
                r_top, r_left, r_h, r_w = regions[region_key]
                assert r_left <= left and left + w <= r_left + r_w and 0 <= top and top + h <= info["height"]
        test_boxes = [e["box"] for e in meta["test"] if e["photo"] == info["name"]]
        tops = sorted(b[0] for b in test_boxes)
        assert all(t2 - t1 >= SMALL["test_size"] for t1, t2 in zip(tops, tops[1:]))

    # The recorded boxes are the pixels actually written.
    entry = meta["trainB"][0]
    top, left, h, w = entry["box"]
    stored = np.asarray(Image.open(tmp_path / "a" / "trainB" / entry["file"]))
    assert np.array_equal(stored, photos[entry["photo"]][top : top + h, left : left + w])
    entry = meta["test"][0]
    top, left, h, w = entry["box"]
    clean = photos[entry["photo"]][top : top + h, left : left + w]
    assert np.array_equal(np.asarray(Image.open(tmp_path / "a" / "testB" / entry["file"])), clean)
    rainy = np.asarray(Image.open(tmp_path / "a" / "testA" / entry["file"])).astype(int)
    assert np.all(rainy >= clean.astype(int) - 1) and entry["params"]["preset"] == "light"


def test_build_dataset_refuses_to_mix_with_old_data(tmp_path):
    build_dataset(tmp_path, kind="haze", seed=0, **SMALL)
    with pytest.raises(FileExistsError, match="overwrite"):
        build_dataset(tmp_path, kind="haze", seed=0, **SMALL)
    meta = build_dataset(tmp_path, kind="haze", seed=0, overwrite=True, **{**SMALL, "crops_per_image": 1})
    assert len(list((tmp_path / "trainA").iterdir())) == len(meta["photos"])
    assert meta["preset"] is None and "beta" in meta["test"][0]["params"]


def test_source_folder_skips_small_photos_and_cli(tmp_path):
    source = tmp_path / "photos"
    source.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (120, 300, 3), dtype=np.uint8)).save(source / "wide.png")
    Image.fromarray(rng.integers(0, 255, (60, 60, 3), dtype=np.uint8)).save(source / "tiny.png")
    out = tmp_path / "out"
    status = make_synthetic.main(
        ["--kind", "rain", "--preset", "heavy", "--source", str(source), "--out", str(out),
         "--size", "48", "--test_size", "48", "--crops_per_image", "2", "--test_per_image", "5"]
    )
    assert status == 0
    meta = json.loads((out / "meta.json").read_text())
    assert [p["name"] for p in meta["photos"]] == ["wide"]
    assert len(meta["test"]) == 2  # 120 px high holds two 48 px test crops
    assert make_synthetic.main(["--source", str(tmp_path / "nothing"), "--out", str(tmp_path / "x")]) == 2
