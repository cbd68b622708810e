#!/usr/bin/env python3
"""Builds tiny random CODI models with the reference implementation's module layout
(github.com/zhenyi4/codi, `src/model.py` and `train.py`), saves them the way its trainer does, and
writes the reference outputs that crates/codi/tests/reference_checkpoint.rs compares against.

    /work/venv/bin/python scripts/make_codi_reference_checkpoint.py

Layout of the reference (restated, not copied): a `CODI(nn.Module)` with
  - `codi`: the causal LM, its vocabulary resized from V0 to V0 + 3 with `resize_token_embeddings`
    (transformers' default mean resizing), then wrapped by PEFT `get_peft_model` with
    `LoraConfig(task_type=CAUSAL_LM, r, lora_alpha, lora_dropout=0.1, target_modules,
    init_lora_weights=True)`; target modules as `train.py` chooses them: GPT-2 `c_attn, c_proj, c_fc`,
    Llama `q/k/v/o_proj, up/down/gate_proj`;
  - `prj`: `nn.Sequential(nn.Dropout(p), nn.Linear(D, prj_dim), nn.GELU(), nn.Linear(prj_dim, D))`
    followed by `prj.add_module("ln", nn.LayerNorm(D))`.
`Trainer.save_model(output_dir)` on such a module (not a `PreTrainedModel`) writes its whole
`state_dict()` (LoRA unmerged, keys `codi.base_model.model.…`, `prj.…`): with
`--save_safetensors False` (the published scripts) `torch.save(state_dict, "pytorch_model.bin")`,
else `safetensors.torch.save_file(state_dict, "model.safetensors", metadata={"format": "pt"})`.
The directory carries no config.json: the base architecture is written beside it, under base/.

Two fixtures, under crates/codi/tests/fixtures/reference/:
  gpt2/   tied head; trained "with --bf16", so the LM (base and adapters) is stored in bfloat16 and
          the projection in float32; saved as pytorch_model.bin; prj_dim 24 != D = 16.
  llama/  untied head (its added rows resized too), GQA; float32; saved as model.safetensors.
Each has checkpoint/ (the saved directory), base/config.json (the base model's config, vocab V0)
and expected.safetensors + inputs.json: for two sequences `Q ‖ <bot>` the logits and final
hidden states, the first thought `prj(h_last)`, and the logits and second thought after feeding
that thought through the KV cache (what CODI's inference does), all in float32 from the weights as
saved (bf16 values widened), with the adapters active (PEFT, unmerged) and dropout off.

The LoRA B matrices (zero at init) and the projection's norm are set to random values so that
merging and the norm are exercised. V0 = 400 and EOS = 2 match the tokenizer of
crates/latent-core/tests/fixtures/tiny-chat, so the checkpoints can also be decoded end to end.
"""
import json
import os
import shutil

import torch
import torch.nn as nn
from peft import LoraConfig, TaskType, get_peft_model
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM, GPT2Config, LlamaConfig

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "crates", "codi", "tests", "fixtures", "reference")

V0 = 400
EOS = 2
LORA_R = 4
LORA_ALPHA = 16.0
QUESTIONS = [[5, 17, 42, 8, 91, 33], [11, 3, 57, 120, 7, 64]]

FAMILIES = {
    "gpt2": dict(
        config=GPT2Config(
            vocab_size=V0, n_positions=1024, n_embd=16, n_layer=2, n_head=2, n_inner=32,
            bos_token_id=1, eos_token_id=EOS, tie_word_embeddings=True,
        ),
        targets=["c_attn", "c_proj", "c_fc"],
        prj_dim=24,
        bf16=True,
        weights="pytorch_model.bin",
    ),
    "llama": dict(
        config=LlamaConfig(
            vocab_size=V0, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
            rms_norm_eps=1e-6, bos_token_id=1, eos_token_id=EOS, tie_word_embeddings=False,
        ),
        targets=["q_proj", "k_proj", "v_proj", "o_proj", "up_proj", "down_proj", "gate_proj"],
        prj_dim=16,
        bf16=False,
        weights="model.safetensors",
    ),
}


