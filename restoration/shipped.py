"""Shipped models: one restoring generator in a small file under pretrained/ (where they are,
and the model card's digest; restoration/export.py writes them, restoration/loading.py reads them).

A shipped model is a checkpoint cut down to what restoration needs, so `load_generator`
reads it like any checkpoint: `nets` holds only the generator test.py would load (the EMA
copy when the run kept one), `test_nets` maps the restoring direction to it, and `opt` holds
only the architecture options that rebuild it. `source` records the checkpoint it came from.
A model card, `pretrained/<NAME>.md`, sits beside each file.
"""
from __future__ import annotations

import re
from pathlib import Path

PRETRAINED_DIR = Path(__file__).resolve().parent.parent / "pretrained"
SHIPPED_KIND = "shipped_generator"
SUFFIX = ".pt"
# Shipped models are committed to the repository: keep them small.
MAX_SHIPPED_MB = 5.0
# The card's line naming the file states its full SHA-256 (MODEL_CARD.template.md).
CARD_DIGEST = re.compile(r"MB, SHA-256 `([0-9a-f]{64})`")


def card_digest(model_file: str | Path) -> str | None:
    """The SHA-256 the model card beside `model_file` states for it; None without a card."""
    card = Path(model_file).with_suffix(".md")
    if not card.is_file():
        return None
    found = CARD_DIGEST.search(card.read_text(encoding="utf-8", errors="replace"))
    return found.group(1) if found else None
