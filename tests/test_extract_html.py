"""HTML extraction: charset order, size cap, time limit, code/math/title kept, markdown stripped."""
import time

from curation.extract.html import decode_html, extract_html, strip_markdown

PAGE = """<html lang="{lang}"><head><title>Über uns – Café Müller</title>{meta}</head><body>
<nav>Start | Kontakt | Impressum</nav>
<article><h1>Geschichte des Cafés</h1>
<p>Das Café Müller wurde 1923 gegründet und ist für seine Torten bekannt. Die Gäste schätzen
die ruhige Atmosphäre, die großen Fenster und den Blick über den Marktplatz der Altstadt.</p>
<p>Die Formel für unseren Erfolg lautet <img src="/cgi-bin/mimetex.cgi?x" alt="E = m c^2">,
sagt die Inhaberin, und in MathML <math alttext="a^2+b^2=c^2"><mi>a</mi></math> ebenso.</p>
<pre><code># Kommentar im Code
def preis(n):
    return n * 2.5
</code></pre>
<p>Öffnungszeiten: täglich von acht bis achtzehn Uhr, sonntags bis sechzehn Uhr geöffnet.</p>
</article><footer>© 2024 Café Müller GmbH</footer></body></html>"""


def page(lang="de", meta=""):
    return PAGE.format(lang=lang, meta=meta)


def test_charset_header_then_meta_then_detection():
    raw = page().encode("cp1252")
    # HTTP header wins
    s, enc, src = decode_html(raw, "windows-1252")
    assert src == "header" and "Müller" in s
    # no header: meta charset
    raw_meta = page(meta='<meta charset="iso-8859-1">').encode("cp1252")
    s, enc, src = decode_html(raw_meta, None)
    assert src == "meta" and "Café" in s
    # neither: detection (not UTF-8 replacement characters)
    s, enc, src = decode_html(raw, None)
    assert src == "detected" and "\ufffd" not in s and "Müller" in s
    # a wrong header that cannot decode the bytes falls through
    s, enc, src = decode_html(raw_meta, "utf-8")
    assert src == "meta"


def test_non_utf8_page_extracts_right():
    ex = extract_html(page(meta='<meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1">')
                      .encode("latin-1", "replace"))
    assert ex.text and "gegründet" in ex.text and "\ufffd" not in ex.text
    assert ex.meta["charset_source"] == "meta"
    assert ex.title.startswith("Über uns") and ex.html_lang == "de"


def test_code_math_kept_markdown_stripped():
    ex = extract_html(page().encode("utf-8"))
    t = ex.text
    assert "def preis(n):" in t and "    return n * 2.5" in t
    assert "# Kommentar im Code" in t          # a comment inside code is not a heading
    assert "E = m c^2" in t and "a^2+b^2=c^2" in t
    assert "Geschichte des Cafés" in t and "# Geschichte" not in t
    assert "```" not in t and "**" not in t
    assert "Impressum" not in t                 # boilerplate removed


def test_strip_markdown_rules():
    md = "# Title\n\n- item **bold** and *em*\n> quote\n\n| a | b |\n|---|---|\n| 1 | 2 |\n```\n# code\n```"
    assert strip_markdown(md) == "Title\n\nitem bold and em\nquote\n\na\tb\n1\t2\n# code"


def test_giant_page_rejected_fast():
    giant = b"<html><body>" + b"<p>word </p>" * 600_000 + b"</body></html>"
    t0 = time.time()
    ex = extract_html(giant, cfg={"max_bytes": 5_000_000})
    assert ex.text is None and ex.reason == "rejected.too_large"
    assert time.time() - t0 < 1.0


def test_time_limit_rejects_slow_page():
    # a deep, wide page under a tiny time limit: rejected with a reason, never a hang
    html = "<html><body>" + "<div><p>text block number one with several words</p>" * 3000 + \
           "</div>" * 3000 + "</body></html>"
    t0 = time.time()
    ex = extract_html(html.encode(), cfg={"timeout_s": 0.01})
    assert ex.text is None and ex.reason in ("rejected.timeout", "rejected.extraction_error")
    assert time.time() - t0 < 5


def test_garbage_is_a_reason_not_a_crash():
    for junk in (b"", b"\x00\x01\x02" * 100, b"%PDF-1.4 binary", "<html></html>".encode()):
        ex = extract_html(junk)
        assert ex.text is None and ex.reason.startswith("rejected.")


def test_text_is_not_markdown_escaped_and_lists_tables_are_plain():
    body = ("<p>" + "Die Berliner*innen lesen den Artikel über snake_case und [1] Fußnoten. " * 6 + "</p>"
            "<ul><li>erster Punkt der Liste</li><li>zweiter Punkt<ul><li>verschachtelt</li></ul></li></ul>"
            "<pre>x = 1\n\n- y: [2]\n  z = a_b</pre>"
            "<table><tr><th>Spalte|A</th><th>B</th></tr><tr><td>1</td><td>2</td></tr></table>"
            "<p>" + "Noch ein Absatz mit *Sternen* und Text, der lang genug ist. " * 4 + "</p>")
    t = extract_html(f"<html><body><article>{body}</article></body></html>".encode()).text
    assert "Berliner*innen" in t and "snake_case" in t and "[1] Fußnoten" in t and "*Sternen*" in t
    assert "\\" not in t                                  # no markdown escapes
    lines = t.split("\n")
    assert "erster Punkt der Liste" in lines and "verschachtelt" in lines   # list markers gone
    assert "x = 1\n\n- y: [2]\n  z = a_b" in t            # code verbatim: blank line, '- ' kept
    assert "Spalte|A\tB" in lines and "1\t2" in lines     # table pipes -> tabs
    assert "---" not in t


def test_utf8_page_with_a_stray_latin1_byte_stays_utf8():
    raw = page(meta='<meta charset="utf-8">').encode("utf-8").replace(
        b"</footer>", b" Gr\xfc\xdfe</footer>")          # two bytes that are not valid UTF-8
    s, enc, src = decode_html(raw)
    assert (enc, src) == ("utf-8", "meta") and "Café Müller" in s and "Grüße" in s
    # a page that is windows-1252 throughout is not read as UTF-8 even when it says so
    s, enc, src = decode_html(page().encode("cp1252"), "utf-8")
    assert src != "header" and "Müller" in s


# pages of trafilatura-eval that the markdown-formatting pipeline used to get wrong (content lost
# in formatting mode, `\*` escapes, a UTF-8 page with stray bytes decoded as cp1006/cp1250)
REGRESSION_PAGES = ["badische-zeitung.de-Wohnungssuche.html", "taz.de.siemens.html",
                    "creeny.wordpress.com.nebelsuppe.html", "maescot.de.schafskunde.html",
                    "der-erfolg-gibt-recht.de.rinderleber.html", "chip.de.bestcrypt.html"]


def test_eval_pages_keep_their_must_contain_snippets(corpus):
    import gzip
    import json
    root = corpus / "extraction" / "trafilatura-eval"
    data = json.loads((root / "evaldata.json").read_text())
    by_file = {v["file"]: (url, v) for url, v in data.items()}
    for name in REGRESSION_PAGES:
        url, item = by_file[name]
        path = next(p for p in (root / "cache" / (name + ".gz"), root / "eval" / (name + ".gz"))
                    if p.is_file())
        text = " ".join((extract_html(gzip.decompress(path.read_bytes()), url=url).text or "").split())
        for snippet in item["with"]:
            assert " ".join(snippet.split()) in text, (name, snippet)
