"""HTML -> main text: charset decoding, a size cap, a per-document time limit, trafilatura extraction
that keeps code blocks, math and the title, and markdown markers stripped from the result.

`extract_html(payload, ...)` is the one function the job, the benchmarks and the notebooks call. It
never raises on bad input: it returns an `Extracted` whose `reason` says why there is no text.

Decoding order (`decode_html`): a BOM, the HTTP `Content-Type` charset, then a `<meta charset>` /
`http-equiv` declaration in the first 4 KiB, then detection (UTF-8, else charset-normalizer on the
first 64 KiB), then UTF-8 with replacement. A declared charset that Python does not know, or that
fails to decode the bytes strictly, falls through to the next step; except that UTF-8 with a few
stray invalid bytes (<= 5% of the non-ASCII bytes: a latin-1 fragment in a UTF-8 page) is still
UTF-8, the strays read as windows-1252.

Text: trafilatura with include_formatting OFF (the same content selection as a bare
`trafilatura.extract`; its markdown mode drops content and escapes `*`, `_`, `[`), serialised by
trafilatura's plain-text writer, then its remaining markers (list `- `, table pipes) stripped
outside code blocks, whose lines are kept verbatim.
"""
from __future__ import annotations

import codecs
import re
import signal
import threading
import time
import unicodedata
from contextlib import contextmanager
from dataclasses import dataclass, field

HTML_DEFAULTS = {
    "max_bytes": 5_000_000,        # payloads above this are rejected (rejected.too_large)
    "timeout_s": 10.0,             # per-document extraction time limit (rejected.timeout); 0 = none
    "min_chars": 1,                # extracted text shorter than this is rejected (rejected.empty)
    "favor_precision": False,
    "favor_recall": False,
    "include_tables": True,
    "include_comments": False,
    "keep_math_images": True,      # <img alt="x^2"> of formula images kept as their TeX/alt text
    "strip_markdown": True,        # Llama 3: no markdown markers (list '- ', table pipes) in the text
}

