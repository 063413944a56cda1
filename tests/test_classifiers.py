"""Language ID, quality and domain classifiers: real fastText models, real corpus text."""
from __future__ import annotations

import gzip
import json
import shutil
from itertools import islice

import numpy as np
import pytest

from classifiers import recipes
from classifiers.evaluation import binary_at, per_class, roc_auc
from classifiers.fasttext_model import load_model, prepare
from classifiers.metadata import ModelMetadataError, read_metadata
from classifiers.streams import StreamRule
from core import corpus as corpus_files
from curation.filters import langid
from test_classifiers_fixtures import small_models  # noqa: F401  (session fixture)

GERMAN = ("Die Bundesregierung hat am Mittwoch beschlossen, die Förderung für erneuerbare Energien "
          "auszubauen.\nDamit sollen bis zum Jahr 2030 deutlich mehr Windräder und Solaranlagen "
          "entstehen, wie ein Sprecher des Ministeriums in Berlin mitteilte.")
PYTHON_FILE = '''import heapq


def dijkstra(graph: dict[str, list[tuple[str, int]]], start: str) -> dict[str, int]:
    """Shortest distances from start in a graph with non-negative edge weights."""
    dist = {start: 0}
    queue = [(0, start)]
    while queue:
        d, node = heapq.heappop(queue)
        if d > dist.get(node, float("inf")):
            continue
        for nxt, w in graph.get(node, []):
            nd = d + w
            if nd < dist.get(nxt, float("inf")):
                dist[nxt] = nd
                heapq.heappush(queue, (nd, nxt))
    return dist


if __name__ == "__main__":
    print(dijkstra({"a": [("b", 1)], "b": []}, "a"))
'''


# ---------------------------------------------------------------- language ID

def test_langid_german_english_and_unknown():
    out = langid.detect_languages([GERMAN, "The committee will publish its report next week.",
                                   "", None, "xq"])
    assert out[0][0] == "de" and out[0][1] > 0.9
    assert out[1][0] == "en"
    assert out[2] == ("unknown", 0.0) and out[3] == ("unknown", 0.0)
    assert out[4][0] == "unknown" and out[4][1] < langid.DEFAULT_THRESHOLD


def test_langid_threshold_and_newlines():
    # Newlines are normalised: a multi-line text gets the same answer as the joined one.
    one = langid.detect_languages([GERMAN.replace("\n", " ")])[0]
    assert langid.detect_languages([GERMAN])[0] == one
    # A threshold above every score turns everything into unknown, but keeps the score.
    lang, score = langid.detect_languages([GERMAN], threshold=1.01)[0]
    assert lang == "unknown" and score > 0.9
    assert langid.load_lid_model() is langid.load_lid_model()  # once per process


def test_langid_on_tatoeba_sentences(corpus):
    base = corpus / "multilingual" / "tatoeba"
    for iso3, iso2 in (("deu", "de"), ("fra", "fr"), ("spa", "es")):
        lines = corpus_files.tatoeba_lines(base / f"tatoeba.{iso3}-eng.{iso3}")[:100]
        got = [lang for lang, _ in langid.detect_languages(lines)]
        assert sum(g == iso2 for g in got) / len(got) > 0.8, (iso3, got[:20])


# ---------------------------------------------------------------- quality

def test_boilerplate_scores_lower_than_article(small_models):
    q, _, held = small_models
    pages = [e for e in held["quality"] if e.source in ("trafilatura-main", "boilerplate")]
    by_page: dict = {}
    for e in pages:
        by_page.setdefault(e.group, {})[e.source] = e.text
    pairs = [(v["trafilatura-main"], v["boilerplate"]) for v in by_page.values() if len(v) == 2]
    assert len(pairs) >= 5
    main = q.positive_scores([a for a, _ in pairs])
    boiler = q.positive_scores([b for _, b in pairs])
    # On held-out pages the article body beats its own page's boilerplate almost always.
    assert np.mean(main > boiler) >= 0.8, list(zip(main, boiler))
    nav = "Home\nNews\nSport\nImpressum\nDatenschutz\nKontakt\nNewsletter abonnieren\nCookie-Einstellungen"
    article = pairs[0][0]
    s_nav, s_art = q.positive_scores([nav, article])
    assert s_art > s_nav
    assert 0.0 <= s_nav <= 1.0 and 0.0 <= s_art <= 1.0


