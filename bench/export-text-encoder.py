#!/usr/bin/env python3
"""Make the text bench's model: a MiniLM-sized BERT-style encoder (random weights), its tokenizer and sentences.

    apt-get install python3-torch                         # Debian 12: torch 1.13 (no transformers needed)
    /usr/bin/python3 bench/export-text-encoder.py [dir]   # default: bench/results/text-encoder/

Writes into <dir>:
  model.onnx        6 layers, hidden 384, 12 heads, intermediate 1536, 512 positions; inputs input_ids,
                    attention_mask, token_type_ids (int64 [batch, sequence]); node names carry the
                    BertModel module paths (encoder.layer.0 ... encoder.layer.5, pooler)
  tokenizer.json    a Hugging Face tokenizer: BertNormalizer, BertPreTokenizer, WordPiece over a
                    generated vocabulary of ~30k entries, [CLS] ... [SEP], truncation at 256
  sentences.txt     4000 generated sentences whose token counts are spread evenly from 5 to 200
                    (shuffled, so that neighbouring rows differ in length as real data does)

Random weights and made-up words: nothing is downloaded, and speed does not depend on the values.
"""
import json
import math
import os
import random
import sys

import torch
from torch import nn

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "results", "text-encoder")
os.makedirs(out, exist_ok=True)

HIDDEN, LAYERS, HEADS, INTER, POSITIONS, VOCAB_WORDS = 384, 6, 12, 1536, 512, 30000
rng = random.Random(0)
torch.manual_seed(0)

# --- vocabulary: special tokens, characters, whole words and ## continuations -----------------
LETTERS = "abcdefghijklmnopqrstuvwxyz"
specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
chars = list(LETTERS) + list("0123456789.,;:!?'\"()-")
vocab = specials + chars + ["##" + c for c in LETTERS]
seen = set(vocab)
words = []
while len(vocab) < VOCAB_WORDS:
    n = rng.randint(2, 9)
    w = "".join(rng.choice(LETTERS) for _ in range(n))
    piece = w if rng.random() < 0.8 else "##" + w
    if piece in seen:
        continue
    seen.add(piece)
    vocab.append(piece)
    if not piece.startswith("##"):
        words.append(piece)

tokenizer = {
    "version": "1.0",
    "truncation": {"direction": "Right", "max_length": 256, "strategy": "LongestFirst", "stride": 0},
    "padding": None,
    "added_tokens": [
        {"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True}
        for i, t in enumerate(specials)
    ],
    "normalizer": {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True, "strip_accents": None, "lowercase": True},
    "pre_tokenizer": {"type": "BertPreTokenizer"},
    "post_processor": {
        "type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
        "pair": [
            {"SpecialToken": {"id": "[CLS]", "type_id": 0}},
            {"Sequence": {"id": "A", "type_id": 0}},
            {"SpecialToken": {"id": "[SEP]", "type_id": 0}},
            {"Sequence": {"id": "B", "type_id": 1}},
            {"SpecialToken": {"id": "[SEP]", "type_id": 1}},
        ],
        "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]}, "[SEP]": {"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]}},
    },
    "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
    "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 100, "vocab": {t: i for i, t in enumerate(vocab)}},
}
with open(os.path.join(out, "tokenizer.json"), "w") as f:
    json.dump(tokenizer, f)
with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
    json.dump({"tokenizer_class": "BertTokenizer", "do_lower_case": True, "model_max_length": 256}, f)

# --- sentences: whole vocabulary words (one token each) and a full stop -----------------------
ROWS = 4000
lines = []
for i in range(ROWS):
    # [CLS] + words + "." + [SEP]: 3 tokens around the words, from 5 to 200 tokens in all
    tokens = 5 + (195 * i) // (ROWS - 1)
    lines.append(" ".join(rng.choice(words) for _ in range(tokens - 3)).capitalize() + ".")
rng.shuffle(lines)
with open(os.path.join(out, "sentences.txt"), "w") as f:
    f.write("\n".join(lines) + "\n")


