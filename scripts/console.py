"""The `dcdgan-test` console command, and test.py for Python code that runs it in-process.

A top-level module named `test` is the standard library's regression-test package, which
comes before this repository on sys.path wherever the repository is not the current
directory (`import test` then finds the wrong one), so test.py is not installed as a module
(pyproject.toml) and is loaded here from its path, under a name of its own.
"""
from __future__ import annotations

import importlib.util
import logging
import sys
from pathlib import Path
from types import ModuleType

from util.log import setup_logging

logger = logging.getLogger("test")

TEST_SCRIPT = Path(__file__).resolve().parent.parent / "test.py"
MODULE_NAME = "dcdgan_test"  # anything but `test`


def load_test_script() -> ModuleType:
    """The repository's test.py as a module (loaded once per process)."""
    if MODULE_NAME in sys.modules:
        return sys.modules[MODULE_NAME]
    if not TEST_SCRIPT.is_file():
        raise FileNotFoundError(
            f"{TEST_SCRIPT} does not exist: dcdgan-test runs the test.py of a source checkout, "
            "so install the repository editable (pip install -e .) rather than as a wheel"
        )
    spec = importlib.util.spec_from_file_location(MODULE_NAME, TEST_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODULE_NAME] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:  # a half-run module must not be handed out by the next call
        del sys.modules[MODULE_NAME]
        raise
    return module


def test_command(argv: list[str] | None = None) -> int:
    """dcdgan-test: test.py's main() with the command line's arguments."""
    try:
        script = load_test_script()
    except FileNotFoundError as err:
        setup_logging()
        logger.error("%s", err)
        return 2
    return script.main(argv)


if __name__ == "__main__":
    sys.exit(test_command())
