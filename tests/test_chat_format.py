"""trainer/chat_format.py: Llama 3 dialog tokens, round trip, loss masks (ids checked by hand)."""
from __future__ import annotations

import pytest

from core.tokenizer import get_tokenizer
from trainer.chat_format import (ChatFormatError, encode_dialog, encode_prompt, encode_response,
                                 parse_dialog, render_text)

BOT, SH, EH, EOM, EOT = 100256, 100262, 100263, 100264, 100265
NL2 = 271          # cl100k "\n\n"
SYSTEM, USER, ASSISTANT = 9125, 882, 78191


@pytest.fixture(scope="module")
def tok():
    return get_tokenizer()


DIALOG = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
          {"role": "assistant", "content": "Hello"}]


def test_special_token_ids(tok):
    for name, i in [("<|begin_of_text|>", BOT), ("<|start_header_id|>", SH), ("<|end_header_id|>", EH),
                    ("<|eom_id|>", EOM), ("<|eot_id|>", EOT)]:
        assert tok.special[name] == i
        assert tok.encoding.decode_single_token_bytes(i).decode() == name
    assert max(tok.special.values()) < tok.vocab_size == 100352


def test_encode_by_hand(tok):
    e = encode_dialog(tok, DIALOG)
    assert e.ids == [BOT, SH, SYSTEM, EH, NL2, 3513, 10015, 13, EOT,
                     SH, USER, EH, NL2, 13347, EOT,
                     SH, ASSISTANT, EH, NL2, 9906, EOT]
    sft = e.loss_mask("sft")
    dpo = e.loss_mask("dpo")
    assert [i for i, m in enumerate(sft) if m] == [19, 20]      # "Hello" and its <|eot_id|>
    assert [i for i, m in enumerate(dpo) if m] == [19]          # formatting tokens masked out
    assert encode_prompt(tok, DIALOG[:2]) == e.ids[:15] + [SH, ASSISTANT, EH, NL2]
    assert encode_prompt(tok, DIALOG[:2]) + encode_response(tok, "Hello") == e.ids


def test_multi_turn_masks(tok):
    d = [{"role": "user", "content": "1+1?"}, {"role": "assistant", "content": "2"},
         {"role": "user", "content": "and 2+2?"}, {"role": "assistant", "content": "4"}]
    e = encode_dialog(tok, d)
    two, four = tok.encode("2"), tok.encode("4")
    picked = lambda m: [t for t, k in zip(e.ids, m) if k]  # noqa: E731
    assert picked(e.loss_mask("sft")) == two + [EOT] + four + [EOT]
    assert picked(e.loss_mask("sft", "last")) == four + [EOT]
    assert picked(e.loss_mask("dpo", "last")) == four
    assert picked(e.loss_mask("dpo", "all")) == two + four


def test_round_trip(tok):
    dialogs = [
        DIALOG,
        [{"role": "user", "content": "Write <|eot_id|> literally\n\nplease"},
         {"role": "assistant", "content": "  spaced \n text "},
         {"role": "user", "content": ""}, {"role": "assistant", "content": "ünïcödé 数学"}],
        [{"role": "user", "content": "weather?"},
         {"role": "assistant", "content": "<|python_tag|>call()", "end": "eom"},
         {"role": "ipython", "content": "{\"t\": 21}"}, {"role": "assistant", "content": "21 C"}],
    ]
    for d in dialogs:
        e = encode_dialog(tok, d)
        assert parse_dialog(tok, e.ids) == d
        assert tok.encoding.decode(e.ids) == render_text(d)
    # special-token text inside content is plain text, not the special id
    e = encode_dialog(tok, dialogs[1])
    assert e.ids.count(EOT) == 4
    # a generation prompt parses to the dialog so far; a cut-off reply is marked end=None
    p = encode_prompt(tok, DIALOG[:2])
    assert parse_dialog(tok, p) == DIALOG[:2]
    assert parse_dialog(tok, p + tok.encode("Hel")) == DIALOG[:2] + [
        {"role": "assistant", "content": "Hel", "end": None}]


def test_bad_dialogs(tok):
    with pytest.raises(ChatFormatError, match="role"):
        encode_dialog(tok, [{"role": "bot", "content": "x"}])
    with pytest.raises(ChatFormatError, match="system"):
        encode_dialog(tok, [{"role": "user", "content": "x"}, {"role": "system", "content": "y"}])
    with pytest.raises(ChatFormatError):
        encode_dialog(tok, [])
    with pytest.raises(ChatFormatError, match="start_header"):
        parse_dialog(tok, [BOT, 9906])
    with pytest.raises(ChatFormatError, match="tokenizer"):
        encode_dialog(get_tokenizer("cl100k_base"), DIALOG)
