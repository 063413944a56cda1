"""Scaling laws (trainer/scaling.py): the fits recover known exponents from synthetic losses, the
two-step prediction recovers its power law and sigmoid, the mix comparison picks the better mix,
the shape rule reproduces the presets, and a real (tiny) sweep trains, records and resumes.

Synthetic losses follow Chinchilla's parametric form L(N, D) = E + A / N^alpha + B / D^beta with
its fitted constants (Hoffmann et al. 2022, eq. 10: E 1.69, A 406.4, B 410.7, alpha 0.34, beta
0.28). Along an IsoFLOP line (D = C / 6N) the optimum is N* ~ C^(beta / (alpha + beta)) = C^0.4516
and D* ~ C^0.5484. The parabola in ln N is an approximation of that curve, so the tolerance is
stated: 0.01 on the exponents with 9 sizes per budget spanning 16x around the optimum.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from fixtures.demo_mix import write_sweep_mix
from trainer import scaling as S

E, A, B, ALPHA, BETA = 1.69, 406.4, 410.7, 0.34, 0.28
A_EXP = BETA / (ALPHA + BETA)
B_EXP = ALPHA / (ALPHA + BETA)


def chinchilla_rows(budgets, noise=0.0, seed=0, e=E, sizes=9, span=4.0):
    rng = np.random.default_rng(seed)
    rows = []
    G = (ALPHA * A / (BETA * B)) ** (1 / (ALPHA + BETA))
    for c in budgets:
        n_true = G * (c / 6) ** A_EXP
        for n in np.geomspace(n_true / span, n_true * span, sizes):
            d = c / (6 * n)
            loss = e + A / n ** ALPHA + B / d ** BETA + (rng.normal(0, noise) if noise else 0.0)
            rows.append({"name": f"{c:.0e}_{n:.3g}", "budget": c, "flops": c, "N": float(n), "tokens": float(d),
                         "loss": float(loss)})
    return rows


BUDGETS = [1e18, 1e19, 1e20, 1e21, 1e22]


def test_isoflop_fits_recover_chinchilla_exponents():
    fit = S.fit_isoflops(chinchilla_rows(BUDGETS), bootstrap=0)
    assert all(p["vertex_inside"] and p["curvature"] > 0 for p in fit["budgets"])
    assert abs(fit["N_opt_law"]["exponent"] - A_EXP) < 0.01
    assert abs(fit["D_opt_law"]["exponent"] - B_EXP) < 0.01
    # C = 6 N D along the optimum: the two exponents add up to ~1
    assert abs(fit["N_opt_law"]["exponent"] + fit["D_opt_law"]["exponent"] - 1) < 0.02


def test_isoflop_fit_with_noise_has_honest_intervals():
    """With noise on the losses the bootstrap interval (models resampled within each budget)
    covers the true exponent for every seed tried; it is not vacuous (a wrong exponent is outside).
    The least-squares interval reflects only the scatter of the per-budget optima around the line
    and is narrower (it missed the truth for one of five seeds when this was written)."""
    for seed in range(4):
        fit = S.fit_isoflops(chinchilla_rows(BUDGETS, noise=0.003, seed=seed), bootstrap=200, seed=1)
        blo, bhi = fit["bootstrap"]["N_exponent_ci"]
        assert blo < A_EXP < bhi and bhi - blo < 0.1, (seed, blo, bhi)
        dlo, dhi = fit["bootstrap"]["D_exponent_ci"]
        assert dlo < B_EXP < dhi
        assert not (blo < A_EXP + 0.1 < bhi)
        assert "ci" in fit["N_opt_law"] and fit["N_opt_law"]["stderr"] > 0


def test_power_law_and_sigmoid_two_step():
    rng = np.random.default_rng(0)
    cs = np.geomspace(1e18, 1e22, 6)
    k_true, x0_true, hi_true, chance = 25.0, 0.76, 0.9, 0.25   # x0 inside the NLL range (0.66-0.87)
    pts = []
    for i, c in enumerate(cs):
        for j, f in enumerate((0.5, 1.0, 2.0)):     # three models per budget; the middle one is the best
            nll = 3.0 * c ** -0.03 * (1.0 + 0.02 * abs(j - 1))
            acc = float(S.sigmoid_acc(nll, k_true, x0_true, hi_true, chance) + rng.normal(0, 0.004))
            pts.append({"budget": c, "flops": c, "loss": 2.0 + abs(j - 1), "bench/nll": nll, "bench/acc": acc})
    res = S.two_step(pts, "bench/nll", "bench/acc", chance, target=1e24)
    assert abs(res["nll_law"]["exponent"] + 0.03) < 1e-9
    s = res["sigmoid"]
    assert s["ok"] and s["determined"] and abs(s["k"] - k_true) / k_true < 0.15 and abs(s["x0"] - x0_true) < 0.02
    nll24 = 3.0 * 1e24 ** -0.03
    assert abs(res["target"]["nll"] - nll24) < 1e-9
    assert abs(res["target"]["acc"] - S.sigmoid_acc(nll24, k_true, x0_true, hi_true, chance)) < 0.03


def test_fit_adds_evaluated_checkpoints_to_the_sigmoid(tmp_path):
    """Llama 3 fits NLL -> accuracy on the sweep's models and larger checkpoints (section 3.2.1):
    `fit --checkpoint DIR` adds a checkpoint's harness results (its eval/results.json). Here the
    sweep's models are all near chance, so only the larger checkpoints determine the sigmoid."""
    k_true, x0_true, hi_true, chance = 12.0, 1.0, 0.9, 0.25
    sweep = tmp_path / "sw"
    sweep.mkdir()
    rows, evals = [], {}
    for i, c in enumerate((1e10, 1e11, 1e12)):
        for j in range(3):
            name = f"m{i}{j}"
            nll = 2.0 - 0.1 * i + 0.02 * abs(j - 1)
            n = 1e5 * 2 ** j
            rows.append({"name": name, "budget": c, "flops": c, "N": n, "tokens": c / (6 * n),
                         "loss": 5.0 - 0.3 * i + 0.1 * abs(j - 1)})
            evals[name] = {"bench/nll_per_char": nll, "bench/chance": chance,
                           "bench/acc": float(S.sigmoid_acc(nll, k_true, x0_true, hi_true, chance))}
    (sweep / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (sweep / "evals.json").write_text(json.dumps(evals))
    alone = S.fit_sweep(sweep, benchmark="bench")["two_step"]
    assert alone["sigmoid_points"] == 9 and not alone["sigmoid"]["determined"]
    cks = []
    for n, nll in enumerate((1.3, 1.1, 1.0, 0.9, 0.7, 0.5)):
        d = tmp_path / f"big{n}" / "final"
        (d / "eval").mkdir(parents=True)
        (d / "model.pt").write_bytes(b"")          # resolve() needs the file, nothing reads it
        acc = float(S.sigmoid_acc(nll, k_true, x0_true, hi_true, chance))
        (d / "eval" / "results.json").write_text(json.dumps({"tasks": {"bench": {
            "n": 500, "nll_per_char": nll, "acc": acc, "chance": chance, "kind": "mc"}}}))
        cks.append(str(d.parent))
    both = S.fit_sweep(sweep, benchmark="bench", checkpoints=cks)["two_step"]
    assert both["sigmoid_points"] == 15 and [c["name"] for c in both["checkpoints"]] == cks
    s = both["sigmoid"]
    assert s["determined"] and abs(s["x0"] - x0_true) < 0.02 and abs(s["k"] - k_true) / k_true < 0.05
    other = tmp_path / "other" / "final"
    (other / "eval").mkdir(parents=True)
    (other / "model.pt").write_bytes(b"")
    (other / "eval" / "results.json").write_text(json.dumps({"tasks": {"piqa": {"acc": 0.5}}}))
    with pytest.raises(ValueError, match="evaluate them with --tasks bench"):
        S.fit_sweep(sweep, benchmark="bench", checkpoints=[str(other.parent)])


def test_compare_picks_the_better_mix(tmp_path):
    for name, e in (("A", 1.80), ("B", 1.69)):
        d = tmp_path / name
        d.mkdir()
        (d / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in chinchilla_rows(BUDGETS[:3], e=e)))
    res = S.compare([str(tmp_path / "A"), str(tmp_path / "B")], target=1e23)
    assert res["better"] == str(tmp_path / "B")
    assert res["predicted"][str(tmp_path / "B")] < res["predicted"][str(tmp_path / "A")]


