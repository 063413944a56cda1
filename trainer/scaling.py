"""Scaling laws: IsoFLOP sweeps, compute-optimal N*(C) and D*(C), Llama 3's two-step prediction of
benchmark accuracy from compute, and the comparison of two data mixes.

    python -m fixtures.demo_mix --sweep --out runs/scaling/mix-demo [--tokenizer cl100k_base@2048+llama3]
    python -m trainer.scaling sweep --data runs/scaling/mix-demo --out runs/scaling/A \\
                                    --budgets 3e10,1e11,3e11 --sizes 4
    python -m trainer.scaling evaluate --sweep runs/scaling/A --tasks gsm8k_test,arc_easy --limit 200
    python -m trainer.scaling fit   --sweep runs/scaling/A [--benchmark arc_easy] [--target 1e13]
    python -m trainer.scaling compare --sweep runs/scaling/A --sweep runs/scaling/B --target 1e13

Conventions (stated because scaling-law numbers depend on them):
- Compute C is the trainer's own accounting, ``Llama.estimate_flops(seq_len)`` per token (6 x matmul
  parameters including the output layer, plus attention) times the tokens trained. The model size
  N used on every axis is that same count divided by 6 (``N = flops_per_token / 6``: matmul
  parameters plus the attention term), so C = 6 N D holds exactly, as in Chinchilla's approach 2.
- Model shapes come from one rule that reproduces the presets' aspect ratios (``ladder_shape``):
  ``n_layers = max(1, round(dim / 32))`` (tiny 64/2 and 20M 384/12 follow it), heads of 16
  dimensions up to dim 128 and of 64 above, half as many KV heads, tied embeddings below dim 256.
- For a budget C, the sweep picks the ``--sizes`` shapes of the ladder nearest (in log N) to
  ``sqrt(C / 120)`` (Chinchilla's 20 tokens per parameter), unless ``--dims`` names them; each is
  trained on ``D = C / flops_per_token`` tokens (whole batches) with a warm-up + cosine schedule
  that ends at the run's own length, and scored by its held-out loss at the end.
- IsoFLOP: per budget a parabola of loss against ln N (least squares); its vertex is N*(C); the
  same against ln D gives D*(C). Across budgets ln N* = ln k + a ln C (least squares), with the
  exponent's standard error from the fit's covariance and a Student-t interval (n - 2 degrees of
  freedom), and a bootstrap interval that resamples the models within each budget. Only budgets
  whose vertex lies within the sizes tried enter these laws (a vertex outside is an extrapolation).
- Two-step prediction (Llama 3, section 3.2.1): the benchmark's normalised NLL of the correct answer
  against compute, a power law ``nll = A * C^(-alpha)`` fitted on the compute-optimal (per-budget
  best) models; then accuracy against that NLL, a sigmoid ``acc = lo + (hi - lo) / (1 + exp(k (nll - x0)))``
  with ``lo`` the chance level and (k, x0, hi) fitted on every model of the sweep (and larger
  checkpoints given with ``--extra``).

Every run is an ordinary ``python -m trainer.run`` in its own folder (resumable: finished runs are
skipped, an interrupted run resumes from its checkpoint), so the same command runs on a GPU.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

LADDER_DIMS = (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024)


# ---- model shapes and sizes ---------------------------------------------------------------
def ladder_shape(dim: int) -> dict:
    """Model overrides for width ``dim`` (see the module docstring for the rule)."""
    head = 16 if dim <= 128 else 64
    n_heads = max(1, dim // head)
    return {"dim": dim, "n_layers": max(1, round(dim / 32)), "n_heads": n_heads,
            "n_kv_heads": max(1, n_heads // 2), "multiple_of": 64 if dim <= 128 else 256,
            "tie_embeddings": dim < 256}


def model_size(shape: dict, vocab_size: int, seq_len: int) -> dict:
    """Parameter counts and training FLOPs per token of a shape (built on ``meta``: no memory)."""
    from trainer.model import build_model, preset_config
    m = build_model(preset_config("tiny", vocab_size=vocab_size, max_seq_len=seq_len, **shape), "meta")
    fpt = m.estimate_flops(seq_len - 1)
    return {"params": m.num_params(), "non_embedding": m.num_params(True), "flops_per_token": fpt,
            "N": fpt / 6.0}


def pick_sizes(budget: float, n: int, vocab_size: int, seq_len: int,
               dims: list[int] | None = None) -> list[dict]:
    """The ``n`` ladder shapes nearest in ln N to sqrt(budget / 120), or the given ``dims``."""
    cands = [dict(shape=ladder_shape(d), **model_size(ladder_shape(d), vocab_size, seq_len))
             for d in (dims or LADDER_DIMS)]
    if dims:
        return cands
    target = math.log(math.sqrt(budget / 120.0))
    best = sorted(range(len(cands)), key=lambda i: (abs(math.log(cands[i]["N"]) - target), i))[:n]
    return [cands[i] for i in sorted(best)]


# ---- fits ----------------------------------------------------------------------------------
@dataclass
class Parabola:
    a: float
    b: float
    c: float

    def __call__(self, x):
        return self.a * np.asarray(x) ** 2 + self.b * np.asarray(x) + self.c

    @property
    def vertex(self) -> float:
        return -self.b / (2 * self.a)

    @property
    def minimum(self) -> float:
        return float(self(self.vertex))


def fit_parabola(x, y) -> Parabola:
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 3:
        raise ValueError("a parabola needs at least 3 points")
    m = float(x.mean())                        # fit in centred x (conditioning), then expand
    a, b, c = np.polyfit(x - m, y, 2)
    return Parabola(float(a), float(b - 2 * a * m), float(a * m * m - b * m + c))


def isoflop_optimum(n, d, loss) -> dict:
    """N*, D* and the minimum loss of one budget's models (parabolas in ln N and ln D)."""
    pn = fit_parabola(np.log(n), loss)
    pd = fit_parabola(np.log(d), loss)
    ok = pn.a > 0 and pd.a > 0
    inside = bool(ok and np.log(min(n)) <= pn.vertex <= np.log(max(n)))
    return {"N_opt": float(np.exp(pn.vertex)) if ok else math.nan,
            "D_opt": float(np.exp(pd.vertex)) if ok else math.nan,
            "loss_opt": pn.minimum if ok else float(min(loss)),
            "curvature": pn.a, "vertex_inside": inside, "parabola_lnN": [pn.a, pn.b, pn.c]}