class Codi(nn.Module):
    """The reference's module names: `codi` (LM + PEFT) and `prj`."""

    def __init__(self, lm, dim, prj_dim):
        super().__init__()
        self.codi = lm
        self.prj = nn.Sequential(
            nn.Dropout(0.0), nn.Linear(dim, prj_dim), nn.GELU(), nn.Linear(prj_dim, dim)
        )
        self.prj.add_module("ln", nn.LayerNorm(dim))


def build(name, spec, seed):
    torch.manual_seed(seed)
    config = spec["config"]
    lm = AutoModelForCausalLM.from_config(config).float()
    ori = lm.config.vocab_size
    lm.resize_token_embeddings(ori + 3)  # pad = V0, <bot> = V0 + 1, <eot> = V0 + 2
    lora = LoraConfig(
        task_type=TaskType.CAUSAL_LM, inference_mode=False, r=LORA_R, lora_alpha=LORA_ALPHA,
        lora_dropout=0.1, target_modules=spec["targets"], init_lora_weights=True,
    )
    lm = get_peft_model(lm, lora)
    model = Codi(lm, config.hidden_size, spec["prj_dim"])
    with torch.no_grad():
        for key, p in model.named_parameters():
            if "lora_B" in key:
                p.normal_(0.0, 0.2)
        model.prj.ln.weight.uniform_(0.5, 1.5)
        model.prj.ln.bias.uniform_(-0.2, 0.2)
    if spec["bf16"]:
        model.codi.to(torch.bfloat16)  # the reference loads the LM in bf16 under --bf16
    return model.eval()


def save_like_the_trainer(model, out_dir, weights):
    state = model.state_dict()
    os.makedirs(out_dir, exist_ok=True)
    if weights == "pytorch_model.bin":
        torch.save(state, os.path.join(out_dir, weights))
    else:
        save_file({k: v.contiguous() for k, v in state.items()}, os.path.join(out_dir, weights),
                  metadata={"format": "pt"})


@torch.no_grad()
def reference_outputs(model):
    model = model.float().eval()
    ids = torch.tensor([q + [V0 + 1] for q in QUESTIONS])
    out = model.codi(input_ids=ids, use_cache=True, output_hidden_states=True)
    last = out.hidden_states[-1]
    thought = model.prj(last[:, -1:, :])
    nxt = model.codi(inputs_embeds=thought, past_key_values=out.past_key_values, use_cache=True,
                     output_hidden_states=True)
    next_thought = model.prj(nxt.hidden_states[-1][:, -1:, :])
    return ids, {
        "logits": out.logits.float(),
        "last_hidden": last.float(),
        "thought": thought.float(),
        "next_logits": nxt.logits.float(),
        "next_thought": next_thought.float(),
    }


def main():
    for seed, (name, spec) in enumerate(FAMILIES.items()):
        out = os.path.join(OUT, name)
        shutil.rmtree(out, ignore_errors=True)
        # The base model's config (vocab_size V0), written before resizing changes it.
        os.makedirs(os.path.join(out, "base"), exist_ok=True)
        spec["config"].to_json_file(os.path.join(out, "base", "config.json"))
        model = build(name, spec, 7 + seed)
        save_like_the_trainer(model, os.path.join(out, "checkpoint"), spec["weights"])
        ids, expected = reference_outputs(model)
        save_file({k: v.contiguous() for k, v in expected.items()},
                  os.path.join(out, "expected.safetensors"))
        with open(os.path.join(out, "inputs.json"), "w") as f:
            json.dump({
                "input_ids": ids.tolist(),
                "base_vocab": V0, "pad": V0, "bot": V0 + 1, "eot": V0 + 2, "eos": EOS,
                "lora_r": LORA_R, "lora_alpha": LORA_ALPHA,
                "prj_dim": spec["prj_dim"], "weights": spec["weights"],
                "lm_dtype": "bfloat16" if spec["bf16"] else "float32",
            }, f, indent=1)
            f.write("\n")
        sizes = {p: os.path.getsize(os.path.join(dp, p)) for dp, _, fs in os.walk(out) for p in fs}
        print(name, sizes)


if __name__ == "__main__":
    main()
