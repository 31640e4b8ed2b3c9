"""The tests do not depend on what a user keeps in the working tree: after `make demo`, a data
build, a model exported into pretrained/ as the README shows and notes of one's own, the tests
that once read those folders still pass, and the session guard (conftest.py) names any file a
test writes there."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.working_tree import REPO, USER_FOLDERS

# The tests that read or wrote the user folders before they were made hermetic.
ONCE_SENSITIVE = [
    "tests/test_shell_scripts.py::test_demo_and_quick_training_start_over_only_when_asked",
    "tests/test_reliability_round3.py::test_demo_refuses_to_replace_an_earlier_demo_run_unless_asked",
    "tests/test_pretrained.py::test_every_committed_model_has_a_filled_card_and_restores",
    "tests/test_doc_links.py",
]

# What a user's working tree holds after `make demo`, a data build and an export of their own.
USER_FILES = {
    "checkpoints/rain_demo/latest.pt": b"a finished demo run",
    "checkpoints/rain_demo/train.lock": b"",
    "checkpoints/rain_demo/loss_log.txt": b"(epoch: 1, iters: 4000) G: 0.5\n",
    "results/rain_demo/test_latest/index.html": b"<html></html>",
    "results/rain_demo/test_latest/metrics.txt": b"PSNR 22.4\n",
    "results/rain_demo/grid.png": b"not really a png",
    "datasets/rain_heavy/meta.json": b"{}",
    "datasets/rain_heavy/trainA/rain-1.png": b"not really a png",
    "datasets/rain_heavy/testB/clean-1.png": b"not really a png",
    "docs/NOTES.md": b"# My notes\n\nSee [my run](../results/nowhere/index.html) and [later](#not-written-yet).\n",
}


def git_files(*which: str) -> list[str]:
    listed = subprocess.run(["git", "ls-files", "-z", *which], cwd=REPO, capture_output=True, check=True,
                            timeout=60).stdout.decode().split("\0")
    return [name for name in listed if name and (REPO / name).is_file()]  # not deleted, not yet committed


def copy_of_the_tracked_tree(dest: Path) -> Path:
    """The working tree as git sees it, in a git repository of its own: the tracked files
    tracked there too, new files not yet committed copied but untracked (as here), ignored
    ones (runs, results, data) left out, and so are untracked files in the user's folders
    (an export in pretrained/: the test puts its own there)."""
    tracked = git_files("--cached")
    new = [name for name in git_files("--others", "--exclude-standard") if name.split("/")[0] not in USER_FOLDERS]
    for name in tracked + new:
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, target)
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True, timeout=60)
    subprocess.run(["git", "add", "--", *tracked], cwd=dest, check=True, timeout=60)
    return dest


def pollute(root: Path) -> dict[str, bytes]:
    """Write the user's files into `root`; returns every user file by path, with its bytes."""
    written = dict(USER_FILES)
    # export_pretrained.py writes the model and a card from the template, its TODOs still to fill.
    written["pretrained/my_rain.pt"] = (root / "pretrained" / "rain_synthetic.pt").read_bytes()
    written["pretrained/my_rain.md"] = (root / "pretrained" / "MODEL_CARD.template.md").read_bytes()
    assert b"TODO" in written["pretrained/my_rain.md"]
    for name, data in written.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return written


def pytest_in(root: Path, *args: str) -> subprocess.CompletedProcess:
    # The copy's code first; whatever else was on the path (the test tools) after it.
    path = os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def user_tree(tmp_path_factory) -> tuple[Path, dict[str, bytes]]:
    root = copy_of_the_tracked_tree(tmp_path_factory.mktemp("clone"))
    return root, pollute(root)


def test_the_once_sensitive_tests_pass_beside_a_users_runs_data_and_exports(user_tree):
    root, user_files = user_tree
    done = pytest_in(root, *ONCE_SENSITIVE)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert {name: (root / name).read_bytes() for name in user_files} == user_files, "the user's files are untouched"


GUARD_PROBE = '''
from tests.working_tree import REPO, USER_FOLDERS


def test_writes_into_checkpoints():
    (REPO / "checkpoints" / "rain_demo" / "stray.txt").write_text("written by a test")
'''


def test_the_session_guard_names_a_file_a_test_wrote_into_the_working_tree(user_tree):
    root, _ = user_tree
    probe = root / "tests" / "test_guard_probe.py"
    probe.write_text(GUARD_PROBE)
    try:
        done = pytest_in(root, "tests/test_guard_probe.py")
    finally:
        probe.unlink()
        (root / "checkpoints" / "rain_demo" / "stray.txt").unlink(missing_ok=True)
    assert "1 passed" in done.stdout, done.stdout[-3000:]
    assert done.returncode == pytest.ExitCode.TESTS_FAILED, "the session fails although its one test passed"
    assert "created checkpoints/rain_demo/stray.txt" in done.stdout
