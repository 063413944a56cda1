"""Find and load a trained model: a run directory, its ``final/`` folder, or one checkpoint.

Accepted paths:
- a checkpoint directory ``checkpoints/step_XXXXXXXX/`` (``model.pt`` + ``state.json``, whose
  ``model_config`` gives the shape);
- the averaged final model ``final/`` (``model.pt`` + ``model_config.json``);
- a run's ``out_dir``: its ``final/`` when there is one, else its latest checkpoint.

The tokenizer the model was trained with is read from the manifests of the mixes named in the
run's config (``stages.*.data``) when they are still on disk; it is reported by name and
fingerprint so that evaluation and export can refuse a mismatch.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path

import torch

from trainer.checkpoint import MANIFEST, latest_checkpoint, load_tensors, read_state, verify_checkpoint
from trainer.model import Llama, ModelConfig, build_model


class CheckpointNotFound(FileNotFoundError):
    pass


@dataclass
class Trained:
    path: Path                      # the directory holding model.pt
    model_config: ModelConfig
    state: dict = field(default_factory=dict)      # state.json (checkpoints) or {} (final/)
    tokenizer: dict | None = None   # a mix manifest's tokenizer entry, when found
    step: int | None = None

    @property
    def label(self) -> str:
        run = self.path.parent.parent if self.path.parent.name == "checkpoints" else self.path.parent
        return f"{run.name}/{self.path.name}"


def resolve(path: str | Path) -> Path:
    """The directory holding ``model.pt`` for any accepted path."""
    p = Path(path)
    if (p / "model.pt").is_file():
        return p
    if (p / "final" / "model.pt").is_file():
        return p / "final"
    ck = latest_checkpoint(p)
    if ck is not None:
        return ck
    raise CheckpointNotFound(f"{p}: no model.pt, no final/model.pt and no checkpoints/step_*/ "
                             f"(pass a run directory, its final/ or a checkpoint directory)")


def _model_config(d: dict) -> ModelConfig:
    known = {f.name for f in fields(ModelConfig)}
    return ModelConfig(**{k: v for k, v in d.items() if k in known})


def _run_state(ckdir: Path) -> dict:
    """state.json of the checkpoint itself, or (final/) of a checkpoint it was averaged from."""
    if (ckdir / "state.json").is_file():
        return read_state(ckdir)
    af = ckdir / "averaged_from.json"
    if af.is_file():
        for c in json.loads(af.read_text())[::-1]:
            if (Path(c) / "state.json").is_file():
                return read_state(c)
    cands = sorted((ckdir.parent / "checkpoints").glob("step_*/state.json"))
    return json.loads(cands[-1].read_text()) if cands else {}


def _tokenizer_of(state: dict) -> dict | None:
    for st in (state.get("config") or {}).get("stages", []):
        m = Path(st.get("data", "")) / "manifest.json"
        if m.is_file():
            return json.loads(m.read_text()).get("tokenizer")
    return None


def describe(path: str | Path) -> Trained:
    d = resolve(path)
    run_state = _run_state(d)
    if (d / "model_config.json").is_file():
        mc = json.loads((d / "model_config.json").read_text())
    elif "model_config" in run_state:
        mc = run_state["model_config"]
    else:
        raise CheckpointNotFound(f"{d}: no model_config.json and no model_config in state.json")
    step = run_state.get("step") if (d / "state.json").is_file() else None
    return Trained(path=d, model_config=_model_config(mc), state=run_state,
                   tokenizer=_tokenizer_of(run_state), step=step)


def load_weights(t: Trained) -> dict:
    """The state dict of ``t``'s ``model.pt``, checked against the checkpoint's manifest when it
    has one (a damaged file is a CheckpointError naming it, never a silently different model);
    ``final/`` has no manifest."""
    if (t.path / MANIFEST).is_file():
        verify_checkpoint(t.path, ["model.pt"])
    return load_tensors(t.path / "model.pt")


def load_model(path: str | Path, device: str | torch.device = "cpu",
               dtype: torch.dtype = torch.float32) -> tuple[Llama, Trained]:
    """The model in eval mode, fp32 by default, with the masked-SDPA attention (exact everywhere)."""
    t = describe(path)
    model = build_model(t.model_config, "cpu", seed=None)
    sd = load_weights(t)
    missing, unexpected = model.load_state_dict(sd, strict=False)
    if missing or unexpected:
        raise ValueError(f"{t.path / 'model.pt'}: parameters do not match the model config "
                         f"(missing {missing[:4]}, unexpected {unexpected[:4]})")
    model = model.to(device=device, dtype=dtype)
    model.set_attention_backend("sdpa", device)
    model.eval()
    return model, t