def test_ladder_reproduces_the_presets():
    from trainer.model import PRESETS
    for name in ("tiny", "20M"):
        p, s = PRESETS[name], S.ladder_shape(PRESETS[name]["dim"])
        assert (s["n_layers"], s["n_heads"]) == (p["n_layers"], p["n_heads"])
    sizes = [S.model_size(S.ladder_shape(d), 2176, 128)["N"] for d in S.LADDER_DIMS[:6]]
    assert sizes == sorted(sizes)


def test_small_vocabulary_tokenizer_is_a_prefix_of_cl100k():
    from core.tokenizer import get_tokenizer
    full, small = get_tokenizer(), get_tokenizer("cl100k_base@2048+llama3")
    text = "The answer is 42. def f(x): return x * 2"
    ids = small.encode(text)
    assert small.decode(ids) == text and max(ids) < 2048 and len(ids) >= len(full.encode(text))
    assert small.vocab_size == 2176 and small.eot_id == 2049
    with pytest.raises(Exception):
        get_tokenizer("cl100k_base@10+llama3")


def test_real_sweep_trains_records_and_resumes(tmp_path, corpus):
    """One budget, three widths, on a small mix from the sample corpus (real tokens)."""
    write_sweep_mix(corpus, tmp_path / "mix", per_source=60, max_chars=600, heldout_per_source=5)
    logs: list[str] = []
    rows = S.sweep(tmp_path / "mix", tmp_path / "sw", [4e8], dims=[16, 24, 32], batch_tokens=1024, lr=1e-2,
                   log=logs.append)
    assert len(rows) == 3 and all(math.isfinite(r["loss"]) for r in rows)
    for r in rows:
        assert abs(r["flops"] - 4e8) <= r["flops_per_token"] * 1024     # within one batch of the budget
        assert (tmp_path / "sw" / "runs" / r["name"] / "final" / "model.pt").is_file()
    again: list[str] = []
    rows2 = S.sweep(tmp_path / "mix", tmp_path / "sw", [4e8], dims=[16, 24, 32], batch_tokens=1024, lr=1e-2,
                    log=again.append)
    assert again == [] and [r["loss"] for r in rows2] == [r["loss"] for r in rows]
    fit = S.fit_sweep(tmp_path / "sw")
    assert fit["models"] == 3 and len(fit["isoflop"]["budgets"]) == 1
    png = S.plot_sweep(tmp_path / "sw", tmp_path / "sw" / "isoflop.png")
    assert png.stat().st_size > 1000


def test_budget_without_an_interior_minimum_is_left_out():
    """Sizes all far above the optimum: the parabola's vertex is an extrapolation and the budget
    does not enter the power laws."""
    rows = chinchilla_rows(BUDGETS[:3])
    shifted = [dict(r, budget=1e23, flops=1e23, name="x" + r["name"]) for r in chinchilla_rows([1e23], span=1.5)]
    for r in shifted:          # the same models trained on 1/1000 of the tokens: all too big
        r["N"] *= 30.0
        r["tokens"] = 1e23 / (6 * r["N"])
        r["loss"] = E + A / r["N"] ** ALPHA + B / r["tokens"] ** BETA
    fit = S.fit_isoflops(rows + shifted, bootstrap=0)
    assert 1e23 not in fit["budgets_used"] and len(fit["budgets_used"]) == 3
    assert not next(p for p in fit["budgets"] if p["budget"] == 1e23)["vertex_inside"]
    assert abs(fit["N_opt_law"]["exponent"] - A_EXP) < 0.01
