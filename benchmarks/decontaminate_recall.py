"""Decontamination on real documents: recall on planted benchmark items, false positives on the
clean sample corpus, and the stage's throughput against dedup on the same table, same run.

Clean corpus (what the pipeline trains on, from the sample corpus): web pages of the annotated
crawl (trafilatura main text), TheAlgorithms code files, GSM8K train, and the MATH training split
(MATH's test file minus MATH500). Planted: `--per-set` items of every registered evaluation set,
each re-formatted without paraphrase (curation/decontaminate/samples.py: plain, upper case,
whitespace runs and blank lines, punctuation removed/added, split across lines, markdown) and
inserted at a paragraph boundary of a copy of a web page. The truth: which item went where.

Recall: planted documents whose item is found (a row for (doc, benchmark, item) in the
`_contamination` table), per set and per re-formatting. False positives: matched documents that
are not planted copies; each is printed with its matched item, overlap and the shared text so it
can be inspected (some are genuine: the MATH training split shares templated problems with
MATH500, GSM8K train a few sentences with GSM8K test).

Throughput: `run_dedup` and `run_decontaminate` (default config) on the same Delta table, one
after the other in the same Spark session; the ratio is the figure (the machine is shared).

    python benchmarks/decontaminate_recall.py [--pages 300] [--code 1000] [--per-set 20] [--ngram 13]
"""
import os, sys; sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # noqa: E401,E702

import argparse  # noqa: E402
import collections  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

import evalsets  # noqa: E402
from core.paths import corpus_dir  # noqa: E402
from curation.decontaminate import ngrams, samples as planting  # noqa: E402
from fixtures import documents as samples  # noqa: E402


def build(args):
    c = corpus_dir()
    rng = np.random.default_rng(args.seed)
    rows = []
    web = samples.web_pages(c, limit=args.pages)
    for i, (url, text) in enumerate(web):
        rows.append(samples.make_row("crawl", f"w{i}", text, url=url))
    for i, t in enumerate(samples.code_files(c, args.code)):
        rows.append(samples.make_row("thealgorithms", f"c{i}", t))
    for i, t in enumerate(samples.gsm8k(c)):                  # GSM8K train
        rows.append(samples.make_row("gsm8k", f"g{i}", t))
    for it in evalsets.math_train_split(c):
        rows.append(samples.make_row("math", f"m{it.item_id}",
                                     it.fields["problem"] + "\n" + it.fields["solution"]))
    n_clean = len(rows)
    sets = evalsets.read_sets(evalsets.load_registry(corpus=c))
    truth = {}
    k = 0
    for name, items in sets.items():
        pick = rng.choice(len(items), size=min(args.per_set, len(items)), replace=False)
        for j in pick:
            it = items[int(j)]
            style = planting.STYLES[k % len(planting.STYLES)]
            url, host = web[int(rng.integers(len(web)))]
            text, a, b = planting.plant(host, planting.reformat(
                evalsets.text_for_contamination(it), style, rng), rng)
            row = samples.make_row("crawl", f"p{k}", text, url=f"{url}?planted={k}")
            rows.append(row)
            truth[row["doc_id"]] = (name, it.item_id, style)
            k += 1
    return rows, n_clean, truth, sets


