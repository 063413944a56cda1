"""Language-ID accuracy (fastText lid.176 through curation.filters.langid) on the sample corpus.

    python benchmarks/classifiers_langid.py [--per-lang 1000] [--threshold 0.65]

* Tatoeba: up to `--per-lang` sentences for each of the 112 languages (and their English sides).
* UDHR: one document per translation (532), language from the `lang` attribute.

Languages map to lid.176 labels through the ISO 639-3 -> BCP 47 pairs found in the UDHR files
themselves, plus a few macro-language aliases below; a language lid.176 does not know is counted
apart ("unsupported"), never as a hit. Accuracy counts `unknown` (score below the threshold) as
wrong; the top-1 accuracy without the threshold is printed beside it.

Per-language thresholds (FineWeb-2's rule, curation/filters/lang_thresholds.py, as the filter stage
computes them): from the scores of ALL Tatoeba sentences (every language, supported or not, and the
English sides: the corpus as a filter run would see it, no labels used), grouped by top label, for
labels with >= 50 sentences; other labels keep --threshold. Printed: accuracy, the share labelled
`unknown`, and the share given a WRONG language (what a threshold is for), fixed vs per-language.
"""
from __future__ import annotations

import argparse
import gzip
import os
import re
import sys
import time
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from curation.filters import langid  # noqa: E402
from core.paths import corpus_dir  # noqa: E402

# ISO 639-3 codes (Tatoeba) whose lid.176 label the UDHR files do not give.
ALIASES = {"ara": "ar", "arq": "ar", "aze": "az", "est": "et", "kur": "ku", "mon": "mn",
           "sqi": "sq", "uzb": "uz", "yid": "yi", "zsm": "ms", "cor": "kw", "ile": "ie",
           "nb": "no", "nob": "no", "arz": "arz", "mhr": "mhr", "pms": "pms", "dsb": "dsb",
           "swg": "als", "yue": "yue", "wuu": "wuu", "cmn": "zh", "zh-Hant": "zh"}


