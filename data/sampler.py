"""Epoch-seeded, shardable, resumable sampling.

Wraps torch's DistributedSampler (one process: num_replicas=1) so the shuffle order is a
function of (seed, epoch); yields (index, epoch) keys so each sample's own randomness is
also fixed; and can start part-way through an epoch when training resumes.
"""
from __future__ import annotations

import itertools

from torch.utils.data import DistributedSampler


class ResumableSampler(DistributedSampler):
    def __init__(self, dataset, num_replicas: int = 1, rank: int = 0, shuffle: bool = True, seed: int = 0):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed, drop_last=False)
        self.start = 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Choose the epoch's order; skip its first `start` samples (already trained on)."""
        super().set_epoch(epoch)
        self.start = start

    def __iter__(self):
        for index in itertools.islice(super().__iter__(), self.start, None):
            yield (index, self.epoch)

    def __len__(self) -> int:
        return max(0, super().__len__() - self.start)
