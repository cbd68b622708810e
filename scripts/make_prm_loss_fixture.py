"""Writes crates/latent-prm/tests/fixtures/losses.json: the latent reward model's losses computed
with PyTorch on random values, labels and question groups.

Listwise (LatentRM): per question and per scored position, -sum_i y_i * log_softmax(v)_i over the
question's N paths, averaged over positions, then over questions. MSE and BCE-with-logits are
torch's mean reductions.

    python scripts/make_prm_loss_fixture.py
"""
import json
import pathlib

import torch
import torch.nn.functional as F

torch.manual_seed(0)
cases = []
for groups, k in [([4, 4, 4], 1), ([3, 5, 2, 6], 1), ([4, 4], 6), ([1, 7], 3)]:
    b = sum(groups)
    values = torch.randn(b, k, dtype=torch.float64) * 2
    labels = torch.rand(b, k, dtype=torch.float64).round() if k == 1 else torch.rand(b, k, dtype=torch.float64)
    terms = []
    start = 0
    for n in groups:
        v, y = values[start:start + n], labels[start:start + n]
        terms.append(-(y * F.log_softmax(v, dim=0)).sum() / k)
        start += n
    cases.append({
        "groups": groups,
        "k": k,
        "values": values.flatten().tolist(),
        "labels": labels.flatten().tolist(),
        "listwise": torch.stack(terms).mean().item(),
        "mse": F.mse_loss(values, labels).item(),
        "bce": F.binary_cross_entropy_with_logits(values, labels).item(),
    })
out = pathlib.Path(__file__).resolve().parent.parent / "crates/latent-prm/tests/fixtures/losses.json"
out.write_text(json.dumps({"torch": torch.__version__, "cases": cases}, indent=1) + "\n")
print(f"wrote {out}")
