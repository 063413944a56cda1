"""Checkpoints that load without unpickling arbitrary objects.

A checkpoint is a directory ``<out_dir>/checkpoints/step_XXXXXXXX/``:
  model.pt       the model's state dict (tensors only)
  optimizer.pt   the optimizer's state dict (tensors, numbers, lists, dicts)
  rng_rankN.pt   torch CPU (and CUDA) RNG state of rank N
  state.json     step, stage, tokens, data position, LR at the stage switch, the mix fingerprint of
                 every stage opened so far, config (and its hash), Python and NumPy RNG state
  manifest.json  size and sha256 of every other file, written last
Tensors are read with ``torch.load(weights_only=True)``, which refuses arbitrary Python objects;
everything else is JSON. A checkpoint is written to a temporary directory and renamed into place,
so a crash never leaves a half-written checkpoint that resume would pick up.

Every load (resume, averaging, evaluation, export) first checks the files against
``manifest.json``: a flipped bit, a truncated or a missing file is a `CheckpointError` naming the
file, never a silently different model. ``resume_fallback`` moves a damaged checkpoint aside
(``bad_step_XXXXXXXX``, kept for inspection) and resumes from the newest good one. Checkpoints
written before checksums existed (no ``manifest.json``) still load, with a warning.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import sys
from pathlib import Path

import numpy as np
import torch

from core.fs import sha256_file


class MixMismatchError(RuntimeError):
    """Resuming on a mix whose fingerprint differs from the one the checkpoint was trained on."""


class CheckpointError(RuntimeError):
    """A checkpoint that is damaged (checksum, size, missing or unreadable file); names the file."""


MANIFEST = "manifest.json"


def write_manifest(ckpt: str | Path) -> dict:
    """``manifest.json``: size and sha256 of every file of the checkpoint directory."""
    ckpt = Path(ckpt)
    files = {p.name: {"bytes": p.stat().st_size, "sha256": sha256_file(str(p))}
             for p in sorted(ckpt.iterdir()) if p.is_file() and p.name != MANIFEST}
    m = {"version": 1, "files": files}
    tmp = ckpt / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(m, indent=1, sort_keys=True))
    os.replace(tmp, ckpt / MANIFEST)
    return m


def verify_checkpoint(ckpt: str | Path, names: list[str] | None = None) -> bool:
    """Check the files of a checkpoint (all of them, or only ``names``) against its manifest.

    Returns True when verified, False for a checkpoint without a manifest (written before
    checksums existed); raises CheckpointError naming the first bad file."""
    ckpt = Path(ckpt)
    mp = ckpt / MANIFEST
    if not mp.is_file():
        if not (ckpt / "state.json").is_file():
            raise CheckpointError(f"{ckpt}: not a checkpoint (no {MANIFEST}, no state.json)")
        return False
    try:
        files = json.loads(mp.read_text())["files"]
    except (ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{mp}: unreadable checkpoint manifest ({e})") from None
    for name in (files if names is None else names):
        p = ckpt / name
        want = files.get(name)
        if want is None:
            if p.exists():
                raise CheckpointError(f"{p}: not listed in {mp}")
            continue   # e.g. optimizer.pt of a checkpoint saved without one
        if not p.is_file():
            raise CheckpointError(f"{p}: missing (listed in {MANIFEST})")
        size = p.stat().st_size
        if size != want["bytes"]:
            raise CheckpointError(f"{p}: {size} bytes, the manifest says {want['bytes']} (truncated or "
                                  f"damaged checkpoint)")
        if sha256_file(str(p)) != want["sha256"]:
            raise CheckpointError(f"{p}: sha256 differs from the manifest's (damaged checkpoint)")
    return True


def _warn(msg: str) -> None:
    print(f"[trainer] WARNING: {msg}", file=sys.stderr, flush=True)


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
    p = Path(ckpt) / "state.json"
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{p}: unreadable checkpoint state ({e})") from None


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
        write_manifest(tmp)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    if barrier:
        barrier()
    return final


def load_tensors(path: str | Path, map_location="cpu") -> dict:
    """``torch.load`` restricted to tensors and plain containers (no arbitrary unpickling); a file
    that does not unpickle is a CheckpointError naming it."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: missing") from None
    except MemoryError:
        raise
    except Exception as e:  # torch raises several kinds (RuntimeError, EOFError, UnpicklingError, ...)
        raise CheckpointError(f"{path}: unreadable ({type(e).__name__}: "
                              f"{str(e).splitlines()[0] if str(e) else ''})") from None


def load_checkpoint(ckpt: str | Path, rank: int = 0, map_location="cpu") -> dict:
    """Verify (checksums) and load a checkpoint; CheckpointError names any damaged file."""
    ckpt = Path(ckpt)
    if not ckpt.is_dir():
        raise CheckpointError(f"{ckpt}: no such checkpoint directory")
    if not verify_checkpoint(ckpt):
        _warn(f"{ckpt} has no {MANIFEST} (written before checksums): loaded unverified")
    out = {"state": read_state(ckpt), "model": load_tensors(ckpt / "model.pt", map_location)}
    op = ckpt / "optimizer.pt"
    out["optimizer"] = load_tensors(op, map_location) if op.is_file() else None
    rp = ckpt / f"rng_rank{rank}.pt"
    out["rng"] = load_tensors(rp) if rp.is_file() else None
    return out


def set_aside(ckpt: str | Path) -> Path:
    """Move a damaged checkpoint out of the resume order (``bad_step_...``), keeping its files."""
    ckpt = Path(ckpt)
    dst = ckpt.with_name("bad_" + ckpt.name)
    k = 1
    while dst.exists():
        dst = ckpt.with_name(f"bad_{ckpt.name}.{k}")
        k += 1
    os.replace(ckpt, dst)
    return dst


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
        try:
            stage = read_state(c).get("stage_name")
        except CheckpointError:
            continue   # a damaged checkpoint is left for the user to inspect
        if stage in protected_stages:
            continue
        shutil.rmtree(c, ignore_errors=True)
