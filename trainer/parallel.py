"""Data parallelism and other wrappers, applied outside the model file (torchtitan's split).

Under ``torchrun`` (WORLD_SIZE > 1) the process group is initialised from the environment
(NCCL on CUDA, Gloo on CPU). ``ddp`` wraps the model in DistributedDataParallel; ``fsdp`` applies
FSDP2's ``fully_shard`` to every transformer block and then to the root, with a bf16
MixedPrecisionPolicy (fp32 gradient reduction) when training in bf16. Every rank reads its own
slice of each global batch (trainer/data.py: rank_rows).
"""
from __future__ import annotations

import os
from contextlib import nullcontext
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn as nn


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def pick_device(pref: str, local_rank: int = 0) -> torch.device:
    if pref == "cpu":
        return torch.device("cpu")
    if pref == "cuda" or (pref == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise RuntimeError("device=cuda requested but CUDA is not available")
        return torch.device("cuda", local_rank)
    if pref not in ("auto", "cuda", "cpu"):
        raise ValueError(f"device must be auto, cpu or cuda, not {pref!r}")
    return torch.device("cpu")


def init_distributed(device_pref: str = "auto") -> DistInfo:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(device_pref, local)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistInfo(rank=rank, world_size=world, local_rank=local, device=device)


def barrier(info: DistInfo):
    if info.distributed and dist.is_initialized():
        dist.barrier()


def all_reduce_mean(x: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if info.distributed:
        dist.all_reduce(x, op=dist.ReduceOp.SUM)
        x = x / info.world_size
    return x


def cleanup(info: DistInfo):
    if info.distributed and dist.is_initialized():
        dist.destroy_process_group()


def resolve_mode(mode: str, info: DistInfo) -> str:
    if mode == "auto":
        return "ddp" if info.distributed else "none"
    if mode in ("ddp", "fsdp") and not info.distributed:
        return "none"     # a single process needs no wrapper (same maths)
    return mode


def wrap_model(model: nn.Module, mode: str, info: DistInfo, bf16: bool) -> nn.Module:
    if mode == "none":
        return model
    if mode == "ddp":
        from torch.nn.parallel import DistributedDataParallel as DDP
        ids = [info.device.index] if info.device.type == "cuda" else None
        return DDP(model, device_ids=ids)
    if mode == "fsdp":
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard
        mp = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32) if bf16 \
            else MixedPrecisionPolicy()
        for layer in model.layers:
            fully_shard(layer, mp_policy=mp)
        fully_shard(model, mp_policy=mp)
        return model
    raise ValueError(f"unknown parallel mode {mode!r}")


def unwrap(model: nn.Module) -> nn.Module:
    """The Llama module under any DDP / torch.compile wrapper (FSDP2 wraps in place)."""
    while True:
        if hasattr(model, "_orig_mod"):
            model = model._orig_mod
        elif isinstance(model, nn.parallel.DistributedDataParallel):
            model = model.module
        else:
            return model


def no_grad_sync(model: nn.Module, mode: str, last_micro_step: bool):
    """Skip the gradient all-reduce on all but the last micro-batch of a step."""
    if mode == "ddp" and not last_micro_step:
        return model.no_sync()
    if mode == "fsdp":
        model.set_requires_gradient_sync(last_micro_step)
    return nullcontext()


def set_activation_checkpointing(model: nn.Module, enabled: bool) -> None:
    unwrap(model).activation_checkpointing = enabled


def maybe_compile(model: nn.Module, enabled: bool) -> nn.Module:
    """torch.compile each transformer block (small graphs, fast compiles; torchtitan's choice)."""
    if not enabled:
        return model
    m = unwrap(model)
    for i, layer in enumerate(m.layers):
        m.layers[i] = torch.compile(layer)
    return model


def full_state_dicts(model: nn.Module, optimizer, mode: str) -> tuple[dict, dict]:
    """Unsharded model and optimizer state dicts for saving, keyed by parameter names (FQNs).

    The same layout whatever the wrapper (none, DDP, FSDP2, compiled blocks), so a checkpoint
    written by one world size / mode resumes under another.
    """
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict
    opts = StateDictOptions(full_state_dict=True, cpu_offload=True)
    msd, osd = get_state_dict(model, optimizer, options=opts)
    return _strip_compiled(msd), osd


def load_full_state_dicts(model: nn.Module, optimizer, model_sd: dict, optim_sd: dict | None, mode: str):
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_state_dict
    opts = StateDictOptions(full_state_dict=True)
    if optim_sd is None:
        from torch.distributed.checkpoint.state_dict import set_model_state_dict
        set_model_state_dict(model, model_sd, options=opts)
        return
    set_state_dict(model, optimizer, model_state_dict=model_sd, optim_state_dict=optim_sd, options=opts)


def _plain_state(m: nn.Module) -> dict:
    return _strip_compiled(m.state_dict())


def _strip_compiled(sd: dict) -> dict:
    return {k.replace("._orig_mod", ""): v for k, v in sd.items()}
