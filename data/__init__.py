"""Datasets: `--dataset_mode NAME` finds class `<Name>Dataset` in `data/<name>_dataset.py`."""
from __future__ import annotations

import importlib

from .base_dataset import BaseDataset


def find_dataset_using_name(name: str) -> type[BaseDataset]:
    try:
        module = importlib.import_module(f"data.{name}_dataset")
    except ModuleNotFoundError as err:
        if err.name == f"data.{name}_dataset":
            raise ValueError(f"unknown --dataset_mode '{name}': no file data/{name}_dataset.py") from err
        raise
    wanted = name.replace("_", "").lower() + "dataset"
    for attr, cls in vars(module).items():
        if attr.lower() == wanted and isinstance(cls, type) and issubclass(cls, BaseDataset):
            return cls
    raise ValueError(f"data/{name}_dataset.py defines no BaseDataset subclass named like '{wanted}'")


def get_option_setter(name: str):
    return find_dataset_using_name(name).modify_commandline_options


def create_dataset(opt) -> BaseDataset:
    return find_dataset_using_name(opt.dataset_mode)(opt)