def fit_power_law(x, y, level: float = 0.95) -> dict:
    """y = k * x^a by least squares on logs: a, k, the exponent's standard error and a Student-t
    interval (n - 2 degrees of freedom; no interval with 2 points)."""
    lx, ly = np.log(np.asarray(x, float)), np.log(np.asarray(y, float))
    n = len(lx)
    if n < 2:
        raise ValueError("a power law needs at least 2 points")
    A = np.stack([lx, np.ones_like(lx)], 1)
    coef, *_ = np.linalg.lstsq(A, ly, rcond=None)
    out = {"exponent": float(coef[0]), "coefficient": float(np.exp(coef[1])), "n": n}
    if n > 2:
        from scipy import stats
        resid = ly - A @ coef
        s2 = float(resid @ resid) / (n - 2)
        cov = s2 * np.linalg.inv(A.T @ A)
        se = math.sqrt(cov[0, 0])
        t = float(stats.t.ppf(0.5 + level / 2, n - 2))
        out.update(stderr=se, ci=[coef[0] - t * se, coef[0] + t * se], level=level,
                   residual_rms=math.sqrt(float(resid @ resid) / n))
    return out


def power_law_predict(fit: dict, x: float) -> float:
    return fit["coefficient"] * x ** fit["exponent"]


def group_by_budget(rows: list[dict], metric: str = "loss") -> dict[float, list[dict]]:
    out: dict[float, list[dict]] = {}
    for r in rows:
        if r.get(metric) is not None and math.isfinite(r[metric]):
            out.setdefault(r["budget"], []).append(r)
    return dict(sorted(out.items()))


