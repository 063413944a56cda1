"""Default training sets built from the sample corpus (`../shared/corpus`, see core/paths.py).

Quality (`hq` vs `lq`), after Llama 3 / DCLM: reference-like text against raw web text.
* hq: the main text trafilatura extracts from the annotated pages of
  `extraction/trafilatura-eval` (clean article bodies), MATH training-split problems (MATH500
  excluded) with their worked solutions,
  and the English Universal Declaration of Human Rights (one example per article).
* lq: the full-page text of the same pages (navigation, footers, cookie banners and all), and the
  boilerplate alone (the page's lines that the extraction dropped).
* Both: up to three short chunks (>= 300 characters) of each page's main text (hq) and
  boilerplate (lq), so that document length is not what the model learns; and up to three single
  boilerplate lines (lq) and main-text sentences (hq) of 40-240 characters, so that a lone cookie
  notice or copyright line, all a failed extraction may leave, scores low.
  Positives and negatives come from the same pages, so the model learns boilerplate against
  prose, not German against English.

Domain (`general`, `math`, `code`):
* math: GSM8K train (question + worked answer, and the question alone) and the MATH training
  split (problem + solution, and the problem alone; `evalsets.math_train_split`: MATH500 stays
  out, it is an evaluation set);
* code: TheAlgorithms source files (Python, Java, C++, Rust, Go), and their comments and
  docstrings alone (prose about programming);
* general: web text from the same annotated pages (extracted main text and full-page text).
  The pages in `CRAWL_CHECK` (web pages about code or maths) are kept out of training and used to
  check that such pages in a crawl are recognised.

Every example carries a group key; the held-out split is a stable hash of that key (all examples
of one page fall on the same side), so the split never depends on file order or a random seed.
Sampling to a size (`limit`) takes the examples with the smallest key hashes, also stable.
"""
from __future__ import annotations

import functools
import gzip
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from core import corpus as corpus_files

HELDOUT_FRACTION = 0.2
MIN_CHARS = 200

# Pages of the annotated crawl that are about code or maths (URL -> expected domain). They are
# excluded from the domain model's training data and scored by `crawl_check`.
CRAWL_CHECK = {
    "https://www.toptal.com/python/top-10-mistakes-that-python-programmers-make": "code",
    "http://fouryears.eu/2019/10/21/interning-of-small-integers-in-python/": "code",
    "https://www.geeks3d.com/hacklab/20190110/python-3-simple-http-request-with-the-socket-module/": "code",
    "https://strangemachines.io/articles/performant-python": "code",
    "https://hackernoon.com/how-to-scrape-google-with-python-bo7d2tal": "code",
    "https://pythonspeed.com/articles/pipenv-docker/": "code",
    "https://lemire.me/blog/2019/08/02/json-parsing-simdjson-vs-json-for-modern-c/": "code",
    "http://www.netbits.us/docs/stunnel_rsync.html": "code",
    "https://emacspeak.blogspot.com/2019/10/meta-programming-in-emacs-using.html": "code",
    "https://en.wikipedia.org/wiki/T-distributed_stochastic_neighbor_embedding": "math",
}


@dataclass(frozen=True)
class Example:
    label: str
    text: str
    group: str    # held-out split key (a page, a problem, a file)
    source: str   # which part of the recipe it came from


def stable_fraction(key: str) -> float:
    """A number in [0, 1) fixed by `key` (first 8 bytes of its sha1)."""
    return int(hashlib.sha1(key.encode("utf-8")).hexdigest()[:16], 16) / 2.0 ** 64


def is_heldout(key: str, fraction: float = HELDOUT_FRACTION) -> bool:
    return stable_fraction("heldout:" + key) < fraction


def split(examples: list[Example], fraction: float = HELDOUT_FRACTION
          ) -> tuple[list[Example], list[Example]]:
    train = [e for e in examples if not is_heldout(e.group, fraction)]
    held = [e for e in examples if is_heldout(e.group, fraction)]
    return train, held


def _take(items: list, key: Callable, limit: int | None) -> list:
    """Stable sample: the `limit` items with the smallest key hashes (all when limit is None)."""
    if limit is None or limit >= len(items):
        return items
    return sorted(items, key=lambda x: stable_fraction("sample:" + key(x)))[:limit]


# ---------------------------------------------------------------- corpus readers

_BLOCK = ("p", "div", "br", "li", "ul", "ol", "tr", "td", "th", "table", "h1", "h2", "h3", "h4",
          "h5", "h6", "header", "footer", "nav", "section", "article", "aside", "form", "option",
          "blockquote", "pre", "dd", "dt", "title", "a", "button", "label", "figcaption")


