"""The mix report: target vs achieved shares, windowed deviation, epochs, truncation, drops."""
from __future__ import annotations

import numpy as np

from mixer.interleave import prefix_deviation, window_deviation


def mix_report(stage: str, plan, order: np.ndarray, per_source: list[dict], window_rows: int,
               heldout: dict) -> dict:
    """`per_source[i]`: counters of source i (documents, truncated, tokens_dropped, ...)."""
    n = len(order)
    rows = [int(np.sum(order == i)) for i in range(len(plan.sources))]
    win = window_deviation(order, [s.target_rows for s in plan.sources], window_rows)
    srcs = []
    for i, s in enumerate(plan.sources):
        srcs.append({
            "name": s.name, "category": s.category,
            "target_share": s.share,
            "achieved_share": rows[i] / n if n else 0.0,
            "target_tokens": s.target_tokens, "tokens": rows[i] * plan.seq_len,
            "max_window_deviation": win[i],
            "epochs": s.epochs, "max_epochs": s.max_epochs, "passes": s.passes,
            "available_tokens": s.available_tokens,
            **per_source[i],
        })
    cats: dict[str, dict] = {}
    for x in srcs:
        c = cats.setdefault(x["category"], {"target_share": 0.0, "achieved_share": 0.0,
                                            "tokens": 0})
        c["target_share"] += x["target_share"]
        c["achieved_share"] += x["achieved_share"]
        c["tokens"] += x["tokens"]
    return {
        "stage": stage,
        "n_rows": n, "seq_len": plan.seq_len, "total_tokens": n * plan.seq_len,
        "requested_tokens": plan.requested_tokens, "rescaled": plan.rescaled,
        "window_rows": window_rows,
        "max_abs_share_error": max((abs(x["achieved_share"] - x["target_share"]) for x in srcs),
                                   default=0.0),
        "max_window_deviation": max(win.values(), default=0.0),
        "max_prefix_deviation_rows": prefix_deviation(order, [s.target_rows for s in plan.sources]),
        "documents_truncated": sum(x.get("documents_truncated", 0) for x in srcs),
        "tokens_truncated": sum(x.get("tokens_truncated", 0) for x in srcs),
        "tokens_dropped": sum(x.get("tokens_dropped", 0) for x in srcs),
        "categories": cats,
        "sources": srcs,
        "heldout": heldout,
    }


def format_report(r: dict) -> str:
    lines = [f"mix {r['stage']}: {r['n_rows']:,} rows x {r['seq_len']} = {r['total_tokens']:,} tokens"
             + (" (rescaled)" if r["rescaled"] else ""),
             f"  {'source':<24}{'cat':<13}{'target':>8}{'achieved':>9}{'win dev':>9}"
             f"{'epochs':>8}{'docs':>9}{'trunc':>7}{'dropped':>9}"]
    for x in r["sources"]:
        lines.append(f"  {x['name']:<24}{x['category']:<13}{x['target_share']:>8.4f}"
                     f"{x['achieved_share']:>9.4f}{x['max_window_deviation']:>9.4f}"
                     f"{x['epochs']:>8.2f}{x.get('documents', 0):>9,}"
                     f"{x.get('documents_truncated', 0):>7,}{x.get('tokens_dropped', 0):>9,}")
    lines.append(f"  largest |achieved - target| share {r['max_abs_share_error']:.2e}; largest "
                 f"deviation in a {r['window_rows']}-row window {r['max_window_deviation']:.4f}; "
                 f"largest prefix deviation {r['max_prefix_deviation_rows']:.3f} rows")
    h = r.get("heldout") or {}
    if h:
        lines.append(f"  heldout: {h.get('n_rows', 0):,} rows "
                     + ", ".join(f"{k} {v:,}" for k, v in h.get("rows", {}).items()))
    return "\n".join(lines)
