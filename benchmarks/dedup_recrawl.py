"""Near-duplicate quality on real data: the sample crawl's re-fetches (issue 16).

The two WARCs of `../shared/corpus/crawl` fetch 120 URLs twice, months apart: real near-duplicates
(a page re-fetched with small changes), real changed pages, and - pairing each page with the same
site's other pages - real non-duplicates that share a site's boilerplate. Every page is extracted
with our extractor (`curation.extract.html.extract_html`), then:

* labelled pairs: the re-fetched pairs (same URL) and up to `--site-pairs` pairs of different URLs
  of the same registrable domain; a pair is a near-duplicate when its exact 5-word-shingle Jaccard
  (`minhash.jaccard`, the job's own shingles) is >= 0.7 (the job's verify threshold). `--show`
  prints pairs around the threshold to read (the labels were checked by reading a sample: see
  docs/BENCHMARKS.md);
* the dedup job (`run_dedup`: exact + near; url and lines steps off, so the URL step does not
  remove the re-fetches before MinHash sees them) runs with `verify: jaccard` and `verify: none`,
  each with bands x rows 14 x 8 (FineWeb's) and 9 x 12 (threshold ~0.8);
* every other pair of the 1,110 documents is searched too (an inverted index over shingles): pairs
  of different URLs with shingle Jaccard >= 0.3 are added to the labelled set, all others are
  non-duplicates (Jaccard < 0.3);
* a pair is predicted a duplicate when both documents end in the same cluster; precision and recall
  against the labels, per configuration (a cluster joining an unlabelled pair is a false positive).

    python benchmarks/dedup_recrawl.py [--site-pairs 300] [--work /tmp/dedup_recrawl] [--show 12]
"""
import os, sys; sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # noqa: E401,E702

import argparse
import datetime as dt
import random
import time
from collections import defaultdict


