"""The final model of a run: the exact average of the last K annealing checkpoints (Llama 3).

Every checkpoint's ``model.pt`` is checked against its manifest's sha256 before it is averaged.
Averaging accumulates in float64 and rounds once to each tensor's dtype, so the result is the
correctly rounded mean of the checkpoints (independent of their order).
"""
from __future__ import annotations

from pathlib import Path

import torch

from trainer.checkpoint import _warn, list_checkpoints, load_tensors, read_state, verify_checkpoint


def average_state_dicts(states: list[dict]) -> dict:
    if not states:
        raise ValueError("nothing to average")
    keys = list(states[0])
    for s in states[1:]:
        if list(s) != keys:
            raise ValueError("checkpoints to average have different parameter names")
    out = {}
    for k in keys:
        ref = states[0][k]
        if not torch.is_floating_point(ref):
            for s in states[1:]:
                if not torch.equal(s[k], ref):
                    raise ValueError(f"non-float tensor {k} differs between checkpoints")
            out[k] = ref.clone()
            continue
        acc = torch.zeros(ref.shape, dtype=torch.float64)
        for s in states:
            if s[k].shape != ref.shape:
                raise ValueError(f"{k}: shapes differ between checkpoints")
            acc += s[k].to(torch.float64)
        out[k] = (acc / len(states)).to(ref.dtype)
    return out


def stage_checkpoints(out_dir: str | Path, stage_name: str) -> list[Path]:
    return [c for c in list_checkpoints(out_dir) if read_state(c).get("stage_name") == stage_name]


def average_checkpoints(paths: list[str | Path]) -> dict:
    """The average of the checkpoints' models, each verified against its manifest first (a
    damaged checkpoint is a CheckpointError naming its file, never part of the final model)."""
    states = []
    for p in paths:
        if not verify_checkpoint(p, ["model.pt"]):
            _warn(f"{p} has no manifest.json (written before checksums): averaged unverified")
        states.append(load_tensors(Path(p) / "model.pt"))
    return average_state_dicts(states)