def fit_isoflops(rows: list[dict], metric: str = "loss", bootstrap: int = 1000, seed: int = 0) -> dict:
    """Per-budget optima and the N*(C), D*(C), L*(C) power laws across budgets.

    ``rows``: one per trained model with ``budget`` (the nominal C), ``flops`` (the C actually
    spent), ``N``, ``tokens`` and the ``metric``. The bootstrap resamples each budget's models
    with replacement (fits with fewer than 3 distinct sizes or no minimum are redrawn)."""
    groups = group_by_budget(rows, metric)
    per = []
    for b, rs in groups.items():
        if len(rs) < 3:
            continue
        o = isoflop_optimum([r["N"] for r in rs], [r["tokens"] for r in rs], [r[metric] for r in rs])
        per.append({"budget": b, "flops": float(np.mean([r["flops"] for r in rs])), "models": len(rs), **o})
    # a vertex outside the sizes tried is an extrapolation of the parabola, not a measured optimum
    good = [p for p in per if math.isfinite(p["N_opt"]) and p["vertex_inside"]]
    res = {"metric": metric, "budgets": per, "budgets_used": [p["budget"] for p in good]}
    if len(good) >= 2:
        C = [p["flops"] for p in good]
        res["N_opt_law"] = fit_power_law(C, [p["N_opt"] for p in good])
        res["D_opt_law"] = fit_power_law(C, [p["D_opt"] for p in good])
        res["loss_law"] = fit_power_law(C, [p["loss_opt"] for p in good])
    if bootstrap and len(good) >= 2:
        rng = np.random.default_rng(seed)
        ea, eb = [], []
        keep = [groups[p["budget"]] for p in good]
        for _ in range(bootstrap):
            ns, ds, cs = [], [], []
            for rs in keep:
                for _try in range(20):
                    pick = [rs[i] for i in rng.integers(0, len(rs), len(rs))]
                    if len({r["N"] for r in pick}) >= 3:
                        o = isoflop_optimum([r["N"] for r in pick], [r["tokens"] for r in pick],
                                            [r[metric] for r in pick])
                        if math.isfinite(o["N_opt"]) and o["vertex_inside"]:
                            break
                else:
                    o = None
                if o is None:
                    break
                ns.append(o["N_opt"])
                ds.append(o["D_opt"])
                cs.append(float(np.mean([r["flops"] for r in rs])))
            if len(ns) == len(keep):
                ea.append(fit_power_law(cs, ns)["exponent"])
                eb.append(fit_power_law(cs, ds)["exponent"])
        if len(ea) >= 20:
            res["bootstrap"] = {"draws": len(ea),
                                "N_exponent_ci": [float(np.percentile(ea, 2.5)), float(np.percentile(ea, 97.5))],
                                "D_exponent_ci": [float(np.percentile(eb, 2.5)), float(np.percentile(eb, 97.5))]}
    return res


def sigmoid_acc(nll, k, x0, hi, lo):
    return lo + (hi - lo) / (1.0 + np.exp(k * (np.asarray(nll, float) - x0)))


def fit_sigmoid(nll, acc, chance: float) -> dict:
    """acc = chance + (hi - chance) / (1 + exp(k (nll - x0))), (k, x0, hi) by least squares."""
    from scipy.optimize import curve_fit
    x, y = np.asarray(nll, float), np.asarray(acc, float)
    p0 = [4.0 / max(np.ptp(x), 1e-3), float(np.median(x)), max(float(y.max()), chance + 0.05)]
    try:
        (k, x0, hi), cov = curve_fit(lambda v, k, x0, hi: sigmoid_acc(v, k, x0, hi, chance), x, y, p0=p0,
                                     bounds=([0.0, -np.inf, chance], [np.inf, np.inf, 1.0]), maxfev=20000)
    except RuntimeError as e:
        return {"ok": False, "error": str(e), "chance": chance}
    se = [float(math.sqrt(v)) if np.isfinite(v) and v > 0 else math.nan for v in np.diag(cov)]
    # accuracies at chance leave (k, x0) undetermined: the covariance says so (a zero, infinite or
    # larger-than-the-value standard error)
    determined = all(math.isfinite(v) and 0 < v < abs(p) for v, p in zip(se[:2], (k, x0)))
    return {"ok": True, "determined": determined, "k": float(k), "x0": float(x0), "hi": float(hi),
            "chance": chance, "stderr": se, "acc_range": [float(y.min()), float(y.max())]}


