"""The report's HTML: one static page, a section per question, each either its plots and tables
or a "not available" line with the reason. A small inline script records, once the page has
loaded, how many plots loaded (`data-loaded` on each <img>, a summary in #plots-status), which
the headless-browser test reads from the DOM."""
from __future__ import annotations

import datetime as dt
import html
import json
import os

SECTIONS = [  # (id, heading, data key, figure key)
    ("flow", "Documents and bytes through each stage", "flow", "flow"),
    ("removals", "Removals by reason", "removals", "removals"),
    ("contamination", "Decontamination per benchmark", "contamination", "contamination"),
    ("signals", "Filter signals with thresholds", "signals", "signals"),
    ("languages", "Languages", "categorical", "langs"),
    ("streams", "Streams", "categorical", "streams"),
    ("quality", "Quality-score distribution", "categorical", "quality"),
    ("mix", "Target vs achieved mix", "mixes", "mixes"),
    ("training", "Training and held-out loss per stream", "training", "training"),
    ("lr", "Learning-rate schedule", "training", "lr"),
    ("evaluation", "Downstream evaluation and scaling laws", "evaluation", "evaluation"),
]

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}td,th{border:1px solid #ddd;padding:.2em .5em;text-align:right}
td:first-child,th:first-child{text-align:left}.na{color:#a33;font-style:italic}
.grid{display:flex;flex-wrap:wrap;gap:6px}img{max-width:100%}.ex{font-family:monospace;font-size:.8em;color:#555;text-align:left}
nav a{margin-right:1em}small{color:#777}
"""

SCRIPT = """
window.addEventListener('load', function () {
  var imgs = document.querySelectorAll('img'), ok = 0;
  imgs.forEach(function (im) {
    im.setAttribute('data-loaded', im.complete ? im.naturalWidth : 0);
    if (im.complete && im.naturalWidth > 0) ok++;
  });
  var s = document.getElementById('plots-status');
  s.textContent = ok + ' of ' + imgs.length + ' plots loaded';
  s.setAttribute('data-ok', ok); s.setAttribute('data-total', imgs.length);
});
"""


def esc(x) -> str:
    return html.escape(str(x))


def _num(v) -> str:
    if isinstance(v, float) and not v.is_integer():
        return f"{v:,.4f}"
    try:
        return f"{int(v):,}"
    except (TypeError, ValueError):
        return esc(v)


def table(header: list[str], rows: list[list]) -> str:
    h = "".join(f"<th>{esc(c)}</th>" for c in header)
    body = "".join("<tr>" + "".join(f"<td>{c if isinstance(c, Markup) else _num(c)}</td>"
                                    for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{h}</tr>{body}</table>"


class Markup(str):
    """Already-escaped HTML inside a table cell."""


def imgs(names: list[str]) -> str:
    return '<div class="grid">' + "".join(
        f'<img src="{esc(n)}" alt="{esc(n)}" loading="eager">' for n in names) + "</div>"


def _body(sid: str, data: dict, figs: list[str]) -> str:
    if sid == "flow":
        return imgs(figs) + table(["stage output", "documents", "bytes of text"],
                                  [[r["stage"], r["documents"], r["bytes"]] for r in data["rows"]])
    if sid == "removals":
        parts = [imgs(figs)]
        for g in data["groups"]:
            rows = [[k, v, Markup("<br>".join(esc(e) for e in g["examples"].get(k, [])) or "")]
                    for k, v in list(g["counts"].items())[:40]]
            parts.append(f"<h3>{esc(g['stage'])}</h3>" + table(["reason", "count", "examples"], rows)
                         .replace("<td>", '<td>', 1))
        return "".join(parts).replace("<td><br>", "<td>")
    if sid == "contamination":
        tot = data["totals"]
        return (imgs(figs) + f"<p>{_num(tot.get('docs.contaminated', 0))} of "
                f"{_num(tot.get('docs.in', 0))} documents matched an evaluation item "
                f"({_num(tot.get('index.ngrams', 0))} n-grams indexed); "
                f"{_num(tot.get('chars.removed', 0))} characters removed; dropped: "
                f"{_num(tot.get('dropped.too_many_pieces', 0))} in too many pieces, "
                f"{_num(tot.get('dropped.too_short', 0))} too short, "
                f"{_num(tot.get('dropped.contaminated', 0))} whole (drop mode).</p>"
                + table(["benchmark", "items", "too short to check", "contaminated documents",
                         "items found"],
                        [[r["benchmark"], r["items"], r["unchecked"], r["docs"], r["items_found"]]
                         for r in data["rows"]])
                + "<h3>Contaminated documents by training source</h3>"
                + table(["benchmark", "source", "documents"], data["by_source"])
                + "<h3>Matches with the largest overlap</h3>"
                + table(["benchmark", "item", "source", "matched n-grams", "overlap", "action"],
                        [[b, Markup(esc(i)), src, m, o, a] for b, i, src, m, o, a
                         in data["examples"]]))
    if sid == "signals":
        n_thr = sum(1 for c in data["hists"] if c in data["thresholds"])
        return (f"<p>{len(data['hists'])} signal columns of the filtered table; {n_thr} with the "
                "filter's thresholds drawn (dashed). Ranges clipped at the 99th percentile.</p>"
                + imgs(figs))
    if sid == "languages":
        if "langs" not in data:
            raise KeyError("no lang column")
        return imgs(figs) + table(["language", "documents"], data["langs"])
    if sid == "streams":
        if "streams" not in data:
            raise KeyError("no stream column")
        tot = sum(x[1] for x in data["streams"]) or 1
        return imgs(figs) + table(["stream", "documents", "bytes", "share of documents"],
                                  [[s, n, b, f"{n / tot:.1%}"] for s, n, b in data["streams"]])
    if sid == "quality":
        if "quality" not in data:
            raise KeyError("no quality column")
        return imgs(figs)
    if sid == "mix":
        parts = [imgs(figs)]
        for name, r in data.items():
            parts.append(f"<h3>{esc(name)}: {r.get('n_rows', 0):,} rows x {r.get('seq_len')} = "
                         f"{r.get('total_tokens', 0):,} tokens{' (rescaled)' if r.get('rescaled') else ''}</h3>")
            parts.append(table(["source", "category", "target share", "achieved share", "tokens",
                                "epochs", "documents"],
                               [[s["name"], s["category"], s["target_share"], s["achieved_share"],
                                 s.get("tokens", 0), s.get("epochs", 0), s.get("documents", 0)]
                                for s in r.get("sources", [])]))
            parts.append(f"<p><small>largest |achieved - target| {r.get('max_abs_share_error', 0):.2e};"
                         f" largest deviation in a {r.get('window_rows')}-row window "
                         f"{r.get('max_window_deviation', 0):.4f}</small></p>")
        return "".join(parts)
    if sid == "training":
        last = data["train"][-1]
        return imgs(figs) + (f"<p>{len(data['train'])} logged steps, {len(data['eval'])} evaluations; "
                             f"last train loss {last.get('loss', float('nan')):.4f} at step "
                             f"{last.get('step')}. Source: <code>{esc(data['path'])}</code></p>")
    if sid == "evaluation":
        parts = []
        if data.get("rows"):
            parts.append(table(data["header"], data["rows"]))
        for name, fit in data.get("fits", {}).items():
            rows = [[f"{p['budget']:.3g}", p["models"], f"{p['N_opt']:.4g}", f"{p['D_opt']:.4g}",
                     f"{p['loss_opt']:.4f}"] for p in fit.get("budgets", [])]
            parts.append(f"<p>IsoFLOP sweep <code>{esc(name)}</code></p>" +
                         table(["budget (FLOPs)", "models", "N*", "D*", "loss at N*"], rows))
            for key, lab in (("N_opt_law", "N* ~ C^a"), ("D_opt_law", "D* ~ C^b")):
                if key in fit:
                    law = fit[key]
                    ci = law.get("ci")
                    parts.append(f"<p>{esc(lab)}: exponent {law['exponent']:.3f}" +
                                 (f" (95% interval {ci[0]:.3f} to {ci[1]:.3f})" if ci else "") + "</p>")
        return imgs(figs) + "".join(parts)
    if sid == "lr":
        if not figs:
            raise KeyError("the metrics hold no lr")
        return imgs(figs)
    raise KeyError(sid)


def _pipeline_state(cfg: dict) -> str:
    from pipeline.config import work_path
    from pipeline.runner import STATE_FILE
    p = work_path(cfg, STATE_FILE)
    if not os.path.isfile(p):
        return '<p class="na">not available: no pipeline state file yet</p>'
    st = json.load(open(p)).get("stages", {})
    rows = [[k, v.get("status", ""), v.get("seconds", ""), v.get("finished_at", "")]
            for k, v in st.items()]
    return table(["stage", "status", "seconds (last run)", "finished"], rows)


def render(sec: dict, figs: dict[str, list[str]], cfg: dict) -> str:
    out = ["<!doctype html><html lang='en'><head><meta charset='utf-8'>",
           "<title>Curation pipeline report</title>", f"<style>{CSS}</style></head><body>",
           "<h1>Curation pipeline report</h1>",
           f"<p><small>work dir <code>{esc(cfg.get('work_dir'))}</code>; generated "
           f"{dt.datetime.now(dt.timezone.utc).isoformat(timespec='seconds')}; "
           "<span id='plots-status'>plots not checked</span></small></p>",
           "<nav>" + "".join(f"<a href='#{s}'>{esc(h)}</a>" for s, h, _, _ in SECTIONS) + "</nav>",
           "<section id='pipeline'><h2>Pipeline stages</h2>" + _pipeline_state(cfg) + "</section>"]
    for sid, heading, key, fkey in SECTIONS:
        data = sec.get(key, {"na": "not collected"})
        if "na" in data:
            body = f'<p class="na">not available: {esc(data["na"])}</p>'
        else:
            try:
                body = _body(sid, data, figs.get(fkey, []))
            except (KeyError, IndexError) as e:
                body = f'<p class="na">not available: {esc(e.args[0] if e.args else e)}</p>'
        out.append(f"<section id='{sid}'><h2>{esc(heading)}</h2>{body}</section>")
    out.append(f"<script>{SCRIPT}</script></body></html>")
    return "\n".join(out)
