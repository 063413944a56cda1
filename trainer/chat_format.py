"""Llama 3's dialog protocol: one module for training, generation and data conversion.

A dialog is a list of messages ``{"role": r, "content": text}`` with ``r`` in ``ROLES``. As tokens:

    <|begin_of_text|>
    <|start_header_id|> role <|end_header_id|> "\\n\\n" content <|eot_id|>      (per message)
    <|start_header_id|> assistant <|end_header_id|> "\\n\\n"                      (generation prompt)

The special tokens are single ids of the project tokenizer (``core/tokenizer.py``,
``cl100k_base+llama3``: ``<|begin_of_text|>`` 100256, ``<|start_header_id|>`` 100262,
``<|end_header_id|>`` 100263, ``<|eom_id|>`` 100264, ``<|eot_id|>`` 100265). The role name,
the blank line and the content are encoded as *ordinary* text, so a special-token string typed
into a message stays plain text (no injection of headers). ``ipython`` is the tool-output role;
a message may end with ``<|eom_id|>`` instead of ``<|eot_id|>`` (``"end": "eom"``, Llama 3.1's
"end of message, a tool call follows").

:func:`encode_dialog` returns the ids and, per token, which message it belongs to and whether it
is a formatting token; :meth:`Encoded.loss_mask` turns that into the loss masks the post-training
steps use:

- SFT: every assistant message's content *and* its end token (the model must learn to stop);
- DPO (Llama 3, section 4.1.4): the assistant content only, formatting tokens (headers and
  termination tokens) masked out, usually of the last assistant turn only.

The tokenizer is anything with ``encode(text) -> ids``, ``decode(ids) -> str`` and a ``special``
dict (name -> id): the project tokenizer, or a compact relabelling of it (trainer/compact.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field

ROLES = ("system", "user", "assistant", "ipython")
BOS, EOS = "<|begin_of_text|>", "<|end_of_text|>"
START_HEADER, END_HEADER = "<|start_header_id|>", "<|end_header_id|>"
EOT, EOM = "<|eot_id|>", "<|eom_id|>"
SEP = "\n\n"


class ChatFormatError(ValueError):
    pass


def special_ids(tok) -> dict[str, int]:
    try:
        return {n: int(tok.special[n]) for n in (BOS, EOS, START_HEADER, END_HEADER, EOT, EOM)}
    except KeyError as e:
        raise ChatFormatError(f"the tokenizer has no {e.args[0]} token; use cl100k_base+llama3") from None


def check_dialog(messages: list[dict]) -> None:
    if not isinstance(messages, list) or not messages:
        raise ChatFormatError("a dialog is a non-empty list of {role, content} messages")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or "role" not in m or "content" not in m:
            raise ChatFormatError(f"message {i} is not a {{role, content}} mapping: {m!r}")
        if m["role"] not in ROLES:
            raise ChatFormatError(f"message {i}: unknown role {m['role']!r}; roles: {ROLES}")
        if not isinstance(m["content"], str):
            raise ChatFormatError(f"message {i}: content must be a string")
        if m.get("end", "eot") not in ("eot", "eom"):
            raise ChatFormatError(f"message {i}: end must be 'eot' or 'eom'")
    if any(m["role"] == "system" for m in messages[1:]):
        raise ChatFormatError("a system message may only come first")


@dataclass
class Encoded:
    ids: list[int]
    message: list[int] = field(default_factory=list)   # message index per token (-1: begin_of_text / prompt)
    role: list[str] = field(default_factory=list)      # role of that message ("" for -1)
    content: list[bool] = field(default_factory=list)  # True: a content token (False: formatting)
    end: list[bool] = field(default_factory=list)      # True: the message's <|eot_id|>/<|eom_id|>

    def loss_mask(self, kind: str = "sft", which: str = "all") -> list[bool]:
        """True where the loss counts this token *as a target* (aligned with ``ids``).

        kind ``sft``: assistant content + end token; ``dpo``: assistant content only.
        which ``all``: every assistant message; ``last``: the last assistant message only.
        """
        if kind not in ("sft", "dpo"):
            raise ValueError(f"kind must be sft or dpo, not {kind!r}")
        if which not in ("all", "last"):
            raise ValueError(f"which must be all or last, not {which!r}")
        asst = [i for i, r in zip(self.message, self.role) if r == "assistant"]
        last = max(asst) if asst else None
        out = []
        for m, r, c, e in zip(self.message, self.role, self.content, self.end):
            ok = r == "assistant" and (c or (e and kind == "sft"))
            if which == "last":
                ok = ok and m == last
            out.append(ok)
        return out


def encode_dialog(tok, messages: list[dict], add_generation_prompt: bool = False,
                  bos: bool = True) -> Encoded:
    """Tokens of a dialog (see the module docstring); with ``add_generation_prompt`` the open
    assistant header follows, ready for generation."""
    check_dialog(messages)
    sp = special_ids(tok)
    enc = Encoded(ids=[])

    def put(ids, msg, role, content=False, end=False):
        for t in ids:
            enc.ids.append(int(t))
            enc.message.append(msg)
            enc.role.append(role)
            enc.content.append(content)
            enc.end.append(end)

    if bos:
        put([sp[BOS]], -1, "")
    for i, m in enumerate(messages):
        r = m["role"]
        put([sp[START_HEADER]] + list(tok.encode(r)) + [sp[END_HEADER]] + list(tok.encode(SEP)), i, r)
        put(tok.encode(m["content"]), i, r, content=True)
        put([sp[EOM] if m.get("end") == "eom" else sp[EOT]], i, r, end=True)
    if add_generation_prompt:
        put([sp[START_HEADER]] + list(tok.encode("assistant")) + [sp[END_HEADER]] + list(tok.encode(SEP)),
            -1, "")
    return enc


def encode_prompt(tok, messages: list[dict]) -> list[int]:
    """Ids to generate the next assistant message from (ends with the open assistant header)."""
    return encode_dialog(tok, messages, add_generation_prompt=True).ids


def encode_response(tok, content: str, end: bool = True) -> list[int]:
    """Ids of an assistant message's content (+ <|eot_id|>), to append to :func:`encode_prompt`."""
    return list(tok.encode(content)) + ([special_ids(tok)[EOT]] if end else [])


