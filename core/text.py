"""Text conventions every stage shares, written once for Python and for Spark's JVM.

`WHITESPACE`: one run of whitespace as Python's `str.split()` / `str.isspace` sees it (ASCII
whitespace, the information separators U+001C..U+001F, NEL, NBSP and the other Unicode space
separators, line/paragraph separators), as one explicit character class that Python `re` and
java.util.regex read the same way: Java's `\\s` is ASCII-only, Python's `\\s` is Unicode-wide, and
Spark's `trim` strips only U+0020, so either engine's defaults disagree on a text with a
non-breaking space. Used by the exact-dedup key (curation/dedup/exact.py) and by the word count of
a rewritten document (core/schema.py `with_new_text`, the count extraction makes with
`len(text.split())`).

`NO_SPACE_SCRIPTS`: the code-point ranges of scripts written without spaces between words (Thai,
Lao, Myanmar, Khmer, Hiragana/Katakana, CJK ideographs). Every stage that splits text into words
makes each such character a word of its own: the filters' words (curation/filters/text.py), the
MinHash shingles (curation/dedup/minhash.py) and the decontamination n-grams
(curation/decontaminate/ngrams.py); otherwise a Chinese clause is one "word". `NO_SPACE_CLASS` is
the same set as the inside of a regex character class.
"""
WHITESPACE = "[\\t\\n\\x0B\\f\\r\\x1C-\\x1F \\x85\\xA0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]+"
# The same set for java.util.regex (Spark's regexp_replace/split), written so the JVM tests it fast:
# with (?U), `\s` is Unicode's White_Space property (\t..\r, space, NEL, NBSP, the Zs/Zl/Zp
# separators), which is the class above without U+001C..U+001F. The explicit class costs 2.4x the
# CPU of this one in the JVM (60,000 generated documents: 12.5 s against 5.2 s, as fast as the old
# ASCII `\s+`; benchmarks in docs/BENCHMARKS.md, dedup); tests/test_dedup_spark.py checks that the
# two match the same characters over the whole BMP.
WHITESPACE_JVM = "(?U)[\\s\\x1C-\\x1F]+"

NO_SPACE_SCRIPTS = ((0x0E00, 0x0E7F),   # Thai
                    (0x0E80, 0x0EFF),   # Lao
                    (0x1000, 0x109F),   # Myanmar
                    (0x1780, 0x17FF),   # Khmer
                    (0x3040, 0x30FF),   # Hiragana, Katakana
                    (0x3400, 0x4DBF),   # CJK extension A
                    (0x4E00, 0x9FFF),   # CJK unified ideographs
                    (0xF900, 0xFAFF))   # CJK compatibility ideographs
NO_SPACE_CLASS = "".join(f"{chr(lo)}-{chr(hi)}" for lo, hi in NO_SPACE_SCRIPTS)   # the characters themselves
