#!/usr/bin/env python3
"""Writes the committed HRPO fixtures of latent-core (tests/hrpo.rs): the thinking residual with
gradients, the probability-weighted and projected thinking states, greedy HRPO rollouts on the tiny
chat model, and PEFT adapters carrying the residual in `modules_to_save`.

    ~/pyref/bin/pip install -r scripts/requirements.txt peft
    ~/pyref/bin/python scripts/make_hrpo_fixtures.py

Output under crates/latent-core/tests/fixtures/hrpo/ (about 100 kB):
- residual.safetensors: gates and Λ under HRPO's keys (`model.thinking_residual_gate_r.weight`, …),
  inputs e, h, outputs x, a, and the gradients of sum(x·wx) + sum(a·wa) (`grad.<key>`); the projection
  `model.thinking_projection.weight`, its input `hidden`, output `projected` and the gradient of
  sum(projected·wp).
- states.safetensors: logits, an embedding table, and h = Eᵀp/‖p‖ after transformers' warpers for
  several temperature / top-k / top-p settings (`h.<case>`).
- rollout/: HRPO's greedy generation loop restated (argmax, h from the softmax of that step, mixing
  until the delimiter) on the tiny chat model with a random residual, for both thinking sources and
  for a run that thinks to its last token:
  `weights.safetensors` (residual + projection), `expected.json` (ids, masks, delimiter),
  `states.safetensors` (stored h per completion position).
- adapter/{qwen2,llama}/: PEFT adapters (LoRA r 4 on q,k,v,o,gate,up,down + the residual in
  modules_to_save) on the parity fixtures, with `expected.safetensors` holding the PEFT model's logits
  of the mixed forward (`logits`) for `inputs.json`'s ids, thinking mask and `thinking_states`.
"""
import json
import os
import sys

import torch
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM, AutoTokenizer
from transformers.generation.logits_process import (LogitsProcessorList, TemperatureLogitsWarper,
                                                    TopKLogitsWarper, TopPLogitsWarper)

sys.path.insert(0, os.path.dirname(__file__))
from hrpo_reference import (RESIDUAL_MODULES, ResidualLambda, attach_residual, mixed_embeds,  # noqa: E402
                            probability_weighted, projection_state, residual)

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "crates", "latent-core", "tests", "fixtures")
ROOT = os.path.join(FIXTURES, "hrpo")
META = {"torch": torch.__version__}


def write_json(path, value):
    with open(path, "w") as f:
        json.dump(value, f, indent=1)
        f.write("\n")


def residual_fixture():
    g = torch.Generator().manual_seed(1)
    hidden = 8
    gate_r, gate_i, lam = nn_linear(hidden, g), nn_linear(hidden, g), ResidualLambda(hidden)
    lam.reset(0.3, 0.95, g)
    e = torch.randn(2, 3, hidden, generator=g)
    h = torch.randn(2, 3, hidden, generator=g)
    wx = torch.randn(2, 3, hidden, generator=g)
    wa = torch.randn(2, 3, hidden, generator=g)
    x, a = residual(gate_r, gate_i, lam, e, h)
    ((x * wx).sum() + (a * wa).sum()).backward()
    proj = torch.nn.Linear(hidden, hidden, bias=False)
    with torch.no_grad():
        proj.weight.copy_(torch.randn(hidden, hidden, generator=g) * 0.3)
    states_in = torch.randn(2, 3, hidden, generator=g)
    wp = torch.randn(2, 3, hidden, generator=g)
    projected = projection_state(proj.weight, states_in)
    (projected * wp).sum().backward()
    params = {
        "model.thinking_residual_gate_r.weight": gate_r.weight, "model.thinking_residual_gate_r.bias": gate_r.bias,
        "model.thinking_residual_gate_i.weight": gate_i.weight, "model.thinking_residual_gate_i.bias": gate_i.bias,
        "model.thinking_residual_Lambda.Lambda": lam.Lambda, "model.thinking_projection.weight": proj.weight,
    }
    tensors = {k: p.detach().clone() for k, p in params.items()}
    tensors.update({f"grad.{k}": p.grad.clone() for k, p in params.items()})
    tensors.update(e=e, h=h, wx=wx, wa=wa, x=x.detach(), a=a.detach(), hidden=states_in, wp=wp,
                   projected=projected.detach())
    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(ROOT, "residual.safetensors"), META)