def parse_dialog(tok, ids: list[int]) -> list[dict]:
    """Messages back from ids written by :func:`encode_dialog` (round trip). An open assistant
    header at the end (a generation prompt) and a final message without its end token (generation
    cut by the length limit) are accepted; the latter is returned with ``"end": None``."""
    sp = special_ids(tok)
    ids = [int(t) for t in ids]
    i = 1 if ids and ids[0] == sp[BOS] else 0
    out: list[dict] = []
    while i < len(ids):
        if ids[i] != sp[START_HEADER]:
            raise ChatFormatError(f"token {i}: expected <|start_header_id|>, got id {ids[i]}")
        try:
            j = ids.index(sp[END_HEADER], i + 1)
        except ValueError:
            raise ChatFormatError(f"token {i}: header without <|end_header_id|>") from None
        role = tok.decode(ids[i + 1:j])
        if role not in ROLES:
            raise ChatFormatError(f"token {i}: unknown role {role!r}")
        k = j + 1
        ends = [p for p in range(k, len(ids)) if ids[p] in (sp[EOT], sp[EOM])]
        stop = ends[0] if ends else len(ids)
        body = ids[k:stop]
        if any(t in (sp[START_HEADER], sp[END_HEADER], sp[BOS]) for t in body):
            raise ChatFormatError(f"message at token {i}: a header inside a message (missing end token)")
        text = tok.decode(body)
        if stop == len(ids) and text == SEP:
            break                                  # trailing generation prompt
        if not text.startswith(SEP):
            raise ChatFormatError(f"message at token {i}: no blank line after the header")
        msg = {"role": role, "content": text[len(SEP):]}
        if stop == len(ids):
            msg["end"] = None
        elif ids[stop] == sp[EOM]:
            msg["end"] = "eom"
        out.append(msg)
        i = stop + 1
    return out


def render_text(messages: list[dict], add_generation_prompt: bool = False) -> str:
    """The dialog as text with the special tokens written out (for display and logs)."""
    check_dialog(messages)
    s = BOS + "".join(f"{START_HEADER}{m['role']}{END_HEADER}{SEP}{m['content']}"
                      f"{EOM if m.get('end') == 'eom' else EOT}" for m in messages)
    return s + (f"{START_HEADER}assistant{END_HEADER}{SEP}" if add_generation_prompt else "")
