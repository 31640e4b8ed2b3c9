"""Argument types and the parser shared by the command lines and the models' own flags."""
from __future__ import annotations

import argparse


def str2bool(value) -> bool:
    """Parse `--flag True/False/1/0/yes/no` so boolean defaults can be switched off by models."""
    if isinstance(value, bool):
        return value
    lowered = value.lower()
    if lowered in ("yes", "true", "t", "y", "1"):
        return True
    if lowered in ("no", "false", "f", "n", "0"):
        return False
    raise argparse.ArgumentTypeError(f"boolean value expected, got '{value}'")


class OneLineParser(argparse.ArgumentParser):
    """argparse whose errors take one line, exit status 2 (train.py's full usage would bury them)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")