def nn_linear(hidden, g):
    layer = torch.nn.Linear(hidden, hidden)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(hidden, hidden, generator=g) * 0.5)
        layer.bias.copy_(torch.randn(hidden, generator=g) * 0.5)
    return layer


STATE_CASES = {
    # name: (temperature, top_k, top_p); None = greedy (plain softmax)
    "greedy": None,
    "t1.3": (1.3, 0, 1.0),
    "t0.7_k5": (0.7, 5, 1.0),
    "t0.5_k50": (0.5, 50, 1.0),
    "t0.7_k10_p0.8": (0.7, 10, 0.8),
    "t1.0_p0.6": (1.0, 0, 0.6),
}


def states_fixture():
    g = torch.Generator().manual_seed(2)
    vocab, hidden = 60, 8
    logits = torch.randn(3, vocab, generator=g) * 2.0
    embed = torch.randn(vocab, hidden, generator=g)
    tensors = {"logits": logits, "embed": embed}
    for name, case in STATE_CASES.items():
        if case is None:
            scores = logits
        else:
            temperature, top_k, top_p = case
            warpers = LogitsProcessorList([TemperatureLogitsWarper(temperature)])
            if top_k:
                warpers.append(TopKLogitsWarper(top_k))
            if top_p < 1.0:
                warpers.append(TopPLogitsWarper(top_p))
            scores = warpers(torch.zeros(3, 1, dtype=torch.long), logits.clone())
        probs = torch.softmax(scores, dim=-1)
        tensors[f"h.{name}"] = probability_weighted(probs, embed)
    save_file(tensors, os.path.join(ROOT, "states.safetensors"), META)
    write_json(os.path.join(ROOT, "states.json"), {k: v for k, v in STATE_CASES.items()})


def greedy_rollout(model, tokenizer, residual_parts, prompt, max_new, eos, delimiter, projection=None):
    """HRPO's `_sample` restated for one prompt, greedy, without a KV cache."""
    gate_r, gate_i, lam = residual_parts
    embed = model.get_input_embeddings().weight
    inputs = model.get_input_embeddings()(torch.tensor([prompt]))
    completion, mask, states, gates = [], [], [], []
    with torch.no_grad():
        for _ in range(max_new):
            out = model(inputs_embeds=inputs, output_hidden_states=True)
            logits = out.logits[:, -1].float()
            probs = torch.softmax(logits, dim=-1)
            token = int(torch.argmax(probs, dim=-1))
            completion.append(token)
            if projection is None:
                h = probability_weighted(probs, embed)
            else:
                h = projection_state(projection, out.hidden_states[-1][:, -1])
            thinking = delimiter not in tokenizer.decode(completion, skip_special_tokens=False)
            if token == eos or len(completion) == max_new:
                mask.append(False)
                states.append(torch.zeros_like(h[0]))
                gates.append(1.0)
                break
            e = model.get_input_embeddings()(torch.tensor([[token]]))
            if thinking:
                x, a = residual(gate_r, gate_i, lam, e, h.unsqueeze(1))
                gates.append(float(a.mean()))
                states.append(h[0])
            else:
                x = e
                gates.append(1.0)
                states.append(torch.zeros_like(h[0]))
            mask.append(thinking)
            inputs = torch.cat([inputs, x], dim=1)
    return completion, mask, torch.stack(states), gates


