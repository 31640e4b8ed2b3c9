"""The suite's datasets: second rain / haze renderers, the small-set cap, suite.json, the second photo catalogue."""
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.ndimage import gaussian_filter

from datasets import make_synthetic, suite
from datasets.haze_renderer2 import add_haze2, depth_map, scene_depth
from datasets.make_synthetic import add_haze, add_rain, build_dataset, crop_counts
from datasets.photos import CATALOGUES, PHOTOS, SUITE_PHOTOS
from datasets.rain_renderer2 import CURTAIN, add_rain2

# Digests (decoded pixels of every PNG, then meta.json) of tiny datasets of the existing presets,
# taken with the code before the second renderers and the small-set option were added: those
# additions must not change a single pixel of what the existing presets build for a seed. The
# floats of meta.json are hashed to 12 significant digits: numpy's AVX-512 exp differs from its
# AVX2 exp in the last bit (haze's t_min did), and the CPU kind changes between machines. (The
# digests were re-taken when the rounding came in, 2026-12-06, on a commit where the exact ones
# still matched with numpy's AVX-512 paths off: the same pixels.)
EMBEDDED_DIGESTS = {
    ("rain", "light"): "19db1cacc4ca9214",
    ("rain", "heavy"): "f69dea6959bafee3",
    ("rain", "varied_light"): "616773905bcafe47",
    ("rain", "varied_heavy"): "9764bc5711692464",
    ("rain", "varied_mixed"): "fba82b0358d69a53",
    ("haze", "light"): "6bef611aaaf9e37b",
}


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*.png")):
        h.update(str(p.relative_to(root)).encode())
        h.update(np.asarray(Image.open(p)).tobytes())
    h.update(json.dumps(_rounded(json.loads((root / "meta.json").read_text())), sort_keys=True).encode())
    return h.hexdigest()[:16]


def _rounded(value):
    """`value` (parsed JSON) with every float cut to 12 significant digits."""
    if isinstance(value, float):
        return float(f"{value:.12g}")
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_rounded(item) for item in value]
    return value


@pytest.mark.parametrize("kind,preset", sorted(EMBEDDED_DIGESTS))
def test_existing_presets_build_the_same_datasets(tmp_path, kind, preset):
    build_dataset(tmp_path, kind, preset, "skimage", size=32, crops_per_image=2, test_per_image=1, test_size=48,
                  seed=3, max_side=256, split="stripes")
    assert _digest(tmp_path) == EMBEDDED_DIGESTS[kind, preset]


def _photo(seed: int = 0, size: int = 96) -> np.ndarray:
    """A smooth colour image with some texture, float32 in [0, 1]."""
    rng = np.random.default_rng(seed)
    base = gaussian_filter(rng.random((size, size, 3)), (6, 6, 0))
    base = (base - base.min()) / (base.max() - base.min())
    return (0.2 + 0.6 * base).astype(np.float32)


def _streaks(rainy: np.ndarray) -> np.ndarray:
    """Rain on a black image without its smooth veil: the brightness above a wide local mean."""
    y = rainy.mean(axis=2).astype(np.float64)
    return np.clip(y - gaussian_filter(y, 8), 0.0, None)


def _vertical_correlation(streaks: np.ndarray, lag: int) -> float:
    a, b = streaks[:-lag] - streaks.mean(), streaks[lag:] - streaks.mean()
    return float((a * b).mean() / max((a * a).mean(), 1e-12))


def test_rain_renderer2_is_deterministic_and_draws_longer_denser_streaks():
    black = np.zeros((128, 128, 3), np.float32)
    seeds2, seeds1, cover2, cover1, corr2, corr1 = [], [], [], [], [], []
    for seed in range(10):
        rainy, params = add_rain2(black, np.random.default_rng(seed))
        again, _ = add_rain2(black, np.random.default_rng(seed))
        assert np.array_equal(rainy, again) and rainy.dtype == np.float32
        assert 0.0 <= rainy.min() and rainy.max() <= 1.0
        assert all(CURTAIN.length[0] <= p["length"] <= CURTAIN.length[1] for p in params["planes"])
        heavy, heavy_params = add_rain(black, np.random.default_rng(seed), "varied_heavy")
        seeds2.append(sum(p["density"] for p in params["planes"]))  # streaks per pixel, all planes
        seeds1.append(sum(layer["density"] for layer in heavy_params["layers"]))
        s2, s1 = _streaks(rainy), _streaks(heavy)
        cover2.append((s2 > 0.02).mean())
        cover1.append((s1 > 0.02).mean())
        corr2.append(_vertical_correlation(s2, 12))
        corr1.append(_vertical_correlation(s1, 12))
    assert np.mean(seeds2) > 1.25 * np.mean(seeds1)  # denser: more streaks ...
    assert np.mean(cover2) > 0.9 * np.mean(cover1)  # ... fainter each, covering at least as much
    assert np.mean(corr2) > np.mean(corr1) + 0.08  # longer: still correlated 12 px down the streak
    first, second = (add_rain2(black, np.random.default_rng(seed))[0] for seed in (0, 1))
    assert not np.array_equal(first, second)


