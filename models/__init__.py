"""Models: `--model NAME` finds class `<Name>Model` in `models/<name>_model.py`."""
from __future__ import annotations

import importlib

from .base_model import BaseModel


def find_model_using_name(name: str) -> type[BaseModel]:
    try:
        module = importlib.import_module(f"models.{name}_model")
    except ModuleNotFoundError as err:
        if err.name == f"models.{name}_model":
            raise ValueError(f"unknown --model '{name}': no file models/{name}_model.py") from err
        raise
    wanted = name.replace("_", "").lower() + "model"
    for attr, cls in vars(module).items():
        if attr.lower() == wanted and isinstance(cls, type) and issubclass(cls, BaseModel):
            return cls
    raise ValueError(f"models/{name}_model.py defines no BaseModel subclass named like '{wanted}'")


def get_option_setter(name: str):
    return find_model_using_name(name).modify_commandline_options


def create_model(opt) -> BaseModel:
    return find_model_using_name(opt.model)(opt)
