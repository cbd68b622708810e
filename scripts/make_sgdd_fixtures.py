#!/usr/bin/env python3
"""Writes the committed fixtures of sgdd-diffusion (development tool; the Rust code never runs Python).

    ~/pyref/bin/pip install -r scripts/requirements.txt
    ~/pyref/bin/python scripts/make_sgdd_fixtures.py [--models /path/to/shared/models]

Output in crates/sgdd-diffusion/tests/fixtures/:
  bert/, roberta/      tiny random encoders saved by transformers (config.json, model.safetensors;
                       bert/ also a word-level tokenizer.json over the shipped samples, for the fast
                       training test),
                       inputs.json (a right-padded batch) and expected.safetensors
                       (last_hidden_state [2, 7, 32], sentence_embedding [2, 32]: masked mean)
  minilm.json          all-MiniLM-L6-v2: token ids and the masked-mean embedding of a few sentences
                       (written only when the model directory is found)
  bleu.json            hypothesis/reference pairs with sacreBLEU's corpus BLEU (13a, exp smoothing) and
                       NLTK's sentence BLEU-4 with smoothing method 4 (DiffuSeq's protocol) per pair
"""
import argparse
import json
import os

import torch
from safetensors.torch import save_file
from transformers import AutoModel, AutoTokenizer, BertConfig, BertModel, RobertaConfig, RobertaModel

ROOT = os.path.join(os.path.dirname(__file__), "..", "crates", "sgdd-diffusion", "tests", "fixtures")

COMMON = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
              type_vocab_size=2, max_position_embeddings=40, layer_norm_eps=1e-12)
# Row 1 is right-padded with the model's pad id (BERT 0, RoBERTa 1).
ROWS = [[5, 17, 42, 8, 91, 33, 2], [64, 12, 88, 31]]


def word_level_tokenizer(out, vocab_size):
    """A lowercase word-level tokenizer for the tiny BERT: [PAD] 0, [UNK] 1, [CLS] 2, [SEP] 3, [MASK] 4,
    then the most frequent words of the shipped Wikipedia and QQP samples."""
    import collections
    import re
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordLevel
    data = os.path.join(os.path.dirname(__file__), "..", "crates", "datasets", "data")
    text = open(os.path.join(data, "wiki", "wiki_sample.txt")).read()
    for line in open(os.path.join(data, "qqp", "test_sample.jsonl")):
        if line.strip():
            row = json.loads(line)
            text += " " + row["src"] + " " + row["trg"]
    words = collections.Counter(re.findall(r"\w+|[^\w\s]", text.lower()))
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab = {t: i for i, t in enumerate(specials)}
    for w, _ in words.most_common(vocab_size - len(specials)):
        vocab[w] = len(vocab)
    tok = Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    tok.save(os.path.join(out, "tokenizer.json"))


def masked_mean(h, mask):
    m = mask.unsqueeze(-1).float()
    return (h * m).sum(1) / m.sum(1).clamp(min=1e-9)


def tiny(name, cls, cfg_cls, seed, **extra):
    torch.manual_seed(seed)
    cfg = cfg_cls(**COMMON, **extra)
    model = cls(cfg, add_pooling_layer=False).eval()
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if p.dim() == 1 and "LayerNorm" in pname and pname.endswith("weight"):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=gen))
            elif p.dim() == 1:
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(0.15 * torch.randn(p.shape, generator=gen))
    out = os.path.join(ROOT, name)
    os.makedirs(out, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    pad = cfg.pad_token_id
    width = max(len(r) for r in ROWS)
    ids = torch.tensor([r + [pad] * (width - len(r)) for r in ROWS])
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in ROWS])
    with torch.no_grad():
        h = model(input_ids=ids, attention_mask=mask).last_hidden_state
    save_file({"last_hidden_state": h.contiguous(), "sentence_embedding": masked_mean(h, mask).contiguous()},
              os.path.join(out, "expected.safetensors"))
    with open(os.path.join(out, "inputs.json"), "w") as f:
        json.dump({"ids": ids.tolist(), "mask": mask.tolist(), "rows": ROWS,
                   "transformers_version": __import__("transformers").__version__}, f, indent=1)
        f.write("\n")
    if name == "bert":
        word_level_tokenizer(out, cfg.vocab_size)
    print(f"{name}: {sum(p.numel() for p in model.parameters())} parameters -> {out}")


SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "How can I be a good geologist?",
    "South Australia began as a self governing province.",
    "A man is playing a guitar on stage, and the crowd sings along!",
]


