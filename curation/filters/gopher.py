"""Gopher quality signals (Rae et al. 2021, appendix A.1.1).

* gopher_word_count: words (see text.words_of);
* gopher_mean_word_len: mean characters per word;
* gopher_symbol_word_ratio: ('#' + ellipsis occurrences) per word;
* gopher_bullet_line_frac: lines starting with a bullet;
* gopher_ellipsis_line_frac: lines ending with '...' or '…';
* gopher_alpha_word_frac: words containing at least one letter;
* gopher_stop_word_count: occurrences of the English stop words the, be, to, of, and, that, have, with.
"""
from __future__ import annotations

STOP_WORDS = frozenset({"the", "be", "to", "of", "and", "that", "have", "with"})
BULLETS = ("•", "●", "○", "▪", "▫", "■", "□", "◦", "‣", "⁃", "-", "*", "–", "—", "·", "➢", "➤", "►", "✓", "✔")


def gopher_signals(text: str, words: list[str], lines: list[str]) -> dict[str, float]:
    n = len(words)
    n_lines = len(lines)
    symbols = text.count("#") + text.count("...") + text.count("…")
    return {
        "gopher_word_count": n,
        "gopher_mean_word_len": (sum(len(w) for w in words) / n) if n else 0.0,
        "gopher_symbol_word_ratio": (symbols / n) if n else (1.0 if symbols else 0.0),
        "gopher_bullet_line_frac": (sum(1 for ln in lines if ln.startswith(BULLETS)) / n_lines)
        if n_lines else 0.0,
        "gopher_ellipsis_line_frac": (sum(1 for ln in lines if ln.endswith(("...", "…"))) / n_lines)
        if n_lines else 0.0,
        "gopher_alpha_word_frac": (sum(1 for w in words if any(c.isalpha() for c in w)) / n)
        if n else 0.0,
        "gopher_stop_word_count": sum(1 for w in words if w.lower() in STOP_WORDS),
    }
