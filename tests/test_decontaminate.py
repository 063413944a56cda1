"""Decontamination: the n-gram normalisation against re-formatted real benchmark items, the
region removal rules, and the Spark stage on real web pages and code with planted items."""
from __future__ import annotations

import numpy as np
import pytest

import evalsets
from curation.decontaminate import ngrams, samples as planting
from fixtures import documents as samples
from core.schema import DOCUMENTS
from core.tables import read_table, write_table


@pytest.fixture(scope="module")
def eval_sets(corpus):
    return evalsets.read_sets(evalsets.load_registry(corpus=corpus))


def _grams(text, n=13):
    h = ngrams.WordHasher()
    return set(ngrams.ngram_hashes(h(ngrams.normalised_words(text)), n).tolist())


def test_reformatted_items_keep_every_ngram(eval_sets):
    rng = np.random.default_rng(3)
    for name, items in eval_sets.items():
        for it in items[:40]:
            t = evalsets.text_for_contamination(it)
            ref = _grams(t)
            for style in planting.STYLES:
                got = _grams(planting.reformat(t, style, rng))
                assert ref <= got, (name, it.item_id, style)


def test_normalisation_examples():
    assert ngrams.normalised_words("Janet’s DUCKS,\nlay **16**\teggs") == \
        ["janets", "ducks", "lay", "16", "eggs"]
    assert ngrams.normalised_words("Janets ducks; lay - 16 eggs.") == \
        ["janets", "ducks", "lay", "16", "eggs"]
    ws, st, en = ngrams.words_with_spans("  Hi, there!")
    assert ws == ["hi", "there"] and st.tolist() == [2, 6] and en.tolist() == [4, 11]
    # a different word order is a different n-gram
    assert _grams("a b c d", 3) != _grams("a c b d", 3)


def test_index_counts_items_too_short_to_check():
    idx = ngrams.build_index([("b", "1", "one two three"), ("b", "2", "one two three four")], 4)
    assert idx.items == {"b": 2} and idx.unchecked == {"b": 1}
    assert list(idx.item_id) == ["2"] and idx.item_ngrams.tolist() == [1]


def test_remove_regions_margin_pieces_and_drops():
    words = [f"w{i}" for i in range(300)]
    text = " ".join(words)
    pos = [100]                               # the 13-gram w100..w112
    r = ngrams.remove_regions(text, pos, 13, margin_chars=10, min_piece_chars=20, max_pieces=10,
                              min_doc_chars=50)
    assert r.drop_reason is None and r.pieces == 2
    assert "w100" not in r.text and "w112" not in r.text and "w113" not in r.text  # margin
    assert r.text.split("\n\n")[0].endswith(" w96")                 # whole words go
    assert r.text.split("\n\n")[1].startswith("w115 ")   # " w113 w114" is the 10-char margin
    assert r.chars_removed == len(text) - len(r.text.replace("\n\n", ""))
    # three regions far apart -> four pieces: dropped with max_pieces=3
    r = ngrams.remove_regions(text, [30, 150, 250], 13, 5, 1, max_pieces=3, min_doc_chars=1)
    assert r.text is None and r.drop_reason == "too_many_pieces"
    # the whole document is the item: nothing left
    r = ngrams.remove_regions(" ".join(words[:13]), [0], 13, 0, 1, 10, min_doc_chars=1)
    assert r.text is None and r.drop_reason == "too_short"
    # overlapping matches merge into one region
    r = ngrams.remove_regions(text, [100, 105, 110], 13, 0, 1, 10, 1)
    assert r.pieces == 2 and r.text.endswith("w99") is False and "w99\n\nw123 " in r.text


@pytest.fixture(scope="module")
def planted(corpus, eval_sets):
    """Real web pages and code files; some with a benchmark item planted (each a different set
    and re-formatting), one that is a benchmark item and nothing else."""
    rng = np.random.default_rng(5)
    rows, truth = [], {}
    web = samples.web_pages(corpus, limit=10)
    for i, (url, text) in enumerate(web):
        rows.append(samples.make_row("crawl", f"w{i}", text, url=url))
    for i, code in enumerate(samples.code_files(corpus, 6)):
        rows.append(samples.make_row("thealgorithms", f"c{i}", code))
    names = ["piqa", "winogrande", "arc_easy", "lambada", "humaneval", "gsm8k_test", "math500"]
    for k, name in enumerate(names):
        it = eval_sets[name][17 + k]
        style = planting.STYLES[k % len(planting.STYLES)]
        url, host = web[k % len(web)]
        text, a, b = planting.plant(host, planting.reformat(
            evalsets.text_for_contamination(it), style, rng), rng)
        row = samples.make_row("crawl", f"p{k}", text, url=url + f"?copy={k}")
        rows.append(row)
        truth[row["doc_id"]] = (name, it.item_id, a, b, text)
    it = eval_sets["gsm8k_test"][3]
    alone = samples.make_row("gsm8k", "alone", evalsets.text_for_contamination(it))
    rows.append(alone)
    truth[alone["doc_id"]] = ("gsm8k_test", it.item_id, None, None, alone["text"])
    return rows, truth


def _run(spark, tmp_path, rows, name, config=None, corpus=None):
    from curation.decontaminate.stage import run_decontaminate
    inp = tmp_path / f"in_{name}"
    if not inp.exists():
        write_table(spark.createDataFrame(rows, DOCUMENTS).repartition(3), str(inp))
    out = str(tmp_path / name)
    st = run_decontaminate(spark, str(inp), out, config, out + "_stats", corpus=corpus)
    return st, read_table(spark, out), read_table(spark, out + "_contamination")


