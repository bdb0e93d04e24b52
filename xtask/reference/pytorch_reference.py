#!/usr/bin/env python3
"""PyTorch reference for `cargo xtask bench` and whole-run timing (issue #11).

The same models, batch, optimiser and data as sparselab, so that a ratio of the two measures the
implementations, not the work:

* ``step``: training throughput of one model at one batch size. Inputs are standard-normal images
  of Fashion-MNIST shape (1x28x28), labels ``i % 10`` (what ``cargo xtask bench`` feeds
  sparselab); one step is forward, cross-entropy, backward and a momentum-SGD update (PyTorch's
  ``SGD``: ``v <- mu*v + g``, ``w <- w - lr*v``, sparselab's ``sgd``). Prints one JSON object.
* ``gmp-run``: the pruning-baselines GMP arm end to end on Fashion-MNIST: 55 000 training /
  5 000 validation / 10 000 test examples, normalised by the training mean and std, 20 epochs at
  batch 128, momentum 0.9, weight decay 1e-4, cosine learning rate from 0.05, global gradual
  magnitude pruning of the weight tensors to ``--sparsity`` with the cubic schedule from 10 % to
  70 % of training every 50 steps (Zhu & Gupta; SPEC section 2), and validation plus test
  evaluation (batch 1000) after every epoch. Prints the final test accuracy and times.
* ``sparse --manifest FILE``: the products ``W @ X`` that ``cargo xtask bench`` times for sparse
  inference, on the same matrices (float32 files the manifest names): ``torch.mm`` on the dense
  ``W`` and ``torch.sparse.mm`` on its CSR form, each the median over 7 rounds of at least 3 ms.
  Prints one JSON list, in the manifest's order.

Models (SPEC section 4): ``mlp-300-100`` = 784-300-100-10 with ReLU; ``lenet5`` = conv 6@5x5
pad 2, max-pool 2, conv 16@5x5, max-pool 2, fc 400-120-84-10, ReLU.

Threads: ``--threads`` (default: every core, as sparselab's flex backend uses).
"""

import argparse
import gzip
import json
import math
import os
import sys
import time

import numpy as np
import torch
from torch import nn


def model(name):
    if name == "mlp-300-100":
        return nn.Sequential(
            nn.Flatten(), nn.Linear(784, 300), nn.ReLU(), nn.Linear(300, 100), nn.ReLU(),
            nn.Linear(100, 10))
    if name == "lenet5":
        return nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
    sys.exit(f"unknown model {name!r} (known: mlp-300-100, lenet5)")


def step_bench(args):
    torch.manual_seed(0)
    net = model(args.model)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    x = torch.randn(args.batch, 1, 28, 28)
    y = torch.arange(args.batch) % 10

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    warm_end = time.perf_counter() + args.warmup
    while time.perf_counter() < warm_end:
        step()
    # Samples of at least 50 ms each; the mean and the median over samples, as criterion
    # reports them.
    times = []
    end = time.perf_counter() + args.seconds
    while time.perf_counter() < end or len(times) < 5:
        n, t0 = 0, time.perf_counter()
        while True:
            step()
            n += 1
            if time.perf_counter() - t0 >= 0.05:
                break
        times.append((time.perf_counter() - t0) / n)
    mean = float(np.mean(times))
    sem = float(np.std(times, ddof=1) / math.sqrt(len(times)))
    print(json.dumps({
        "model": args.model,
        "batch": args.batch,
        "step_seconds": mean,
        "median_step_seconds": float(np.median(times)),
        "ci95": [mean - 1.96 * sem, mean + 1.96 * sem],
        "samples_per_sec": args.batch / mean,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }))


def idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def gmp_run(args):
    t_start = time.perf_counter()
    torch.manual_seed(args.seed)
    d = args.data_dir
    xs = idx(os.path.join(d, "train-images-idx3-ubyte.gz")).astype(np.float32) / 255.0
    ys = idx(os.path.join(d, "train-labels-idx1-ubyte.gz")).astype(np.int64)
    xt = idx(os.path.join(d, "t10k-images-idx3-ubyte.gz")).astype(np.float32) / 255.0
    yt = idx(os.path.join(d, "t10k-labels-idx1-ubyte.gz")).astype(np.int64)
    perm = np.random.default_rng(args.seed).permutation(len(xs))
    val, train = perm[:5000], perm[5000:]
    mean, std = xs[train].mean(), xs[train].std()
    norm = lambda a: torch.from_numpy(((a - mean) / std)[:, None, :, :].copy())
    x_tr, y_tr = norm(xs[train]), torch.from_numpy(ys[train])
    x_va, y_va = norm(xs[val]), torch.from_numpy(ys[val])
    x_te, y_te = norm(xt), torch.from_numpy(yt)

    net = model(args.model)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    loss_fn = nn.CrossEntropyLoss()
    weights = [p for p in net.parameters() if p.dim() > 1]
    masks = [torch.ones_like(w) for w in weights]
    n = len(x_tr)
    per_epoch = math.ceil(n / args.batch)
    total = per_epoch * args.epochs
    t0, t_end = int(0.1 * total), int(0.7 * total)

    def target(t):
        if t <= t0:
            return 0.0
        frac = min(1.0, (t - t0) / max(1, t_end - t0))
        return args.sparsity * (1.0 - (1.0 - frac) ** 3)

    def prune(s):
        mags = torch.cat([(w * m).abs().flatten() for w, m in zip(weights, masks)])
        k = int(round(s * mags.numel()))
        if k == 0:
            return
        threshold = torch.kthvalue(mags, k).values
        for w, m in zip(weights, masks):
            m.copy_(((w * m).abs() > threshold).float())
            w.data.mul_(m)

    def evaluate(x, y):
        net.eval()
        correct = 0
        with torch.no_grad():
            for i in range(0, len(x), 1000):
                correct += (net(x[i:i + 1000]).argmax(1) == y[i:i + 1000]).sum().item()
        net.train()
        return correct / len(x)

    step = 0
    train_seconds = 0.0
    for epoch in range(args.epochs):
        te = time.perf_counter()
        order = torch.randperm(n)
        for i in range(0, n, args.batch):
            idx_b = order[i:i + args.batch]
            step += 1
            for g in opt.param_groups:
                g["lr"] = 0.5 * 0.05 * (1 + math.cos(math.pi * (step - 1) / total))
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(net(x_tr[idx_b]), y_tr[idx_b])
            loss.backward()
            for w, m in zip(weights, masks):
                w.grad.mul_(m)
            opt.step()
            with torch.no_grad():
                for w, m in zip(weights, masks):
                    w.mul_(m)
                if step % 50 == 0 and t0 < step <= t_end + 50:
                    prune(target(step))
        train_seconds += time.perf_counter() - te
        val_acc, test_acc = evaluate(x_va, y_va), evaluate(x_te, y_te)
    sparsity = 1.0 - sum(m.sum().item() for m in masks) / sum(m.numel() for m in masks)
    print(json.dumps({
        "model": args.model,
        "val_accuracy": val_acc,
        "test_accuracy": test_acc,
        "weight_sparsity": sparsity,
        "train_seconds": train_seconds,
        "wall_seconds": time.perf_counter() - t_start,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }))


def seconds_per_call(f):
    """Median seconds per call over 7 rounds of at least 3 ms (the bench's own protocol)."""
    start, calls = time.perf_counter(), 0
    while calls < 3 or time.perf_counter() - start < 0.003:
        f()
        calls += 1
    per = (time.perf_counter() - start) / calls
    n = max(1, math.ceil(0.003 / per))
    rounds = []
    for _ in range(7):
        t = time.perf_counter()
        for _ in range(n):
            f()
        rounds.append((time.perf_counter() - t) / n)
    return sorted(rounds)[len(rounds) // 2]


def sparse_bench(args):
    base = os.path.dirname(args.manifest)
    out = []
    with torch.no_grad():
        for item in json.load(open(args.manifest)):
            w = torch.from_numpy(np.fromfile(os.path.join(base, item["w"]), dtype=np.float32))
            x = torch.from_numpy(np.fromfile(os.path.join(base, item["x"]), dtype=np.float32))
            w = w.reshape(item["out"], item["k"])
            x = x.reshape(item["k"], item["n"])
            w_csr = w.to_sparse_csr()
            out.append({
                "key": item["key"],
                "dense_seconds": seconds_per_call(lambda: torch.mm(w, x)),
                "sparse_seconds": seconds_per_call(lambda: torch.sparse.mm(w_csr, x)),
            })
    print(json.dumps(out))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("mode", choices=["step", "gmp-run", "sparse"])
    p.add_argument("--manifest")
    p.add_argument("--model", default="mlp-300-100")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--sparsity", type=float, default=0.9)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", default=os.environ.get(
        "SPARSELAB_DATA_DIR", "/usr/share/datasets/fashion-mnist"))
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    {"step": step_bench, "gmp-run": gmp_run, "sparse": sparse_bench}[args.mode](args)


if __name__ == "__main__":
    main()
