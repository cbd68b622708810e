#!/usr/bin/env python3
"""Restates the CODI loss in PyTorch (an independent check of crates/codi/src/loss.rs) on tiny
fixture models, and writes the committed fixtures of crates/codi/tests/codi_loss.rs.

    ~/pyref/bin/python scripts/make_codi_loss_fixture.py

For each of the latent-core fixture models `gpt2` (learned positions, tied head) and `llama`
(RoPE, GQA, untied head) it:
  1. resizes the vocabulary by 3 (pad = V0, <bot> = V0+1, <eot> = V0+2) and adds a seeded projection
     Linear(D, D) -> GELU(erf) -> Linear(D, D) -> LayerNorm(D);
  2. saves it in the layout `CodiModel::save` writes (model/, projection.safetensors, codi.json);
  3. computes, for a fixed batch of three examples of different lengths, the teacher CE, the student
     CE, each layer's KD term and the total, written to expected.json beside batch.json.

The student pass runs question, six latents and the decoder segment through a DynamicCache with
explicit attention masks and position ids (left-padded question, right-padded decoder).
"""
import json
import os
import shutil

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM, DynamicCache

HERE = os.path.dirname(os.path.abspath(__file__))
LM_FIXTURES = os.path.join(HERE, "..", "crates", "latent-core", "tests", "fixtures")
OUT = os.path.join(HERE, "..", "crates", "codi", "tests", "fixtures")

NUM_LATENT = 6
BETA = 1.0   # distill_loss_factor
GAMMA = 1.0  # ref_loss_factor
EOS = 2
# (question, cot, answer "The answer is: X" ids, index in answer of the pre-answer token)
EXAMPLES = [
    ([5, 17, 42, 8, 91, 33], [60, 61, 62, 63, 64], [70, 71, 72, 73, 80, 81], 3),
    ([11, 3, 57], [60, 65, 66], [70, 71, 72, 73, 82], 3),
    ([64, 12, 88, 31, 9], [67], [70, 71, 72, 74, 75, 83], 4),
]


def projection(d, seed):
    torch.manual_seed(seed)
    prj = nn.Sequential(nn.Dropout(0.0), nn.Linear(d, d), nn.GELU(), nn.Linear(d, d), nn.LayerNorm(d))
    with torch.no_grad():
        prj[4].weight.uniform_(0.5, 1.5)
        prj[4].bias.uniform_(-0.1, 0.1)
    return prj.eval()


def right_padded(seqs, counted_from, pad):
    s = max(len(x) for x in seqs)
    ids = torch.full((len(seqs), s), pad)
    mask = torch.zeros((len(seqs), s), dtype=torch.long)
    targets = torch.zeros((len(seqs), s), dtype=torch.long)
    weights = torch.zeros((len(seqs), s))
    for r, seq in enumerate(seqs):
        for c, tok in enumerate(seq):
            ids[r, c] = tok
            mask[r, c] = 1
            targets[r, c] = seq[c + 1] if c + 1 < len(seq) else EOS
            weights[r, c] = 1.0 if c + 1 >= counted_from[r] else 0.0
    return ids, mask, targets, weights


def ce(logits, targets, weights):
    logp = logits.float().log_softmax(-1).gather(-1, targets[..., None])[..., 0]
    return -(logp * weights).sum() / weights.sum()


def positions(mask):
    return (mask.cumsum(-1) - 1).clamp(min=0)


