"""Text conventions every stage shares, written once for Python and for Spark's JVM.

`WHITESPACE`: one run of whitespace as Python's `str.split()` / `str.isspace` sees it (ASCII
whitespace, the information separators U+001C..U+001F, NEL, NBSP and the other Unicode space
separators, line/paragraph separators), as one explicit character class that Python `re` and
java.util.regex read the same way: Java's `\\s` is ASCII-only, Python's `\\s` is Unicode-wide, and
Spark's `trim` strips only U+0020, so either engine's defaults disagree on a text with a
non-breaking space. Used by the exact-dedup key (curation/dedup/exact.py) and by the word count of
a rewritten document (core/schema.py `with_new_text`, the count extraction makes with
`len(text.split())`).
"""
WHITESPACE = "[\\t\\n\\x0B\\f\\r\\x1C-\\x1F \\x85\\xA0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]+"