def udhr_docs(base):
    out = []
    for f in sorted(os.listdir(base)):
        raw = gzip.open(os.path.join(base, f)).read().decode("utf-8", "replace")
        a = re.search(r'data-iso6393="([^"]+)"', raw)
        b = re.search(r'<html[^>]* lang="([^"]+)"', raw)
        body = re.sub(r"<[^>]+>", " ", raw.split("<body", 1)[-1])
        out.append((a.group(1) if a else "und", b.group(1) if b else "und", body))
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-lang", type=int, default=1000)
    ap.add_argument("--threshold", type=float, default=langid.DEFAULT_THRESHOLD)
    args = ap.parse_args()
    corpus = corpus_dir()
    labels = {lab.replace("__label__", "") for lab in langid.load_lid_model().get_labels()}
    udhr = udhr_docs(corpus / "multilingual" / "udhr" / "declaration")
    iso3_to_tag: dict = defaultdict(set)
    for iso3, tag, _ in udhr:
        iso3_to_tag[iso3].add(tag.split("-")[0])

    def lid_label(code: str) -> str | None:
        for c in [ALIASES.get(code), code, *sorted(iso3_to_tag.get(code, ()), key=len)]:
            if c and ALIASES.get(c, c) in labels:
                return ALIASES.get(c, c)
        return None

    # ---- Tatoeba
    tdir = corpus / "multilingual" / "tatoeba"
    langs = sorted({f.split(".")[1].split("-")[0] for f in os.listdir(tdir) if f.startswith("tatoeba.")})
    rows, unsupported = [], []
    hits = tot = hits_top1 = 0
    eng_hits = eng_tot = 0
    t0 = time.time()
    n_pred = 0
    pooled_lab, pooled_score = [], []       # every prediction: the corpus the thresholds come from
    kept = []                               # (want, [(label, score)]) of the supported languages
    for code in langs:
        want = lid_label(code)
        sents = (tdir / f"tatoeba.{code}-eng.{code}").read_text(encoding="utf-8").splitlines()[:args.per_lang]
        eng = (tdir / f"tatoeba.{code}-eng.eng").read_text(encoding="utf-8").splitlines()[:args.per_lang]
        raw = langid.detect_languages(sents, threshold=0.0)
        n_pred += len(sents) + len(eng)
        got = [(lab if s >= args.threshold else "unknown") for lab, s in raw]
        e_raw = langid.detect_languages(eng, threshold=0.0)
        for lab, sc in raw + e_raw:
            pooled_lab.append(lab)
            pooled_score.append(sc)
        kept.append(("en", e_raw))
        if want is not None:
            kept.append((want, raw))
        e = [(lab if sc >= args.threshold else "unknown", sc) for lab, sc in e_raw]
        eng_hits += sum(lab == "en" for lab, _ in e)
        eng_tot += len(e)
        if want is None:
            unsupported.append(code)
            continue
        h = sum(g == want for g in got)
        h1 = sum(lab == want for lab, _ in raw)
        rows.append((code, want, len(sents), h / len(sents), h1 / len(sents)))
        hits += h
        hits_top1 += h1
        tot += len(sents)
    secs = time.time() - t0
    print(f"== Tatoeba: {len(langs)} languages, {len(rows)} supported by lid.176, threshold {args.threshold}")
    print(f"overall accuracy (supported, {tot:,} sentences): {hits / tot:.4f}   top-1 without threshold: {hits_top1 / tot:.4f}")
    print(f"mean per-language accuracy: {sum(r[3] for r in rows) / len(rows):.4f}")
    print(f"English sides ({eng_tot:,} sentences): {eng_hits / eng_tot:.4f}")
    print(f"unsupported ({len(unsupported)}): {' '.join(unsupported)}")
    print(f"speed: {n_pred / secs:,.0f} sentences/s on one core (machine shared)")
    print("per language (iso3 -> lid label: accuracy [top-1]):")
    for code, want, n, acc, acc1 in sorted(rows, key=lambda r: -r[3]):
        print(f"  {code}->{want}: {acc:.3f} [{acc1:.3f}] n={n}")

    # ---- per-language thresholds (FineWeb-2) vs one fixed threshold
    from curation.filters.lang_thresholds import compute_thresholds
    th = compute_thresholds(pooled_lab, pooled_score, min_docs=50)

    def score_sets(sets, tau) -> tuple[float, float, float, int]:
        n = ok = unk = wrong = 0
        for want, preds in sets:
            for lab, sc in preds:
                n += 1
                if sc < tau(lab):
                    unk += 1
                elif lab == want:
                    ok += 1
                else:
                    wrong += 1
        return ok / n, unk / n, wrong / n, n

    fixed = lambda lab: args.threshold  # noqa: E731
    per = lambda lab: th.get(lab, args.threshold)  # noqa: E731
    nonen = [k for k in kept if k[0] != "en"]
    print(f"\n== Tatoeba with FineWeb-2 per-language thresholds ({len(th)} labels with >= 50 "
          f"sentences; others {args.threshold}); e.g. " + ", ".join(f"{k} {th[k]:.2f}" for k in
                                                                   ("en", "de", "fr", "es", "pl", "bs", "hr", "sr", "id", "ms")
                                                                   if k in th))
    for name, sets in (("supported languages (non-English sides)", nonen), ("English sides", [k for k in kept if k[0] == "en"])):
        for tname, tau in (("fixed " + str(args.threshold), fixed), ("per-language", per), ("none (top-1)", lambda lab: 0.0)):
            acc, unk, wrong, n = score_sets(sets, tau)
            print(f"  {name}, threshold {tname}: accuracy {acc:.4f}, unknown {unk:.4f}, wrong language {wrong:.4f} (n={n:,})")

    # ---- UDHR
    uh = ut = uh_per = 0
    per = []
    skipped = 0
    for iso3, tag, body in udhr:
        want = lid_label(tag.split("-")[0]) or lid_label(iso3)
        if want is None:
            skipped += 1
            continue
        lab, s = langid.detect_languages([body], threshold=0.0)[0]
        per.append((iso3, want, lab if s >= args.threshold else "unknown", s))
        uh += lab == want and s >= args.threshold
        uh_per += lab == want and s >= th.get(lab, args.threshold)
        ut += 1
    print(f"\n== UDHR: {len(udhr)} documents, {ut} in a language lid.176 knows ({skipped} others)")
    print(f"accuracy: {uh / ut:.4f} (threshold {args.threshold}); with Tatoeba's per-language thresholds "
          f"{uh_per / ut:.4f}")
    wrong = [p for p in per if p[1] != p[2]]
    print("misses (iso3 want -> got score): " + ", ".join(f"{a} {b}->{c} {d:.2f}" for a, b, c, d in wrong[:40]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