def rollout_fixture():
    g = torch.Generator().manual_seed(3)
    chat = os.path.join(FIXTURES, "tiny-chat")
    model = AutoModelForCausalLM.from_pretrained(chat, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(chat)
    hidden = model.config.hidden_size
    attach_residual(model.model, hidden, gate_std=0.3, r_min=0.3, r_max=0.9, generator=g)
    projection = torch.randn(hidden, hidden, generator=g) * 0.3
    parts = (model.model.thinking_residual_gate_r, model.model.thinking_residual_gate_i,
             model.model.thinking_residual_Lambda)
    prompt = tokenizer("What is 3 + 4? Think, then answer.")["input_ids"]
    eos, max_new = model.config.eos_token_id, 24
    out = os.path.join(ROOT, "rollout")
    os.makedirs(out, exist_ok=True)
    cases, tensors = {}, {}
    for source, proj in [("probability_weighted", None), ("projection", projection)]:
        # A delimiter that appears part-way: the text of the 6th token of a run that never stops thinking.
        never, _, _, _ = greedy_rollout(model, tokenizer, parts, prompt, max_new, eos, "\0never\0", proj)
        delimiter = tokenizer.decode(never[5:6], skip_special_tokens=False).strip() or "####"
        completion, mask, states, gates = greedy_rollout(model, tokenizer, parts, prompt, max_new, eos, delimiter,
                                                         proj)
        assert any(mask) and not all(mask[:-1]), (source, mask)
        cases[source] = dict(delimiter=delimiter, completion=completion, thinking_mask=mask, gate_mean=gates)
        tensors[f"{source}.states"] = states
    # Thinking to the end: every completion position but the last (never fed) is mixed.
    completion, mask, states, gates = greedy_rollout(model, tokenizer, parts, prompt, max_new, eos, "####")
    assert all(mask[:-1]) and not mask[-1], mask
    cases["throughout"] = dict(delimiter="####", completion=completion, thinking_mask=mask, gate_mean=gates)
    tensors["throughout.states"] = states
    write_json(os.path.join(out, "expected.json"), dict(prompt=prompt, max_new_tokens=max_new, eos=eos, cases=cases))
    save_file(tensors, os.path.join(out, "states.safetensors"), META)
    weights = {f"model.{name}.{p}": t.detach().clone() for name in RESIDUAL_MODULES
               for p, t in getattr(model.model, name).named_parameters()}
    weights["model.thinking_projection.weight"] = projection
    save_file(weights, os.path.join(out, "weights.safetensors"), META)


def adapter_fixture(name, seed):
    from peft import LoraConfig, get_peft_model

    g = torch.Generator().manual_seed(10 + seed)
    base_dir = os.path.join(FIXTURES, name)
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    hidden = model.config.hidden_size
    attach_residual(model.model, hidden, generator=g)
    config = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, bias="none", task_type="CAUSAL_LM",
                        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
                        modules_to_save=RESIDUAL_MODULES)
    peft_model = get_peft_model(model, config)
    with torch.no_grad():
        for key, p in peft_model.named_parameters():
            if "lora_B" in key:
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)
            elif "modules_to_save" in key and "gate" in key:
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)
            elif "modules_to_save" in key and "Lambda" in key:
                u = torch.empty(p.shape).uniform_(0.3, 0.9, generator=g)
                p.copy_(-torch.log(u ** (-1.0 / 8.0) - 1))
    peft_model.eval()
    out = os.path.join(ROOT, "adapter", name)
    os.makedirs(out, exist_ok=True)
    peft_model.save_pretrained(out)
    os.remove(os.path.join(out, "README.md"))
    config_path = os.path.join(out, "adapter_config.json")
    saved = json.load(open(config_path))
    saved["base_model_name_or_path"] = f"crates/latent-core/tests/fixtures/{name}"
    write_json(config_path, saved)
    ids = [5, 17, 42, 8, 91, 33, 2]
    mask = [0, 0, 1, 1, 0, 1, 0]
    states = torch.randn(len(ids), hidden, generator=g)
    inner = peft_model.base_model.model.model
    with torch.no_grad():
        embeds = mixed_embeds(inner, inner.thinking_residual_gate_r, inner.thinking_residual_gate_i,
                              inner.thinking_residual_Lambda, torch.tensor([ids]),
                              torch.tensor([mask], dtype=torch.bool), states.unsqueeze(0))
        logits = peft_model(inputs_embeds=embeds).logits
    save_file({"logits": logits.contiguous(), "thinking_states": states},
              os.path.join(out, "expected.safetensors"), META)
    write_json(os.path.join(out, "inputs.json"), dict(ids=ids, thinking_mask=mask))


def main():
    os.makedirs(ROOT, exist_ok=True)
    residual_fixture()
    states_fixture()
    rollout_fixture()
    for seed, name in enumerate(["llama", "qwen2"]):
        adapter_fixture(name, seed)
    print(f"wrote {ROOT}", file=sys.stderr)


if __name__ == "__main__":
    main()