def test_quality_metadata_records_heldout_metrics(small_models):
    q, _, _ = small_models
    m = q.meta
    assert m["kind"] == "quality" and m["positive_label"] == "hq"
    assert m["metrics"]["heldout_roc_auc"] > 0.8
    assert m["training_data"]["n_heldout"] > 0 and len(m["training_data"]["fingerprint"]) == 64
    assert m["hyperparameters"]["dim"] == 32
    assert m["code_version"].startswith(("git:", "package:"))


# ---------------------------------------------------------------- domain

def test_domain_python_file_is_code_gsm8k_is_math(small_models, corpus):
    _, d, _ = small_models
    test_q = list(islice(corpus_files.gsm8k("test", corpus), 20))
    gsm = [r["question"] for r in test_q]  # GSM8K test problems, never trained on
    labels = [lab for lab, _ in d.predict([PYTHON_FILE, *gsm, GERMAN])]
    assert labels[0] == "code"
    assert sum(lab == "math" for lab in labels[1:-1]) >= 16, labels  # a tiny test model
    assert labels[-1] == "general"


def test_domain_heldout_per_class(small_models):
    _, d, held = small_models
    ex = held["domain"]
    pred = [lab for lab, _ in d.predict([e.text for e in ex])]
    res = per_class([e.label for e in ex], pred, ["general", "math", "code"])
    for lab in ("general", "math", "code"):
        assert res["classes"][lab]["precision"] > 0.8 and res["classes"][lab]["recall"] > 0.8, res
    assert d.meta["metrics"]["heldout"]["accuracy"] == pytest.approx(res["accuracy"])


# ---------------------------------------------------------------- metadata refusal

