"""Loading a checkpoint never runs code from it; file names never become HTML.

The crafted checkpoint is a real exploit: an unsafe `torch.load` of it writes a marker file
(checked first, so the test cannot pass because the payload is broken).
"""
from __future__ import annotations

import builtins
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import pytest
import torch

import train
from tests.conftest import tiny_flags, write_images
from tests.test_bad_inputs import EXIT_USAGE, checkpoints, run_test_script  # noqa: F401 (fixture)
from util.checkpoint import CheckpointError, load_checkpoint


class Payload:
    """Pickles as a call to exec(): whoever unpickles it runs `code`."""

    def __init__(self, code: str):
        self.code = code

    def __reduce__(self):
        return builtins.exec, (self.code,)


def write_malicious_checkpoint(path: Path, marker: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    code = f"open({str(marker)!r}, 'w').write('owned')"
    torch.save({"version": 1, "model": "dcdgan", "nets": {"G_A": Payload(code)}}, path)


@pytest.fixture
def malicious(tmp_path: Path) -> tuple[Path, Path]:
    path, marker = tmp_path / "evil.pt", tmp_path / "marker.txt"
    write_malicious_checkpoint(path, marker)
    torch.load(path, weights_only=False)  # proves the payload works...
    assert marker.read_text() == "owned"
    marker.unlink()  # ...and starts the real checks from a clean state
    return path, marker


def test_load_checkpoint_refuses_code_with_a_clear_message(malicious):
    path, marker = malicious
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert str(path) in message and "refusing to load" in message and "trust" in message
    assert not marker.exists()


@pytest.mark.parametrize("entry", ["test", "train --continue_train"])
def test_entry_points_refuse_a_malicious_checkpoint(malicious, tmp_path, caplog, entry):
    path, marker = malicious
    root = tmp_path / "data"
    write_images(root / "trainA", 1)
    write_images(root / "trainB", 1, seed=1)
    write_images(root / "testA", 1, seed=2)
    latest = tmp_path / "ck" / "t" / "latest.pt"
    latest.parent.mkdir(parents=True)
    path.rename(latest)
    if entry == "test":
        assert run_test_script(tmp_path / "ck", root, tmp_path / "results") == EXIT_USAGE
    else:
        assert train.main(tiny_flags(root, tmp_path / "ck", "t") + ["--continue_train"]) == EXIT_USAGE
    assert "refusing to load" in caplog.text and str(latest) in caplog.text
    assert not marker.exists()


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 not really a zip", "half"], ids=["empty", "junk", "half"])
def test_damaged_checkpoint_is_a_clear_error(tmp_path, content):
    path = tmp_path / "latest.pt"
    torch.save({"w": torch.ones(1000)}, path)
    if content == "half":
        content = path.read_bytes()[: path.stat().st_size // 2]
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="corrupt or truncated") as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)


class PageParser(HTMLParser):
    """Collects what a browser would see: elements, attribute names, text, image sources."""

    def __init__(self):
        super().__init__()
        self.tags: set[str] = set()
        self.attributes: set[str] = set()
        self.text: list[str] = []
        self.sources: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.attributes.update(name for name, _ in attrs)
        self.sources += [value for name, value in attrs if tag == "img" and name == "src"]

    def handle_data(self, data):
        self.text.append(data)


def test_file_names_are_shown_as_text_on_the_results_page(checkpoints, tmp_path):  # noqa: F811
    folder = tmp_path / "photos"
    # '/' cannot occur in a file name: a folder and a file inside it spell the script tag.
    hostile = folder / "<script>alert(1)<" / "script>.png"
    quotes = folder / "a\"b' onerror=alert(2) &c.png"
    for i, path in enumerate((hostile, quotes)):
        write_images(path.parent, 1, seed=i)
        (path.parent / "img000.png").rename(path)
    results = tmp_path / "results"
    assert run_test_script(checkpoints, folder, results) == 0
    page_dir = results / "t" / "test_latest"
    parser = PageParser()
    parser.feed((page_dir / "index.html").read_text(encoding="utf-8"))
    assert "script" not in parser.tags and "onerror" not in parser.attributes
    text = "".join(parser.text)
    assert "<script>alert(1)</script>.png" in text and "a\"b' onerror=alert(2) &c.png" in text
    assert len(parser.sources) == 4  # input and output of each
    for src in parser.sources:
        assert (page_dir / unquote(src)).is_file(), src


@pytest.mark.parametrize("content,held", [([1, 2, 3], "a list"),
                                          ({"w": torch.ones(2)}, "a dict without networks (keys: w)")],
                         ids=["list", "no networks"])
def test_a_file_that_is_no_checkpoint_is_a_one_line_error(tmp_path, caplog, content, held):
    path = tmp_path / "ck" / "t" / "latest.pt"
    path.parent.mkdir(parents=True)
    torch.save(content, path)
    with pytest.raises(CheckpointError, match="is not a checkpoint of this repository") as info:
        load_checkpoint(path)
    assert f"'{path}' is not a checkpoint of this repository: it holds {held}" in str(info.value)
    write_images(tmp_path / "photos", 1)
    assert run_test_script(tmp_path / "ck", tmp_path / "photos", tmp_path / "results") == EXIT_USAGE
    assert caplog.records[-1].getMessage() == str(info.value)
