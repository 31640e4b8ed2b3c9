"""Projection head `mlp_sample` (PatchSampleF): samples patches and projects them."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from util.weight_init import init_weights


class PatchSampleF(nn.Module):
    """Per NCE layer: pick spatial positions, project with a 2-layer MLP, L2-normalise.

    The MLPs need each layer's channel count. The reference builds them lazily on the first
    forward; here `build(channels)` is called once at model construction (channels come
    from a dry run of the generator), so every process creates identical heads before any
    DDP wrapping and the optimizer can be made at once.
    """

    def __init__(self, use_mlp: bool = True, nc: int = 256, init_type: str = "normal", init_gain: float = 0.02):
        super().__init__()
        self.use_mlp = use_mlp
        self.nc = nc
        self.init_type, self.init_gain = init_type, init_gain
        self.mlps = nn.ModuleList()

    def build(self, channels: list[int]) -> "PatchSampleF":
        if self.use_mlp:
            self.mlps = nn.ModuleList(
                nn.Sequential(nn.Linear(c, self.nc), nn.ReLU(), nn.Linear(self.nc, self.nc)) for c in channels)
            init_weights(self, self.init_type, self.init_gain)
        return self

    def forward(self, feats: list[torch.Tensor], num_patches: int = 256,
                patch_ids: list[torch.Tensor] | None = None) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Return (samples, patch_ids); samples[i] has shape (B * P, nc), L2-normalised.

        Pass the key's `patch_ids` for the query so both sample the same locations.
        """
        if self.use_mlp and len(self.mlps) != len(feats):
            raise RuntimeError(f"projection head built for {len(self.mlps)} layers, got {len(feats)} feature maps")
        samples, ids_out = [], []
        for i, feat in enumerate(feats):
            b, c, h, w = feat.shape
            if patch_ids is not None:
                ids = patch_ids[i]
            else:
                # Drawn on the feature's device: a CPU draw copied over would block the host
                # until the GPU caught up, at every call.
                ids = torch.randperm(h * w, device=feat.device)[: min(num_patches, h * w)]
            # Gather in NCHW order and permute only the small result: the gradient then
            # reaches the feature map with its own (contiguous) strides. A permuted,
            # channels-last-strided gradient hits a wrong instance-norm backward in
            # torch 2.14 on the CPU (tests/test_amp.py shows it).
            x = feat.flatten(2)[:, :, ids].permute(0, 2, 1).flatten(0, 1)
            if self.use_mlp:
                x = self.mlps[i](x)
            samples.append(F.normalize(x, dim=1))
            ids_out.append(ids)
        return samples, ids_out


HEADS = ("mlp_sample", "sample")  # --netF


def define_head(netF: str, nc: int = 256, init_type: str = "normal", init_gain: float = 0.02) -> PatchSampleF:
    if netF == "mlp_sample":
        return PatchSampleF(True, nc, init_type, init_gain)
    if netF == "sample":
        return PatchSampleF(False, nc, init_type, init_gain)
    raise ValueError(f"unknown --netF '{netF}'; choose mlp_sample or sample")
