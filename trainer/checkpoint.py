"""Checkpoints that load without unpickling arbitrary objects.

A checkpoint is a directory ``<out_dir>/checkpoints/step_XXXXXXXX/``:
  model.pt       the model's state dict (tensors only)
  optimizer.pt   the optimizer's state dict (tensors, numbers, lists, dicts)
  rng_rankN.pt   torch CPU (and CUDA) RNG state of rank N
  state.json     step, stage, tokens, data position, LR at the stage switch, the mix fingerprint of
                 every stage opened so far, config (and its hash), Python and NumPy RNG state
Tensors are read with ``torch.load(weights_only=True)``, which refuses arbitrary Python objects;
everything else is JSON. A checkpoint is written to a temporary directory and renamed into place,
so a crash never leaves a half-written checkpoint that resume would pick up.
"""
from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import numpy as np
import torch


class MixMismatchError(RuntimeError):
    """Resuming on a mix whose fingerprint differs from the one the checkpoint was trained on."""


def checkpoint_root(out_dir: str | Path) -> Path:
    return Path(out_dir) / "checkpoints"


def list_checkpoints(out_dir: str | Path) -> list[Path]:
    root = checkpoint_root(out_dir)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("step_")
                  and (p / "state.json").is_file())


def latest_checkpoint(out_dir: str | Path) -> Path | None:
    cks = list_checkpoints(out_dir)
    return cks[-1] if cks else None


def read_state(ckpt: str | Path) -> dict:
    return json.loads((Path(ckpt) / "state.json").read_text())


def rng_state() -> tuple[dict, dict]:
    tensors = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"torch_cuda_{i}"] = s
    py = random.getstate()
    npst = np.random.get_state()
    js = {"python": [py[0], list(py[1]), py[2]],
          "numpy": [npst[0], npst[1].tolist(), int(npst[2]), int(npst[3]), float(npst[4])]}
    return tensors, js


def set_rng_state(tensors: dict, js: dict) -> None:
    torch.set_rng_state(tensors["torch_cpu"])
    if torch.cuda.is_available():
        states = [tensors[k] for k in sorted(tensors) if k.startswith("torch_cuda_")]
        if len(states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(states)
    if js.get("python"):
        v, st, g = js["python"]
        random.setstate((v, tuple(st), g))
    if js.get("numpy"):
        name, keys, pos, has_gauss, cached = js["numpy"]
        np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))


def save_checkpoint(out_dir: str | Path, step: int, model_state: dict, optim_state: dict | None,
                    state: dict, rank: int = 0, is_main: bool = True, barrier=None) -> Path:
    """Write a checkpoint. ``model_state``/``optim_state`` must be full (unsharded) state dicts on rank 0."""
    root = checkpoint_root(out_dir)
    final = root / f"step_{step:08d}"
    tmp = root / f".tmp_step_{step:08d}"
    if is_main:
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        torch.save(model_state, tmp / "model.pt")
        if optim_state is not None:
            torch.save(optim_state, tmp / "optimizer.pt")
    if barrier:
        barrier()
    tensors, js = rng_state()
    torch.save(tensors, tmp / f"rng_rank{rank}.pt")
    if barrier:
        barrier()
    if is_main:
        state = {**state, "rng": js, "step": step}
        (tmp / "state.json").write_text(json.dumps(state, indent=1, sort_keys=True))
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    if barrier:
        barrier()
    return final


def load_tensors(path: str | Path, map_location="cpu") -> dict:
    """``torch.load`` restricted to tensors and plain containers (no arbitrary unpickling)."""
    return torch.load(path, map_location=map_location, weights_only=True)


def load_checkpoint(ckpt: str | Path, rank: int = 0, map_location="cpu") -> dict:
    ckpt = Path(ckpt)
    if not (ckpt / "state.json").is_file():
        raise FileNotFoundError(f"{ckpt}: not a checkpoint (no state.json)")
    out = {"state": read_state(ckpt), "model": load_tensors(ckpt / "model.pt", map_location)}
    op = ckpt / "optimizer.pt"
    out["optimizer"] = load_tensors(op, map_location) if op.is_file() else None
    rp = ckpt / f"rng_rank{rank}.pt"
    out["rng"] = load_tensors(rp) if rp.is_file() else None
    return out


def check_fingerprints(saved: dict[str, str], current: dict[str, str], force: bool = False) -> list[str]:
    """Compare the mix fingerprints stored in a checkpoint with the mixes on disk now.

    Raises MixMismatchError on any difference unless ``force``; returns the differing stage names.
    """
    diff = [name for name, fp in saved.items() if name in current and current[name] != fp]
    if diff and not force:
        detail = ", ".join(f"{n}: checkpoint {saved[n]} vs mix {current[n]}" for n in diff)
        raise MixMismatchError(f"the mix changed since the checkpoint ({detail}); resuming would train on a "
                               f"different token stream. Pass --force to resume anyway.")
    return diff


def prune_checkpoints(out_dir: str | Path, keep_last: int, protected_stages: set[str]) -> None:
    """Delete old checkpoints of non-averaged stages, keeping the newest ``keep_last`` overall."""
    cks = list_checkpoints(out_dir)
    if keep_last <= 0:
        return
    newest = set(cks[-keep_last:])
    for c in cks:
        if c in newest:
            continue
        if read_state(c).get("stage_name") in protected_stages:
            continue
        shutil.rmtree(c, ignore_errors=True)