_META_CHARSET = re.compile(
    rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:\-]+)""", re.I)
_HEADER_CHARSET = re.compile(r"charset\s*=\s*[\"']?\s*([A-Za-z0-9_.:\-]+)", re.I)


class ExtractionTimeout(BaseException):
    """Raised by the in-process SIGALRM limit. A BaseException, so that the broad `except
    Exception` of a library fallback does not swallow it (it can still be swallowed by a bare
    `except:` or deferred by C code: the job therefore runs extraction in
    `curation.extract.sandbox`, whose limit is a SIGKILL)."""
    pass


@dataclass
class Extracted:
    text: str | None
    title: str | None = None
    html_lang: str | None = None
    reason: str | None = None              # set when text is None: rejected.<why>
    detail: str | None = None
    meta: dict = field(default_factory=dict)  # charset, charset_source, extractor, ms


# ---------------------------------------------------------------- charset decoding

def _norm_charset(name: str | bytes | None) -> str | None:
    if not name:
        return None
    if isinstance(name, bytes):
        name = name.decode("ascii", "ignore")
    name = name.strip().strip("\"'").lower()
    try:
        canonical = codecs.lookup(name).name
    except LookupError:
        return None
    # WHATWG: latin-1 and ascii labels mean windows-1252 on the web
    if canonical in ("latin-1", "iso8859-1", "ascii"):
        return "cp1252"
    return canonical


def charset_from_content_type(content_type: str | None) -> str | None:
    if not content_type:
        return None
    m = _HEADER_CHARSET.search(content_type)
    return m.group(1) if m else None


def _stray_byte_as_cp1252(err: UnicodeDecodeError):
    """Codec error handler: a byte that is not valid UTF-8 is read as windows-1252 (the usual
    cause: a latin-1 fragment pasted into a UTF-8 page), else U+FFFD."""
    bad = err.object[err.start:err.start + 1]
    return bad.decode("cp1252", "replace"), err.start + 1


codecs.register_error("curation_cp1252", _stray_byte_as_cp1252)

UTF8_MAX_BAD_SHARE = 0.05   # invalid sequences / non-ASCII bytes still read as "UTF-8 with strays"


def _try(data: bytes, enc: str | None) -> str | None:
    """Decode strictly; a page declared or detected as UTF-8 that has a few stray invalid bytes
    (<= 5% of its non-ASCII bytes) is still UTF-8, as in a browser: the strays are read as
    windows-1252 instead of rejecting the declaration."""
    if not enc:
        return None
    try:
        return data.decode(enc)
    except LookupError:
        return None
    except UnicodeDecodeError:
        if enc != "utf-8":
            return None
    non_ascii = len(data) - len(data.translate(None, bytes(range(128, 256))))
    text = data.decode("utf-8", "replace")
    bad = text.count("\ufffd") - data.count("\xef\xbf\xbd".encode("latin-1"))
    if bad > UTF8_MAX_BAD_SHARE * non_ascii:
        return None
    return data.decode("utf-8", "curation_cp1252")


def decode_html(data: bytes, http_charset: str | None = None) -> tuple[str, str, str]:
    """Decode an HTML payload: returns (text, charset, source) with source in
    header|bom|meta|detected|fallback."""
    if data.startswith(codecs.BOM_UTF8):
        return data[3:].decode("utf-8", "replace"), "utf-8", "bom"
    enc = _norm_charset(http_charset)
    s = _try(data, enc)
    if s is not None:
        return s, enc, "header"
    m = _META_CHARSET.search(data[:4096])
    enc = _norm_charset(m.group(1)) if m else None
    if enc in ("utf-16", "utf-16-le", "utf-16-be"):  # a meta tag readable as ASCII is not UTF-16
        enc = "utf-8"
    s = _try(data, enc)
    if s is not None:
        return s, enc, "meta"
    s = _try(data, "utf-8")
    if s is not None:
        return s, "utf-8", "detected"
    try:
        from charset_normalizer import from_bytes
        best = from_bytes(data[:65536]).best()
        enc = _norm_charset(best.encoding) if best is not None else None
    except Exception:
        enc = None
    if enc:
        return data.decode(enc, "replace"), enc, "detected"
    return data.decode("utf-8", "replace"), "utf-8", "fallback"


# ---------------------------------------------------------------- time limit

@contextmanager
def time_limit(seconds: float):
    """Raise ExtractionTimeout in the block after `seconds` (SIGALRM; main thread of a process only,
    which is where Spark's Python workers run a UDF). Elsewhere the block runs without a limit."""
    if not seconds or threading.current_thread() is not threading.main_thread() \
            or not hasattr(signal, "setitimer"):
        yield
        return

    def on_alarm(signum, frame):
        raise ExtractionTimeout()

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


# ---------------------------------------------------------------- tree preparation

_MATHY_SRC = re.compile(r"(latex|mathtex|tex\?|codecogs|mimetex|/math/|wp-latex|formula)", re.I)
_MATHY_ALT = re.compile(r"(\\[a-zA-Z]+|[_^]\{?|\$|=)")


def _prepare_tree(tree, keep_math_images: bool) -> None:
    """Turn math that trafilatura would drop into text: formula images (alt text), MathJax/KaTeX
    script tags (`<script type="math/tex">`), MathML without alttext (its TeX annotation)."""
    if keep_math_images:
        for img in tree.iter("img"):
            alt = (img.get("alt") or "").strip()
            if not alt:
                continue
            src = img.get("src") or ""
            cls = img.get("class") or ""
            if _MATHY_SRC.search(src) or "tex" in cls.lower() or "math" in cls.lower() \
                    or (_MATHY_ALT.search(alt) and len(alt) < 400):
                img.tag = "span"
                for a in list(img.attrib):
                    del img.attrib[a]
                img.text = f" {alt} "
    for sc in tree.iter("script"):
        if "math/tex" in (sc.get("type") or "").lower() and sc.text:
            display = "mode=display" in (sc.get("type") or "")
            sc.tag = "span"
            sc.attrib.clear()
            sc.text = f" $${sc.text.strip()}$$ " if display else f" ${sc.text.strip()}$ "
    for m in tree.iter("math", "{http://www.w3.org/1998/Math/MathML}math"):
        if m.get("alttext"):
            continue
        for ann in m.iter("annotation"):
            if "tex" in (ann.get("encoding") or "").lower() and ann.text:
                m.set("alttext", ann.text.strip())
                break


def _title_and_lang(tree) -> tuple[str | None, str | None]:
    title = None
    for xp in ('//meta[@property="og:title"]/@content', "//head/title/text()", "//title/text()",
               "//h1//text()"):
        vals = tree.xpath(xp)
        if vals:
            t = " ".join(str(vals[0]).split())
            if t:
                title = t[:1000]
                break
    lang = tree.get("lang") or tree.get("{http://www.w3.org/XML/1998/namespace}lang")
    if not lang:
        vals = tree.xpath('//meta[@http-equiv="content-language" or @name="language"]/@content')
        lang = str(vals[0]) if vals else None
    lang = lang.strip().replace("_", "-")[:35] if lang else None
    return title, (lang or None)


# ---------------------------------------------------------------- markdown markers

_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+")
_BULLET = re.compile(r"^(\s*)[-*+]\s+(?=\S)")
_QUOTE = re.compile(r"^\s{0,3}>\s?")
_BOLD = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_EMPH = re.compile(r"(?<![\w*])\*(?=[^\s*])([^*\n]+?)(?<=\S)\*(?![\w*])")
_CODE = re.compile(r"`([^`\n]+)`")
_LINK = re.compile(r"!?\[([^\]\n]*)\]\([^)\s]*\)")
_TABLE_SEP = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")


def strip_markdown(text: str) -> str:
    """Remove markdown markers (headings, emphasis, bullets, quotes, fences, inline code, links,
    table pipes) from trafilatura's formatted output. Lines inside code fences are kept verbatim
    (a `# comment` in code is code, not a heading)."""
    out: list[str] = []
    in_code = False
    for line in text.split("\n"):
        if _FENCE.match(line):
            in_code = not in_code
            continue
        if in_code:
            out.append(line)
            continue
        if _TABLE_SEP.match(line):
            continue
        s = line.rstrip()
        if s.lstrip().startswith("|") and s.endswith("|"):
            cells = [c.strip() for c in s.strip().strip("|").split("|")]
            s = "\t".join(c for c in cells)
        s = _HEADING.sub("", s)
        s = _QUOTE.sub("", s)
        s = _BULLET.sub(r"\1", s)
        s = _LINK.sub(r"\1", s)
        s = _BOLD.sub(r"\2", s)
        s = _EMPH.sub(r"\1", s)
        s = _CODE.sub(r"\1", s)
        out.append(s)
    # collapse runs of blank lines to one
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(out))
    return text.strip()