@pytest.fixture(scope="module")
def default_run(spark, planted, tmp_path_factory, corpus):
    rows, _ = planted
    tmp = tmp_path_factory.mktemp("decontaminate")
    st, out, rec = _run(spark, tmp, rows, "out", corpus=corpus)
    return tmp, st, out.collect(), rec.collect()


def test_stage_finds_every_planted_item_and_nothing_else(planted, default_run):
    rows, truth = planted
    _, st, out, records = default_run
    assert {r.doc_id for r in records} == set(truth)                 # no false positives
    found = {(r.doc_id, r.benchmark, r.item_id) for r in records}
    for d, (name, item_id, *_rest) in truth.items():
        assert (d, name, item_id) in found
    by_id = {r.doc_id: r for r in out}
    alone = samples.doc_id("gsm8k", "alone")
    assert alone not in by_id                                         # only the item: dropped
    assert [r.drop_reason for r in records if r.doc_id == alone][0] == "too_short"
    for d, (name, item_id, a, b, text) in truth.items():
        if d == alone:
            continue
        new = by_id[d].text
        assert not _grams(new) & _grams(text[a:b])                    # the item is gone
        assert by_id[d].contaminated_chars >= b - a
        assert by_id[d].n_chars == len(new)
        # text far from the planted item is kept
        assert text[:max(0, a - 400)].strip()[:50] in new
    clean = [r for r in rows if r["doc_id"] not in truth]
    for r in clean:
        assert by_id[r["doc_id"]].text == r["text"] and by_id[r["doc_id"]].contaminated_chars == 0
    c = st.counters
    assert c["docs.in"] == len(rows) and c["docs.out"] == len(rows) - 1
    assert c["docs.contaminated"] == len(truth) and c["dropped.too_short"] == 1
    assert c["contaminated_docs.gsm8k_test"] == 2 and c["contaminated_docs.piqa"] == 1
    assert c["index.items.lambada"] == 5153 and c["index.unchecked_items.piqa"] > 0
    assert all(0 < r.overlap <= 1 for r in records)


def test_stage_without_prefilter_and_drop_mode_same_matches(spark, planted, default_run, corpus):
    """Every n-gram shuffled to the join (no in-task prefilter) finds the same matches; drop
    mode drops exactly the contaminated documents; the second run replaces the first's output."""
    rows, truth = planted
    key = lambda rec: sorted((r.doc_id, r.benchmark, r.item_id, r.matched_ngrams) for r in rec)
    tmp, _, _, rec1 = default_run
    first = key(rec1)
    st, out2, rec2 = _run(spark, tmp, rows, "out",
                          {"prefilter": False, "mode": "drop_documents"}, corpus=corpus)
    rec2 = rec2.collect()
    assert key(rec2) == first
    assert {r.doc_id for r in rec2} == set(truth)
    assert {r.action for r in rec2} == {"document_dropped"}
    assert out2.count() == len(rows) - len(truth)                     # replaced, not appended
    assert st.counters["dropped.contaminated"] == st.counters["docs.contaminated"] == len(truth)


def test_eight_grams_find_short_overlaps(eval_sets):
    it = eval_sets["piqa"][1]        # "dresser": 11 words in all, too short for 13-grams
    t = evalsets.text_for_contamination(it)
    doc = "Some unrelated words first. " + t.upper() + " and then more words"
    for n, expect in ((13, 0), (8, 1)):
        idx = ngrams.build_index([("piqa", it.item_id, t)], n)
        pos, _ = ngrams.member_positions(doc, n, idx.distinct_hashes(), ngrams.WordHasher())
        assert (len(pos) > 0) == bool(expect), n


def test_scripts_without_spaces_are_matched_per_character(corpus):
    """A Chinese item (real text: UDHR article 2) inside a web document, re-punctuated and with
    spaces added: found with 13-grams. Before, a "word" was a run of letters up to the next
    punctuation (a clause), so the item had too few words for any 13-gram and was never checked.
    The unit is the one MinHash uses for these scripts (core/text.py NO_SPACE_SCRIPTS)."""
    from curation.dedup import minhash
    from test_filter_signals import udhr
    text = udhr(corpus, "cmn_hans")
    item = next(ln for ln in text.splitlines() if ln.startswith("人人有资格享有本宣言"))
    idx = ngrams.build_index([("user_zh", "art2", item)], 13)
    assert idx.unchecked == {"user_zh": 0} and idx.item_ngrams.tolist()[0] > 30
    doc = ("今天的新闻：" + item.replace(",", "，").replace("、", " ") + "\n更多内容请看下一页。")
    pos, _ = ngrams.member_positions(doc, 13, idx.distinct_hashes(), ngrams.WordHasher())
    assert len(pos) > 20
    r = ngrams.remove_regions(doc, pos, 13, margin_chars=0, min_piece_chars=1, max_pieces=10,
                              min_doc_chars=1)
    # only the item goes: a cut between two characters of such a script splits no word, so the
    # removal is not widened to the next space (there is none: it ate 64 characters around it)
    assert r.text == "今天的新闻：\n\n。\n更多内容请看下一页。", r.text
    # the same units as the MinHash word split, for Chinese, Japanese and Thai
    for s in ("人人有资格享有", "すべての人間は", "มนุษย์ทั้งหลาย"):
        assert ngrams.normalised_words(s) == minhash.words(s)
    # words of scripts with spaces are unchanged
    assert ngrams.normalised_words("Janet’s ducks 16") == ["janets", "ducks", "16"]