# --- the encoder: plain PyTorch with BertModel's module names ----------------------------------
class Embeddings(nn.Module):
    def __init__(self):
        super().__init__()
        self.word_embeddings = nn.Embedding(len(vocab), HIDDEN)
        self.position_embeddings = nn.Embedding(POSITIONS, HIDDEN)
        self.token_type_embeddings = nn.Embedding(2, HIDDEN)
        self.LayerNorm = nn.LayerNorm(HIDDEN, eps=1e-12)

    def forward(self, input_ids, token_type_ids):
        pos = torch.arange(input_ids.shape[1], device=input_ids.device).unsqueeze(0).expand_as(input_ids)
        return self.LayerNorm(self.word_embeddings(input_ids) + self.position_embeddings(pos) + self.token_type_embeddings(token_type_ids))


class SelfAttention(nn.Module):
    def __init__(self):
        super().__init__()
        self.query, self.key, self.value = nn.Linear(HIDDEN, HIDDEN), nn.Linear(HIDDEN, HIDDEN), nn.Linear(HIDDEN, HIDDEN)

    def split(self, x):
        n, t, _ = x.shape
        return x.view(n, t, HEADS, HIDDEN // HEADS).transpose(1, 2)

    def forward(self, x, bias):
        q, k, v = self.split(self.query(x)), self.split(self.key(x)), self.split(self.value(x))
        scores = q @ k.transpose(-1, -2) / math.sqrt(HIDDEN // HEADS) + bias
        ctx = torch.softmax(scores, dim=-1) @ v
        n, _, t, _ = ctx.shape
        return ctx.transpose(1, 2).reshape(n, t, HIDDEN)


class Output(nn.Module):
    def __init__(self, inp):
        super().__init__()
        self.dense = nn.Linear(inp, HIDDEN)
        self.LayerNorm = nn.LayerNorm(HIDDEN, eps=1e-12)

    def forward(self, x, residual):
        return self.LayerNorm(self.dense(x) + residual)


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.self = SelfAttention()
        self.output = Output(HIDDEN)

    def forward(self, x, bias):
        return self.output(self.self(x, bias), x)


class Intermediate(nn.Module):
    def __init__(self):
        super().__init__()
        self.dense = nn.Linear(HIDDEN, INTER)
        self.intermediate_act_fn = nn.GELU()

    def forward(self, x):
        return self.intermediate_act_fn(self.dense(x))


class Layer(nn.Module):
    def __init__(self):
        super().__init__()
        self.attention = Attention()
        self.intermediate = Intermediate()
        self.output = Output(INTER)

    def forward(self, x, bias):
        a = self.attention(x, bias)
        return self.output(self.intermediate(a), a)


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = nn.ModuleList([Layer() for _ in range(LAYERS)])

    def forward(self, x, bias):
        for layer in self.layer:
            x = layer(x, bias)
        return x


class Pooler(nn.Module):
    def __init__(self):
        super().__init__()
        self.dense = nn.Linear(HIDDEN, HIDDEN)
        self.activation = nn.Tanh()

    def forward(self, x):
        return self.activation(self.dense(x[:, 0]))


class Bert(nn.Module):
    def __init__(self):
        super().__init__()
        self.embeddings = Embeddings()
        self.encoder = Encoder()
        self.pooler = Pooler()

    def forward(self, input_ids, attention_mask, token_type_ids):
        bias = (1.0 - attention_mask[:, None, None, :].float()) * -10000.0
        h = self.encoder(self.embeddings(input_ids, token_type_ids), bias)
        return h, self.pooler(h)


model = Bert().eval()
ids = torch.randint(5, len(vocab), (2, 16))
torch.onnx.export(
    model,
    (ids, torch.ones_like(ids), torch.zeros_like(ids)),
    os.path.join(out, "model.onnx"),
    opset_version=14,
    input_names=["input_ids", "attention_mask", "token_type_ids"],
    output_names=["last_hidden_state", "pooler_output"],
    dynamic_axes={n: {0: "batch", 1: "sequence"} for n in ["input_ids", "attention_mask", "token_type_ids", "last_hidden_state"]} | {"pooler_output": {0: "batch"}},
)
print(f"wrote {out}: vocabulary {len(vocab)}, {ROWS} sentences")
