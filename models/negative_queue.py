"""CDD-GAN's queue of generated negatives, kept across iterations and saved in checkpoints."""
from __future__ import annotations

import torch


class NegativeQueue:
    """A FIFO of generated negatives kept across iterations (CDD-GAN), one tensor per NCE layer.

    `push` appends the newest negatives (detached) and drops the oldest beyond `capacity`
    entries, so the queue holds the most recent generator outputs, oldest first. A
    capacity of 0 keeps nothing. Saved with `state_dict()` in the model's extra state.
    """

    def __init__(self, capacity: int, num_layers: int):
        if capacity < 0:
            raise ValueError(f"a negative queue's capacity must be >= 0, got {capacity}")
        self.capacity = capacity
        self.entries: list[torch.Tensor | None] = [None] * num_layers

    def __len__(self) -> int:
        return 0 if self.entries[0] is None else self.entries[0].shape[0]

    @torch.no_grad()
    def push(self, negatives: list[torch.Tensor]) -> None:
        if len(negatives) != len(self.entries):
            raise ValueError(f"negative queue holds {len(self.entries)} layers, got {len(negatives)}")
        if self.capacity == 0:
            return
        for i, new in enumerate(negatives):
            new = new.detach().float()
            old = self.entries[i]
            merged = new if old is None else torch.cat([old, new])
            # A copy, not a view: a view would keep (and checkpoint) the whole merged storage.
            self.entries[i] = merged[-self.capacity:].clone()

    def negatives(self) -> list[torch.Tensor] | None:
        """One (n, C) tensor per layer, oldest first; None while the queue is empty."""
        return None if len(self) == 0 else list(self.entries)

    def state_dict(self) -> dict:
        return {"entries": list(self.entries)}

    def load_state_dict(self, state: dict, device: torch.device) -> None:
        if len(state["entries"]) != len(self.entries):
            raise ValueError(f"saved negative queue has {len(state['entries'])} layers, this model {len(self.entries)}")
        self.entries = [None if t is None or self.capacity == 0 else t.to(device)[-self.capacity:]
                        for t in state["entries"]]