def crawl_docs():
    from core.paths import corpus_dir
    from fixtures.documents import make_row
    from curation.extract.html import charset_from_content_type, extract_html
    from curation.extract.warc import RawRecord, iter_records
    rows = []
    for name in ("crawl-2024-01", "crawl-2024-06"):
        for r in iter_records(str(corpus_dir() / "crawl" / f"{name}.warc.gz")):
            if not isinstance(r, RawRecord) or r.rec_type != "response" or not r.payload:
                continue
            ex = extract_html(r.payload, url=r.url, http_charset=charset_from_content_type(r.content_type))
            if not ex.text:
                continue
            when = dt.datetime.fromisoformat(r.date.replace("Z", "+00:00")).replace(tzinfo=None) if r.date else None
            rows.append(make_row(name, r.url, ex.text, url=r.url, fetch_time=when, input_file=name))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--site-pairs", type=int, default=300)
    ap.add_argument("--work", default="/tmp/dedup_recrawl")
    ap.add_argument("--show", type=int, default=12)
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--reuse", action="store_true", help="evaluate existing job outputs in --work")
    args = ap.parse_args()
    from core.spark import get_spark
    from core.schema import DOCUMENTS
    from core.tables import read_table, write_table
    from curation.dedup import run_dedup
    from curation.dedup.minhash import jaccard

    t0 = time.time()
    cache = os.path.join(args.work, "extracted.pkl")
    if os.path.exists(cache):
        import pickle
        rows = pickle.load(open(cache, "rb"))
    else:
        rows = crawl_docs()
        import pickle
        os.makedirs(args.work, exist_ok=True)
        pickle.dump(rows, open(cache, "wb"))
    by_id = {r["doc_id"]: r for r in rows}
    print(f"documents with text: {len(rows)} ({time.time() - t0:.0f} s to extract)")
    by_url = defaultdict(list)
    by_dom = defaultdict(list)
    for r in rows:
        by_url[r["url"]].append(r["doc_id"])
        by_dom[r["domain"]].append(r["doc_id"])
    refetch = [tuple(v[:2]) for v in by_url.values() if len(v) >= 2]
    rng = random.Random(args.seed)
    site = []
    for dom, ids in sorted(by_dom.items(), key=lambda kv: str(kv[0])):
        if dom is None:
            continue
        urls = sorted({by_id[i]["url"] for i in ids})
        if len(urls) < 2:
            continue
        for _ in range(min(6, len(urls) * (len(urls) - 1) // 2)):
            a, b = rng.sample(ids, 2)
            if by_id[a]["url"] != by_id[b]["url"]:
                site.append((a, b))
    site = sorted(set(site))
    rng.shuffle(site)
    site = site[:args.site_pairs]
    pairs = [(a, b, "refetch") for a, b in refetch] + [(a, b, "same-site") for a, b in site]
    lab = {}
    for a, b, kind in pairs:
        lab[(a, b)] = jaccard(by_id[a]["text"], by_id[b]["text"])
    # every other pair of documents with different URLs, labelled by exact shingle Jaccard (an
    # inverted index over shingles finds every pair sharing at least one; the rest have Jaccard 0)
    from curation.dedup.minhash import shingle_set
    sets = {i: shingle_set(r["text"]) for i, r in by_id.items()}
    index = defaultdict(list)
    for i, sh in sets.items():
        for h in sh:
            index[h].append(i)
    shared = defaultdict(int)
    for members in index.values():
        if 1 < len(members) <= 50:          # a shingle on > 50 pages is site boilerplate: pairs
            for x in range(len(members)):   # sharing only such shingles stay far below 0.7
                for y in range(x + 1, len(members)):
                    a, b = sorted((members[x], members[y]))
                    shared[(a, b)] += 1
    known = {tuple(sorted(p[:2])) for p in pairs}
    n_docs = len(by_id)
    for (a, b), inter in shared.items():
        if (a, b) in known or by_id[a]["url"] == by_id[b]["url"]:
            continue
        j = inter / (len(sets[a]) + len(sets[b]) - inter)
        if j >= 0.3:
            pairs.append((a, b, "other"))
            lab[(a, b)] = jaccard(by_id[a]["text"], by_id[b]["text"])
    print(f"all {n_docs * (n_docs - 1) // 2:,} document pairs searched; different-URL pairs with "
          f"shingle Jaccard >= 0.3: {sum(1 for p in pairs if p[2] == 'other')} (the rest count as "
          "non-duplicates: no cluster may join them)")
    pos = [p for p in pairs if lab[p[:2]] >= 0.7]
    print(f"labelled pairs: {len(refetch)} re-fetched (same URL), {len(site)} same-site other pages; "
          f"near-duplicates (exact shingle Jaccard >= 0.7): {len(pos)} "
          f"({sum(1 for p in pos if p[2] == 'refetch')} re-fetched, {sum(1 for p in pos if p[2] == 'same-site')} same-site, "
          f"{sum(1 for p in pos if p[2] == 'other')} other)")
    js = sorted(lab[p[:2]] for p in pairs if p[2] == "refetch")
    print("re-fetched pairs' Jaccard deciles: " + " ".join(f"{js[int(q * (len(js) - 1))]:.2f}" for q in
                                                          (0, .1, .2, .3, .5, .7, .9, 1)))
    near_thr = sorted(pairs, key=lambda p: abs(lab[p[:2]] - 0.7))[:args.show]
    for a, b, kind in near_thr:
        ta, tb = by_id[a]["text"], by_id[b]["text"]
        print(f"  [{kind}] J={lab[(a, b)]:.3f} {by_id[a]['url'][:70]} | {len(ta)} vs {len(tb)} chars")

    spark = get_spark("dedup-recrawl", master="local[2]", memory="3g", shuffle_partitions=4)
    os.makedirs(args.work, exist_ok=True)
    docs = os.path.join(args.work, "docs")
    write_table(spark.createDataFrame(rows, DOCUMENTS).repartition(2), docs)
    print("\n| verify | bands x rows | predicted pairs | precision | recall | removed near | seconds |\n"
          "| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for verify in ("jaccard", "none"):
        for bands, rws in ((14, 8), (9, 12)):
            out = os.path.join(args.work, f"out_{verify}_{bands}x{rws}")
            t = time.time()
            if not (args.reuse and os.path.exists(out + "_duplicates")):
                run_dedup(spark, docs, out, config={
                    "url": {"enabled": False}, "lines": {"enabled": False},
                    "minhash": {"verify": verify, "bands": bands, "rows": rws}})
            secs = time.time() - t
            d = read_table(spark, out + "_duplicates").select("doc_id", "duplicate_of", "reason").toPandas()
            cl = {i: i for i in by_id}
            cl.update({x: s for x, s, r in d.itertuples(index=False) if r in ("exact", "near")})
            tp = fp = fn = 0
            for a, b, _ in pairs:
                pred = cl[a] == cl[b]
                truth = lab[(a, b)] >= 0.7
                tp += pred and truth
                fp += pred and not truth
                fn += truth and not pred
            # pairs joined by a cluster that are in no labelled list: Jaccard < 0.3, false joins
            members = defaultdict(list)
            for i, c in cl.items():
                members[c].append(i)
            labelled = {tuple(sorted(p[:2])) for p in pairs}
            for ms in members.values():
                for x in range(len(ms)):
                    for y in range(x + 1, len(ms)):
                        if tuple(sorted((ms[x], ms[y]))) not in labelled:
                            fp += 1
                            pairs.append((ms[x], ms[y], "unlabelled"))
                            lab[(ms[x], ms[y])] = jaccard(by_id[ms[x]]["text"], by_id[ms[y]]["text"])
            prec = tp / (tp + fp) if tp + fp else 1.0
            rec = tp / (tp + fn) if tp + fn else 1.0
            print(f"| {verify} | {bands} x {rws} | {tp + fp} | {prec:.3f} | {rec:.3f} | "
                  f"{int((d['reason'] == 'near').sum())} | {secs:.0f} |", flush=True)
            if fp or fn:
                for a, b, kind in pairs:
                    pred, truth = cl[a] == cl[b], lab[(a, b)] >= 0.7
                    if pred != truth:
                        print(f"    {'FP' if pred else 'FN'} [{kind}] J={lab[(a, b)]:.3f} {by_id[a]['url'][:60]} ~ {by_id[b]['url'][:60]}")
    spark.stop()
    os._exit(0)


if __name__ == "__main__":
    main()
