"""Held-out quality and domain metrics of the trained models, and the crawl check.

    python benchmarks/classifiers_models.py [--quality models/quality] [--domain models/domain]

The held-out figures are the ones computed at training time on the stable-hash held-out split
(classifiers/recipes.py) and saved in each model's metadata.json; this script prints them, checks
the metadata (hash, fields), and re-scores the crawl pages about code or maths
(recipes.CRAWL_CHECK, never trained on) with the domain model. It also prints the quality score
distribution of held-out sources and a few hand-made probes.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from classifiers import recipes  # noqa: E402
from classifiers.fasttext_model import load_model  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quality", default="models/quality")
    ap.add_argument("--domain", default="models/domain")
    args = ap.parse_args()
    q = load_model(args.quality, kind="quality")
    d = load_model(args.domain, kind="domain")

    m = q.meta
    qm = m["metrics"]
    print(f"== quality model {args.quality} ({m['model_bytes'] / 1e6:.1f} MB, {m['code_version']})")
    print(f"training examples {m['training_data']['n_train']:,}, held out {m['training_data']['n_heldout']:,} "
          f"{qm['heldout_per_label']}")
    print(f"held-out ROC-AUC: {qm['heldout_roc_auc']:.4f}")
    t = qm["at_threshold"]
    print(f"at threshold {t['threshold']}: precision {t['precision']:.4f} recall {t['recall']:.4f} "
          f"F1 {t['f1']:.4f} accuracy {t['accuracy']:.4f}")
    print("mean held-out hq score by source:")
    for src, v in qm["by_source"].items():
        print(f"  {src:<18} n={v['n']:<5} {v['mean_score']:.3f}")

    m = d.meta
    dm = m["metrics"]
    print(f"\n== domain model {args.domain} ({m['model_bytes'] / 1e6:.1f} MB, {m['code_version']})")
    print(f"training examples {m['training_data']['n_train']:,}, held out {m['training_data']['n_heldout']:,}; "
          f"sources {m['training_data']['per_source']}")
    print(f"held-out accuracy: {dm['heldout']['accuracy']:.4f}")
    for lab, v in dm["heldout"]["classes"].items():
        print(f"  {lab:<8} precision {v['precision']:.4f} recall {v['recall']:.4f} support {v['support']}")
    print("  confusion (row = truth): " + json.dumps(dm["heldout"]["confusion"]))

    check = recipes.crawl_check()
    got = d.predict([t for _, _, t in check])
    print(f"\n== crawl pages about code or maths (not trained on): "
          f"{sum(w == lab for (_, w, _), (lab, _) in zip(check, got))}/{len(check)} recognised")
    probs = d.predict_proba([t for _, _, t in check])
    for (url, want, _), (lab, s), p in zip(check, got, probs):
        scores = " ".join(f"{k}={v:.2f}" for k, v in zip(d.labels, p))
        print(f"  {'OK ' if lab == want else 'MISS'} want {want:<5} got {lab:<8} {scores}  {url}")

    probes = {
        "nav boilerplate": "Home | News | Sport | Impressum | Datenschutz | Kontakt | Newsletter | Login",
        "cookie banner": "We use cookies to improve your experience. Accept all cookies. Manage settings. Privacy policy.",
        "UDHR article 3 (en)": "Everyone has the right to life, liberty and security of person.",
    }
    print("\n== quality probes")
    for name, s in zip(probes, q.positive_scores(list(probes.values()))):
        print(f"  {name:<22} {s:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
