"""NIQE against BasicSR's reference implementation on the same photos, PIQE's defining cases,
and evaluate.py --no_reference."""
from __future__ import annotations

import hashlib
import importlib.util
import sys
import types
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

import evaluate
import util.no_reference as nr
from util.metrics import rgb_to_y

# scikit-image ships these photographs inside the package (no download).
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "camera")


def photo(name: str) -> np.ndarray:
    image = getattr(data, name)()
    return np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image


@pytest.fixture(scope="module")
def reference():
    """basicsr.metrics.niqe as installed (Makefile: basicsr 1.4.2 without its dependencies).

    basicsr/__init__.py imports all of BasicSR (OpenCV, LMDB, a torchvision module removed in
    0.17), so the packages are registered empty and only the modules NIQE needs load; cv2 is
    imported by the module but used only for a grey conversion these tests do not ask for.
    """
    spec = importlib.util.find_spec("basicsr")
    if spec is None:
        pytest.skip("basicsr is not installed (make venv installs it)")
    root = Path(spec.submodule_search_locations[0])
    saved = {name: sys.modules.get(name) for name in ("basicsr", "basicsr.utils", "basicsr.metrics", "cv2")}
    for name in ("basicsr", "basicsr.utils", "basicsr.metrics"):
        package = types.ModuleType(name)
        package.__path__ = [str(root.joinpath(*name.split(".")[1:]))]
        sys.modules[name] = package
    sys.modules.setdefault("cv2", types.ModuleType("cv2"))
    color_util = importlib.import_module("basicsr.utils.color_util")
    sys.modules["basicsr.utils"].bgr2ycbcr = color_util.bgr2ycbcr
    with warnings.catch_warnings():  # its `scipy.ndimage.filters` import is deprecated, not broken
        warnings.simplefilter("ignore", DeprecationWarning)
        module = importlib.import_module("basicsr.metrics.niqe")
    yield module, root
    for name in [n for n in sys.modules if n == "basicsr" or n.startswith("basicsr.")]:
        del sys.modules[name]
    sys.modules.update({name: mod for name, mod in saved.items() if mod is not None})


def test_the_pristine_model_is_basicsr_file_unchanged(reference):
    _, root = reference
    shipped = (root / "metrics" / "niqe_pris_params.npz").read_bytes()
    assert nr.PRISTINE_PARAMS.read_bytes() == shipped
    assert hashlib.sha256(shipped).hexdigest().startswith("2a7c182a68c9")


@pytest.mark.parametrize("name", PHOTOS)
def test_niqe_matches_basicsr_within_its_float32_rounding(reference, name):
    """The reference as shipped works in float32 (its Y conversion and its MATLAB-style resize
    run in float32); NIQE's shape fits pick the nearest point of a 0.001-step grid, so a
    float32 rounding can move a few fits by one grid step. Measured here: differences of
    2e-6 to 0.036 on these photos (values 2.6-7.0). Tolerance 0.05 absolute."""
    ref, _ = reference
    image = photo(name)
    assert nr.niqe(image) == pytest.approx(ref.calculate_niqe(image[..., ::-1], 0), abs=0.05)


@pytest.mark.parametrize("name", ("astronaut", "immunohistochemistry"))
def test_niqe_equals_basicsr_when_both_get_the_same_inputs(reference, name, monkeypatch):
    """Same Y image and the same half-size image: the two implementations agree to 1e-6,
    so the differences above are the reference's float32 inputs, not the algorithm."""
    ref, _ = reference
    luma = np.round(rgb_to_y(photo(name)))
    shipped_resize = ref.imresize
    resized = {}

    def resize_once(image, scale, antialiasing=True):
        resized[image.shape] = np.asarray(shipped_resize(image, scale, antialiasing), dtype=np.float64)
        return resized[image.shape]

    monkeypatch.setattr(ref, "imresize", resize_once)
    params = np.load(nr.PRISTINE_PARAMS)
    expected = ref.niqe(luma, params["mu_pris_param"], params["cov_pris_param"], params["gaussian_window"])
    monkeypatch.setattr(nr, "imresize", lambda image, scale: resized[image.shape])
    assert nr.niqe_of_luma(luma) == pytest.approx(expected, abs=1e-6)


def test_matlab_resize_matches_basicsr(reference):
    ref, _ = reference
    image = np.random.default_rng(0).random((61, 38))
    for scale in (0.5, 0.3):
        ours = nr.imresize(image, scale)
        assert ours.shape == (np.ceil(61 * scale), np.ceil(38 * scale))
        assert np.abs(ours - ref.imresize(image, scale)).max() < 1e-5  # float32 against float64


def test_niqe_is_worse_for_noise_and_blur_and_needs_two_blocks():
    image = photo("chelsea")
    noisy = np.clip(image + np.random.default_rng(0).normal(0, 25, image.shape), 0, 255).astype(np.uint8)
    blurred = np.asarray(Image.fromarray(image).resize((112, 75)).resize((451, 300), Image.BICUBIC))
    assert nr.niqe(noisy) > nr.niqe(image) + 2 and nr.niqe(blurred) > nr.niqe(image) + 2
    with pytest.raises(ValueError, match="two 96x96 blocks"):
        nr.niqe(image[:150, :150])
    assert nr.no_reference_scores(image[:150, :150])["niqe"] is None


def test_piqe_follows_its_definition():
    flat = np.full((64, 80, 3), 128, np.uint8)
    assert nr.piqe(flat) == 100.0  # no active block: MATLAB's documented score for a uniform image
    image = photo("coffee")
    clean = nr.piqe(image)
    noisy = np.clip(image + np.random.default_rng(0).normal(0, 20, image.shape), 0, 255).astype(np.uint8)
    assert 0 < clean < nr.piqe(noisy) <= 100
    odd = image[:101, :77]  # padded to 112 x 80 by replicating the last row and column
    padded = np.pad(odd, ((0, 11), (0, 3), (0, 0)), mode="edge")
    assert nr.piqe(odd) == nr.piqe(padded)
    with pytest.raises(ValueError, match="uint8"):
        nr.piqe(image.astype(np.float32))


def test_evaluate_no_reference_scores_any_folder(tmp_path, capsys):
    Image.fromarray(photo("chelsea")).save(tmp_path / "cat.png")
    Image.fromarray(photo("coffee")[:120, :120]).save(tmp_path / "small.jpg")
    assert evaluate.main(["--no_reference", "--pred", str(tmp_path), "--csv", str(tmp_path / "nr.csv")]) == 0
    shown = capsys.readouterr().out
    assert "NIQE" in shown and "PIQE" in shown
    lines = (tmp_path / "nr.csv").read_text().splitlines()
    assert lines[0] == "name,niqe,piqe"
    cat = dict(zip(lines[0].split(","), lines[1].split(",")))
    assert float(cat["niqe"]) == pytest.approx(nr.niqe(photo("chelsea")), abs=1e-4)
    assert lines[2].startswith("small,,")  # too small for NIQE: left empty, PIQE still given
    assert evaluate.main(["--no_reference", "--pred", str(tmp_path / "missing")]) == 2