def page_text(html: bytes | str) -> str:
    """All visible text of a page, one line per block (scripts and styles removed), as a naive
    extractor without boilerplate removal would give it."""
    import lxml.html
    try:
        doc = lxml.html.fromstring(html)
    except Exception:
        return ""
    for bad in doc.xpath("//script|//style|//noscript|//template|//svg|//head/meta|//link"):
        bad.drop_tree()
    from lxml import etree
    chunks: list[str] = []
    for event, el in etree.iterwalk(doc, events=("start", "end")):
        tag = el.tag if isinstance(el.tag, str) else None
        if event == "start":
            if tag in _BLOCK:
                chunks.append("\n")
            if tag and el.text:
                chunks.append(el.text)
        else:
            if tag in _BLOCK:
                chunks.append("\n")
            if el.tail:
                chunks.append(el.tail)
    lines = (re.sub(r"\s+", " ", ln).strip() for ln in "".join(chunks).splitlines())
    return "\n".join(ln for ln in lines if ln)


def _norm_line(s: str) -> str:
    return re.sub(r"\W+", " ", s.lower()).strip()


def _dropped_lines(full: str, main: str) -> str:
    """The lines of `full` that the extraction `main` does not contain (after normalisation)."""
    kept = {_norm_line(ln) for ln in main.splitlines()}
    blob = "\n".join(kept)
    out = []
    for ln in full.splitlines():
        n = _norm_line(ln)
        if n and n not in kept and not (len(n) > 30 and n in blob):
            out.append(ln)
    return "\n".join(out)


def eval_pages(corpus: Path | None = None, limit: int | None = None,
               exclude: set[str] | frozenset = frozenset()) -> list[dict]:
    """The annotated pages: {url, file, main (trafilatura), full (all text), boilerplate}."""
    meta = corpus_files.trafilatura_eval(corpus)
    items = [(u, v["file"]) for u, v in sorted(meta.items()) if u not in exclude]
    items = _take(items, key=lambda x: x[0], limit=limit)
    pages = []
    for url, name in items:
        path = corpus_files.trafilatura_eval_page(name, corpus, prefer=("cache", "eval"))
        if path is None:
            continue
        main, full, boiler = _extract_page(str(path), url)
        pages.append({"url": url, "file": name, "main": main, "full": full, "boilerplate": boiler})
    return pages


@functools.lru_cache(maxsize=2048)
def _extract_page(path: str, url: str) -> tuple[str, str, str]:
    """(trafilatura main text, full-page text, dropped lines) of one page, cached per process."""
    import trafilatura
    html = gzip.open(path).read()
    main = trafilatura.extract(html, url=url, include_comments=False) or ""
    full = page_text(html)
    return main, full, _dropped_lines(full, main)


def math_problems(corpus: Path | None = None, limit_gsm8k: int | None = None,
                  limit_math: int | None = None, problems_alone: bool = False) -> list[Example]:
    """Problems with their worked solutions (and, with `problems_alone`, the bare problem
    statement too, in the same held-out group)."""
    out = []
    gsm = list(corpus_files.gsm8k("train", corpus))
    gsm = _take(list(enumerate(gsm)), key=lambda x: f"gsm8k:{x[0]}", limit=limit_gsm8k)
    for i, r in gsm:
        text = r["question"] + "\n" + re.sub(r"<<[^>]*>>", "", r["answer"])
        out.append(Example("math", text, f"gsm8k:{i}", "gsm8k"))
        if problems_alone:
            out.append(Example("math", r["question"], f"gsm8k:{i}", "gsm8k-question"))
    # MATH: the training split only (the test file minus the MATH500 problems, which are an
    # evaluation set); keyed by the problem's own idx so groups do not depend on the split
    from evalsets import math_train_split
    mth = [it.fields for it in math_train_split(corpus)]
    mth = _take([(r["idx"], r) for r in mth], key=lambda x: f"math:{x[0]}", limit=limit_math)
    for i, r in mth:
        out.append(Example("math", r["problem"] + "\n" + r["solution"], f"math:{i}", "math"))
        if problems_alone:
            out.append(Example("math", r["problem"], f"math:{i}", "math-problem"))
    return out


def code_files(corpus: Path | None = None, limit: int | None = None) -> list[Example]:
    rows = list(corpus_files.thealgorithms(corpus))
    rows = _take(rows, key=lambda r: f"{r['repo']}/{r['path']}", limit=limit)
    return [Example("code", r["content"], f"code:{r['repo']}/{r['path']}", f"thealgorithms-{r['language']}")
            for r in rows if r.get("content")]


_COMMENT = re.compile(r"^(?:#+|//+|/?\*+|--)\s?(.*)$")


def code_prose(files: list[Example]) -> list[Example]:
    """The natural-language part of code files (comments and docstrings), one example per file:
    prose about programming, so that web pages about code are not only recognised by their
    snippets."""
    out = []
    for e in files:
        lines = []
        for ln in e.text.splitlines():
            m = _COMMENT.match(ln.strip())
            if m and len(m.group(1).split()) >= 3:
                lines.append(m.group(1))
        lines += re.findall(r'"""(.*?)"""', e.text, re.S)
        text = "\n".join(lines)
        if len(text) >= MIN_CHARS:
            out.append(Example("code", text, e.group, "code-comments"))
    return out


