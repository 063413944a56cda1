"""The post-training loop of Llama 3 (section 4.1), in rounds, from one config:

    python -m trainer.rounds --config configs/posttrain/synthetic_sort.yaml [key=value ...]

0. bootstrap (optional): SFT of the starting (pre-trained) model on the gold SFT table.
Then, for each of ``rounds`` rounds, from the current policy:
1. collect: K sampled replies per training prompt (trainer/generate.py), scored by the prompts'
   answer checker; (a correct, an incorrect) reply of a prompt is a checker-labelled preference
   pair (the stand-in for Llama 3's human annotation of the latest model's samples);
2. reward model: the model of ``reward_init`` + a scalar head, Bradley-Terry on the human
   preference table (if any) and every pair collected so far; held-out accuracy next to the
   length-only baseline;
3. rejection sampling: the collected replies re-scored by checker and reward model (the checker
   decides, the reward breaks ties; the reward alone where a prompt has no checker), the best of
   every prompt kept if it reaches ``rejection.min_score``;
4. SFT on the kept replies plus the gold SFT table, from the policy (or the pre-trained model);
5. DPO: fresh pairs sampled from the SFT model (checker-labelled, on-policy) plus the human table,
   the SFT model as the frozen reference, ``average.runs`` runs with different seeds (data order);
6. average: the DPO runs averaged exactly (trainer/average.py) -> the next round's policy.

Evaluation after every policy-changing step: exact match of greedy replies on the held-out prompts
(checker). Held-out preference pairs (the held-out table, plus checker-labelled pairs sampled on
the held-out prompts: from the round's starting policy for the reward model, from the SFT model
for DPO): reward-model accuracy vs the length baseline; DPO implicit-reward accuracy and mean
margin against the reference; the log-likelihood preference accuracy (log p(chosen) >
log p(rejected)) of the SFT model and of the DPO model. Every step writes a model directory under
``out_dir/round_N/<step>``; a step whose directory is complete is loaded, not redone (resume).
``report.json`` holds every figure.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from core.validate import option
from trainer.average import average_state_dicts
from trainer.checkers import check
from trainer.dpo import DPOConfig, evaluate_preferences, frozen_copy, train_dpo
from trainer.posttrain import device_of, load_model, load_tokenizer, save_model
from trainer.rejection import (RejectionConfig, best_and_worst, exact_match, sample_replies, score_replies,
                               usable, write_jsonl)
from trainer.reward import (RewardConfig, RewardModel, evaluate_reward, load_reward_model, save_reward_model,
                            train_reward)
from trainer.sft import SFTConfig, train_sft


@dataclass
class DataPaths:
    sft: str = ""                    # gold SFT dialogues (bootstrap, and mixed into every round's SFT)
    prompts: str = ""                # prompts to sample from (messages; checker + answer where checkable)
    heldout_prompts: str = ""        # exact-match evaluation prompts (never trained on)
    preferences: str = ""            # preference pairs (e.g. HH-RLHF train split)
    heldout_preferences: str = ""    # held-out preference pairs


@dataclass
class EvalSettings:
    max_new_tokens: int = 64
    batch_size: int = 64
    heldout_pairs_k: int = 4         # > 0: checker-labelled held-out pairs sampled on heldout_prompts
    pairs_per_prompt: int = 1        # checker-labelled pairs per prompt: distinct (correct, incorrect) replies


@dataclass
class AverageSettings:
    runs: int = option(1, ge=1)      # DPO runs per round (seeds seed, seed + 1, ...), averaged


@dataclass
class RoundsConfig:
    out_dir: str = "runs/posttrain"
    init: str = ""                   # the pre-trained model directory (run dir with final/, checkpoint, ...)
    device: str = "auto"
    seed: int = 0
    cpu_threads: int | None = None
    rounds: int = option(1, ge=0)
    bootstrap_sft: bool = True
    reward_init: str = option("policy", choices=("policy", "init"))   # what the reward model starts from
    sft_init: str = option("policy", choices=("policy", "init"))      # what each round's SFT starts from
    data: DataPaths = field(default_factory=DataPaths)
    reward: RewardConfig = field(default_factory=RewardConfig)
    rejection: RejectionConfig = field(default_factory=RejectionConfig)
    sft: SFTConfig = field(default_factory=SFTConfig)
    dpo: DPOConfig = field(default_factory=DPOConfig)
    average: AverageSettings = field(default_factory=AverageSettings)
    eval: EvalSettings = field(default_factory=EvalSettings)


def load_config(path: str | None, overrides: list[str] | None = None) -> RoundsConfig:
    """Defaults <- the YAML file <- ``key=value`` overrides, every value checked."""
    from core.config import load_yaml
    from core.validate import ConfigError
    from trainer.posttrain import build_config
    cfg = build_config(RoundsConfig, load_yaml(path), overrides)
    if not cfg.init:
        raise ConfigError("init (the pre-trained model directory) is required")
    return cfg


def _read(path: str) -> list[dict]:
    from trainer.posttrain_data import read_records
    return read_records(path) if path else []


def _done(d: Path) -> bool:
    return (d / "meta.json").is_file() and (d / "model.pt").is_file()


class Rounds:
    def __init__(self, cfg: RoundsConfig, log=print):
        self.cfg = cfg
        self.log = log
        if cfg.cpu_threads:
            torch.set_num_threads(cfg.cpu_threads)
        self.dev = device_of(cfg.device)
        self.out = Path(cfg.out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.tok = load_tokenizer(cfg.init)
        d = cfg.data
        self.gold_sft = [r["messages"] for r in _read(d.sft)]
        self.prompts = _read(d.prompts)
        self.heldout_prompts = _read(d.heldout_prompts)
        self.human_prefs = _read(d.preferences)
        self.heldout_prefs = _read(d.heldout_preferences)
        self.report: dict = {"config": asdict(cfg), "steps": []}
        rp = self.out / "report.json"
        if rp.is_file():
            self.report["previous"] = json.loads(rp.read_text()).get("steps", [])

    # ---- helpers --------------------------------------------------------------------------------
    def record(self, entry: dict) -> None:
        entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), **entry}
        self.report["steps"].append(entry)
        (self.out / "report.json").write_text(json.dumps(self.report, indent=1, default=str))
        self.log("[rounds] " + json.dumps({k: v for k, v in entry.items() if k != "time"}, default=str))

    def em(self, model) -> float | None:
        if not self.heldout_prompts:
            return None
        return exact_match(model, self.tok, self.heldout_prompts, self.cfg.eval.max_new_tokens,
                           self.cfg.eval.batch_size)

    def collect(self, model, prompts: list[dict], k: int, seed: int) -> tuple[list, list, list]:
        """(replies, checker scores, checker-labelled pairs) for prompts with a checker."""
        rc = self.cfg.rejection
        checkable = [p for p in prompts if p.get("checker")]
        if not checkable or k < 1:
            return [], [], []
        replies = sample_replies(model, self.tok, [list(p["messages"]) for p in checkable], k, rc.temperature,
                                 rc.top_p, rc.max_new_tokens, rc.batch_size, seed)
        scores = score_replies(checkable, replies)
        pairs = []
        for p, reps, sc in zip(checkable, replies, scores):
            good = list(dict.fromkeys(c for c, s in zip(reps, sc) if s >= 1.0 and usable(self.tok, c)))
            bad = list(dict.fromkeys(c for c, s in zip(reps, sc) if s < 1.0 and usable(self.tok, c)))
            for i in range(min(self.cfg.eval.pairs_per_prompt, max(len(good), len(bad))) if good and bad else 0):
                pairs.append({"id": p.get("id"), "prompt": p["messages"],
                              "responses": [good[i % len(good)], bad[i % len(bad)]], "source": "checker"})
        return replies, scores, pairs

    def save(self, d: Path, model, meta: dict):
        save_model(d, model, meta, tokenizer=self.tok)

    # ---- the loop -------------------------------------------------------------------------------
    def run(self) -> dict:
        cfg = self.cfg
        policy = load_model(cfg.init, self.dev)
        pretrained_dir = cfg.init
        self.record({"step": "init", "model": str(cfg.init), "exact_match": self.em(policy)})
        if cfg.bootstrap_sft and self.gold_sft:
            d = self.out / "round_0" / "sft"
            if _done(d):
                policy = load_model(d, self.dev)
                res = json.loads((d / "meta.json").read_text()).get("result")
            else:
                res = train_sft(policy, self.tok, self.gold_sft, cfg.sft, self.dev, log=self.log)
                self.save(d, policy, {"step": "sft", "round": 0, "result": res})
            self.record({"step": "bootstrap_sft", "round": 0, "result": res, "exact_match": self.em(policy)})
        policy_dir = self.out / "round_0" / "sft" if (self.out / "round_0" / "sft").is_dir() else Path(cfg.init)
        all_pairs: list[dict] = []
        for rnd in range(1, cfg.rounds + 1):
            policy, policy_dir = self.round(rnd, policy, policy_dir, pretrained_dir, all_pairs)
        self.report["final_model"] = str(policy_dir)
        (self.out / "report.json").write_text(json.dumps(self.report, indent=1, default=str))
        return self.report

    def round(self, rnd: int, policy, policy_dir: Path, pretrained_dir, all_pairs: list[dict]):
        cfg, rd = self.cfg, self.out / f"round_{rnd}"
        seed = cfg.seed + 1000 * rnd
        t = time.perf_counter()
        # 1. collect: K samples per prompt from the current policy, checker-labelled pairs
        replies, scores, pairs = self.collect(policy, self.prompts, cfg.rejection.k, seed)
        all_pairs.extend(pairs)
        write_jsonl(rd / "pairs_policy.jsonl", pairs)
        held_rm = list(self.heldout_prefs)
        if cfg.eval.heldout_pairs_k and self.heldout_prompts:
            held_rm += self.collect(policy, self.heldout_prompts, cfg.eval.heldout_pairs_k, seed + 1)[2]
        flat = [s for sc in scores for s in sc]
        self.record({"step": "collect", "round": rnd, "prompts": len(replies), "k": cfg.rejection.k,
                     "sample_accuracy": sum(flat) / len(flat) if flat else None,
                     "best_of_k": sum(max(s) for s in scores) / len(scores) if scores else None,
                     "pairs": len(pairs), "heldout_pairs": len(held_rm), "seconds": time.perf_counter() - t})
        # 2. reward model on every pair so far (+ the human preference table)
        t = time.perf_counter()
        rm = None
        rm_data = self.human_prefs + all_pairs
        if rm_data:
            d = rd / "reward"
            if _done(d):
                rm = load_reward_model(d, self.dev)
                res = json.loads((d / "meta.json").read_text()).get("result")
            else:
                start = policy_dir if cfg.reward_init == "policy" else pretrained_dir
                rm = RewardModel(load_model(start, self.dev))
                res = train_reward(rm, self.tok, rm_data, cfg.reward, log=self.log)
                save_reward_model(d, rm, {"step": "reward", "round": rnd, "result": res}, self.tok)
            ev = evaluate_reward(rm, self.tok, held_rm, rm_data, cfg.reward.max_len) if held_rm else None
            self.record({"step": "reward", "round": rnd, "train_pairs": len(rm_data), "result": res,
                         "heldout": ev, "seconds": time.perf_counter() - t})
        # 3. rejection sampling: the collected samples re-scored by checker + reward model
        t = time.perf_counter()
        checkable = [p for p in self.prompts if p.get("checker")]
        rs_scores = score_replies(checkable, replies, self.tok, rm) if replies else []
        kept, kept_ok = [], []
        for p, reps, sc in zip(checkable, replies, rs_scores):
            bw = best_and_worst(self.tok, reps, sc)
            if bw is None:
                continue
            best = bw[0]
            if cfg.rejection.min_score is None or sc[best] >= cfg.rejection.min_score:
                kept.append({"id": p.get("id"), "messages": list(p["messages"]) +
                             [{"role": "assistant", "content": reps[best]}], "score": sc[best]})
                kept_ok.append(check(p["checker"], p["answer"], reps[best]))
        write_jsonl(rd / "rejection_sft.jsonl", kept)
        write_jsonl(rd / "samples.jsonl", [{"id": p.get("id"), "replies": r, "scores": s}
                                           for p, r, s in zip(checkable, replies, rs_scores)])
        self.record({"step": "rejection", "round": rnd, "kept": len(kept), "of": len(checkable),
                     "kept_correct": sum(kept_ok) / len(kept_ok) if kept_ok else None,
                     "seconds": time.perf_counter() - t})
        # 4. SFT on the kept replies + the gold SFT table
        t = time.perf_counter()
        d = rd / "sft"
        if _done(d):
            sft_model = load_model(d, self.dev)
            res = json.loads((d / "meta.json").read_text()).get("result")
        else:
            sft_model = load_model(policy_dir if cfg.sft_init == "policy" else pretrained_dir, self.dev)
            res = train_sft(sft_model, self.tok, self.gold_sft + [k["messages"] for k in kept], cfg.sft,
                            self.dev, log=self.log)
            self.save(d, sft_model, {"step": "sft", "round": rnd, "result": res})
        self.record({"step": "sft", "round": rnd, "result": res, "exact_match": self.em(sft_model),
                     "seconds": time.perf_counter() - t})
        # 5. fresh preference pairs from the SFT model (on-policy for DPO), DPO x average.runs
        t = time.perf_counter()
        fresh = self.collect(sft_model, self.prompts, cfg.rejection.k, seed + 2)[2]
        write_jsonl(rd / "pairs_sft.jsonl", fresh)
        held_dpo = list(self.heldout_prefs)
        if cfg.eval.heldout_pairs_k and self.heldout_prompts:
            held_dpo += self.collect(sft_model, self.heldout_prompts, cfg.eval.heldout_pairs_k, seed + 3)[2]
        dpo_data = self.human_prefs + fresh
        self.record({"step": "collect_dpo", "round": rnd, "pairs": len(fresh), "heldout_pairs": len(held_dpo),
                     "seconds": time.perf_counter() - t})
        if not dpo_data:
            self.log(f"[rounds] round {rnd}: no preference pairs, DPO skipped")
            return sft_model, d
        reference = frozen_copy(sft_model)
        states = []
        for i in range(cfg.average.runs):
            t = time.perf_counter()
            dd = rd / f"dpo_{i}"
            if _done(dd):
                pol = load_model(dd, self.dev)
                res = json.loads((dd / "meta.json").read_text()).get("result")
            else:
                pol = load_model(d, self.dev)
                res = train_dpo(pol, self.tok, dpo_data, replace(cfg.dpo, seed=cfg.dpo.seed + i), reference,
                                log=self.log)
                self.save(dd, pol, {"step": "dpo", "round": rnd, "run": i, "result": res})
            states.append({k: v.detach().cpu() for k, v in pol.state_dict().items()})
            self.record({"step": "dpo", "round": rnd, "run": i, "pairs": len(dpo_data), "result": res,
                         "heldout": self.pref_eval(pol, reference, held_dpo), "exact_match": self.em(pol),
                         "seconds": time.perf_counter() - t})
        # 6. average the DPO runs
        final = rd / "final"
        avg = load_model(d, self.dev)
        avg.load_state_dict(average_state_dicts(states))
        self.save(final, avg, {"step": "average", "round": rnd,
                               "of": [str(rd / f"dpo_{i}") for i in range(cfg.average.runs)]})
        self.record({"step": "average", "round": rnd, "runs": cfg.average.runs,
                     "heldout": self.pref_eval(avg, reference, held_dpo), "exact_match": self.em(avg)})
        return avg, final

    def pref_eval(self, policy, reference, pairs) -> dict | None:
        """Held-out pairs: DPO implicit-reward accuracy and margin of ``policy`` against the
        reference (the SFT model: margin 0 by definition), and the log-likelihood preference
        accuracy of the policy and of the reference."""
        if not pairs:
            return None
        after = evaluate_preferences(policy, reference, self.tok, pairs, self.cfg.dpo.beta, self.cfg.dpo.max_len)
        before = evaluate_preferences(reference, reference, self.tok, pairs, self.cfg.dpo.beta, self.cfg.dpo.max_len)
        return {"pairs": after["pairs"], "dpo_accuracy": after["accuracy"], "dpo_mean_margin": after["mean_margin"],
                "logprob_accuracy": after["logprob_accuracy"],
                "sft_logprob_accuracy": before["logprob_accuracy"]}


def main(argv=None) -> int:
    from core.validate import ConfigError
    ap = argparse.ArgumentParser(prog="python -m trainer.rounds", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True, help="YAML (see configs/posttrain/)")
    ap.add_argument("overrides", nargs="*", help="key=value, e.g. rounds=2 sft.optim.lr=1e-3")
    a = ap.parse_args(argv)
    try:
        cfg = load_config(a.config, a.overrides)
    except ConfigError as e:
        print(f"config error: {e}", file=sys.stderr)
        return 2
    rep = Rounds(cfg).run()
    print(json.dumps({"final_model": rep.get("final_model"),
                      "steps": [{k: s.get(k) for k in ("step", "round", "exact_match")} for s in rep["steps"]]},
                     indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
