"""Datasets: `--dataset_mode NAME` finds class `<Name>Dataset` in `data/<name>_dataset.py`."""
from __future__ import annotations

from util.registry import find_plugin

from .base_dataset import BaseDataset


def find_dataset_using_name(name: str) -> type[BaseDataset]:
    return find_plugin("data", name, "dataset", BaseDataset, "--dataset_mode")


def get_option_setter(name: str):
    return find_dataset_using_name(name).modify_commandline_options


def create_dataset(opt) -> BaseDataset:
    return find_dataset_using_name(opt.dataset_mode)(opt)
