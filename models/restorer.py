"""Moved: `Restorer` is in restoration/restorer.py (`from restoration import Restorer`).

`from models.restorer import Restorer` keeps working, with a DeprecationWarning. The import
is lazy (a module `__getattr__`): models/ sits below restoration/ and must not import it
when it is itself imported.
"""
from __future__ import annotations

import warnings


def __getattr__(name: str):
    if name != "Restorer":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn("models.restorer is deprecated: use `from restoration import Restorer`", DeprecationWarning,
                  stacklevel=2)
    from restoration.restorer import Restorer
    return Restorer
