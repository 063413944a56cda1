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

    # The same held-out pages scored by any recipe's model: documents and chunks (the examples
    # every recipe has) apart from single lines and sentences (LINE_SOURCES, newer recipes only).
    from classifiers.evaluation import roc_auc
    _, held = recipes.split(recipes.quality_default())
    for name, keep in (("documents and chunks", lambda e: e.source not in LINE_SOURCES),
                       ("single lines / sentences", lambda e: e.source in LINE_SOURCES)):
        ex = [e for e in held if keep(e)]
        sc = q.positive_scores([e.text for e in ex])
        print(f"held-out ROC-AUC on {name} (default recipe's split, n={len(ex):,}): "
              f"{roc_auc([e.label == 'hq' for e in ex], sc):.4f}")

    print("\n== quality probes (hand-written, in no training set; hq score)")
    for group, items in PROBES.items():
        scores = q.positive_scores(list(items.values()))
        for name, s in zip(items, scores):
            print(f"  {group:<11} {name:<28} {s:.3f}")
        print(f"  {group:<11} {'mean':<28} {sum(scores) / len(scores):.3f}")
    return 0


LINE_SOURCES = {"boilerplate-line", "main-sentence"}

PROBES = {
    "boilerplate": {
        "nav line": "Home | News | Sport | Impressum | Datenschutz | Kontakt | Newsletter | Login",
        "cookie banner (en)": "We use cookies to improve your experience. Accept all cookies. "
                              "Manage settings. Privacy policy.",
        "cookie banner (de)": "Wir verwenden Cookies, um Ihnen ein optimales Erlebnis auf unserer "
                              "Website zu bieten. Alle akzeptieren",
        "newsletter box": "Subscribe to our newsletter and never miss an update. Enter your "
                          "email address below.",
        "copyright footer": "© 2023 Example Media GmbH. All rights reserved. Terms of use | "
                            "Privacy | Contact",
        "share bar": "Share this article: Facebook Twitter LinkedIn Email Print",
        "comment notice": "This site uses Akismet to reduce spam. Learn how your comment data "
                          "is processed.",
    },
    "prose": {
        "biology": "The mitochondrion is the organelle in which cellular respiration takes "
                   "place, producing most of the cell's supply of ATP.",
        "history": "In 1869 Dmitri Mendeleev published a periodic table that ordered the "
                   "elements by atomic weight and predicted elements not yet discovered.",
        "geography (de)": "Die Elbe entspringt im Riesengebirge und mündet nach rund 1.100 "
                          "Kilometern bei Cuxhaven in die Nordsee.",
        "proof step": "To prove the claim, assume that n is even and write n = 2k for some "
                      "integer k; then n squared equals 4k squared, which is even.",
        "UDHR article 3 (en, trained)": "Everyone has the right to life, liberty and security "
                                        "of person.",
    },
}


if __name__ == "__main__":
    sys.exit(main())
