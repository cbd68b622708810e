#!/usr/bin/env python3
"""Writes the GRPO loss fixture of grpo-rl (tests/loss.rs): TRL's `GRPOTrainer._compute_loss`
restated for its four reductions (grpo, bnpo, dr_grpo, dapo), with and without the k3 KL, with a
reused rollout (old log-probs differ from the current ones, so the clip matters).

    ~/pyref/bin/python scripts/make_grpo_loss_fixture.py

Output: crates/grpo-rl/tests/fixtures/loss.safetensors (inputs, and per case the loss value
`loss.<case>` and its gradient with respect to the per-token log-probs `grad.<case>`) and
loss.json (the cases' settings). The loss is TRL's before its division by the accumulation steps
(TRL's evaluation-mode value).
"""
import json
import os

import torch
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(__file__), "..", "crates", "grpo-rl", "tests", "fixtures")


def trl_loss(logps, old, ref, adv, mask, loss_type, beta, eps_low, eps_high, max_completion_length, num_items):
    """TRL's token-level importance sampling, two-sided clip, k3 KL, and its reductions."""
    coef_1 = torch.exp(logps - old)
    coef_2 = torch.clamp(coef_1, 1 - eps_low, 1 + eps_high)
    per_token = -torch.min(coef_1 * adv, coef_2 * adv)
    if beta != 0.0:
        kl = torch.exp(ref - logps) - (ref - logps) - 1
        per_token = per_token + beta * kl
    if loss_type == "grpo":
        return ((per_token * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()
    if loss_type == "bnpo":
        return (per_token * mask).sum() / mask.sum().clamp(min=1.0)
    if loss_type == "dr_grpo":
        return (per_token * mask).sum() / (per_token.size(0) * max_completion_length)
    if loss_type == "dapo":
        return (per_token * mask).sum() / max(num_items, 1)
    raise ValueError(loss_type)


def main():
    g = torch.Generator().manual_seed(7)
    b, c = 3, 5
    logps = -torch.rand(b, c, generator=g) * 3 - 0.05
    old = logps + torch.randn(b, c, generator=g) * 0.3
    ref = logps + torch.randn(b, c, generator=g) * 0.2
    adv = torch.tensor([[1.3], [-0.7], [0.2]])
    mask = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 0, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.float32)
    tensors = {"logps": logps, "old": old, "ref": ref, "advantages": adv, "mask": mask}
    cases = {}
    for loss_type in ["grpo", "bnpo", "dr_grpo", "dapo"]:
        for beta in [0.0, 0.04]:
            name = f"{loss_type}_beta{beta}"
            settings = dict(loss_type=loss_type, beta=beta, epsilon=0.2, epsilon_high=0.28,
                            max_completion_length=6, batch_tokens=17)
            x = logps.clone().requires_grad_(True)
            loss = trl_loss(x, old, ref, adv, mask, loss_type, beta, 0.2, 0.28, 6, 17)
            loss.backward()
            tensors[f"loss.{name}"] = loss.detach().reshape(1)
            tensors[f"grad.{name}"] = x.grad.clone()
            cases[name] = settings
    os.makedirs(OUT, exist_ok=True)
    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(OUT, "loss.safetensors"),
              {"torch": torch.__version__})
    with open(os.path.join(OUT, "loss.json"), "w") as f:
        json.dump(cases, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