def test_rain_renderer2_screen_blends_and_lays_an_uneven_bright_mist():
    clean = _photo()
    rainy, params = add_rain2(clean, np.random.default_rng(5))
    assert (rainy >= clean - 1e-6).mean() > 0.97  # screen blending and a brighter mist only brighten
    bright = np.full_like(clean, 0.8)  # screen blending never saturates where adding would
    assert (add_rain2(bright, np.random.default_rng(5))[0] >= 0.999).mean() < 0.01
    mist = gaussian_filter(rainy.mean(axis=2) - clean.mean(axis=2), 12)
    assert mist.max() - mist.min() > 0.02  # uneven, unlike make_synthetic's constant veil
    assert params["veil"] > 0 and params["renderer"] == "renderer2"


def test_haze_renderer2_tints_the_airlight_and_takes_depth_from_the_scene():
    grey = np.full((96, 96, 3), 0.3, np.float32)
    tints = set()
    for seed in range(12):
        hazy, params = add_haze2(grey, np.random.default_rng(seed))
        assert np.array_equal(hazy, add_haze2(grey, np.random.default_rng(seed))[0])
        tints.add(params["tint"])
        if params["tint"] != "neutral":
            means = gaussian_filter(hazy, (4, 4, 0)).reshape(-1, 3).mean(axis=0)
            assert means.max() - means.min() > 0.005  # coloured, where make_synthetic's airlight is grey
    assert {"blue", "yellow"} <= tints
    flat, _ = add_haze(grey, np.random.default_rng(0))
    assert np.ptp(flat.reshape(-1, 3).mean(axis=0)) < 1e-3
    # Sensor noise: a flat image's high frequencies are not flat any more (make_synthetic's stay smooth).
    hazy, _ = add_haze2(grey, np.random.default_rng(0))
    assert np.std(np.diff(hazy, n=2, axis=1)) > 0.004
    assert np.std(np.diff(flat, n=2, axis=1)) < 0.001
    # Depth from the scene: a bright, grey half is taken as far (more haze) and a saturated half as near,
    # left and right of each other: not a vertical ramp.
    scene = np.zeros((96, 96, 3), np.float32)
    scene[:, :48] = 0.8
    scene[:, 48:] = (0.8, 0.1, 0.1)
    cue = scene_depth(scene)
    assert cue[:, :30].mean() > cue[:, 66:].mean() + 0.5
    depth, params = depth_map(scene, np.random.default_rng(0))
    assert depth.shape == (96, 96) and 0.0 <= depth.min() and depth.max() <= 1.0
    assert abs(sum(params["depth_weights"].values()) - 1.0) < 1e-9


def test_crop_counts_share_out_the_cap():
    assert crop_counts(3, 40, None) == [40, 40, 40]
    assert crop_counts(18, 8, 51) == [3] * 15 + [2] * 3
    assert sum(crop_counts(18, 8, 60)) == 60
    assert crop_counts(4, 2, 51) == [2, 2, 2, 2]  # never more than crops_per_image per photo


def _photo_folder(folder: Path, count: int, test: set[str], size=(80, 120)) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    entries = []
    for i in range(count):
        name = f"p{i}"
        image = (gaussian_filter(rng.random((*size, 3)), (4, 4, 0)) * 255).astype(np.uint8)
        Image.fromarray(image).save(folder / f"{name}.png")
        entries.append({"name": name, "test": name in test})
    (folder / "photos.json").write_text(json.dumps({"photos": entries}))
    return folder


