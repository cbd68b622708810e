"""A restatement of HRPO's latent pieces in plain PyTorch, for fixtures and parity checks.

HRPO (repository Yueeeeeeee/HRPO) patches transformers' `Qwen2Model`/`LlamaModel` with three children,
`thinking_residual_gate_r`, `thinking_residual_gate_i` (nn.Linear(H, H)) and `thinking_residual_Lambda`
(a module holding the parameter `Lambda`), and its `_sample` loop with a probability-weighted thinking
state. This file restates them (not copied): `attach_residual` adds the same modules to a model, so
that PEFT saves them under HRPO's keys when they are listed in `modules_to_save`.
"""
import torch
from torch import nn

C = 8.0
RESIDUAL_MODULES = ["thinking_residual_gate_r", "thinking_residual_gate_i", "thinking_residual_Lambda"]


class ResidualLambda(nn.Module):
    """Holds Λ [H]; a = exp(-c * softplus(-Λ) * r)."""

    def __init__(self, hidden):
        super().__init__()
        self.Lambda = nn.Parameter(torch.zeros(hidden))

    def reset(self, r_min, r_max, generator=None):
        with torch.no_grad():
            u = torch.empty_like(self.Lambda).uniform_(r_min, r_max, generator=generator)
            self.Lambda.copy_(-torch.log(u ** (-1.0 / C) - 1))

    def forward(self, r):
        return torch.exp(-C * nn.functional.softplus(-self.Lambda, beta=1, threshold=20) * r)


def attach_residual(base_model, hidden, gate_std=0.02, r_min=0.99, r_max=0.999, generator=None):
    """Adds HRPO's residual modules to `base_model` (a Qwen2Model / LlamaModel)."""
    base_model.thinking_residual_gate_r = nn.Linear(hidden, hidden)
    base_model.thinking_residual_gate_i = nn.Linear(hidden, hidden)
    base_model.thinking_residual_Lambda = ResidualLambda(hidden)
    with torch.no_grad():
        for gate in (base_model.thinking_residual_gate_r, base_model.thinking_residual_gate_i):
            gate.weight.normal_(0.0, gate_std, generator=generator)
            gate.bias.zero_()
    base_model.thinking_residual_Lambda.reset(r_min, r_max, generator)


def residual(gate_r, gate_i, lam, e, h, eps=1e-8):
    """HRPO's `Qwen2Model.thinking_residual`: returns (x, a)."""
    r = torch.sigmoid(gate_r(e))
    i = torch.sigmoid(gate_i(e))
    a = lam(r)
    return a * e + torch.sqrt(1 - a.pow(2) + eps) * (i * h), a


def probability_weighted(probs, embed):
    """h = E^T p / ||p||_2 (HRPO's last_thinking_states)."""
    h = torch.einsum("bv,vd->bd", probs, embed)
    return h / torch.sqrt((probs ** 2).sum(-1, keepdim=True))


def projection_state(weight, hidden):
    """normalize(W_p hidden), eps 1e-8 (design document 002); weight [out, in]."""
    y = hidden @ weight.T
    return y / (torch.norm(y, dim=-1, keepdim=True) + 1e-8)


def mixed_embeds(base_model, gate_r, gate_i, lam, ids, mask, states):
    """HRPO's training forward inputs: the token embeddings, fused with `states` where `mask`."""
    e = base_model.embed_tokens(ids)
    x, _ = residual(gate_r, gate_i, lam, e, states)
    return torch.where(mask.unsqueeze(-1), x, e)
