"""One logging set-up for the entry points."""
from __future__ import annotations

import logging
import sys

_HANDLER_NAME = "dcdgan-console"


class CurrentStderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is when a record is emitted, not to the stream that was
    sys.stderr at set-up: a caller that swaps sys.stderr (pytest's capture, a notebook) and
    closes the old one would otherwise get a "Logging error" for every later record."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self):
        return sys.stderr


def setup_logging(verbose: bool = False) -> None:
    """Log to stderr with timestamps; idempotent, and leaves other handlers (pytest's) alone."""
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    if any(h.get_name() == _HANDLER_NAME for h in root.handlers):
        return
    handler = CurrentStderrHandler()
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S"))
    root.addHandler(handler)