def udhr_english(corpus: Path | None = None) -> list[str]:
    """The English UDHR, one text per article (preamble first)."""
    import lxml.html
    p = corpus_files.udhr_file("eng", corpus)
    doc = lxml.html.fromstring(gzip.open(p).read())
    parts = []
    for art in doc.xpath("//article|//header"):
        t = "\n".join(re.sub(r"\s+", " ", x.text_content()).strip()
                      for x in art.xpath(".//h2|.//h3|.//p|.//li"))
        if t.strip():
            parts.append(t)
    return parts


# ---------------------------------------------------------------- recipes

def _chunks(text: str, min_chars: int = 300, max_chunks: int = 3) -> list[str]:
    """The first `max_chunks` runs of consecutive lines holding at least `min_chars` characters."""
    out, cur = [], []
    for ln in text.splitlines():
        if ln.strip():
            cur.append(ln)
            if sum(len(x) for x in cur) >= min_chars:
                out.append("\n".join(cur))
                cur = []
                if len(out) >= max_chunks:
                    break
    return out


_SENT = re.compile(r"(?<=[.!?])\s+")


def _short_pieces(text: str, sentences: bool, lo: int = 40, hi: int = 240,
                  n: int = 3) -> list[str]:
    """Up to `n` single lines (or sentences, split at . ! ?) of `lo`..`hi` characters: the
    longest ones, ties by text, so the choice is stable."""
    parts = []
    for ln in text.splitlines():
        for x in (_SENT.split(ln) if sentences else [ln]):
            x = x.strip()
            if lo <= len(x) <= hi:
                parts.append(x)
    return sorted(set(parts), key=lambda x: (-len(x), x))[:n]


def quality_default(corpus: Path | None = None, limit: int | None = None) -> list[Example]:
    """hq: article bodies, MATH solutions, UDHR (en); lq: full pages and their boilerplate.

    `limit` caps the number of pages (and scales the MATH sample) for quick runs and tests.
    """
    pages = eval_pages(corpus, limit=limit)
    ex: list[Example] = []
    for p in pages:
        g = "page:" + p["url"]
        if len(p["main"]) >= MIN_CHARS:
            ex.append(Example("hq", p["main"], g, "trafilatura-main"))
        if len(p["full"]) >= MIN_CHARS:
            ex.append(Example("lq", p["full"], g, "full-page"))
        if len(p["boilerplate"]) >= MIN_CHARS // 2:
            ex.append(Example("lq", p["boilerplate"], g, "boilerplate"))
        # short pieces too, so that length alone is no cue: up to 3 chunks of >= 300 characters
        # of the boilerplate (lq) and of the main text (hq) of each page
        ex += [Example("lq", t, g, "boilerplate-chunk") for t in _chunks(p["boilerplate"])]
        ex += [Example("hq", t, g, "main-chunk") for t in _chunks(p["main"])]
        # and single lines: a boilerplate line alone (a cookie notice, a newsletter box, a
        # copyright line) is what a failed extraction leaves, against single main-text sentences
        ex += [Example("lq", t, g, "boilerplate-line")
               for t in _short_pieces(p["boilerplate"], sentences=False)]
        ex += [Example("hq", t, g, "main-sentence")
               for t in _short_pieces(p["main"], sentences=True)]
    n_math = max(20, len(pages) // 3)
    ex += [Example("hq", e.text, e.group, "math-solution")
           for e in math_problems(corpus, limit_gsm8k=0, limit_math=n_math)]
    ex += [Example("hq", t, f"udhr:{i}", "udhr-en") for i, t in enumerate(udhr_english(corpus))]
    return ex


def domain_default(corpus: Path | None = None, limit: int | None = None) -> list[Example]:
    """general: web pages (main text and full page); math: GSM8K + MATH; code: TheAlgorithms.

    Classes are sampled to comparable sizes; `limit` caps the examples per class.
    """
    n = limit or 1600
    pages = eval_pages(corpus, limit=limit, exclude=set(CRAWL_CHECK))
    ex: list[Example] = []
    for p in pages:
        g = "page:" + p["url"]
        if len(p["main"]) >= MIN_CHARS:
            ex.append(Example("general", p["main"], g, "web-main"))
        if len(p["full"]) >= MIN_CHARS:
            ex.append(Example("general", p["full"], g, "web-full"))
    ex += math_problems(corpus, limit_gsm8k=n // 3, limit_math=n // 3, problems_alone=True)
    code = code_files(corpus, limit=n)
    ex += code + code_prose(code)
    return ex


def crawl_check(corpus: Path | None = None) -> list[tuple[str, str, str]]:
    """(url, expected domain, extracted text) for the crawl pages about code or maths."""
    import trafilatura
    meta = corpus_files.trafilatura_eval(corpus)
    out = []
    for url, want in sorted(CRAWL_CHECK.items()):
        if url not in meta:
            continue
        path = corpus_files.trafilatura_eval_page(meta[url]["file"], corpus, prefer=("cache", "eval"))
        text = trafilatura.extract(gzip.open(path).read(), url=url) or ""
        out.append((url, want, text))
    return out


RECIPES: dict[str, dict[str, Callable[..., list[Example]]]] = {
    "quality": {"default": quality_default},
    "domain": {"default": domain_default},
}
