"""FastCUT (Park et al., ECCV 2020): CUT's lighter preset.

The same networks and objective as `cut` (models/cut_model.py) with the paper's FastCUT
settings as defaults: lambda_NCE 10, no identity NCE (one G pass per step), flip-equivariance
on, 150 + 50 epochs. Every one of them can still be overridden on the command line.
"""
from __future__ import annotations

from .cut_model import CUTModel


class FastCUTModel(CUTModel):
    @staticmethod
    def modify_commandline_options(parser, is_train: bool):
        CUTModel.modify_commandline_options(parser, is_train)
        parser.set_defaults(lambda_NCE=10.0, nce_idt=False, flip_equivariance=True, n_epochs=150, n_epochs_decay=50)
        return parser
