"""Models: `--model NAME` finds class `<Name>Model` in `models/<name>_model.py`."""
from __future__ import annotations

import torch

from util.registry import find_plugin

from .base_model import BaseModel


def find_model_using_name(name: str) -> type[BaseModel]:
    return find_plugin("models", name, "model", BaseModel, "--model")


def get_option_setter(name: str):
    return find_model_using_name(name).modify_commandline_options


def create_model(opt, device: torch.device | None = None) -> BaseModel:
    """The --model of the options; `device` defaults to the first of --gpu_ids (the CPU without)."""
    return find_model_using_name(opt.model)(opt, device)
