"""One logging set-up for the entry points."""
from __future__ import annotations

import logging

_HANDLER_NAME = "dcdgan-console"


def setup_logging(verbose: bool = False) -> None:
    """Log to stderr with timestamps; idempotent, and leaves other handlers (pytest's) alone."""
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    if any(h.get_name() == _HANDLER_NAME for h in root.handlers):
        return
    handler = logging.StreamHandler()
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S"))
    root.addHandler(handler)
