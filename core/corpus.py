"""One reader per file of the sample corpus (`../shared/corpus`, README there; folder from
`core.paths.corpus_dir`). The readers return the records as the files hold them; what a caller makes
of them (a training example, a `documents` row, a token stream) is the caller's business.

A missing file is a FileNotFoundError that says the sample corpus is needed and how to point to it.
Every reader takes `corpus` (default: `corpus_dir()`); the record readers are generators, so a caller
that needs the first N records reads only those.
"""
from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Iterator

from core.paths import corpus_dir


def require(path: Path) -> Path:
    """`path`, or a FileNotFoundError naming the sample corpus setting."""
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: this needs the sample corpus "
                                "(set CURATION_CORPUS to its folder)")
    return path


def base(corpus: str | Path | None = None) -> Path:
    return Path(corpus) if corpus is not None else corpus_dir()


def read_jsonl(path: str | Path) -> Iterator[dict]:
    """The records of a JSON-lines file (gzipped when the name ends with .gz); blank lines skipped.
    A line that is not a JSON object is a ValueError naming the file and the line."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(require(path), "rt", encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{lineno}: not JSON ({e})") from None
            if not isinstance(rec, dict):
                raise ValueError(f"{path}:{lineno}: expected a JSON object")
            yield rec


def read_text(path: str | Path) -> str:
    """A text file of the corpus (gunzipped when the name ends with .gz), undecodable bytes replaced."""
    path = require(Path(path))
    if path.suffix == ".gz":
        with gzip.open(path, "rt", encoding="utf-8", errors="replace") as f:
            return f.read()
    return path.read_text(encoding="utf-8", errors="replace")


def gsm8k(split: str = "train", corpus: str | Path | None = None) -> Iterator[dict]:
    """GSM8K `{question, answer}` records (`split`: train or test)."""
    return read_jsonl(base(corpus) / "math" / "gsm8k" / f"{split}.jsonl")


def math_hendrycks(corpus: str | Path | None = None) -> Iterator[dict]:
    """MATH test problems `{problem, solution, level, type}`."""
    return read_jsonl(base(corpus) / "math" / "math-hendrycks" / "math" / "test.jsonl")


def thealgorithms(corpus: str | Path | None = None) -> Iterator[dict]:
    """TheAlgorithms source files `{repo, path, language, content}`."""
    return read_jsonl(base(corpus) / "code" / "thealgorithms.jsonl.gz")


def tatoeba_files(corpus: str | Path | None = None, english: bool = False) -> list[Path]:
    """The Tatoeba sentence files, sorted: the non-English side `tatoeba.<iso3>-eng.<iso3>`, or
    with `english` the English side `tatoeba.<iso3>-eng.eng` of every pair."""
    d = require(base(corpus) / "multilingual" / "tatoeba")
    files = sorted(d.glob("tatoeba.*-eng.*"))
    return [p for p in files if p.name.endswith(".eng") == english]


def tatoeba_lines(path: str | Path) -> list[str]:
    """The sentences of one Tatoeba file, one per line."""
    return read_text(path).splitlines()


def udhr_files(corpus: str | Path | None = None) -> list[Path]:
    """The UDHR translations (HTML, some gzipped), sorted by file name."""
    return sorted(require(base(corpus) / "multilingual" / "udhr" / "declaration").glob("*.html*"))


def udhr_file(lang: str = "eng", corpus: str | Path | None = None) -> Path:
    return require(base(corpus) / "multilingual" / "udhr" / "declaration" / f"{lang}.html.gz")


def trafilatura_eval(corpus: str | Path | None = None) -> dict[str, dict]:
    """The annotated extraction set: `{url: {file, with: [...], without: [...]}}`."""
    d = require(base(corpus) / "extraction" / "trafilatura-eval")
    return json.loads((d / "evaldata.json").read_text())


def trafilatura_eval_page(name: str, corpus: str | Path | None = None,
                          prefer: tuple[str, ...] = ("eval", "cache")) -> Path | None:
    """The gzipped HTML of one annotated page (`file` of its entry), looked up in the folders
    `prefer` names in that order; None when neither has it."""
    d = base(corpus) / "extraction" / "trafilatura-eval"
    for sub in prefer:
        p = d / sub / (name + ".gz")
        if p.is_file():
            return p
    return None


def trafilatura_eval_files(corpus: str | Path | None = None) -> list[Path]:
    """The gzipped HTML pages of `eval/`, sorted by name."""
    return sorted(require(base(corpus) / "extraction" / "trafilatura-eval").glob("eval/*.html.gz"))


def readability_expected(corpus: str | Path | None = None) -> list[Path]:
    """The readability set's expected main-content pages (`<page>/expected.html.gz`), sorted."""
    d = require(base(corpus) / "extraction" / "readability" / "pages")
    return sorted(d.glob("*/expected.html.gz"))
