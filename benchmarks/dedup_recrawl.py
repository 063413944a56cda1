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

`--text full` uses each page's FULL visible text instead (every text node of the HTML body after
dropping script/style/noscript/template, whitespace-normalised): a re-fetched page then differs in
its boilerplate (dates, navigation, teasers, comments), which gives real near-duplicates below
Jaccard 1, and same-site pages share their boilerplate. `--no-exact` turns the job's exact step off
so MinHash sees every pair (identical texts included).

    python benchmarks/dedup_recrawl.py [--text main|full] [--no-exact] [--site-pairs 300]
                                       [--work /tmp/dedup_recrawl] [--show 12]
"""
import os, sys; sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # noqa: E401,E702

import argparse
import datetime as dt
import random
import time
from collections import defaultdict


def full_text(payload: bytes, http_charset) -> str:
    """Every visible text node of the page body (script, style, noscript, template dropped),
    whitespace-normalised: the page as a reader sees it, boilerplate included."""
    import lxml.html
    from curation.extract.html import decode_html
    html, _, _ = decode_html(payload, http_charset)
    try:
        tree = lxml.html.document_fromstring(html)
    except ValueError:  # an XML encoding declaration: lxml parses such a page only from bytes
        tree = lxml.html.document_fromstring(html.encode("utf-8"), parser=lxml.html.HTMLParser(encoding="utf-8"))
    for el in tree.xpath("//script|//style|//noscript|//template"):
        el.drop_tree()
    body = tree.find("body")
    return " ".join((body if body is not None else tree).text_content().split())


def crawl_docs(text: str = "main", extra: tuple = ()):
    from core.paths import corpus_dir
    from fixtures.documents import make_row
    from curation.extract.html import charset_from_content_type, extract_html
    from curation.extract.warc import RawRecord, iter_records
    rows = []
    files = [(n, str(corpus_dir() / "crawl" / f"{n}.warc.gz")) for n in ("crawl-2024-01", "crawl-2024-06")]
    files += [(os.path.basename(f), f) for f in extra]
    keys = {}
    for name, path in files:
        for r in iter_records(path):
            if not isinstance(r, RawRecord) or r.rec_type != "response" or not r.payload:
                continue
            if name not in ("crawl-2024-01", "crawl-2024-06") and "html" not in (r.content_type or "").lower():
                continue                                   # an extra file's images, scripts, PDFs
            cs = charset_from_content_type(r.content_type)
            body = full_text(r.payload, cs) if text == "full" else extract_html(r.payload, url=r.url, http_charset=cs).text
            if not body:
                continue
            try:
                when = dt.datetime.fromisoformat(r.date.replace("Z", "+00:00")).replace(tzinfo=None) if r.date else None
            except ValueError:                             # ClueWeb09's invalid dates
                when = None
            n = keys[(name, r.url)] = keys.get((name, r.url), 0) + 1   # a URL twice in one file
            rows.append(make_row(name, r.url if n == 1 else f"{r.url}#{n}", body, url=r.url, fetch_time=when, input_file=name))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--site-pairs", type=int, default=300)
    ap.add_argument("--work", default="/tmp/dedup_recrawl")
    ap.add_argument("--show", type=int, default=12)
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--text", choices=("main", "full"), default="main",
                    help="main: our extractor's main text; full: the page's whole visible text")
    ap.add_argument("--extra", nargs="*", default=[], metavar="WARC",
                    help="more (W)ARC files whose HTML responses join the documents (same-site pages)")
    ap.add_argument("--no-exact", action="store_true", help="the job's exact step off (MinHash sees every pair)")
    ap.add_argument("--reuse", action="store_true", help="evaluate existing job outputs in --work")
    args = ap.parse_args()
    from core.spark import get_spark
    from core.schema import DOCUMENTS
    from core.tables import read_table, write_table
    from curation.dedup import run_dedup
    from curation.dedup.minhash import jaccard

    t0 = time.time()
    cache = os.path.join(args.work, ("extracted" if args.text == "main" else "full") + ("_extra" if args.extra else "") + ".pkl")
    if os.path.exists(cache):
        import pickle
        rows = pickle.load(open(cache, "rb"))
    else:
        rows = crawl_docs(args.text, tuple(args.extra))
        import pickle
        os.makedirs(args.work, exist_ok=True)
        pickle.dump(rows, open(cache, "wb"))
    by_id = {r["doc_id"]: r for r in rows}
    print(f"text: {args.text}; exact step {'off' if args.no_exact else 'on'}")
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
    # every other pair of documents with different URLs, labelled by exact shingle Jaccard: the
    # intersections of all pairs at once, as the product of the sparse document x shingle matrix
    import numpy as np
    from scipy import sparse
    from curation.dedup.minhash import shingle_set
    ids = list(by_id)
    sets = {i: shingle_set(by_id[i]["text"]) for i in ids}
    vocab = {}
    rows_i, cols_i = [], []
    for n, i in enumerate(ids):
        for h in sets[i]:
            rows_i.append(n)
            cols_i.append(vocab.setdefault(h, len(vocab)))
    m = sparse.csr_matrix((np.ones(len(rows_i), dtype=np.int32), (rows_i, cols_i)), shape=(len(ids), len(vocab)))
    inter_m = sparse.triu(m @ m.T, k=1).tocoo()

    def sjac(a, b):  # = minhash.jaccard of the two texts, from their shingle sets
        sa, sb = sets[a], sets[b]
        return len(sa & sb) / len(sa | sb) if sa or sb else 0.0

    known = {tuple(sorted(p[:2])) for p in pairs}
    n_docs = len(by_id)
    for x, y, inter in zip(inter_m.row, inter_m.col, inter_m.data):
        a, b = sorted((ids[x], ids[y]))
        if (a, b) in known or by_id[a]["url"] == by_id[b]["url"]:
            continue
        j = inter / (len(sets[a]) + len(sets[b]) - inter)
        if j >= 0.3:
            pairs.append((a, b, "other"))
            lab[(a, b)] = j
    print(f"all {n_docs * (n_docs - 1) // 2:,} document pairs searched; different-URL pairs with "
          f"shingle Jaccard >= 0.3: {sum(1 for p in pairs if p[2] == 'other')} (the rest count as "
          "non-duplicates: no cluster may join them)")
    pos = [p for p in pairs if lab[p[:2]] >= 0.7]
    print(f"labelled pairs: {len(refetch)} re-fetched (same URL), {len(site)} same-site other pages; "
          f"near-duplicates (exact shingle Jaccard >= 0.7): {len(pos)} "
          f"({sum(1 for p in pos if p[2] == 'refetch')} re-fetched, {sum(1 for p in pos if p[2] == 'same-site')} same-site, "
          f"{sum(1 for p in pos if p[2] == 'other')} other)")
    js = sorted(lab[p[:2]] for p in pairs if p[2] == "refetch")
    print("re-fetched pairs' Jaccard deciles (0, 10, 20, 30, 50, 70, 90, 100 %): " +
          " ".join(f"{js[int(q * (len(js) - 1))]:.2f}" for q in (0, .1, .2, .3, .5, .7, .9, 1)))
    edges = (0, .3, .5, .6, .7, .8, .9, .95, 1, 1.01)
    print("re-fetched pairs by Jaccard: " + ", ".join(
        f"[{lo:.2f}, {min(hi, 1):.2f}{']' if hi > 1 else ')'}: {sum(1 for j in js if lo <= j < hi)}"
        for lo, hi in zip(edges, edges[1:])))
    jo = [lab[p[:2]] for p in pairs if p[2] != "refetch"]
    print("different-URL labelled pairs by Jaccard: " + ", ".join(
        f"[{lo:.2f}, {min(hi, 1):.2f}{']' if hi > 1 else ')'}: {sum(1 for j in jo if lo <= j < hi)}"
        for lo, hi in zip(edges, edges[1:])))
    near_thr = sorted(pairs, key=lambda p: abs(lab[p[:2]] - 0.7))[:args.show]
    for a, b, kind in near_thr:
        ta, tb = by_id[a]["text"], by_id[b]["text"]
        print(f"  [{kind}] J={lab[(a, b)]:.3f} {by_id[a]['url'][:70]} | {len(ta)} vs {len(tb)} chars")

    spark = get_spark("dedup-recrawl", master="local[2]", memory="3g", shuffle_partitions=4)
    os.makedirs(args.work, exist_ok=True)
    tag = ("" if args.text == "main" else "full_") + ("extra_" if args.extra else "") + ("noexact_" if args.no_exact else "")
    docs = os.path.join(args.work, tag + "docs")
    write_table(spark.createDataFrame(rows, DOCUMENTS).repartition(2), docs)
    print("\n| verify | bands x rows | predicted pairs | precision | recall | removed exact | removed near | removals with a J >= 0.7 partner | seconds |\n"
          "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for verify in ("jaccard", "none"):
        for bands, rws in ((14, 8), (9, 12)):
            out = os.path.join(args.work, f"{tag}out_{verify}_{bands}x{rws}")
            t = time.time()
            if not (args.reuse and os.path.exists(out + "_duplicates")):
                run_dedup(spark, docs, out, config={
                    "url": {"enabled": False}, "lines": {"enabled": False},
                    "exact": {"enabled": not args.no_exact},
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
                            # (a third fetch of one URL; any other pair here has Jaccard < 0.3)
                            j = lab[(ms[x], ms[y])] = sjac(ms[x], ms[y])
                            tp += j >= 0.7
                            fp += j < 0.7
                            pairs.append((ms[x], ms[y], "unlabelled"))
            # a removal is right when its cluster holds another document at Jaccard >= 0.7 with it
            removed = [x for x, _, r in d.itertuples(index=False) if r in ("exact", "near")]
            ok = sum(1 for x in removed if any(y != x and sjac(x, y) >= 0.7 for y in members[cl[x]]))
            prec = tp / (tp + fp) if tp + fp else 1.0
            rec = tp / (tp + fn) if tp + fn else 1.0
            print(f"| {verify} | {bands} x {rws} | {tp + fp} | {prec:.3f} | {rec:.3f} | "
                  f"{int((d['reason'] == 'exact').sum())} | {int((d['reason'] == 'near').sum())} | "
                  f"{ok} ({ok / max(1, len(removed)):.3f}) | {secs:.0f} |", flush=True)
            if fp or fn:
                wrong = [(a, b, kind) for a, b, kind in pairs if (cl[a] == cl[b]) != (lab[(a, b)] >= 0.7)]
                for a, b, kind in sorted(wrong, key=lambda p: -abs(lab[p[:2]] - 0.7))[:args.show]:
                    pred = cl[a] == cl[b]
                    print(f"    {'FP' if pred else 'FN'} [{kind}] J={lab[(a, b)]:.3f} {by_id[a]['url'][:60]} ~ {by_id[b]['url'][:60]}")
    spark.stop()
    os._exit(0)


if __name__ == "__main__":
    main()
