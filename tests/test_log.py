"""The entry points' console logging follows sys.stderr, so it never writes to a closed stream."""
from __future__ import annotations

import io
import logging
import sys

import pytest

from util.log import setup_logging


@pytest.fixture
def root_logger():
    """The root logger, with the handlers and level it had before the test put back after it."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield root
    root.handlers[:] = handlers
    root.setLevel(level)


def test_console_logging_writes_to_the_current_stderr_after_the_old_one_closed(root_logger, monkeypatch):
    # What pytest does between tests: the stderr an entry point saw at set-up is closed and
    # replaced. A handler bound to it would print "--- Logging error ---" for every record.
    old_stderr, new_stderr = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stderr", old_stderr)
    setup_logging()
    old_stderr.close()
    monkeypatch.setattr(sys, "stderr", new_stderr)
    logging.getLogger("tests.test_log").info("after the swap")
    text = new_stderr.getvalue()
    assert "Logging error" not in text, text
    assert text.rstrip("\n").endswith("INFO tests.test_log: after the swap"), text


def test_setup_logging_installs_one_console_handler_however_often_it_runs(root_logger, monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    before = len(root_logger.handlers)
    setup_logging()
    setup_logging(verbose=True)
    assert len(root_logger.handlers) == before + 1
    assert root_logger.level == logging.DEBUG
    logging.getLogger("tests.test_log").debug("once")
    assert sys.stderr.getvalue().count("DEBUG tests.test_log: once") == 1
