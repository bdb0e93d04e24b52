"""Loads a sparselab export of an MLP (mlp-300-100) in PyTorch and measures its test accuracy,
once with the dense weights and once with the CSR forms of the sparse ones (torch.sparse.mm).

Usage: python3 export_torch.py DIR, where DIR holds model.safetensors (from `cargo xtask
export`), images.f32 (the test images, float32, as sparselab feeds them) and labels.u8. Prints
"dense accuracy A" and "sparse accuracy A". The loading lines are the snippet of docs/export.md.
"""
import json
import os
import sys

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file

directory = sys.argv[1]
path = os.path.join(directory, "model.safetensors")

# --- the snippet of docs/export.md ---
weights = load_file(path)  # dense tensors in PyTorch's layout, plus CSR parts
with safe_open(path, framework="pt") as f:
    meta = f.metadata()  # format, run_id, config (JSON), test_accuracy, ...
config = json.loads(meta["config"])
hidden = len(config["model"].get("hidden", [300, 100]))
names = [f"hidden.{i}" for i in range(hidden)] + ["head"]


def csr(name):
    w = weights[f"{name}.weight"]
    if f"{name}.weight.values" not in weights:
        return w.to_sparse_csr()
    return torch.sparse_csr_tensor(
        weights[f"{name}.weight.indptr"],
        weights[f"{name}.weight.indices"],
        weights[f"{name}.weight.values"],
        size=tuple(w.shape),
    )


def forward(x, sparse):
    h = x.flatten(1)
    for i, name in enumerate(names):
        if sparse:  # y = (W_csr @ h^T)^T + b
            h = torch.sparse.mm(csr(name), h.T).T + weights[f"{name}.bias"]
        else:
            h = torch.nn.functional.linear(h, weights[f"{name}.weight"], weights[f"{name}.bias"])
        if i + 1 < len(names):
            h = torch.relu(h)
    return h
# --- end of the snippet ---


labels = torch.from_numpy(np.fromfile(os.path.join(directory, "labels.u8"), dtype=np.uint8))
images = torch.from_numpy(np.fromfile(os.path.join(directory, "images.f32"), dtype=np.float32))
images = images.reshape(len(labels), -1)
for sparse in (False, True):
    with torch.no_grad():
        correct = (forward(images, sparse).argmax(1) == labels.long()).sum().item()
    kind = "sparse" if sparse else "dense"
    print(f"{kind} accuracy {correct / len(labels)!r}")