def minilm(models_dir):
    path = os.path.join(models_dir, "all-MiniLM-L6-v2")
    if not os.path.isdir(path):
        print(f"minilm: {path} not found, fixture not written")
        return
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()
    rows = []
    for s in SENTENCES:
        enc = tok(s, return_tensors="pt")
        with torch.no_grad():
            h = model(**enc).last_hidden_state
        emb = masked_mean(h, enc["attention_mask"])[0]
        rows.append({"text": s, "ids": enc["input_ids"][0].tolist(), "embedding": [round(float(v), 7) for v in emb]})
    with open(os.path.join(ROOT, "minilm.json"), "w") as f:
        json.dump({"model": "sentence-transformers/all-MiniLM-L6-v2", "pooling": "attention-masked mean, not normalised",
                   "sentences": rows}, f)
        f.write("\n")
    print(f"minilm: {len(rows)} sentences")


BLEU_EXTRA = [
    ("the cat sat on the mat", "the cat sat on the mat"),
    ("the the the the", "the cat is on the mat"),
    ("cat", "the cat sat on the mat"),
    ("", "an empty hypothesis"),
    ("It costs $3.50, or 3,000 yen - cheap!", "It costs $3.50 (3,000 yen) -- cheap."),
    ("What's the best way to learn C++?", "What is the best way to learn C++ quickly?"),
    ("pre-1990s art & \"design\"", "art and design of the 1980s-1990s"),
    ("a b c d e f g", "g f e d c b a"),
]


def bleu(data_dir):
    import sacrebleu
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu
    src = os.path.join(os.path.dirname(__file__), "..", "crates", "datasets", "data", "qqp", "test_sample.jsonl")
    pairs = []
    with open(src) as f:
        lines = [json.loads(line) for line in f if line.strip()]
    # Copy-source pairs (hypothesis = source question, reference = its paraphrase) and the reverse.
    pairs += [(r["src"], r["trg"]) for r in lines[:20]]
    pairs += [(r["trg"].lower(), r["src"].lower()) for r in lines[20:30]]
    pairs += BLEU_EXTRA
    hyps, refs = [p[0] for p in pairs], [p[1] for p in pairs]
    corpus = sacrebleu.corpus_bleu(hyps, [refs])
    smooth = SmoothingFunction().method4
    sent = [sentence_bleu([r.split()], h.split(), smoothing_function=smooth) for h, r in pairs]
    out = {"pairs": [{"hyp": h, "ref": r, "sentence_bleu": s} for (h, r), s in zip(pairs, sent)],
           "sacrebleu_corpus": corpus.score, "sacrebleu_settings": "corpus_bleu defaults: tokenize 13a, smooth exp, case-sensitive",
           "sacrebleu_counts": corpus.counts, "sacrebleu_totals": corpus.totals,
           "sacrebleu_sys_len": corpus.sys_len, "sacrebleu_ref_len": corpus.ref_len,
           "mean_sentence_bleu": sum(sent) / len(sent),
           "sacrebleu_version": sacrebleu.__version__, "nltk_version": __import__("nltk").__version__}
    with open(os.path.join(ROOT, "bleu.json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(f"bleu: {len(pairs)} pairs, corpus {corpus.score:.4f}, mean sentence {out['mean_sentence_bleu']:.4f}")
    if data_dir and os.path.exists(os.path.join(data_dir, "qqp", "test.jsonl")):
        with open(os.path.join(data_dir, "qqp", "test.jsonl")) as f:
            rows = [json.loads(line) for line in f if line.strip()]
        for name, fn in (("as is", lambda s: s), ("lowercased", str.lower)):
            s = [sentence_bleu([fn(r["trg"]).split()], fn(r["src"]).split(), smoothing_function=smooth) for r in rows]
            print(f"qqp test copy-source sentence BLEU ({name}): {sum(s) / len(s):.4f} over {len(s)} pairs")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default=os.environ.get("LATENT_MODELS_DIR", "/work/shared/models"))
    parser.add_argument("--data", default=os.environ.get("LATENT_DATA_DIR", "/work/shared/data"))
    args = parser.parse_args()
    os.makedirs(ROOT, exist_ok=True)
    tiny("bert", BertModel, BertConfig, 0, pad_token_id=0)
    tiny("roberta", RobertaModel, RobertaConfig, 1, pad_token_id=1, bos_token_id=0, eos_token_id=2)
    minilm(args.models)
    bleu(args.data)


if __name__ == "__main__":
    main()
