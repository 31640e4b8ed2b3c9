"""notebooks/quickstart.ipynb runs top to bottom with a tiny budget: 2 training iterations, a
tiny exported model standing in for the shipped one, everything under a temporary folder."""
from __future__ import annotations

from pathlib import Path

import pytest

import train
from restoration.export import export_generator
from tests.conftest import tiny_flags, write_images

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "quickstart.ipynb"


def test_quickstart_notebook_runs_and_shows_images_and_scores(tmp_path, monkeypatch):
    root = tmp_path / "tiny_data"
    write_images(root / "trainA", 2, seed=1)
    write_images(root / "trainB", 2, seed=2)
    assert train.main(tiny_flags(root, tmp_path / "ck", "tiny") + ["--max_iters", "1"]) == 0
    shipped = tmp_path / "tiny_shipped.pt"
    export_generator(tmp_path / "ck" / "tiny" / "latest.pt", shipped)

    monkeypatch.setenv("QUICKSTART_ITERS", "2")
    monkeypatch.setenv("QUICKSTART_PRETRAINED", str(shipped))
    monkeypatch.setenv("QUICKSTART_WORK", str(tmp_path / "work"))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()

    outputs = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs]
    assert sum("image/png" in out.get("data", {}) for out in outputs) == 4  # three comparisons, one from Python
    text = "".join(out.get("text", "") for out in outputs)
    assert "output NIQE" in text and "output PSNR" in text and "rainy: NIQE" in text
    assert (tmp_path / "work" / "results" / "tiny_shipped" / "test_pretrained" / "index.html").is_file()
    assert list((tmp_path / "work" / "checkpoints" / "quickstart").glob("events.out.tfevents.*"))