def codi_terms(model, prj, pad, bot, eot):
    b = len(EXAMPLES)
    rows = torch.arange(b)
    # Teacher: Q ‖ CoT ‖ A, right-padded, CE on everything after the question.
    teacher = [q + c + a for q, c, a, _ in EXAMPLES]
    t_ids, t_mask, t_targets, t_weights = right_padded(teacher, [len(q) for q, _, _, _ in EXAMPLES], pad)
    t_pos = torch.tensor([len(q) + len(c) + p for q, c, _, p in EXAMPLES])
    t_out = model(input_ids=t_ids, attention_mask=t_mask, position_ids=positions(t_mask), output_hidden_states=True)
    teacher_ce = ce(t_out.logits, t_targets, t_weights)

    # Student question: Q ‖ <bot>, left-padded.
    width = max(len(q) for q, _, _, _ in EXAMPLES) + 1
    q_ids = torch.full((b, width), pad)
    q_mask = torch.zeros((b, width), dtype=torch.long)
    for r, (q, _, _, _) in enumerate(EXAMPLES):
        seq = q + [bot]
        q_ids[r, width - len(seq):] = torch.tensor(seq)
        q_mask[r, width - len(seq):] = 1
    cache = DynamicCache()
    out = model(input_ids=q_ids, attention_mask=q_mask, position_ids=positions(q_mask), past_key_values=cache,
                use_cache=True, output_hidden_states=True)
    mask = q_mask
    count = q_mask.sum(-1)
    last = out.hidden_states[-1][:, -1:]
    for _ in range(NUM_LATENT):
        z = prj(last)
        mask = torch.cat([mask, torch.ones((b, 1), dtype=torch.long)], 1)
        out = model(inputs_embeds=z, attention_mask=mask, position_ids=count[:, None], past_key_values=cache,
                    use_cache=True, output_hidden_states=True)
        count = count + 1
        last = out.hidden_states[-1][:, -1:]
    # Decoder: <eot> ‖ A -> A ‖ EOS, right-padded.
    dec = [[eot] + a for _, _, a, _ in EXAMPLES]
    d_ids, d_mask, d_targets, d_weights = right_padded(dec, [1] * b, pad)
    d_pos = torch.tensor([1 + p for _, _, _, p in EXAMPLES])
    mask = torch.cat([mask, d_mask], 1)
    out = model(input_ids=d_ids, attention_mask=mask, position_ids=count[:, None] + positions(d_mask),
                past_key_values=cache, use_cache=True, output_hidden_states=True)
    student_ce = ce(out.logits, d_targets, d_weights)

    kd_layers = []
    for hs, ht in zip(out.hidden_states, t_out.hidden_states):
        s = hs[rows, d_pos]
        t = ht[rows, t_pos].detach()
        kd_layers.append(F.smooth_l1_loss(s, t, beta=1.0) / t.std())
    kd = torch.stack(kd_layers).mean()
    total = student_ce + BETA * kd + GAMMA * teacher_ce
    return dict(teacher_ce=teacher_ce.item(), student_ce=student_ce.item(), kd=kd.item(),
                kd_layers=[k.item() for k in kd_layers], total=total.item())


def main():
    for name in ["gpt2", "llama"]:
        torch.manual_seed(1234)
        model = AutoModelForCausalLM.from_pretrained(os.path.join(LM_FIXTURES, name), dtype=torch.float32)
        model.eval()
        v0 = model.config.vocab_size
        pad, bot, eot = v0, v0 + 1, v0 + 2
        model.resize_token_embeddings(v0 + 3, mean_resizing=False)
        d = model.config.hidden_size
        prj = projection(d, 4321)
        out_dir = os.path.join(OUT, name)
        shutil.rmtree(out_dir, ignore_errors=True)
        os.makedirs(out_dir)
        model.save_pretrained(os.path.join(out_dir, "model"), safe_serialization=True)
        tensors = {k: v.contiguous() for k, v in prj.state_dict().items()}
        save_file({f"prj.{k}": v for k, v in tensors.items()}, os.path.join(out_dir, "projection.safetensors"))
        meta = dict(format="latent-reasoning/codi", version=1, task="codi",
                    tokens=dict(base_vocab=v0, pad=pad, bot=bot, eot=eot, eos=EOS), num_latent=NUM_LATENT,
                    projection=dict(hidden=d, dim=d, layer_norm=True, dropout=0.0), add_bos=False,
                    answer_prefix="The answer is: ", base_model=f"latent-core fixture {name}")
        with open(os.path.join(out_dir, "codi.json"), "w") as f:
            json.dump(meta, f, indent=2)
        with torch.no_grad():
            terms = codi_terms(model, prj, pad, bot, eot)
        batch = [dict(question=q, cot=c, answer=a, pre_answer=p) for q, c, a, p in EXAMPLES]
        with open(os.path.join(out_dir, "batch.json"), "w") as f:
            json.dump(dict(examples=batch, num_latent=NUM_LATENT, distill_loss_factor=BETA,
                           ref_loss_factor=GAMMA), f, indent=2)
        with open(os.path.join(out_dir, "expected.json"), "w") as f:
            json.dump(terms, f, indent=2)
        print(name, json.dumps(terms))


if __name__ == "__main__":
    main()
