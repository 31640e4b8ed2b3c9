"""Restoring images with what training made or with a method without training: the one loader
(loading.py: `open_restorer`), the `Restorer`, the methods without training (methods.py),
the shipped-model format (shipped.py), the restore-and-score loop over a folder (batch.py)
and test.py's command line (cli.py). Imports models/, data/, runtime/ and util/."""
from .loading import open_restorer
from .restorer import Restorer

__all__ = ["Restorer", "open_restorer"]
