"""Chat with a model in the terminal: ``python -m trainer.chat --checkpoint DIR``.

DIR is a model directory (a post-training step's output, a pre-training run's ``final/``, a
trainer checkpoint). Each line you type is a user message; the model's reply is generated with
trainer/generate.py in Llama 3's chat format (trainer/chat_format.py) and the whole dialogue is
the context of the next turn (the oldest turns are dropped when it outgrows the model's context).
Commands: ``/reset`` (new dialogue), ``/system TEXT`` (set the system message), ``/quit``.
"""
from __future__ import annotations

import argparse
import sys

from trainer.chat_format import EOT, encode_prompt, special_ids
from trainer.generate import generate


class ChatSession:
    def __init__(self, model, tok, max_new_tokens: int = 256, temperature: float = 0.0, top_p: float = 1.0,
                 seed: int = 0, system: str | None = None):
        self.model, self.tok = model, tok
        self.max_new_tokens, self.temperature, self.top_p, self.seed = max_new_tokens, temperature, top_p, seed
        self.system = system
        self.messages: list[dict] = []
        self.turn = 0

    def reset(self):
        self.messages = []

    def dialog(self) -> list[dict]:
        return ([{"role": "system", "content": self.system}] if self.system else []) + self.messages

    def reply(self, user_text: str) -> str:
        """Append the user message, generate and append the assistant reply, return it."""
        self.messages.append({"role": "user", "content": user_text})
        limit = self.model.cfg.max_seq_len - self.max_new_tokens
        ids = encode_prompt(self.tok, self.dialog())
        while len(ids) > limit and len(self.messages) > 1:
            self.messages = self.messages[2:] if len(self.messages) > 2 else self.messages[-1:]
            ids = encode_prompt(self.tok, self.dialog())
        if len(ids) > limit:
            ids = ids[-limit:]
        out = generate(self.model, [ids], self.max_new_tokens, temperature=self.temperature, top_p=self.top_p,
                       stop_ids=(special_ids(self.tok)[EOT],), seed=self.seed + self.turn)[0]
        self.turn += 1
        text = self.tok.decode(out)
        self.messages.append({"role": "assistant", "content": text})
        return text


def main(argv=None, stdin=None, stdout=None) -> int:
    from trainer.posttrain import device_of, load_model, load_tokenizer
    ap = argparse.ArgumentParser(prog="python -m trainer.chat", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True, help="model directory")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--max-new-tokens", type=int, default=256)
    ap.add_argument("--temperature", type=float, default=0.0)
    ap.add_argument("--top-p", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--system", help="system message")
    a = ap.parse_args(argv)
    stdin, stdout = stdin or sys.stdin, stdout or sys.stdout
    model = load_model(a.checkpoint, device_of(a.device))
    tok = load_tokenizer(a.checkpoint)
    s = ChatSession(model, tok, min(a.max_new_tokens, model.cfg.max_seq_len // 2), a.temperature, a.top_p, a.seed,
                    a.system)
    interactive = stdin.isatty()
    if interactive:
        print(f"chatting with {a.checkpoint} ({model.num_params() / 1e6:.1f}M parameters); /reset, /system TEXT, "
              f"/quit", file=stdout)
    while True:
        if interactive:
            print("you> ", end="", file=stdout, flush=True)
        line = stdin.readline()
        if not line:
            break
        line = line.rstrip("\n")
        if line.strip() == "/quit":
            break
        if line.strip() == "/reset":
            s.reset()
            print("(new dialogue)", file=stdout)
            continue
        if line.startswith("/system "):
            s.system = line[len("/system "):]
            continue
        if not line.strip():
            continue
        try:
            text = s.reply(line)
        except ValueError as e:          # e.g. a character outside a compact vocabulary
            s.messages.pop()
            print(f"(error: {e})", file=stdout)
            continue
        print(f"assistant> {text}", file=stdout, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