def test_loading_refuses_missing_or_inconsistent_metadata(small_models, tmp_path):
    q, _, _ = small_models
    src = q.model_dir
    # missing metadata.json
    a = tmp_path / "no_meta"
    shutil.copytree(src, a)
    (a / "metadata.json").unlink()
    with pytest.raises(ModelMetadataError, match="missing"):
        load_model(a)
    # model file changed after training (same size, different bytes)
    b = tmp_path / "tampered"
    shutil.copytree(src, b)
    raw = bytearray((b / "model.bin").read_bytes())
    raw[-100] ^= 0xFF
    (b / "model.bin").write_bytes(bytes(raw))
    with pytest.raises(ModelMetadataError, match="sha256"):
        load_model(b)
    # metadata lacking a required field
    c = tmp_path / "incomplete"
    shutil.copytree(src, c)
    meta = json.loads((c / "metadata.json").read_text())
    del meta["training_data"]
    (c / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(ModelMetadataError, match="training_data"):
        load_model(c)
    # a quality model loaded as a domain model
    with pytest.raises(ModelMetadataError, match="expected 'domain'"):
        load_model(src, kind="domain")
    assert read_metadata(src)["model_sha256"] == q.meta["model_sha256"]


# ---------------------------------------------------------------- training CLI on user data

def test_train_cli_from_jsonl(tmp_path, corpus):
    from classifiers.train import main
    pos = tmp_path / "pos.jsonl.gz"
    neg = tmp_path / "neg.jsonl"
    math = list(islice(corpus_files.gsm8k("train", corpus), 150))
    code = list(islice(corpus_files.thealgorithms(corpus), 150))
    with gzip.open(pos, "wt") as f:
        for r in math:
            f.write(json.dumps({"text": r["question"] + "\n" + r["answer"]}) + "\n")
    with neg.open("w") as f:
        for r in code:
            f.write(json.dumps({"text": r["content"]}) + "\n")
        f.write(json.dumps({"text": ""}) + "\n")  # empty text is skipped, not trained on
    out = tmp_path / "m"
    rc = main(["quality", "--positives", str(pos), "--negatives", str(neg), "--out", str(out),
               "--bucket", "50000", "--dim", "16"])
    assert rc == 0
    meta = read_metadata(out, kind="quality")
    assert meta["training_data"]["n_train"] + meta["training_data"]["n_heldout"] == 300
    assert meta["metrics"]["heldout_roc_auc"] > 0.95
    assert meta["training_data"]["sources"]["hq"][0]["n"] == 150
    # unknown field -> clear error
    with pytest.raises(ValueError, match="content"):
        main(["quality", "--positives", str(pos), "--negatives", str(neg), "--out", str(out),
              "--text-field", "content"])


def test_training_is_reproducible(tmp_path, corpus):
    from classifiers.fasttext_model import train_model
    math = list(islice(corpus_files.gsm8k("train", corpus), 100))
    code = list(islice(corpus_files.thealgorithms(corpus), 100))
    ex = [("math", r["question"]) for r in math] + [("code", r["content"]) for r in code]
    hp = {"bucket": 50_000, "dim": 16}
    m1 = train_model(ex, tmp_path / "one", "toy", hp)
    m2 = train_model(list(reversed(ex)), tmp_path / "two", "toy", hp)
    # single-threaded training in a fresh process on the same (order-normalised) data gives the
    # same model bytes
    assert m1.meta["model_sha256"] == m2.meta["model_sha256"]
    assert m1.meta["training_data"]["fingerprint"] == m2.meta["training_data"]["fingerprint"]
    m3 = train_model(ex[:-1], tmp_path / "three", "toy", hp)
    assert m3.meta["training_data"]["fingerprint"] != m1.meta["training_data"]["fingerprint"]


# ---------------------------------------------------------------- helpers

def test_prepare_splits_punctuation():
    assert prepare("def foo(x):\n    return x**2") == "def foo ( x ) : return x * * 2"
    assert prepare(None) == "" and len(prepare("a " * 10_000, max_chars=100).split()) == 50


def test_metrics():
    assert roc_auc([1, 1, 0, 0], [0.9, 0.8, 0.2, 0.1]) == 1.0
    assert roc_auc([1, 0], [0.5, 0.5]) == 0.5
    assert roc_auc([1, 0, 1, 0], [0.1, 0.9, 0.2, 0.8]) == 0.0
    r = binary_at([1, 1, 0, 0], [0.9, 0.4, 0.6, 0.1], 0.5)
    assert r["precision"] == 0.5 and r["recall"] == 0.5


def test_stable_split_is_deterministic():
    keys = [f"page:{i}" for i in range(2000)]
    held = [k for k in keys if recipes.is_heldout(k)]
    assert held == [k for k in keys if recipes.is_heldout(k)]
    assert 0.15 < len(held) / len(keys) < 0.25


# ---------------------------------------------------------------- stream rule

def test_stream_rule():
    rule = StreamRule({**__import__("classifiers.streams", fromlist=["x"]).DEFAULT_RULE})
    assert rule.assign("TheAlgorithms-Python", "en", "general", 0.9) == "code"   # source override
    assert rule.assign("crawl", "de", "general", 0.9) == "multilingual"
    assert rule.assign("crawl", "de", "code", 0.9) == "code"                     # code ignores language
    assert rule.assign("crawl", "de", "math", 0.9) == "multilingual"
    assert rule.assign("crawl", "en", "math", 0.9) == "math"
    assert rule.assign("crawl", "en", "math", 0.4) == "general"                  # below min score
    assert rule.assign("crawl", "unknown", "math", 0.9) == "math"
    assert rule.assign("crawl", "unknown", "general", 0.9) == "multilingual"  # unknown_general
    routed = StreamRule({**rule_dict(), "non_english": "domain"})
    assert routed.assign("crawl", "de", "math", 0.9) == "math"
    with pytest.raises(ValueError, match="non_english"):
        StreamRule({**rule_dict(), "non_english": "poetry"})


def rule_dict():
    from classifiers.streams import DEFAULT_RULE
    return dict(DEFAULT_RULE)