def print_recall(label, truth, sets, found) -> list:
    """Prints recall on the planted items per set and per re-formatting (`found(doc_id, set,
    item_id)`: was the item found in that document); returns the missed (set, item, style)."""
    per_set, tot_set = collections.Counter(), collections.Counter()
    per_style, tot_style = collections.Counter(), collections.Counter()
    missed = []
    for d, (name, item_id, style) in truth.items():
        ok = found(d, name, item_id)
        tot_set[name] += 1
        tot_style[style] += 1
        per_set[name] += ok
        per_style[style] += ok
        if not ok:
            missed.append((name, item_id, style))
    print(f"\n== recall on planted items ({label}) ==")
    for name in sets:
        print(f"  {name:<12} {per_set[name]:>4} / {tot_set[name]:<4}")
    for s in planting.STYLES:
        print(f"  style {s:<12} {per_style[s]:>4} / {tot_style[s]:<4}")
    print(f"  all          {sum(per_set.values())} / {len(truth)}")
    return missed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pages", type=int, default=300)
    ap.add_argument("--code", type=int, default=1000)
    ap.add_argument("--per-set", type=int, default=20)
    ap.add_argument("--ngram", type=int, default=13)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-dedup", action="store_true", help="skip the throughput comparison")
    ap.add_argument("--show", type=int, default=40, help="clean-corpus matches printed")
    ap.add_argument("--no-spark", action="store_true",
                    help="measure with the stage's library functions only (curation/decontaminate/"
                         "ngrams.py: same normalisation, hashes and index), no Spark job, no timing")
    args = ap.parse_args()
    t0 = time.time()
    rows, n_clean, truth, sets = build(args)
    print(f"{len(rows):,} documents ({n_clean:,} clean + {len(truth)} planted), built in "
          f"{time.time() - t0:.0f} s", flush=True)

    if args.no_spark:
        return engine_free(args, rows, n_clean, truth, sets)
    from core.schema import DOCUMENTS
    from core.spark import get_spark
    from core.tables import read_table, write_table
    from curation.decontaminate.stage import run_decontaminate
    spark = get_spark("decontaminate-bench")
    tmp = tempfile.mkdtemp(prefix="decon_bench_")
    inp = os.path.join(tmp, "docs")
    write_table(spark.createDataFrame(rows, DOCUMENTS).repartition(8), inp)
    mb = sum(len(r["text"].encode()) for r in rows) / 1e6

    timings = {}
    if not args.no_dedup:
        from curation.dedup.stage import run_dedup
        t = time.time()
        run_dedup(spark, inp, os.path.join(tmp, "deduped"), None, None)
        timings["dedup"] = time.time() - t
    t = time.time()
    st = run_decontaminate(spark, inp, os.path.join(tmp, "decon"), {"ngram": args.ngram}, None)
    timings["decontaminate"] = time.time() - t

    rec = read_table(spark, os.path.join(tmp, "decon") + "_contamination").collect()
    found = {(r.doc_id, r.benchmark, r.item_id) for r in rec}
    hit_docs = {r.doc_id for r in rec}
    missed = print_recall(f"{args.ngram}-grams", truth, sets,
                          lambda d, name, item_id: (d, name, item_id) in found)
    unchecked = {b: int(st.counters.get(f"index.unchecked_items.{b}", 0)) for b in sets}
    print(f"  items too short for an n-gram (never findable): {unchecked}")
    for m in missed:
        print("  MISSED", m)

    by_id = {r["doc_id"]: r for r in rows}
    fps = [r for r in rec if r.doc_id not in truth]
    fp_docs = {r.doc_id for r in fps}
    print(f"\n== matches in the clean corpus: {len(fp_docs)} of {n_clean:,} documents ==")
    print("  by source:", dict(collections.Counter(by_id[d]["source"] for d in fp_docs)))
    print("  by benchmark:", dict(collections.Counter(r.benchmark for r in fps)))
    idx_items = {(b, it.item_id): evalsets.text_for_contamination(it)
                 for b, items in sets.items() for it in items}
    h = ngrams.WordHasher()
    for r in sorted(fps, key=lambda r: -r.overlap)[:args.show]:
        doc = by_id[r.doc_id]["text"]
        item = idx_items[(r.benchmark, r.item_id)]
        iw = ngrams.normalised_words(item)
        ig = ngrams.ngram_hashes(h(iw), args.ngram).tolist()
        dg = set(ngrams.ngram_hashes(h(ngrams.normalised_words(doc)), args.ngram).tolist())
        shared = [k for k, g in enumerate(ig) if g in dg]
        span = " ".join(iw[shared[0]:shared[-1] + args.ngram]) if shared else ""
        print(f"  [{by_id[r.doc_id]['source']}] {r.benchmark} {r.item_id} "
              f"matched {r.matched_ngrams}/{r.item_ngrams} ({r.overlap:.2f}) {r.action}: "
              f"\"{span[:160]}\"")
    print(f"\n== throughput (same table: {len(rows):,} documents, {mb:.1f} MB of text) ==")
    for k, v in timings.items():
        print(f"  {k:<14} {v:7.1f} s  {mb / v:6.2f} MB/s")
    if "dedup" in timings:
        print(f"  decontaminate / dedup time: {timings['decontaminate'] / timings['dedup']:.2f}")
    print(f"  stage counters: docs.contaminated={int(st.counters['docs.contaminated'])}, "
          f"chars.removed={int(st.counters['chars.removed'])}, "
          + ", ".join(f"{k}={int(v)}" for k, v in st.counters.items() if k.startswith("dropped.")))
    spark.stop()
    os._exit(0)


def engine_free(args, rows, n_clean, truth, sets):
    t0 = time.time()
    index = ngrams.build_index([(b, it.item_id, evalsets.text_for_contamination(it))
                                for b, items in sets.items() for it in items], args.ngram)
    found = ngrams.item_overlaps([r["text"] for r in rows], index)
    per_doc = collections.defaultdict(set)
    for (k, b, i), o in found.items():
        per_doc[rows[k]["doc_id"]].add((b, i, o))
    missed = print_recall(f"{args.ngram}-grams, library functions, no Spark", truth, sets,
                          lambda d, name, item_id: any(b == name and i == item_id
                                                       for b, i, _ in per_doc.get(d, ())))
    for name, item_id, style in missed:
        it = next(x for x in sets[name] if x.item_id == item_id)
        nw = len(ngrams.normalised_words(evalsets.text_for_contamination(it)))
        print(f"  MISSED {name} {item_id} ({style}): the item has {nw} words"
              + (f" (< {args.ngram}: no n-gram, unfindable)" if nw < args.ngram else ""))
    print(f"  items too short for an n-gram: {index.unchecked}")
    clean = {r["doc_id"]: r for r in rows[:n_clean]}
    fp = {d: v for d, v in per_doc.items() if d in clean}
    print(f"\n== matches in the clean corpus: {len(fp)} of {n_clean:,} documents ==")
    print("  by source:", dict(collections.Counter(clean[d]["source"] for d in fp)))
    print("  by benchmark:", dict(collections.Counter(b for v in fp.values() for b, _, _ in v)))
    worst = sorted(((o, clean[d]["source"], b, i) for d, v in fp.items() for b, i, o in v),
                   reverse=True)
    for o, src, b, i in worst[:args.show]:
        print(f"  [{src}] {b} {i} overlap {o:.2f}")
    print(f"  ({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