def test_small_set_caps_each_domain_and_tests_on_other_photos(tmp_path):
    photos = _photo_folder(tmp_path / "photos", 6, {"p4", "p5"})
    meta = build_dataset(tmp_path / "small", "rain", source=photos, size=32, test_size=48, crops_per_image=8,
                         test_per_image=2, split="photos", renderer="renderer2", max_per_domain=7)
    root = tmp_path / "small"
    assert len(list((root / "trainA").glob("*.png"))) == 7 == len(list((root / "trainB").glob("*.png")))
    assert len(list((root / "testA").glob("*.png"))) == 4
    train_photos = {e["photo"] for e in meta["trainA"] + meta["trainB"]}
    assert train_photos == {"p0", "p1", "p2", "p3"} and {e["photo"] for e in meta["test"]} == {"p4", "p5"}
    regions = {p["name"]: p["regions"] for p in meta["photos"]}
    for entry in meta["trainA"]:  # rainy crops inside the photo's trainA half, clean ones in the other half
        top, left, h, w = regions[entry["photo"]]["trainA"]
        t, x, _, _ = entry["box"]
        assert top <= t <= top + h - 32 and left <= x <= left + w - 32
    assert meta["renderer"] == "renderer2" and meta["max_per_domain"] == 7
    assert all(e["params"]["renderer"] == "renderer2" for e in meta["trainA"] + meta["test"])
    with pytest.raises(ValueError, match="renderer"):
        build_dataset(tmp_path / "x", "rain", source=photos, renderer="nosuch")


def test_make_synthetic_cli_takes_renderer_and_cap(tmp_path):
    photos = _photo_folder(tmp_path / "photos", 4, {"p3"})
    out = tmp_path / "haze2"
    assert make_synthetic.main(["--kind", "haze", "--renderer", "renderer2", "--source", str(photos), "--out",
                                str(out), "--size", "32", "--test_size", "48", "--max_per_domain", "5",
                                "--crops_per_image", "3"]) == 0
    meta = json.loads((out / "meta.json").read_text())
    assert len(meta["trainA"]) == 5 and meta["test"][0]["params"]["tint"] in ("blue", "yellow", "neutral")


def test_suite_builds_every_condition_and_records_it(tmp_path):
    embedded = _photo_folder(tmp_path / "embedded", 4, {"p3"})
    second = _photo_folder(tmp_path / "second", 4, {"p2", "p3"})
    tiny = {"size": 32, "test_size": 48, "crops_per_image": 2, "test_per_image": 1,
            "sources": {"embedded": embedded, "suite": second}}
    out = tmp_path / "suite_rain"
    written = suite.build_suite("rain", out, only="small", overrides=tiny)
    assert [c["name"] for c in written["conditions"]] == ["heavy", "light", "renderer2", "small"]
    assert written["held_out"] == ["renderer2"] and written["channel"] == "y"
    small = next(c for c in written["conditions"] if c["name"] == "small")
    assert small["built"] and small["build"]["renderer"] == "renderer2" and small["build"]["max_per_domain"] == 51
    assert small["test_photos"] == ["p2", "p3"] and small["trainA"] == 4  # 2 training photos x 2 crops
    assert not any(c["built"] for c in written["conditions"] if c["name"] != "small")
    suite.build_suite("rain", out, only="heavy", overrides=tiny)  # a later --only keeps what was built
    on_disk = json.loads((out / "suite.json").read_text())
    assert {c["name"] for c in on_disk["conditions"] if c["built"]} == {"heavy", "small"}
    heavy = next(c for c in on_disk["conditions"] if c["name"] == "heavy")
    assert heavy["build"]["preset"] == "varied_heavy" and (out / "heavy" / "testA").is_dir()
    assert suite.main(["--task", "rain", "--out", str(out), "--only", "nosuch"]) == 2
    haze = [c.name for c in suite.conditions_of("haze")]
    assert haze == ["haze", "haze_small", "haze_renderer2"]
    assert [c.name for c in suite.CONDITIONS if c.held_out and c.task == "haze"] == ["haze_renderer2"]
    small_haze = next(c for c in suite.CONDITIONS if c.name == "haze_small")
    assert small_haze.build["max_per_domain"] <= 60 and small_haze.build["size"] == 256


def test_suite_catalogue_is_disjoint_and_uses_no_reserved_package():
    embedded = {(p.source, p.path) for p in PHOTOS}
    assert not embedded & {(p.source, p.path) for p in SUITE_PHOTOS}
    assert len({p.name for p in PHOTOS} | {p.name for p in SUITE_PHOTOS}) == len(PHOTOS) + len(SUITE_PHOTOS)
    reserved = {"mate-backgrounds", "plasma-workspace-wallpapers", "gnome-backgrounds"}
    assert not reserved & {p.source for p in SUITE_PHOTOS}
    assert 20 <= len(SUITE_PHOTOS) <= 25 and sum(p.test for p in SUITE_PHOTOS) == 5
    assert all(p.author and p.licence for p in SUITE_PHOTOS)
    assert CATALOGUES["suite"] == (SUITE_PHOTOS, "photos_suite")
    readme = (Path(__file__).resolve().parent.parent / "datasets" / "README.md").read_text()
    for photo in SUITE_PHOTOS:  # the licence table lists every photo of the second catalogue
        assert f"| {photo.name} | {photo.source} |" in readme
