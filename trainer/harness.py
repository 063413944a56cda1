"""Downstream evaluation of a trained model: log-likelihood scoring, benchmark tasks, metrics.

The pieces (``trainer/evaluate.py`` is the command that runs them on a checkpoint):

- ``Scorer``: log-likelihood of continuations given contexts, batched by tokens (requests sorted
  by length, right-padded; causal attention makes padding harmless), fp32 log-softmax only at the
  scored positions, contexts truncated from the left to the model's length. A pair of strings is
  tokenised as lm-evaluation-harness does (``_encode_pair``): trailing spaces of the context move
  to the continuation; the continuation's tokens are those of ``encode(context + continuation)``
  after ``len(encode(context))``. An empty context is conditioned on ``<|end_of_text|>`` (the
  mixer puts no BOS before documents; a document starts after the previous one's end).
- Tasks (``TASKS``): zero-shot multiple choice (PIQA, ARC-Easy: ``Question: ...\\nAnswer:`` and
  `` choice``; WinoGrande: partial scoring, the sentence up to the blank + option as context,
  `` rest of the sentence`` scored), LAMBADA (last word: accuracy = greedy, perplexity), NLL of the
  correct answer per character/byte (GSM8K test, MATH500: the worked solution after the question),
  GSM8K exact match (k-shot from GSM8K *train*, greedy, the standard answer extraction), and user
  multiple-choice tasks from a small spec with few-shot examples from a dev file.
- Metrics as lm-evaluation-harness defines them (lm_eval/api/task.py, ``process_results`` of the
  ``multiple_choice`` output type): ``acc`` = argmax of the summed log-likelihoods is the gold
  choice; ``acc_norm`` = argmax of log-likelihood divided by the choice's length in characters
  (``len(choice)``, the choice text without the leading space delimiter). LAMBADA as its
  ``loglikelihood`` output type: ``acc`` = the target is the greedy continuation,
  ``perplexity`` = exp(-mean log-likelihood of the target word).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

LN2 = math.log(2.0)


# ---- scoring -------------------------------------------------------------------------------
@torch.no_grad()
def final_hidden(model, idx: torch.Tensor) -> torch.Tensor:
    """The normalised last hidden states (B, T, dim) of a plain causal forward pass; the output
    layer is applied by the caller only where it needs logits (100K-way logits of every
    position of a batch would be gigabytes)."""
    T = idx.shape[1]
    cos, sin = model.rope_cos[:T], model.rope_sin[:T]
    h = model.tok_embeddings(idx)
    for layer in model.layers:
        h = layer(h, cos, sin, None)
    return model.norm(h)


@dataclass
class Scorer:
    model: object
    tokenizer: object                 # core.tokenizer.Tokenizer
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    batch_tokens: int = 8192

    @property
    def max_len(self) -> int:
        return self.model.cfg.max_seq_len

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text)

    def encode_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        n_space = len(context) - len(context.rstrip(" "))
        if n_space:
            continuation = context[-n_space:] + continuation
            context = context[:-n_space]
        if context == "":
            return [self.tokenizer.eot_id], self.encode(continuation)
        whole = self.encode(context + continuation)
        ctx = self.encode(context)
        return ctx, whole[len(ctx):]

    def windows(self, ctx: list[int], cont: list[int]) -> list[tuple[list[int], list[int]]]:
        """Split a pair longer than the model into pieces that each fit: a continuation longer
        than half the model's length is scored in pieces of ``max_len // 2`` tokens, each
        conditioned on the ``max_len + 1 - len(piece)`` tokens before it (context truncated from
        the left). Every continuation token is scored exactly once."""
        toks = list(ctx) + list(cont)
        if len(toks) <= self.max_len + 1:
            return [(list(ctx), list(cont))]
        step = max(1, self.max_len // 2) if len(cont) > self.max_len // 2 else len(cont)
        out = []
        for a in range(len(ctx), len(toks), step):
            b = min(a + step, len(toks))
            lo = max(0, b - (self.max_len + 1))
            out.append((toks[lo:a], toks[a:b]))
        return out

    @torch.no_grad()
    def loglikelihood(self, pairs: list[tuple[list[int], list[int]]]) -> list[tuple[float, bool]]:
        """(sum of log p(continuation | context), continuation is the greedy one) per pair."""
        out: list[tuple[float, bool] | None] = [None] * len(pairs)
        seqs, owner = [], []
        for i, (ctx, cont) in enumerate(pairs):
            if not cont:
                raise ValueError(f"request {i}: empty continuation")
            for c, x in self.windows(ctx, cont):
                full = c + x
                seqs.append((len(seqs), full[:-1], x))
                owner.append(i)
        parts: list[tuple[float, bool] | None] = [None] * len(seqs)
        seqs.sort(key=lambda s: (-len(s[1]), s[0]))
        k = 0
        while k < len(seqs):
            T = len(seqs[k][1])
            B = max(1, self.batch_tokens // max(T, 1))
            batch = seqs[k:k + B]
            k += len(batch)
            idx = torch.zeros(len(batch), T, dtype=torch.long)
            for b, (_, inp, _) in enumerate(batch):
                idx[b, :len(inp)] = torch.tensor(inp)
            h = final_hidden(self.model, idx.to(self.device))
            for b, (i, inp, tgt) in enumerate(batch):
                L, n = len(inp), len(tgt)
                logits = self.model.output(h[b, L - n:L]).float()
                lp = F.log_softmax(logits, dim=-1)
                t = torch.tensor(tgt, device=lp.device)
                ll = float(lp.gather(1, t[:, None]).sum())
                greedy = bool((lp.argmax(-1) == t).all())
                parts[i] = (ll, greedy)
        for j, (ll, greedy) in enumerate(parts):  # type: ignore[misc]
            i = owner[j]
            prev = out[i]
            out[i] = (ll, greedy) if prev is None else (prev[0] + ll, prev[1] and greedy)
        return out  # type: ignore[return-value]

    def score_strings(self, requests: list[tuple[str, str]]) -> list[tuple[float, bool]]:
        return self.loglikelihood([self.encode_pair(c, x) for c, x in requests])


# ---- tasks ---------------------------------------------------------------------------------
@dataclass
class MCItem:
    item_id: str
    requests: list[tuple[str, str]]      # (context, continuation) per choice
    choices: list[str]                   # for acc_norm's lengths (no delimiter)
    gold: int


def mc_metrics(items: list[MCItem], lls: list[list[float]], norm: bool = True) -> dict:
    acc, acc_n, nll_gold, chars_gold, bytes_gold, chance = [], [], 0.0, 0, 0, []
    per_item = []
    for it, ll in zip(items, lls):
        ll = np.asarray(ll, dtype=np.float64)
        lens = np.array([float(len(c)) for c in it.choices])
        pred = int(np.argmax(ll))
        pred_n = int(np.argmax(ll / lens))
        acc.append(float(pred == it.gold))
        acc_n.append(float(pred_n == it.gold))
        gold_cont = it.requests[it.gold][1]
        nll_gold += -ll[it.gold]
        chars_gold += len(gold_cont)
        bytes_gold += len(gold_cont.encode("utf-8"))
        chance.append(1.0 / len(it.choices))
        per_item.append({"id": it.item_id, "ll": ll.tolist(), "pred": pred, "pred_norm": pred_n, "gold": it.gold})
    n = len(items)
    m = {"n": n, "acc": float(np.mean(acc)), "acc_stderr": _stderr(acc), "chance": float(np.mean(chance)),
         "nll_per_char": nll_gold / max(chars_gold, 1), "nll_per_byte": nll_gold / max(bytes_gold, 1),
         "bpb": nll_gold / max(bytes_gold, 1) / LN2}
    if norm:
        m.update(acc_norm=float(np.mean(acc_n)), acc_norm_stderr=_stderr(acc_n))
    return {"metrics": m, "items": per_item}


def _stderr(xs) -> float:
    xs = np.asarray(xs, dtype=np.float64)
    return float(xs.std(ddof=1) / math.sqrt(len(xs))) if len(xs) > 1 else 0.0


def _qa(context: str) -> str:
    return f"Question: {context}\nAnswer:"


def mc_items_piqa(items) -> list[MCItem]:
    return [MCItem(it.item_id, [(_qa(it.mc.context), " " + c) for c in it.mc.choices], list(it.mc.choices),
                   it.mc.gold) for it in items]


def mc_items_arc(items) -> list[MCItem]:
    return mc_items_piqa(items)


def mc_items_winogrande(items) -> list[MCItem]:
    """Partial scoring (lm-evaluation-harness's winogrande): context = the sentence up to the blank
    followed by the option, continuation = ' ' + the rest of the sentence (stripped)."""
    out = []
    for it in items:
        rest = " " + (it.mc.suffix or "").strip()
        out.append(MCItem(it.item_id, [(it.mc.context + c, rest) for c in it.mc.choices],
                          list(it.mc.choices), it.mc.gold))
    return out


def run_mc(scorer: Scorer, items: list[MCItem], norm: bool = True) -> dict:
    flat = [r for it in items for r in it.requests]
    res = scorer.score_strings(flat)
    lls, k = [], 0
    for it in items:
        lls.append([res[k + j][0] for j in range(len(it.requests))])
        k += len(it.requests)
    return mc_metrics(items, lls, norm)


def lambada_metrics(lls: list[float], greedy: list[bool], ids: list[str]) -> dict:
    m = {"n": len(lls), "acc": float(np.mean(greedy)), "acc_stderr": _stderr([float(g) for g in greedy]),
         "perplexity": float(math.exp(-np.mean(lls)))}
    return {"metrics": m, "items": [{"id": i, "ll": ll, "greedy": g} for i, ll, g in zip(ids, lls, greedy)]}


def run_lambada(scorer: Scorer, items) -> dict:
    res = scorer.score_strings([(it.gen.prompt, " " + it.gen.answer) for it in items])
    return lambada_metrics([r[0] for r in res], [r[1] for r in res], [it.item_id for it in items])


def answer_nll_requests(items) -> list[tuple[str, str]]:
    """GSM8K / MATH500: the worked solution after ``Question: ...\\nAnswer:``."""
    return [(_qa(it.gen.prompt), " " + (it.gen.reference or it.gen.answer)) for it in items]


def answer_nll_metrics(requests: list[tuple[str, str]], lls: list[float], n_tokens: list[int],
                       ids: list[str]) -> dict:
    nll = -np.asarray(lls, dtype=np.float64)
    chars = np.array([len(c) for _, c in requests], dtype=np.float64)
    nbytes = np.array([len(c.encode("utf-8")) for _, c in requests], dtype=np.float64)
    m = {"n": len(lls), "nll_per_char": float(nll.sum() / chars.sum()),
         "nll_per_byte": float(nll.sum() / nbytes.sum()), "bpb": float(nll.sum() / nbytes.sum() / LN2),
         "nll_per_token": float(nll.sum() / max(sum(n_tokens), 1)),
         "nll_per_char_item_mean": float(np.mean(nll / chars))}
    return {"metrics": m, "items": [{"id": i, "nll": float(x), "chars": int(c)} for i, x, c in zip(ids, nll, chars)]}


def run_answer_nll(scorer: Scorer, items) -> dict:
    reqs = answer_nll_requests(items)
    pairs = [scorer.encode_pair(c, x) for c, x in reqs]
    res = scorer.loglikelihood(pairs)
    return answer_nll_metrics(reqs, [r[0] for r in res], [len(p[1]) for p in pairs], [it.item_id for it in items])


# ---- GSM8K exact match ----------------------------------------------------------------------
_STRICT = re.compile(r"#### (\-?[0-9\.\,]+)")
_FLEX = re.compile(r"(-?[$0-9.,]{2,})|(-?[0-9]+)")


def normalise_number(s: str) -> str:
    s = s.strip().replace(",", "").replace("$", "")
    return s[:-1] if s.endswith(".") else s


def extract_strict(text: str) -> str | None:
    m = _STRICT.search(text)
    return normalise_number(m.group(1)) if m else None


def extract_flexible(text: str) -> str | None:
    """The last number in the text (lm-evaluation-harness's gsm8k ``flexible-extract``)."""
    found = _FLEX.findall(text)
    if not found:
        return None
    a, b = found[-1]
    return normalise_number(a or b)


def cut_generation(text: str, stops=("Question:", "</s>", "<|im_end|>", "\n\n\n")) -> str:
    for s in stops:
        i = text.find(s)
        if i >= 0:
            text = text[:i]
    return text


def gsm8k_prompt(shots: list[tuple[str, str]], question: str) -> str:
    """k-shot ``Question: ...\\nAnswer: <worked answer>`` blocks, then the question."""
    parts = [f"Question: {q}\nAnswer: {a}" for q, a in shots]
    return "\n\n".join(parts + [f"Question: {question}\nAnswer:"])


def gsm8k_fewshot(corpus: Path, k: int) -> list[tuple[str, str]]:
    """The first k problems of GSM8K *train* (never the test split)."""
    from itertools import islice

    from core.corpus import gsm8k
    return [(r["question"], r["answer"]) for r in islice(gsm8k("train", corpus), max(k, 0))]


def run_gsm8k_em(scorer: Scorer, items, corpus: Path, shots: int = 5, max_new_tokens: int = 256,
                 batch_size: int = 8) -> dict:
    from trainer.generate import generate
    fs = gsm8k_fewshot(corpus, shots)
    room = scorer.max_len - max_new_tokens
    if room < 16:
        raise ValueError(f"max_new_tokens {max_new_tokens} leaves no room for a prompt in {scorer.max_len} tokens")
    full = [scorer.encode(gsm8k_prompt(fs, it.gen.prompt)) for it in items]
    outs = generate(scorer.model, [p[-room:] for p in full], max_new_tokens, temperature=0.0,
                    stop_ids=(scorer.tokenizer.eot_id,), batch_size=batch_size)
    strict, flex, per = [], [], []
    for it, o in zip(items, outs):
        text = cut_generation(scorer.tokenizer.decode(o))
        gold = normalise_number(it.gen.answer)
        s, f = extract_strict(text), extract_flexible(text)
        strict.append(float(s == gold))
        flex.append(float(f == gold))
        per.append({"id": it.item_id, "output": text, "strict": s, "flexible": f, "gold": gold})
    m = {"n": len(items), "exact_match_strict": float(np.mean(strict)), "exact_match_flexible": float(np.mean(flex)),
         "exact_match_stderr": _stderr(flex), "shots": shots, "max_new_tokens": max_new_tokens,
         "truncated_prompts": sum(len(p) > room for p in full)}
    return {"metrics": m, "items": per}


# ---- user tasks ----------------------------------------------------------------------------
USER_SPEC_KEYS = {"name", "path", "dev", "shots", "context_field", "choices_field", "answer_field",
                  "template", "delimiter", "separator", "id_field"}


def load_user_spec(path: str | Path) -> dict:
    """A user multiple-choice task: YAML/JSON with ``path`` (JSONL test items), ``context_field``,
    ``choices_field`` (a list of strings), ``answer_field`` (the gold index or the gold text), and
    optionally ``dev`` (JSONL few-shot examples, the first ``shots`` are used), ``template``
    (default ``{context}``), ``delimiter`` (default a space), ``separator`` between examples
    (default a blank line). Paths are relative to the spec file."""
    import yaml
    p = Path(path)
    spec = yaml.safe_load(p.read_text()) or {}
    bad = set(spec) - USER_SPEC_KEYS
    if bad:
        raise ValueError(f"{p}: unknown task spec key(s) {sorted(bad)}; known: {sorted(USER_SPEC_KEYS)}")
    for k in ("path", "context_field", "choices_field", "answer_field"):
        if k not in spec:
            raise ValueError(f"{p}: task spec needs `{k}`")
    spec.setdefault("name", p.stem)
    for k in ("path", "dev"):
        if spec.get(k) and not Path(spec[k]).is_absolute():
            spec[k] = str(p.parent / spec[k])
        if spec.get(k) and not Path(spec[k]).is_file():
            raise FileNotFoundError(f"{p}: the task's {k} file {spec[k]} does not exist")
    return spec


def _user_records(path: str, spec: dict) -> list[tuple[str, str, list[str], int]]:
    from evalsets.readers import read_jsonl
    out = []
    for i, r in read_jsonl(Path(path)):
        where = f"{path}:{i + 1}"
        for k in ("context_field", "choices_field", "answer_field"):
            if spec[k] not in r:
                raise ValueError(f"{where}: missing field {spec[k]!r}")
        choices = r[spec["choices_field"]]
        if not isinstance(choices, list) or len(choices) < 2:
            raise ValueError(f"{where}: {spec['choices_field']!r} must be a list of at least 2 choices")
        choices = [str(c) for c in choices]
        ans = r[spec["answer_field"]]
        if isinstance(ans, bool) or not isinstance(ans, (int, str)):
            raise ValueError(f"{where}: answer {ans!r} is neither an index nor a choice text")
        if isinstance(ans, int) or (isinstance(ans, str) and ans.isdigit() and ans not in choices):
            gold = int(ans)
        elif ans in choices:
            gold = choices.index(ans)
        else:
            raise ValueError(f"{where}: answer {ans!r} is not one of the choices")
        if not 0 <= gold < len(choices):
            raise ValueError(f"{where}: answer index {gold} out of range")
        rid = str(r[spec["id_field"]]) if spec.get("id_field") else str(i)
        out.append((rid, str(r[spec["context_field"]]), choices, gold))
    return out


def user_mc_items(spec: dict, limit: int | None = None) -> list[MCItem]:
    tmpl = spec.get("template") or "{context}"
    delim = spec.get("delimiter", " ")
    sep = spec.get("separator", "\n\n")
    shots = []
    if spec.get("dev") and int(spec.get("shots", 0)) > 0:
        shots = _user_records(spec["dev"], spec)[:int(spec["shots"])]
    prefix = "".join(tmpl.format(context=c) + delim + ch[g] + sep for _, c, ch, g in shots)
    recs = _user_records(spec["path"], spec)[:limit]
    return [MCItem(rid, [(prefix + tmpl.format(context=c), delim + x) for x in ch], ch, g)
            for rid, c, ch, g in recs]


# ---- bits per byte on held-out streams ------------------------------------------------------
def token_byte_lengths(tokenizer, vocab_size: int) -> np.ndarray:
    """UTF-8 bytes of every token id (special tokens and unused ids: 0)."""
    enc = tokenizer.encoding
    special = set(tokenizer.special.values())
    out = np.zeros(vocab_size, dtype=np.int64)
    for i in range(min(vocab_size, enc.n_vocab)):
        if i in special:
            continue
        try:
            out[i] = len(enc.decode_single_token_bytes(i))
        except KeyError:
            out[i] = 0
    return out


@torch.no_grad()
def heldout_bpb(model, shards, tokenizer, device, rows_per_source: int | None = None,
                batch_rows: int = 8) -> dict:
    """Bits per byte of every held-out stream: the summed next-token loss (nats, every target
    token of the packed rows with the document mask, end-of-text tokens included) over the UTF-8
    bytes of the target tokens, / ln 2. Bytes make streams and tokenizers comparable."""
    blen = torch.from_numpy(token_byte_lengths(tokenizer, model.cfg.vocab_size))
    out = {}
    tot_nll, tot_bytes, tot_tok = 0.0, 0, 0
    for si, name in enumerate(shards.sources):
        rows = shards.rows_of_source(si)
        if rows_per_source:
            rows = rows[:rows_per_source]
        if len(rows) == 0:
            continue
        nll, nbytes, ntok = 0.0, 0, 0
        for k in range(0, len(rows), batch_rows):
            b = shards.batch(rows[k:k + batch_rows])
            loss = model(b.x.to(device), b.y.to(device), doc_ids=b.doc_ids.to(device), reduction="none")
            nll += float(loss.double().sum())
            nbytes += int(blen[b.y.reshape(-1)].sum())
            ntok += b.y.numel()
        prev = out.get(name)
        if prev:   # duplicate categories: merge
            nll, nbytes, ntok = nll + prev["_nll"], nbytes + prev["bytes"], ntok + prev["tokens"]
        out[name] = {"bpb": nll / max(nbytes, 1) / LN2, "loss": nll / max(ntok, 1), "tokens": ntok,
                     "bytes": nbytes, "_nll": nll}
        tot_nll += nll - (prev["_nll"] if prev else 0.0)
        tot_bytes += nbytes - (prev["bytes"] if prev else 0)
        tot_tok += ntok - (prev["tokens"] if prev else 0)
    for v in out.values():
        v.pop("_nll")
    out["all"] = {"bpb": tot_nll / max(tot_bytes, 1) / LN2, "loss": tot_nll / max(tot_tok, 1),
                  "tokens": tot_tok, "bytes": tot_bytes}
    return out


# ---- the task table ------------------------------------------------------------------------
@dataclass
class TaskDef:
    name: str
    evalset: str | None              # registered evaluation set read with evalsets
    kind: str                        # mc | lambada | answer_nll | gsm8k_em
    build: Callable | None = None    # evalset items -> MCItems (mc)
    norm: bool = True


TASKS: dict[str, TaskDef] = {
    "piqa": TaskDef("piqa", "piqa", "mc", mc_items_piqa),
    "arc_easy": TaskDef("arc_easy", "arc_easy", "mc", mc_items_arc),
    "winogrande": TaskDef("winogrande", "winogrande", "mc", mc_items_winogrande, norm=False),
    "lambada": TaskDef("lambada", "lambada", "lambada"),
    "gsm8k_nll": TaskDef("gsm8k_nll", "gsm8k_test", "answer_nll"),
    "math500_nll": TaskDef("math500_nll", "math500", "answer_nll"),
    "gsm8k_em": TaskDef("gsm8k_em", "gsm8k_test", "gsm8k_em"),
}
# aliases: the registered set names
TASKS["gsm8k_test"] = TASKS["gsm8k_nll"]
TASKS["math500"] = TASKS["math500_nll"]
