"""The entry points' console logging follows sys.stderr, so it never writes to a closed stream."""
from __future__ import annotations

import io
import logging
import sys

from util.log import CurrentStderrHandler, setup_logging


def test_console_logging_writes_to_the_current_stderr_after_the_old_one_closed(monkeypatch):
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


def test_setup_logging_installs_one_console_handler_however_often_it_runs(monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    setup_logging()
    setup_logging(verbose=True)
    root = logging.getLogger()  # tests/conftest.py takes the handler and level away afterwards
    assert sum(isinstance(h, CurrentStderrHandler) for h in root.handlers) == 1
    assert root.level == logging.DEBUG
    logging.getLogger("tests.test_log").debug("once")
    assert sys.stderr.getvalue().count("DEBUG tests.test_log: once") == 1
