"""Find the class behind a `--model` / `--dataset_mode` name: one file per plug-in."""
from __future__ import annotations

import importlib


def find_plugin(package: str, name: str, kind: str, base: type, flag: str) -> type:
    """Class `<Name><Kind>` (case-insensitive, underscores ignored) in `<package>/<name>_<kind>.py`."""
    module_name = f"{package}.{name}_{kind}"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name == module_name:
            raise ValueError(f"unknown {flag} '{name}': no file {package}/{name}_{kind}.py") from err
        raise
    wanted = name.replace("_", "").lower() + kind
    for attr, cls in vars(module).items():
        if attr.lower() == wanted and isinstance(cls, type) and issubclass(cls, base):
            return cls
    raise ValueError(f"{package}/{name}_{kind}.py defines no {base.__name__} subclass named like '{wanted}'")