# ---------------------------------------------------------------- plain text from trafilatura

# A verbatim line (code/pre block) is tagged with this in the tree before serialising, so that
# marker stripping never touches code; printable (trafilatura drops non-printables) and never
# expected in page text.
_VERBATIM = "\u2e3b\u2e3bverbatim\u2e3b\u2e3b"
_ITEM_MARK = re.compile(r"^[ ]*- ")
_ROW = re.compile(r"^\|.*\|\s*$")
_CELL_SPLIT = re.compile(r"\s*(?<!\\)\|\s*")


def _mark_verbatim(body) -> None:
    """Prefix every line of multi-line code/pre blocks with _VERBATIM (blank lines included,
    which trafilatura's plain-text serialiser would otherwise drop)."""
    for el in body.iter("code", "quote"):
        if el.text and "\n" in el.text.strip("\n"):
            el.text = "\n".join(_VERBATIM + ln for ln in el.text.strip("\n").split("\n"))


def _plain_lines(text: str) -> str:
    """trafilatura's plain text minus its two markdown-ish markers: '- ' of list items and the
    '| a | b |' / '|---|' table syntax (cells joined by tabs). Verbatim lines are kept as they are."""
    out: list[str] = []
    for line in text.split("\n"):
        if line.startswith(_VERBATIM):
            out.append(line.replace(_VERBATIM, ""))
            continue
        line = line.replace(_VERBATIM, "")
        if _TABLE_SEP.match(line):
            continue
        if _ROW.match(line):
            cells = _CELL_SPLIT.split(line.strip()[1:-1].strip())
            line = "\t".join(c.replace("\\|", "|") for c in cells)
        else:
            line = _ITEM_MARK.sub("", line)
        out.append(line)
    return "\n".join(out).strip()


