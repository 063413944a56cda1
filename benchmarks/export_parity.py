"""Export a trained checkpoint and check it in Hugging Face `transformers` (issue 17): the largest
|logit difference| between our model and `LlamaForCausalLM` on real documents, each alone and packed
into one row with our document mask, and whether the exported tokenizer gives tiktoken's ids.

    python benchmarks/export_parity.py --checkpoint /tmp/w3a/run/train [--docs 16] [--out DIR]

Documents: real text of the sample corpus, half the first TheAlgorithms files (code), half the
first GSM8K train problems with their worked answers (prose and arithmetic), each laid out as the
mixer does (`<|begin_of_text|>` + ids) and cut to the model's context. Prints
one line per figure; exits 1 when a difference exceeds the export test's bound (1e-4).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

BOUND = 1e-4


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True, help="run directory, its final/, or a checkpoint")
    ap.add_argument("--docs", type=int, default=16)
    ap.add_argument("--out", help="export folder (default: a temporary one)")
    ap.add_argument("--corpus", help="sample corpus (default: $CURATION_CORPUS or ../shared/corpus)")
    a = ap.parse_args(argv)
    import transformers

    from core import corpus
    from core.tokenizer import get_tokenizer
    from trainer.export import export
    from trainer.loading import load_model

    torch.set_num_threads(1)
    model, t = load_model(a.checkpoint)
    n_params = sum(p.numel() for p in model.parameters())
    ctx = model.cfg.max_seq_len
    out = Path(a.out) if a.out else Path(tempfile.mkdtemp(prefix="export-parity-"))
    t0 = time.time()
    export(a.checkpoint, out)
    print(f"export: {out} in {time.time() - t0:.1f} s ({n_params:,} parameters, context {ctx})")
    hf = transformers.LlamaForCausalLM.from_pretrained(str(out), dtype=torch.float32).eval()
    hf_tok = transformers.PreTrainedTokenizerFast.from_pretrained(str(out))

    tok = get_tokenizer()
    import itertools
    half = a.docs // 2
    texts = [r["content"] for r in itertools.islice(corpus.thealgorithms(a.corpus), half)]
    texts += [f"{r['question']}\n{r['answer']}"
              for r in itertools.islice(corpus.gsm8k("train", a.corpus), a.docs - half)]
    docs = [torch.from_numpy(tok.encode_document(x).astype("int64"))[:ctx] for x in texts]
    same_ids = sum(hf_tok(x, add_special_tokens=False)["input_ids"] == tok.encode(x) for x in texts)

    worst_single = 0.0
    with torch.no_grad():
        for d in docs:
            diff = (model(d[None]) - hf(d[None]).logits).abs().max().item()
            worst_single = max(worst_single, diff)
        # packed rows: as many whole documents (cut to fit) as the context holds, our document mask
        worst_packed, rows, i = 0.0, 0, 0
        while i < len(docs):
            piece, lens = [], []
            while i < len(docs) and sum(lens) < ctx:
                d = docs[i][:ctx - sum(lens)]
                piece.append(d)
                lens.append(len(d))
                i += 1
            row = torch.cat(piece)[None]
            doc_ids = torch.cat([torch.full((n,), k, dtype=torch.int32)
                                 for k, n in enumerate(lens)])[None]
            packed = model(row, doc_ids=doc_ids)
            start = 0
            for n in lens:
                sep = hf(row[:, start:start + n]).logits
                worst_packed = max(worst_packed, (packed[:, start:start + n] - sep).abs().max().item())
                start += n
            rows += 1
    print(f"documents: {len(docs)} real texts ({sum(len(d) for d in docs):,} tokens), "
          f"{rows} packed rows")
    print(f"max |logit difference|, each document alone: {worst_single:.2e}")
    print(f"max |logit difference|, packed with the document mask vs each alone in HF: "
          f"{worst_packed:.2e}")
    print(f"exported tokenizer gives tiktoken's ids on {same_ids} of {len(texts)} texts")
    ok = worst_single <= BOUND and worst_packed <= BOUND and same_ids == len(texts)
    print("RESULT", "within bound" if ok else f"FAILED (bound {BOUND})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