def two_step(points: list[dict], nll_key: str, acc_key: str, chance: float, target: float | None = None,
             extra: list[dict] | None = None) -> dict:
    """Llama 3's prediction: compute -> NLL (power law on the per-budget best models), NLL ->
    accuracy (sigmoid on every model, plus ``extra`` checkpoints with nll and acc only)."""
    by = group_by_budget(points, "loss")
    best = [min(rs, key=lambda r: r["loss"]) for rs in by.values()]
    best = [r for r in best if r.get(nll_key) is not None]
    out: dict = {"nll_key": nll_key, "acc_key": acc_key}
    if len(best) >= 2:
        out["nll_law"] = fit_power_law([r["flops"] for r in best], [r[nll_key] for r in best])
    pts = [r for r in points + (extra or []) if r.get(nll_key) is not None and r.get(acc_key) is not None]
    if len(pts) >= 3:
        out["sigmoid"] = fit_sigmoid([r[nll_key] for r in pts], [r[acc_key] for r in pts], chance)
        out["sigmoid_points"] = len(pts)
    if target and "nll_law" in out:
        nll = power_law_predict(out["nll_law"], target)
        out["target"] = {"flops": target, "nll": nll}
        if out.get("sigmoid", {}).get("ok"):
            s = out["sigmoid"]
            out["target"]["acc"] = float(sigmoid_acc(nll, s["k"], s["x0"], s["hi"], s["chance"]))
    return out


# ---- the sweep -----------------------------------------------------------------------------
def plan(data: str | Path, budgets: list[float], sizes: int, batch_tokens: int,
         dims: list[int] | None = None) -> list[dict]:
    from trainer.data import TokenShards
    d = TokenShards(data)
    runs = []
    for b in budgets:
        for m in pick_sizes(b, sizes, d.vocab_size, d.seq_len, dims):
            steps = max(1, round(b / m["flops_per_token"] / batch_tokens))
            tokens = steps * batch_tokens
            runs.append({"name": f"C{b:.0e}_d{m['shape']['dim']}".replace("+", ""), "budget": b,
                         "shape": m["shape"], "N": m["N"], "params": m["params"],
                         "non_embedding": m["non_embedding"], "flops_per_token": m["flops_per_token"],
                         "tokens": tokens, "flops": tokens * m["flops_per_token"], "steps": steps,
                         "epochs": tokens / max(1, d.n_rows * d.seq_len)})
    return runs


