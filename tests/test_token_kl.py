"""Token KL against a per-language reference with a measured length correction (issue 16).

The raw plug-in KL of a document falls with its length (a short sample's empirical distribution is
peaked), so a fixed threshold on it is a length filter; `token_kl_excess` is the KL minus the
reference's expected KL at the document's length, measured on held-out text."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core import corpus as corpus_files
from core.config import merge
from curation.filters import token_kl
from curation.filters.annotate import annotate_batch
from curation.filters.decide import decide_pandas
from curation.filters.defaults import DEFAULTS


def _english_chunks(corpus, files: slice) -> list[str]:
    """Real English text: the English side of Tatoeba pair files, in chunks of 100 sentences."""
    out = []
    for f in corpus_files.tatoeba_files(corpus, english=True)[files]:
        lines = corpus_files.tatoeba_lines(f)
        out.extend("\n".join(lines[k:k + 100]) for k in range(0, len(lines), 100))
    return out


@pytest.fixture(scope="module")
def reference(corpus, tmp_path_factory):
    """A reference built (and stored, and loaded back) from 12 Tatoeba English files."""
    chunks = _english_chunks(corpus, slice(0, 12))
    ref = token_kl.build_reference([(f"en-{k}", "en", t) for k, t in enumerate(chunks)],
                                   alpha=0.1, min_tokens=5_000, sources={"test": "tatoeba eng 0..11"})
    d = tmp_path_factory.mktemp("klref") / "ref"
    ref.save(d)
    return token_kl.Reference.load(d), str(d)


def test_reference_manifest_and_curve(reference):
    ref, _ = reference
    assert ref.languages == ["en"]
    m = ref.manifest["languages"]["en"]
    assert m["tokens_counted"] >= 5_000 and m["tokens_held_out"] >= 5_000
    c = ref.curves["en"]
    assert c["length"][:3] == [16, 32, 64] and len(c["length"]) >= 5
    # the measured expectation falls with length (the bias being corrected), and the fit follows it
    assert c["median"][0] > c["median"][-1] + 1.0
    assert c["fit"]["rmse"] < 0.2
    assert ref.manifest["sources"] == {"test": "tatoeba eng 0..11"}


def test_excess_does_not_trend_with_length(corpus, reference):
    """The same in-distribution texts cut at 64 and at 2,048 tokens: the raw KL (the old signal)
    differs by more than a nat, the corrected one by a fraction of that."""
    ref, _ = reference
    chunks = _english_chunks(corpus, slice(20, 40))                 # English text not in the reference
    texts = ["\n".join(chunks[k:k + 3]) for k in range(0, len(chunks) - 2, 3)]
    docs = [a for a in token_kl.encode_batch(texts) if len(a) >= 2048]
    assert len(docs) >= 10
    raw = {L: np.median([token_kl.kl_divergence(a[:L], ref.log_q("en")) for a in docs]) for L in (64, 2048)}
    exc = {L: np.median([ref.score(a[:L], "en")[2] for a in docs]) for L in (64, 2048)}
    assert raw[64] - raw[2048] > 1.0                                # the old statistic: a length filter
    assert abs(exc[64] - exc[2048]) < 0.25 * (raw[64] - raw[2048]), (raw, exc)
    # over random windows the median excess is near zero at every length
    ids = np.concatenate(docs)
    rng = np.random.default_rng(1)
    for L in (32, 256, 1024):
        starts = rng.integers(0, len(ids) - L, size=40)
        med = np.median([ref.score(ids[s:s + L], "en")[2] for s in starts])
        assert abs(med) < 0.4, (L, med)
    # a language without a reference gets no value
    assert ref.score(docs[0][:64], "de") == (None, None, None)


def test_annotate_and_rule_use_the_excess(corpus, reference):
    ref, path = reference
    held = " ".join(_english_chunks(corpus, slice(20, 22)))          # sentences run on: prose lines
    code = next(corpus_files.thealgorithms(corpus))["content"]
    pdf = pd.DataFrame({"doc_id": ["prose", "junk"], "source": ["crawl", "crawl"],
                        "text": [held, code]})
    cfg = merge(DEFAULTS, {"token_kl": {"enabled": True, "reference": path}, "lang": {"detect": False}})
    out = annotate_batch(pdf.assign(lang="en"), cfg, ref).set_index("doc_id")
    assert out.loc["prose", "token_kl_lang"] == "en" and out.loc["prose", "token_count"] > 100
    assert out.loc["junk", "token_kl_excess"] > out.loc["prose", "token_kl_excess"] + 1.0
    d = decide_pandas(out.reset_index(), merge(cfg, {"token_kl": {"max_excess": 1.0}})).set_index("doc_id")
    assert "token_kl.max_excess" in d.loc["junk", "drop_reasons"]
    assert not any(r.startswith("token_kl") for r in d.loc["prose", "drop_reasons"])
    # no reference language -> no value, never a rule firing
    out2 = annotate_batch(pdf.assign(lang="de"), cfg, ref)
    assert out2["token_kl_excess"].isna().all() and out2["token_kl_lang"].isna().all()


def test_missing_reference_fails_with_the_build_command(tmp_path):
    from curation.filters.stage import load_kl_reference
    cfg = merge(DEFAULTS, {"token_kl": {"enabled": True, "reference": str(tmp_path / "none")}})
    with pytest.raises(FileNotFoundError, match="curation.filters.token_kl_reference"):
        load_kl_reference(cfg)
