"""The training loop: stages (pre-train, anneal) over mix directories, ramps, accumulation, checkpoints,
held-out evaluation, progress, and the final averaged model.

One readable loop; everything it calls is a small module of this package:
data (rows of the stream), schedule (LR and ramps as functions of tokens), optim (AdamW, clipping),
parallel (DDP/FSDP2, compile, activation checkpointing), checkpoint (safe save/load, fingerprints),
evaluate (held-out loss per stream), metrics (JSONL + TensorBoard), average (final model).
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from trainer import checkpoint as ckpt_mod
from trainer import parallel as par
from trainer.average import average_checkpoints, stage_checkpoints
from trainer.config import ConfigError, TrainConfig
from trainer.data import localize_mix, TokenShards, rank_rows
from trainer.evaluate import heldout_loss
from trainer.flops import device_peak_flops
from trainer.metrics import MetricsLogger, fmt_duration, fmt_si
from trainer.model import Llama, build_model, preset_config
from trainer.optim import build_optimizer, clip_gradients, set_lr
from trainer.schedule import ramp_at, stage_lr


def _past_epoch_cap(stage: str, tokens: int, rows: int, d: TokenShards) -> str:
    caps = ", ".join(f"{x.get('name')} {float(x.get('epochs', 0)):.2f}"
                     for x in d.manifest.get("sources", []))
    return (f"stage {stage!r} needs {rows} rows of {d.seq_len} tokens ({tokens} tokens) but its mix "
            f"{d.path} has {d.n_rows}: reading past the end would repeat every source beyond the "
            f"epochs the mix planned within its max_epochs caps (epochs planned: "
            f"{caps or 'not recorded'}). "
            f"Build a larger mix (total_tokens) or lower the stage's tokens.")


class Trainer:
    def __init__(self, cfg: TrainConfig, log=print):
        self.cfg = cfg
        if cfg.cpu_threads:
            torch.set_num_threads(cfg.cpu_threads)
        self.info = par.init_distributed(cfg.device)
        self._log = log
        self.out = Path(cfg.out_dir)

        # ---- data: every stage's stream (and held-out set) is opened and validated up front
        # a mix on a URI (s3://, gs://, https://, ...) is read from a local cache verified
        # against its manifest's hashes (trainer/data.py localize_mix), fetched and checked by
        # one process per machine while the others wait
        fetch = self.info.local_rank == 0
        local = [localize_mix(s.data, log=log, fetch=fetch) for s in cfg.stages]
        par.barrier(self.info)
        self.data = [TokenShards(p) for p in local]
        self.heldout = []
        for p in local:
            hp = p / "heldout"
            self.heldout.append(TokenShards(hp) if (hp / "manifest.json").is_file() else None)
        toks = {d.manifest["tokenizer"].get("fingerprint") for d in self.data}
        if len(toks) > 1:
            raise ConfigError(f"the stages' mixes use different tokenizers: {sorted(map(str, toks))}")
        self.fingerprints = {s.name: d.fingerprint for s, d in zip(cfg.stages, self.data)}

        # ---- ramps: resolve sequence lengths and check every step splits into whole rows per rank
        for si, (st, d) in enumerate(zip(cfg.stages, self.data)):
            for r in cfg.ramps:
                L = r.seq_len or d.seq_len
                if d.seq_len % L:
                    raise ConfigError(f"ramp seq_len {L} does not divide stage {st.name!r}'s row length {d.seq_len}")
                if r.batch_tokens % d.seq_len:
                    raise ConfigError(f"ramp batch_tokens {r.batch_tokens} is not a multiple of stage "
                                      f"{st.name!r}'s row length {d.seq_len} (a step reads whole rows)")
                if (r.batch_tokens // d.seq_len) % self.info.world_size:
                    raise ConfigError(f"{r.batch_tokens // d.seq_len} rows per step do not split over "
                                      f"{self.info.world_size} ranks")

        # ---- epoch caps: the mixer planned each source's epochs within its max_epochs for the
        # rows it wrote; reading a stage's stream past its end would repeat every source past
        # that cap, so a stage that needs more rows than its mix has is refused before training
        total = 0
        ramps_d = [asdict(r) for r in cfg.ramps]
        for st, d in zip(cfg.stages, self.data):
            rows = stage_tokens = 0
            while stage_tokens < st.tokens:
                bt = ramp_at(ramps_d, total)["batch_tokens"]
                rows, stage_tokens, total = rows + bt // d.seq_len, stage_tokens + bt, total + bt
            if rows > d.n_rows:
                raise ConfigError(_past_epoch_cap(st.name, st.tokens, rows, d))

        # ---- model
        mopts = dict(cfg.model)
        preset = mopts.pop("preset")
        mopts.setdefault("vocab_size", self.data[0].vocab_size or None)
        mopts.setdefault("max_seq_len", max(d.seq_len for d in self.data))
        try:
            self.model_cfg = preset_config(preset, **mopts)
        except (ValueError, TypeError) as e:
            raise ConfigError(f"model: {e}") from None
        vmax = max(d.vocab_size for d in self.data)
        if vmax > self.model_cfg.vocab_size:
            raise ConfigError(f"model vocab_size {self.model_cfg.vocab_size} < the mix's {vmax}")
        dev = self.info.device
        self.bf16 = cfg.precision == "bf16" or (cfg.precision == "auto" and dev.type == "cuda")
        self.autocast_dtype = torch.bfloat16 if self.bf16 else None
        torch.manual_seed(cfg.seed)
        np.random.seed(cfg.seed % 2**32)
        self.raw_model: Llama = build_model(self.model_cfg, dev, seed=cfg.seed)
        self.raw_model.set_attention_backend(cfg.attention, dev)
        par.set_activation_checkpointing(self.raw_model, cfg.activation_checkpointing)
        self.mode = par.resolve_mode(cfg.parallel, self.info)
        model = par.maybe_compile(self.raw_model, cfg.compile)
        self.model = par.wrap_model(model, self.mode, self.info, self.bf16)
        o = cfg.optim
        self.optimizer = build_optimizer(self.model, o.lr, o.weight_decay, o.betas, o.eps, o.fused)
        self.flops_per_token = {}
        self.peak, self.device_name = device_peak_flops(dev, torch.bfloat16 if self.bf16 else torch.float32)
        self.metrics = MetricsLogger(self.out, tensorboard=cfg.tensorboard, enabled=self.info.is_main)

        # ---- progress state (what a checkpoint restores)
        self.step = 0
        self.stage = 0
        self.stage_tokens = 0
        self.total_tokens = 0
        self.position = 0            # next row of the current stage's stream
        self.steps_this_process = 0

    # ------------------------------------------------------------------------------------------
    def log(self, msg: str):
        if self.info.is_main:
            self._log(msg)

    def start_lr(self, si: int) -> float:
        """Peak/start LR of stage ``si``: its own ``lr``, else optim.lr for the first stage, else the LR
        the previous stage ended at (annealing decays from its value at the switch)."""
        st = self.cfg.stages[si]
        if st.lr is not None:
            return st.lr
        if si == 0:
            return self.cfg.optim.lr
        prev = self.cfg.stages[si - 1]
        return stage_lr(prev.schedule, prev.tokens, prev.tokens, self.start_lr(si - 1),
                        warmup_tokens=prev.warmup_tokens, min_lr_ratio=prev.min_lr_ratio)

    def lr_for(self, si: int, stage_tokens: int, batch_tokens: int) -> float:
        st = self.cfg.stages[si]
        return stage_lr(st.schedule, stage_tokens, st.tokens, self.start_lr(si), warmup_tokens=st.warmup_tokens,
                        min_lr_ratio=st.min_lr_ratio, batch_tokens=batch_tokens)

    def planned_total_steps(self) -> int:
        steps, total = 0, 0
        for st in self.cfg.stages:
            done = 0
            while done < st.tokens:
                b = ramp_at([asdict(r) for r in self.cfg.ramps], total)["batch_tokens"]
                done += b
                total += b
                steps += 1
        return steps

    def flops_per_token_at(self, seq: int) -> float:
        """Model FLOPs per trained token at sequence length `seq` (cached per length)."""
        if seq not in self.flops_per_token:
            self.flops_per_token[seq] = self.raw_model.estimate_flops(seq)
        return self.flops_per_token[seq]

    # ---- checkpoints -------------------------------------------------------------------------
    def save(self) -> Path:
        msd, osd = par.full_state_dicts(self.model, self.optimizer, self.mode)
        st = self.cfg.stages[self.stage]
        state = {
            "stage": self.stage, "stage_name": st.name, "stage_tokens": self.stage_tokens,
            "total_tokens": self.total_tokens, "position": self.position,
            "fingerprints": self.fingerprints, "config": self.cfg.to_dict(), "config_hash": self.cfg.hash(),
            "model_config": asdict(self.model_cfg), "world_size": self.info.world_size,
        }
        path = ckpt_mod.save_checkpoint(self.out, self.step, msd, osd, state, rank=self.info.rank,
                                        is_main=self.info.is_main, barrier=lambda: par.barrier(self.info))
        if self.info.is_main:
            protected = {s.name for s in self.cfg.stages if s.average_last > 0}
            ckpt_mod.prune_checkpoints(self.out, self.cfg.checkpoint.keep_last, protected)
        self.log(f"[trainer] checkpoint {path}")
        return path

    def resume(self) -> bool:
        r = self.cfg.resume
        if r == "never":
            return False
        candidates = list(reversed(ckpt_mod.list_checkpoints(self.out))) if r == "auto" else [Path(r)]
        if not candidates:
            return False
        loaded = None
        for path in candidates:
            try:
                loaded = ckpt_mod.load_checkpoint(path, rank=self.info.rank)
                break
            except ckpt_mod.CheckpointError as e:
                if not (self.cfg.resume_fallback and r == "auto"):
                    hint = ("; resume_fallback=true (--resume-fallback) resumes from the newest good "
                            "checkpoint instead" if r == "auto" else "")
                    raise ckpt_mod.CheckpointError(f"cannot resume: {e}{hint}") from None
                self.log(f"[trainer] WARNING: {e}; falling back to the previous checkpoint")
                par.barrier(self.info)          # every rank has read it before it moves
                if self.info.is_main:
                    self.log(f"[trainer] damaged checkpoint moved to {ckpt_mod.set_aside(path)}")
                par.barrier(self.info)
        if loaded is None:
            raise ckpt_mod.CheckpointError(f"cannot resume: none of the {len(candidates)} checkpoints "
                                           f"in {ckpt_mod.checkpoint_root(self.out)} is intact "
                                           f"(resume=never starts over)")
        state = loaded["state"]
        diff = ckpt_mod.check_fingerprints(state["fingerprints"], self.fingerprints, force=self.cfg.force)
        if diff:
            self.log(f"[trainer] WARNING: resuming on changed mixes {diff} (--force)")
        par.load_full_state_dicts(self.model, self.optimizer, loaded["model"], loaded["optimizer"], self.mode)
        if loaded["rng"] is not None:
            ckpt_mod.set_rng_state(loaded["rng"], state["rng"])
        self.step = state["step"]
        self.stage = state["stage"]
        self.stage_tokens = state["stage_tokens"]
        self.total_tokens = state["total_tokens"]
        self.position = state["position"]
        if state.get("world_size", 1) != self.info.world_size:
            self.log(f"[trainer] note: resuming with world size {self.info.world_size} "
                     f"(checkpoint: {state.get('world_size')}); the global batch order is unchanged")
        self.log(f"[trainer] resumed from {path}: step {self.step}, stage {state['stage_name']}, "
                 f"{self.total_tokens:,} tokens, row {self.position}")
        return True

    # ---- evaluation --------------------------------------------------------------------------
    def evaluate(self, si: int, model=None, kind: str = "eval") -> dict | None:
        ho = self.heldout[si]
        if ho is None:
            return None
        res = heldout_loss(model or self.model, ho, self.info.device, self.cfg.eval.rows_per_source,
                           self.cfg.eval.batch_rows, autocast_dtype=self.autocast_dtype)
        self.metrics.log(kind, self.step, {"stage": self.cfg.stages[si].name,
                                           **{f"heldout_loss/{k}": v for k, v in res.items()}})
        self.log(f"[trainer] {kind} step {self.step} held-out loss: " +
                 ", ".join(f"{k} {v:.4f}" for k, v in res.items()))
        return res

    # ---- the loop ----------------------------------------------------------------------------
    def train_step(self, data: TokenShards, ramp: dict, lr: float) -> tuple[float, float, int]:
        rows_per_step = ramp["batch_tokens"] // data.seq_len
        L = ramp.get("seq_len") or data.seq_len
        rows = rank_rows(self.position, rows_per_step, self.info.rank, self.info.world_size)
        b = data.batch(rows, L)
        dev = self.info.device
        n = b.x.shape[0]
        micro = max(1, self.cfg.micro_batch_tokens // L)
        chunks = [(i, min(i + micro, n)) for i in range(0, n, micro)]
        set_lr(self.optimizer, lr)
        total = torch.zeros((), device=dev)
        for ci, (a, z) in enumerate(chunks):
            last = ci == len(chunks) - 1
            with par.no_grad_sync(self.model, self.mode, last):
                with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=self.bf16 and self.mode != "fsdp"):
                    loss = self.model(b.x[a:z].to(dev, non_blocking=True), b.y[a:z].to(dev, non_blocking=True),
                                      doc_ids=b.doc_ids[a:z].to(dev, non_blocking=True))
                scaled = loss * ((z - a) / n)
                scaled.backward()
            total += scaled.detach()
        gnorm = clip_gradients(self.model, self.cfg.optim.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        total = par.all_reduce_mean(total, self.info)
        return float(total), gnorm, len(chunks)

    def run(self) -> dict:
        cfg = self.cfg
        self.resume()
        planned = self.planned_total_steps()
        m = self.raw_model
        self.log(f"[trainer] model {cfg.model.get('preset')}: {m.num_params() / 1e6:.2f}M params "
                 f"({m.num_params(True) / 1e6:.2f}M non-embedding), vocab {self.model_cfg.vocab_size}, "
                 f"device {self.device_name}, world {self.info.world_size} ({self.mode}), "
                 f"{'bf16' if self.bf16 else 'fp32'}, attention {m.attention_backend}, planned {planned} steps")
        ramps = [asdict(r) for r in cfg.ramps]
        t_start, tok_start = time.perf_counter(), self.total_tokens
        stopped = False
        while self.stage < len(cfg.stages):
            st, data = cfg.stages[self.stage], self.data[self.stage]
            if self.stage_tokens >= st.tokens:
                self.finish_stage()
                continue
            every = st.checkpoint_every_steps or cfg.checkpoint.every_steps
            stage_step = 0
            while self.stage_tokens < st.tokens:
                ramp = ramp_at(ramps, self.total_tokens)
                L = ramp.get("seq_len") or data.seq_len
                lr = self.lr_for(self.stage, self.stage_tokens, ramp["batch_tokens"])
                if self.position + ramp["batch_tokens"] // data.seq_len > data.n_rows:
                    # never wrap around (checked up front; this guards a changed config on resume)
                    raise ConfigError(_past_epoch_cap(
                        st.name, st.tokens, self.position + ramp["batch_tokens"] // data.seq_len,
                        data))
                t0 = time.perf_counter()
                loss, gnorm, accum = self.train_step(data, ramp, lr)
                if self.info.device.type == "cuda":
                    torch.cuda.synchronize()
                dt = time.perf_counter() - t0
                if not math.isfinite(loss):
                    raise FloatingPointError(f"loss is {loss} at step {self.step}")
                self.position += ramp["batch_tokens"] // data.seq_len
                self.stage_tokens += ramp["batch_tokens"]
                self.total_tokens += ramp["batch_tokens"]
                self.step += 1
                stage_step += 1
                self.steps_this_process += 1
                tok_s = ramp["batch_tokens"] / dt
                flops_s = tok_s * self.flops_per_token_at(L - 1)
                rec = {"stage": st.name, "loss": loss, "lr": lr, "grad_norm": gnorm, "tokens": self.total_tokens,
                       "batch_tokens": ramp["batch_tokens"], "seq_len": L, "grad_accum": accum,
                       "tokens_per_s": tok_s, "flops_per_s": flops_s, "step_time_s": dt}
                if self.peak:   # model FLOPs of the global batch over the peak of all GPUs
                    rec["mfu"] = flops_s / (self.peak * self.info.world_size)
                self.metrics.log("train", self.step, rec)
                if self.step % cfg.log_every == 0 or stage_step == 1:
                    elapsed = time.perf_counter() - t_start
                    rate = (self.total_tokens - tok_start) / max(elapsed, 1e-9)
                    left = sum(s.tokens for s in cfg.stages) - self.total_tokens
                    perf = f"MFU {100 * rec['mfu']:.1f}%" if self.peak else f"{fmt_si(flops_s)}FLOP/s"
                    self.log(f"step {self.step}/{planned} [{st.name}] loss {loss:.4f} lr {lr:.2e} "
                             f"gnorm {gnorm:.2f} | {fmt_si(tok_s)} tok/s {perf} | bs {ramp['batch_tokens']} "
                             f"seq {L} accum {accum} | {100 * self.total_tokens / (left + self.total_tokens):.1f}% "
                             f"ETA {fmt_duration(left / max(rate, 1e-9))}")
                if cfg.eval.every_steps and self.step % cfg.eval.every_steps == 0:
                    self.evaluate(self.stage)
                done = self.stage_tokens >= st.tokens
                stop = cfg.stop_after_steps is not None and self.steps_this_process >= cfg.stop_after_steps
                if done or stop or self.step % every == 0:
                    self.save()
                if stop and not done:
                    stopped = True
                    break
            if stopped:
                break
            self.finish_stage()
        result = {"step": self.step, "tokens": self.total_tokens, "stopped": stopped}
        if not stopped and self.info.is_main:
            result.update(self.final_model())
        par.barrier(self.info)
        self.metrics.close()
        return result

    def finish_stage(self):
        self.evaluate(self.stage)
        self.log(f"[trainer] stage {self.cfg.stages[self.stage].name!r} done at step {self.step}")
        self.stage += 1
        self.stage_tokens = 0
        self.position = 0

    def final_model(self) -> dict:
        """Average the last K checkpoints of the last stage with ``average_last`` > 0 and evaluate it."""
        avg = [i for i, s in enumerate(self.cfg.stages) if s.average_last > 0]
        if not avg:
            return {}
        si = avg[-1]
        st = self.cfg.stages[si]
        cks = stage_checkpoints(self.out, st.name)[-st.average_last:]
        if len(cks) < st.average_last:
            self.log(f"[trainer] WARNING: only {len(cks)} checkpoints of stage {st.name!r} to average "
                     f"(average_last={st.average_last})")
        sd = average_checkpoints(cks)
        final = self.out / "final"
        final.mkdir(parents=True, exist_ok=True)
        torch.save(sd, final / "model.pt")
        (final / "model_config.json").write_text(json.dumps(asdict(self.model_cfg), indent=1))
        (final / "averaged_from.json").write_text(json.dumps([str(c) for c in cks], indent=1))
        model = build_model(self.model_cfg, self.info.device, seed=None)
        model.load_state_dict(sd)
        model.set_attention_backend("sdpa" if self.info.device.type == "cpu" else self.cfg.attention)
        res = self.evaluate(si, model=model, kind="final")
        self.log(f"[trainer] final model = average of {len(cks)} checkpoints of {st.name!r} -> {final / 'model.pt'}")
        return {"final_model": str(final / "model.pt"), "averaged": [str(c) for c in cks], "final_eval": res}