def _extract_text(tree, url: str | None, cfg: dict) -> str | None:
    """Main text of a prepared lxml tree: trafilatura's extraction with include_formatting off
    (the same content selection as a bare `trafilatura.extract`; its markdown mode changes which
    elements survive and backslash-escapes *, _, [ in text and code), serialised by trafilatura's
    own plain-text writer, then list/table markers removed (strip_markdown)."""
    from trafilatura import bare_extraction
    from trafilatura.settings import Extractor
    from trafilatura.xml import xmltotxt
    options = Extractor(output_format="txt", url=url, comments=cfg["include_comments"],
                        tables=cfg["include_tables"], precision=cfg["favor_precision"],
                        recall=cfg["favor_recall"] and not cfg["favor_precision"],
                        formatting=False, dedup=False)
    doc = bare_extraction(tree, options=options)
    if doc is None or doc.body is None:
        return None
    parts = []
    for body in (doc.body, doc.commentsbody):
        if body is None:
            continue
        if cfg["strip_markdown"]:
            _mark_verbatim(body)
        parts.append(xmltotxt(body, False))
    text = unicodedata.normalize("NFC", "\n".join(p for p in parts if p).strip())
    return _plain_lines(text) if cfg["strip_markdown"] else text


# ---------------------------------------------------------------- the entry point

def extract_html(payload: bytes | str, url: str | None = None, http_charset: str | None = None,
                 cfg: dict | None = None) -> Extracted:
    """Main text, title and declared language of one HTML page (bytes or already-decoded str)."""
    cfg = {**HTML_DEFAULTS, **(cfg or {})}
    t0 = time.perf_counter()
    size = len(payload)
    if cfg["max_bytes"] and size > cfg["max_bytes"]:
        return Extracted(None, reason="rejected.too_large", detail=f"{size} bytes > {cfg['max_bytes']}")
    meta: dict = {"extractor": "trafilatura"}
    try:
        with time_limit(cfg["timeout_s"]):
            if isinstance(payload, bytes):
                html, charset, source = decode_html(payload, http_charset)
                meta["charset"], meta["charset_source"] = charset, source
            else:
                html = payload
            from trafilatura.utils import load_html
            tree = load_html(html) if html.strip() else None
            if tree is None:
                return Extracted(None, reason="rejected.unparseable_html", meta=meta)
            title, lang = _title_and_lang(tree)
            _prepare_tree(tree, cfg["keep_math_images"])
            text = _extract_text(tree, url, cfg)
    except ExtractionTimeout:
        return Extracted(None, reason="rejected.timeout", detail=f"> {cfg['timeout_s']} s", meta=meta)
    except RecursionError:
        return Extracted(None, reason="rejected.extraction_error", detail="RecursionError", meta=meta)
    except Exception as e:  # lxml/trafilatura on hostile input: recorded, never a crash
        return Extracted(None, reason="rejected.extraction_error",
                         detail=f"{type(e).__name__}: {str(e)[:200]}", meta=meta)
    meta["ms"] = f"{(time.perf_counter() - t0) * 1000:.1f}"
    if not text or len(text) < cfg["min_chars"]:
        return Extracted(None, title=title, html_lang=lang, reason="rejected.empty", meta=meta)
    return Extracted(text, title=title, html_lang=lang, meta=meta)