def run_config(r: dict, data: str, out: Path, lr: float, batch_tokens: int, device: str, seq_len: int) -> dict:
    warm = max(batch_tokens, int(0.1 * r["tokens"]) // batch_tokens * batch_tokens)
    return {
        "out_dir": str(out), "seed": 1234, "device": device, "precision": "auto", "tensorboard": False,
        "cpu_threads": 1 if device == "cpu" else None, "micro_batch_tokens": batch_tokens, "log_every": 50,
        "model": {"preset": "tiny", **r["shape"]},
        "optim": {"lr": lr, "weight_decay": 0.1, "betas": [0.9, 0.95], "grad_clip": 1.0},
        "ramps": [{"from_tokens": 0, "batch_tokens": batch_tokens, "seq_len": None}],
        "stages": [{"name": "pretrain", "data": str(data), "tokens": r["tokens"], "schedule": "warmup_cosine",
                    "warmup_tokens": warm, "min_lr_ratio": 0.1, "average_last": 1,
                    "checkpoint_every_steps": max(50, r["steps"] // 4)}],
        "eval": {"every_steps": 0, "rows_per_source": 10_000, "batch_rows": 32},
        "checkpoint": {"every_steps": max(50, r["steps"] // 4), "keep_last": 1},
    }


def final_eval(run_dir: Path) -> dict | None:
    m = run_dir / "metrics.jsonl"
    if not m.is_file():
        return None
    last = None
    for line in m.read_text().splitlines():
        rec = json.loads(line)
        if rec.get("kind") == "final":
            last = rec
    if last is None:
        return None
    return {k.split("/", 1)[1]: v for k, v in last.items() if k.startswith("heldout_loss/")}


def sweep(data: str | Path, out: str | Path, budgets: list[float], sizes: int = 4, dims: list[int] | None = None,
          batch_tokens: int = 4096, lr: float = 3e-3, device: str = "cpu", log=print) -> list[dict]:
    """Train every planned run (skipping finished ones) and record results.jsonl; returns the rows."""
    import yaml
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    runs = plan(data, budgets, sizes, batch_tokens, dims)
    (out / "plan.json").write_text(json.dumps({"data": str(data), "budgets": budgets, "runs": runs,
                                               "lr": lr, "batch_tokens": batch_tokens}, indent=1))
    from trainer.data import TokenShards
    seq_len = TokenShards(data).seq_len
    done = {r["name"]: r for r in read_results(out)}
    rows = []
    for r in runs:
        if r["name"] in done:
            rows.append(done[r["name"]])
            continue
        rd = out / "runs" / r["name"]
        rd.mkdir(parents=True, exist_ok=True)
        cfg = run_config(r, str(data), rd, lr, batch_tokens, device, seq_len)
        (rd / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
        log(f"[scaling] {r['name']}: N {r['N']:.3g}, {r['tokens']:,} tokens ({r['epochs']:.2f} epochs), "
            f"C {r['flops']:.3g}")
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "trainer.run", "--config", str(rd / "config.yaml")],
                              cwd=Path(__file__).resolve().parent.parent, capture_output=True, text=True)
        (rd / "train.log").write_text(proc.stdout + proc.stderr)
        if proc.returncode != 0:
            log(f"[scaling] {r['name']} failed (exit {proc.returncode}); see {rd / 'train.log'}")
            continue
        ev = final_eval(rd) or {}
        row = {**r, "loss": ev.get("all"), "heldout": ev, "wall_s": time.perf_counter() - t0,
               "run_dir": str(rd)}
        with open(out / "results.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")
        rows.append(row)
        log(f"[scaling] {r['name']}: held-out loss {row['loss']:.4f} in {row['wall_s']:.0f} s")
    return rows


def read_results(sweep_dir: str | Path) -> list[dict]:
    p = Path(sweep_dir) / "results.jsonl"
    if not p.is_file():
        return []
    rows = {}
    for line in p.read_text().splitlines():
        if line.strip():
            r = json.loads(line)
            for k, v in (r.get("heldout") or {}).items():   # per-stream metrics: --metric heldout/math
                r[f"heldout/{k}"] = v
            rows[r["name"]] = r
    ev = Path(sweep_dir) / "evals.json"
    if ev.is_file():
        extra = json.loads(ev.read_text())
        for name, e in extra.items():
            if name in rows:
                rows[name].update(e)
    return list(rows.values())


# ---- benchmark scores of the sweep's models (the harness) ----------------------------------
def evaluate_sweep(sweep_dir: str | Path, tasks: list[str], limit: int | None, log=print) -> dict:
    """Run the evaluation harness on every finished run; flattened scores go to evals.json."""
    from trainer.evaluate import evaluate_checkpoint
    sweep_dir = Path(sweep_dir)
    out = {}
    evp = sweep_dir / "evals.json"
    if evp.is_file():
        out = json.loads(evp.read_text())
    for r in read_results(sweep_dir):
        res = evaluate_checkpoint(r["run_dir"], tasks, limit=limit, log=log)
        out[r["name"]] = flat_scores(res)
        evp.write_text(json.dumps(out, indent=1))
    return out


def flat_scores(results: dict) -> dict:
    """The harness's per-task metrics (``eval/results.json``) as ``task/metric`` numbers."""
    return {f"{t}/{k}": x for t, v in results["tasks"].items() for k, x in v.items()
            if isinstance(x, (int, float)) and not isinstance(x, bool)}


def checkpoint_points(checkpoints: list[str]) -> list[dict]:
    """Larger (or other) evaluated checkpoints for the NLL -> accuracy sigmoid: each one's scores
    from the ``eval/results.json`` that ``python -m trainer.evaluate`` wrote beside it."""
    from trainer.evaluate import read_results as read_eval
    return [dict(flat_scores(read_eval(c)), name=str(c)) for c in checkpoints]


def fit_sweep(sweep_dir: str | Path, benchmark: str | None = None, nll_key: str | None = None,
              target: float | None = None, metric: str = "loss",
              checkpoints: list[str] | None = None) -> dict:
    """IsoFLOP laws of a sweep and, with ``benchmark``, Llama 3's two-step prediction; the
    sigmoid also takes the evaluated ``checkpoints`` given (the pipeline's model, larger runs)."""
    rows = read_results(sweep_dir)
    res = {"sweep": str(sweep_dir), "models": len(rows), "isoflop": fit_isoflops(rows, metric)}
    if benchmark:
        extra = checkpoint_points(checkpoints or [])
        nk = nll_key or f"{benchmark}/nll_per_char"
        ak = (f"{benchmark}/acc_norm" if any(f"{benchmark}/acc_norm" in r for r in rows + extra)
              else f"{benchmark}/acc")
        chance = next((r[f"{benchmark}/chance"] for r in rows + extra
                       if f"{benchmark}/chance" in r), 0.0)
        missing = [e["name"] for e in extra if nk not in e or ak not in e]
        if missing:
            raise ValueError(f"checkpoint(s) {missing} have no {nk} / {ak}: evaluate them with "
                             f"--tasks {benchmark} first")
        res["two_step"] = two_step(rows, nk, ak, chance, target, extra=extra)
        res["two_step"]["checkpoints"] = [{"name": e["name"], "nll": e[nk], "acc": e[ak]}
                                          for e in extra]
    if target and "loss_law" in res["isoflop"]:
        res["predicted_loss_at_target"] = power_law_predict(res["isoflop"]["loss_law"], target)
    return res


def compare(sweeps: list[str], target: float, metric: str = "loss") -> dict:
    """Which mix the fitted laws predict to be better at ``target`` compute. ``metric`` must be
    measured on the same data for both sweeps (e.g. ``bpb/<stream>`` from ``evaluate`` on a shared
    held-out set, or a benchmark's NLL); held-out loss of each mix's own stream is not comparable."""
    fits = {s: fit_isoflops(read_results(s), metric, bootstrap=0) for s in sweeps}
    pred = {}
    for s, f in fits.items():
        if "loss_law" in f:
            pred[s] = power_law_predict(f["loss_law"], target)
    best = min(pred, key=pred.get) if pred else None
    return {"metric": metric, "target": target, "predicted": pred, "better": best, "fits": fits}


def plot_sweep(sweep_dir: str | Path, out_png: str | Path, metric: str = "loss") -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = read_results(sweep_dir)
    fit = fit_isoflops(rows, metric, bootstrap=0)
    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    for b, rs in group_by_budget(rows, metric).items():
        rs = sorted(rs, key=lambda r: r["N"])
        line, = ax[0].plot([r["N"] for r in rs], [r[metric] for r in rs], "o", label=f"C={b:.0e}")
        pb = next((p for p in fit["budgets"] if p["budget"] == b), None)
        if pb:
            xs = np.linspace(math.log(rs[0]["N"]), math.log(rs[-1]["N"]), 50)
            ax[0].plot(np.exp(xs), Parabola(*pb["parabola_lnN"])(xs), "-", color=line.get_color())
    ax[0].set_xscale("log")
    ax[0].set_xlabel("N (flops per token / 6)")
    ax[0].set_ylabel(metric)
    ax[0].set_title("IsoFLOP profiles")
    ax[0].legend(fontsize=8)
    good = [p for p in fit["budgets"] if p["budget"] in fit.get("budgets_used", [])]
    if good:
        ax[1].loglog([p["flops"] for p in good], [p["N_opt"] for p in good], "o", label="N*")
        ax[1].loglog([p["flops"] for p in good], [p["D_opt"] for p in good], "s", label="D*")
        for key, lab in (("N_opt_law", "N*"), ("D_opt_law", "D*")):
            if key in fit:
                cs = np.array([good[0]["flops"], good[-1]["flops"]])
                ax[1].loglog(cs, fit[key]["coefficient"] * cs ** fit[key]["exponent"], "-",
                             label=f"{lab} ~ C^{fit[key]['exponent']:.2f}")
        ax[1].set_xlabel("C (FLOPs)")
        ax[1].legend(fontsize=8)
        ax[1].set_title("compute-optimal size and tokens")
    fig.tight_layout()
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return out_png


def _floats(s: str) -> list[float]:
    return [float(x) for x in s.split(",") if x.strip()]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m trainer.scaling", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sweep", help="train the IsoFLOP grid")
    s.add_argument("--data", required=True, help="mix directory (manifest.json, shards, heldout/)")
    s.add_argument("--out", required=True)
    s.add_argument("--budgets", required=True, help="comma-separated FLOP budgets, e.g. 3e10,1e11,3e11")
    s.add_argument("--sizes", type=int, default=4)
    s.add_argument("--dims", default=None, help="comma-separated widths instead of the automatic choice")
    s.add_argument("--batch-tokens", type=int, default=4096)
    s.add_argument("--lr", type=float, default=3e-3)
    s.add_argument("--device", default="cpu")
    s.add_argument("--dry-run", action="store_true", help="print the plan only")
    e = sub.add_parser("evaluate", help="benchmark scores of every finished run (the harness)")
    e.add_argument("--sweep", required=True)
    e.add_argument("--tasks", default="gsm8k_test,arc_easy")
    e.add_argument("--limit", type=int, default=None)
    f = sub.add_parser("fit", help="IsoFLOP fits, power laws, two-step prediction, plot")
    f.add_argument("--sweep", required=True)
    f.add_argument("--metric", default="loss")
    f.add_argument("--benchmark", default=None)
    f.add_argument("--nll-key", default=None)
    f.add_argument("--target", type=float, default=None)
    f.add_argument("--plot", default=None)
    f.add_argument("--checkpoint", action="append", default=[],
                   help="an evaluated checkpoint (e.g. the pipeline's model) added to the NLL -> "
                        "accuracy sigmoid; repeatable")
    c = sub.add_parser("compare", help="predict which of two sweeps' mixes is better at a target budget")
    c.add_argument("--sweep", action="append", required=True)
    c.add_argument("--target", type=float, required=True)
    c.add_argument("--metric", default="loss")
    a = ap.parse_args(argv)
    if a.cmd == "sweep":
        dims = [int(x) for x in a.dims.split(",")] if a.dims else None
        if a.dry_run:
            for r in plan(a.data, _floats(a.budgets), a.sizes, a.batch_tokens, dims):
                print(f"{r['name']}: dim {r['shape']['dim']} x {r['shape']['n_layers']} layers, N {r['N']:.3g}, "
                      f"{r['tokens']:,} tokens ({r['epochs']:.2f} epochs), {r['steps']} steps, C {r['flops']:.3g}")
            return 0
        rows = sweep(a.data, a.out, _floats(a.budgets), a.sizes, dims, a.batch_tokens, a.lr, a.device)
        print(json.dumps({"runs": len(rows)}, indent=1))
    elif a.cmd == "evaluate":
        evaluate_sweep(a.sweep, [t for t in a.tasks.split(",") if t], a.limit)
    elif a.cmd == "fit":
        res = fit_sweep(a.sweep, a.benchmark, a.nll_key, a.target, a.metric, a.checkpoint)
        if a.plot:
            res["plot"] = str(plot_sweep(a.sweep, a.plot, a.metric))
        (Path(a.sweep) / "fit.json").write_text(json.dumps(res, indent=1))
        print(json.dumps(res, indent=1))
    elif a.cmd == "compare":
        print(json.dumps(compare(a.sweep, a.target, a.metric), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
