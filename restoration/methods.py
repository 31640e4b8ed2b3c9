"""Restoring methods without training (no weights, no checkpoint), by name.

Each method is a module of restoration/ named in METHOD_MODULES and imported only when used.
It defines:

    NAME: str                       the name test.py --model and the benchmarks know it by
    add_options(parser) -> None     its own flags with their defaults (e.g. --dcp_patch)
    from_options(opt) -> method     the method with those flags' values

and the method has `restore_array(image) -> image` (HxWx3 uint8 in, the same shape uint8
out) and `describe() -> str` (one line naming the method and its parameters, written where
a trained model's checkpoint would be named).
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
from collections.abc import Mapping
from types import ModuleType
from typing import Any, Protocol

import numpy as np

# name -> module; a module not (yet) in the checkout is left out of method_names().
METHOD_MODULES = {"dcp": "restoration.dark_channel_prior"}


class Method(Protocol):
    def restore_array(self, image: np.ndarray) -> np.ndarray: ...

    def describe(self) -> str: ...


class MethodError(ValueError):
    """An unknown method name; the message lists the known ones."""


def method_names() -> list[str]:
    """The methods whose module is in this checkout, sorted."""
    return sorted(name for name, module in METHOD_MODULES.items() if importlib.util.find_spec(module) is not None)


def method_module(name: str) -> ModuleType:
    """The module of method `name`."""
    if name not in method_names():
        raise MethodError(f"no method without training named '{name}' (known: {', '.join(method_names()) or 'none'})")
    return importlib.import_module(METHOD_MODULES[name])


def add_method_options(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Every method's own flags, for test.py's parser."""
    for name in method_names():
        method_module(name).add_options(parser)
    return parser


def method_options(name: str, values: argparse.Namespace | Mapping[str, Any] | None = None) -> argparse.Namespace:
    """Method `name`'s flags at their defaults, with `values` (a namespace or a dict) on top."""
    parser = argparse.ArgumentParser(add_help=False)
    method_module(name).add_options(parser)
    opt = parser.parse_args([])
    given = vars(values) if isinstance(values, argparse.Namespace) else dict(values or {})
    unknown = sorted(set(given) - set(vars(opt))) if not isinstance(values, argparse.Namespace) else []
    if unknown:
        raise MethodError(f"method '{name}' has no option {', '.join(unknown)} (its options: "
                          f"{', '.join(sorted(vars(opt))) or 'none'})")
    for key in vars(opt):
        if key in given:
            setattr(opt, key, given[key])
    return opt


def build_method(name: str, opt: argparse.Namespace | Mapping[str, Any] | None = None) -> Method:
    """Method `name` with the flag values in `opt` (a namespace holding its flags, e.g. test.py's
    options, or a dict of some of them; the rest take their defaults)."""
    return method_module(name).from_options(method_options(name, opt))
